"""The store against real Milvus Lite: exact filtered search, schema checks, counts."""

import numpy as np
import pytest
from fastapi.testclient import TestClient

from vectorfair.api import create_app
from vectorfair.plugins import configure_demos, discover
from vectorfair.settings import load_settings
from vectorfair.store import SchemaMismatch, Store

from .conftest import write_config


@pytest.fixture
def store_and_demo(settings):
    demo = configure_demos(settings, discover(settings))["fake"]
    store = Store(settings.milvus)
    store.ensure_collection(demo)
    yield store, demo
    store.disconnect()


def test_filtered_search_matches_brute_force(store_and_demo):
    store, demo = store_and_demo
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(2000, demo.dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    tags = rng.choice(["a", "b", "c", "d"], size=len(vectors))
    rows = [{"id": f"r{i}", "vector": v, "item": f"r{i}", "title": f"row {i}", "text": "", "tag": t}
            for i, (v, t) in enumerate(zip(vectors, tags))]
    for start in range(0, len(rows), 500):
        store.insert(demo, rows[start:start + 500])
    assert store.count(demo) == 2000
    assert store.count(demo, 'tag == "a"') == int((tags == "a").sum())
    for q in range(20):
        query = rng.normal(size=demo.dim).astype(np.float32)
        query /= np.linalg.norm(query)
        tag = "abcd"[q % 4]
        got = store.search(demo, query, 10, f'tag == "{tag}"')
        scores = vectors @ query
        scores[tags != tag] = -np.inf
        expected = np.argsort(-scores)[:10]
        assert [h["id"] for h in got] == [f"r{i}" for i in expected]
        np.testing.assert_allclose([h["distance"] for h in got], scores[expected], rtol=1e-4, atol=1e-5)


def test_delete_is_reflected_in_count(store_and_demo):
    store, demo = store_and_demo
    store.insert(demo, [{"id": f"x{i}", "vector": np.ones(demo.dim), "item": f"x{i}"} for i in range(5)])
    store.delete(demo, 'id in ["x1", "x2"]')
    assert store.count(demo) == 3


def test_index_is_first_preference_the_backend_takes(store_and_demo):
    store, demo = store_and_demo
    assert store.is_lite and demo.index_preferences[0] == "HNSW"
    assert store.collections["fake"].index_type == "FLAT"  # Lite: exact FLAT (DESIGN.md)
    server = Store(type(store.settings)(uri="http://127.0.0.1:1"))
    assert server.choose_index(demo) == "HNSW"


def test_changed_dim_is_a_clear_error_not_wrong_results(tmp_path):
    config = write_config(tmp_path, "[demos.fake]\nload_sample_on_start = false\n")
    with TestClient(create_app(load_settings(config))) as client:
        assert client.post("/api/demos/fake/items", json={"records": [{"text": "kept"}]}).status_code == 201
    config.write_text(config.read_text().replace("load_sample_on_start = false", "load_sample_on_start = false\ndim = 48"))
    settings = load_settings(config)
    with TestClient(create_app(settings)) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503 and "vector dim is 32, the demo now encodes 48" in ready.json()["demos"]["fake"]
        r = client.post("/api/demos/fake/search", json={"query": "kept"})
        assert r.status_code == 409 and "vectorfair drop fake" in r.json()["detail"]
        assert client.post("/api/demos/fake/items", json={"records": [{"text": "new"}]}).status_code == 409
        # The documented way out: drop the demo's data, then it works with the new dim.
        assert client.delete("/api/demos/fake/items").status_code == 200
        assert client.get("/readyz").status_code == 200
        assert client.post("/api/demos/fake/items", json={"records": [{"text": "new"}]}).status_code == 201
        assert client.get("/api/demos/fake/stats").json()["dim"] == 48


def test_schema_check_reports_missing_fields(settings):
    demo = configure_demos(settings, discover(settings))["fake"]
    store = Store(settings.milvus)
    store.ensure_collection(demo)
    type(demo).fields, saved = demo.fields + (type(demo.fields[0])("colour"),), demo.fields
    try:
        with pytest.raises(SchemaMismatch, match="field 'colour' is missing"):
            store.ensure_collection(demo)
    finally:
        type(demo).fields = saved
        store.disconnect()
