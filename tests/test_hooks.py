"""Every hook is documented and tested (the datasette rule)."""

import inspect
import re
import sys
from pathlib import Path

from fastapi.testclient import TestClient

from vectorfair import hookspecs
from vectorfair.api import create_app

DOCS = Path(__file__).parents[1] / "docs" / "plugin_hooks.md"


def _hooks():
    return {name: fn for name, fn in vars(hookspecs).items() if callable(fn) and hasattr(fn, "vectorfair_spec")}


def test_every_hook_has_a_docstring_a_test_and_a_documented_signature():
    documented = DOCS.read_text()
    tests = {name for name in vars(sys.modules[__name__]) if name.startswith("test_hook_")}
    assert _hooks(), "no hookspecs found"
    for name, fn in _hooks().items():
        assert fn.__doc__, f"hook {name} has no docstring"
        assert f"test_hook_{name}" in tests, f"hook {name} has no test_hook_{name}"
        signature = f"## {name}({', '.join(inspect.signature(fn).parameters)})"
        assert re.search(rf"^{re.escape(signature)}$", documented, re.M), f"docs lack heading {signature!r}"


def test_hook_register_demos(client):
    demos = client.get("/api/demos").json()
    assert demos[0]["name"] == "fake" and demos[0]["inputs"] == ["text"]


def test_hook_register_routes(client):
    assert client.get("/api/fake-extra/demos").json() == ["fake"]


def test_hook_startup(settings):
    import vectorfair_fake

    before = vectorfair_fake.CALLS["startup"]
    with TestClient(create_app(settings)):
        assert vectorfair_fake.CALLS["startup"] == before + 1


def test_hook_tracing(settings, monkeypatch, capsys):
    monkeypatch.setenv("VECTORFAIR_TRACE_HOOKS", "1")
    from vectorfair.plugins import discover

    discover(settings)
    assert "register_demos" in capsys.readouterr().err


def test_hook_extra_static(client):
    r = client.get("/static/plugins/fake/fake.css")
    assert r.status_code == 200 and ".fake-result" in r.text
    assert client.get("/static/plugins/fake/%2e%2e/__init__.py").status_code == 404
