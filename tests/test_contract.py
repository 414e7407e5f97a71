"""What the core derives from a demo class, what it checks, and the messages
an author gets when something is wrong (docs/writing_a_plugin.md)."""

import types

import numpy as np
import pytest
from fastapi.testclient import TestClient

from vectorfair import Demo, DemoFilter, Entry, ScalarField, VectorField, hookimpl
from vectorfair.api import create_app
from vectorfair.contract import accepted_suffixes, problems, takes_records
from vectorfair.expr import matching
from vectorfair.settings import ConfigError, load_settings

from .conftest import write_config


class Notes(Demo):
    """A minimal demo: records of text, a 4-d vector."""

    name = "notes"
    title = "Notes"
    fields = (ScalarField("text"), ScalarField("stars", "int", index=True), ScalarField("tags", "str_list"))
    vectors = (VectorField(dim=4),)

    def encode(self, payloads):
        return np.stack([np.array([len(p), 1.0, 0.0, 1.0], dtype=np.float32) for p in payloads])

    def parse_record(self, record):
        yield Entry(payload=record["text"], title=record["text"], fields=record)


def plugin(name, **hooks):
    module = types.ModuleType(name)
    for hook, function in hooks.items():
        setattr(module, hook, hookimpl(function))
    return module


def plugin_of(*classes):
    return plugin("inline", register_demos=lambda: list(classes))


def app_with(tmp_path, *classes, body=""):
    names = ",".join(cls.name for cls in classes)
    config = write_config(
        tmp_path, body + "".join(f"[demos.{c.name}]\nload_sample_on_start = false\n" for c in classes), plugins="none"
    )
    settings = load_settings(config)
    settings.enable_unlisted_demos = True
    assert names
    return create_app(settings, extra_plugins=[plugin_of(*classes)])


def test_what_a_demo_takes_follows_from_what_it_defines():
    assert problems(Notes) == []
    assert takes_records(Notes) and accepted_suffixes(Notes) == (".csv", ".json", ".jsonl")

    class Files(Notes):
        name = "files"

        def parse_upload(self, upload):
            yield from ()

    assert "parse_upload is defined but accepts is empty" in " ".join(problems(Files))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"inputs": ("image",)}, "inputs names image but parse_query_file is not defined"),
        ({"fields": (ScalarField("title"),)}, "field name 'title' is reserved by the core"),
        ({"vectors": ()}, "no vector field"),
        ({"vectors": (VectorField("fp", "binary", 12, "JACCARD"),)}, "must be a multiple of 8"),
        ({"vectors": (VectorField(dim=4, metric="JACCARD"),)}, "metric 'JACCARD' does not apply to float vectors"),
        ({"vectors": (VectorField(dim=4), VectorField(dim=8))}, "field name 'vector' is declared twice"),
        ({"accepts": ("CSV",)}, "give lower-case suffixes with the dot"),
    ],
)
def test_contract_problems_say_what_to_do(change, message):
    broken = type("Broken", (Notes,), change)
    assert message in " ".join(problems(broken))


def test_a_filter_member_must_match_a_field_unless_the_demo_writes_the_expression():
    class Misspelled(DemoFilter):
        star_min: int | None = None

    assert "Filter member 'star_min' matches no field" in " ".join(
        problems(type("F", (Notes,), {"Filter": Misspelled}))
    )

    class Written(Notes):
        Filter = Misspelled

        def filter_expression(self, filter):
            return ""

    assert problems(Written) == []


def test_default_filter_expression_matches_fields_by_name():
    class NotesFilter(DemoFilter):
        text: str | None = None
        stars_min: int | None = None
        stars_max: int | None = None
        tags: list[str] | None = None

    expression = matching(Notes.fields, NotesFilter(text='say "hi"', stars_min=2, stars_max=4, tags=["a", "b"]))
    assert expression == (
        '(text == "say \\"hi\\"") and (stars >= 2) and (stars <= 4) and (array_contains_any(tags, ["a", "b"]))'
    )
    assert matching(Notes.fields, NotesFilter()) == ""


