"""The towhee adapter, offline: a pipeline of local functions as a demo's
encoder, through the real app, Milvus Lite and HTTP."""

import sys
import types

import numpy as np
import pytest
from fastapi.testclient import TestClient

towhee = pytest.importorskip("towhee", reason="pip install 'vectorfair[towhee]'")

from vectorfair import Entry, ItemError, hookimpl  # noqa: E402
from vectorfair.api import create_app  # noqa: E402
from vectorfair.settings import load_settings  # noqa: E402
from vectorfair.testing import write_config  # noqa: E402
from vectorfair.towhee import TowheeDemo, TowheeEncoder  # noqa: E402

LETTERS = "abcdefghijklmnopqrstuvwxyz"


def letter_counts(text: str) -> list[float]:
    return [float(text.lower().count(letter)) for letter in LETTERS]


def pipeline():
    return (
        towhee.pipe.input("text")
        .map("text", "clean", lambda text: " ".join(text.split()))
        .map("clean", "vec", letter_counts)
        .output("vec")
    )


class Letters(TowheeDemo):
    name = "letters"
    title = "Letter profiles (towhee)"
    inputs = ("text",)
    vector_dim = len(LETTERS)

    def towhee_pipeline(self):
        return pipeline()

    def parse_record(self, record):
        if not isinstance(record.get("text"), str) or not record["text"].strip():
            raise ItemError("a record needs a non-empty 'text'")
        yield Entry(payload=record["text"], title=record["text"])

    def parse_query_text(self, text):
        return text


def test_the_encoder_batches_through_the_pipeline():
    vectors = TowheeEncoder(pipeline())(["aab", "zz", "abc"])
    assert vectors.shape == (3, 26)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    assert vectors[1][25] == pytest.approx(1.0)


def test_a_towhee_demo_serves_search_through_http(tmp_path):
    plugin = types.ModuleType("towhee_letters_plugin")
    plugin.register_demos = hookimpl(lambda: [Letters])
    sys.modules[plugin.__name__] = plugin
    config = write_config(tmp_path, plugins="none-from-entry-points")
    with TestClient(create_app(load_settings(config), extra_plugins=[plugin])) as client:
        r = client.post(
            "/api/demos/letters/items",
            json={"records": [{"text": "zebra buzz"}, {"text": "apple banana"}, {"text": "   "}]},
        )
        assert r.status_code == 201 and len(r.json()["ids"]) == 2 and len(r.json()["failed"]) == 1
        hits = client.post("/api/demos/letters/search", json={"query": "a banana, an apple"}).json()["hits"]
        assert hits[0]["title"] == "apple banana"
