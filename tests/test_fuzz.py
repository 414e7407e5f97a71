"""Schemathesis against the app's own OpenAPI: every route, generated valid and
invalid requests, on a live portal-mode server (uvicorn, Milvus Lite, the fake
demo with its sample loaded). No answer may be a 5xx; no invalid request may
get a 2xx; every answer must match what the schema declares for its status."""

import os
import tempfile
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from vectorfair.api import create_app
from vectorfair.settings import load_settings

from .conftest import write_config
from .live import free_port, start_app, wait_for

ADMIN_KEY = "fuzz-admin-key"
EXAMPLES = int(os.environ.get("VECTORFAIR_FUZZ_EXAMPLES", "5"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
SENT: dict[str, int] = {}


# Every built-in demo and the example plugin, so every route any of them
# adds is fuzzed; the fake demo brings shared sample data to read.
PLUGINS = "fake,qa_chatbot,image_search,molecule_search,audio_search,video_analysis,palette"
REAL_DEMOS = ("qa_chatbot", "image_search", "molecule_search", "audio_search", "video_analysis", "palette")


def portal_config(root: Path) -> Path:
    return write_config(
        root,
        (
            "[demos.fake]\nload_sample_on_start = true\n"
            + "".join(f"[demos.{name}]\nload_sample_on_start = false\n" for name in REAL_DEMOS)
            + f'[admin]\napi_key = "{ADMIN_KEY}"\n'
            '[visitors]\nseparate = true\nsecret = "fuzz"\nmax_items = 50\n'
            "[limits]\nmax_request_bytes = 1048576\n"
        ),
        plugins=PLUGINS,
    )


def served_schema() -> dict:
    """The OpenAPI document the live server will serve (same config, same
    plugins), built at collection so pytest can list one test per route."""
    with tempfile.TemporaryDirectory() as root:
        app = create_app(load_settings(portal_config(Path(root))))
        document = app.openapi()
        app.state.platform.close()
        return document


@pytest.fixture(scope="module")
def live_portal(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    config = portal_config(root)
    # Models load on first use: the fuzzing itself is what needs the cores.
    process, base = start_app(config, free_port(), Path(root) / "app.log", env={"VECTORFAIR_WARM_UP_ON_START": "false"})
    try:
        wait_for(lambda: httpx.get(f"{base}/api/demos/fake/stats").json().get("count") == 20, 60, what="sample data")
        yield base
    finally:
        process.kill()
        output = process.output()
        assert "Traceback" not in output or "unhandled error" not in output, output[-4000:]
        print(f"\nfuzzed requests: {sum(SENT.values())} {dict(sorted(SENT.items()))}")


schema = schemathesis.openapi.from_dict(served_schema())


def fuzz(case, base_url: str, who: str) -> None:
    headers = {"X-API-Key": ADMIN_KEY} if who == "admin" else {}
    response = case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS, timeout=60)
    mode = getattr(getattr(getattr(case, "meta", None), "generation", None), "mode", None)
    key = f"{who} {getattr(mode, 'value', mode)} {response.status_code // 100}xx"
    SENT[key] = SENT.get(key, 0) + 1


FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)


@pytest.mark.slow
@schema.parametrize()
@FUZZ_SETTINGS
def test_every_route_as_a_visitor(case, live_portal):
    fuzz(case, live_portal, "visitor")


@pytest.mark.slow
@schema.parametrize()
@FUZZ_SETTINGS
def test_every_route_as_the_admin(case, live_portal):
    fuzz(case, live_portal, "admin")