def test_a_broken_demo_is_reported_as_broken_not_as_not_installed(tmp_path):
    bad = type("Bad", (Notes,), {"name": "bad", "fields": (ScalarField("created", "int"),)})
    config = write_config(tmp_path, "[demos.bad]\nload_sample_on_start = false\n", plugins="none")
    with pytest.raises(ConfigError, match="demo bad is installed .* but broken: .*'created' is reserved"):
        create_app(load_settings(config), extra_plugins=[plugin_of(bad)])


def test_a_misspelled_hookimpl_breaks_its_plugin_with_a_message(tmp_path):
    typo = plugin("typo", register_demos=lambda: [Notes], register_route=lambda: [])
    config = write_config(tmp_path, "", plugins="none")
    with TestClient(create_app(load_settings(config), extra_plugins=[typo])) as client:
        (info,) = [p for p in client.get("/api/plugins").json() if p["name"] == "typo"]
        assert not info["ok"] and "register_route" in info["error"] and "register_routes" in info["error"]
        assert "notes" not in [d["name"] for d in client.get("/api/demos").json()]


def test_encoder_errors_name_the_cause(tmp_path):
    class Wrong(Notes):
        name = "wrong"

        def encode(self, payloads):
            return [
                np.full(3 if p == "short" else 4, np.nan if p == "nan" else 1.0, dtype=np.float32) for p in payloads
            ]

    with TestClient(app_with(tmp_path, Wrong)) as client:
        body = client.post(
            "/api/demos/wrong/items", json={"records": [{"text": "short"}, {"text": "nan"}, {"text": "fine"}]}
        ).json()
        errors = {f["name"]: f["error"] for f in body["failed"]}
        assert len(body["ids"]) == 1
        assert "has dim 4: the encoder returned shape (3,)" in errors["records[0]"]
        assert "NaN or infinite" in errors["records[1]"]


def test_a_vector_kind_the_backend_lacks_needs_a_fallback(tmp_path, milvus_backend):
    # A kind each engine lacks: Lite 3 stores no binary vectors, a 2.3 server
    # no sparse ones; Lite 2.5 stores all four.
    missing = {"lite-python": "binary", "server": "sparse"}.get(milvus_backend.engine)
    if missing is None:
        pytest.skip("Milvus Lite 2.5 stores every vector kind (tests/test_engines.py)")

    class NoFallback(Notes):
        name = "nofallback"
        vectors = (
            VectorField("fp", "binary", 16, "JACCARD")
            if missing == "binary"
            else VectorField("fp", "sparse", metric="IP"),
        )

        def encode(self, payloads):
            if missing == "sparse":
                return [{1: 1.0}] * len(payloads)
            return np.ones((len(payloads), 16), dtype=np.uint8)

    with TestClient(app_with(tmp_path, NoFallback)) as client:
        state = client.get("/readyz").json()["demos"]["nofallback"]
        assert f"vector field 'fp' is {missing}, which Milvus" in state and "declare a fallback" in state
        refused = client.post("/api/demos/nofallback/search", json={"query": "x"})
        assert refused.status_code == 409 and missing in refused.json()["detail"]


def test_a_fallback_may_bring_its_own_conversion():
    from vectorfair.schema import Backend, VectorRejected, problems_of, resolve, to_stored

    halves = VectorField(kind="float", dim=4, metric="IP", index=("FLAT",), convert=lambda packed: [len(packed)] * 4)
    declared = VectorField("fp", "binary", 16, "JACCARD", fallback=halves)
    assert problems_of((), (declared,)) == []
    lite = Backend("milvus_lite-3.2.2", is_lite=True)
    stored = resolve(declared, lite)
    assert stored.stored.dim == 4 and list(to_stored(b"\xff\x00", stored)) == [2.0] * 4
    # The conversion's result is checked like an encoder's.
    wrong = resolve(
        VectorField("fp", "binary", 16, "JACCARD", fallback=VectorField(dim=4, convert=lambda v: [1])), lite
    )
    with pytest.raises(VectorRejected, match="dim 4"):
        to_stored(b"\xff\x00", wrong)
    # On a declared field it means nothing: said so.
    (problem,) = problems_of((), (VectorField("v", dim=4, convert=abs),))
    assert (
        problem == "vector field 'v': convert applies to a fallback (how to store the field where its kind is missing)"
    )
