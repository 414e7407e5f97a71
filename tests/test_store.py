"""The store against real Milvus Lite: exact filtered search, schema checks, counts."""

import time

import numpy as np
import pytest
from fastapi.testclient import TestClient

from vectorfair import ScalarField
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


def seal_and_index(store, demo, rows: int, timeout: float = 120) -> None:
    """On a server, fresh rows sit in growing segments that are searched by
    brute force; flush them into sealed segments and wait for the index, so
    the search below goes through HNSW."""
    name = store.collection_name(demo)
    store.call(lambda client: client.flush(name))
    deadline = time.monotonic() + timeout
    while (index := store.call(lambda client: client.describe_index(name, "vector")))["indexed_rows"] < rows:
        assert time.monotonic() < deadline, f"index not built in {timeout} s: {index}"
        time.sleep(0.5)
    store.call(lambda client: client.load_collection(name))


def test_filtered_search_matches_brute_force(store_and_demo, milvus_backend):
    """Lite (FLAT): exactly brute force. A server (HNSW over sealed segments):
    recall@10 >= 0.99 against brute force, and every returned score exact."""
    store, demo = store_and_demo
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(2000, demo.dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    tags = rng.choice(["a", "b", "c", "d"], size=len(vectors))
    rows = [
        {"id": f"r{i}", "vector": v, "item": f"r{i}", "tenant": "public", "title": f"row {i}", "text": "", "tag": t}
        for i, (v, t) in enumerate(zip(vectors, tags))
    ]
    for start in range(0, len(rows), 500):
        store.insert(demo, rows[start : start + 500])
    assert store.count(demo) == 2000
    assert store.count(demo, 'tag == "a"') == int((tags == "a").sum())
    if milvus_backend.is_server:
        assert store.collections["fake"].vector().index_type == "HNSW"
        seal_and_index(store, demo, 2000)
    found = wanted = 0
    for q in range(40):
        query = rng.normal(size=demo.dim).astype(np.float32)
        query /= np.linalg.norm(query)
        tag = "abcd"[q % 4]
        got = store.search(demo, query, 10, f'tag == "{tag}"')
        scores = vectors @ query
        scores[tags != tag] = -np.inf
        expected = np.argsort(-scores)[:10]
        ids = [h["id"] for h in got]
        index_of = {f"r{i}": i for i in range(len(vectors))}
        assert all(tags[index_of[i]] == tag for i in ids), "a hit outside the filter"
        np.testing.assert_allclose(
            [h["distance"] for h in got], [scores[index_of[i]] for i in ids], rtol=1e-4, atol=1e-5
        )
        if not milvus_backend.is_server:
            assert ids == [f"r{i}" for i in expected]
        found += len(set(ids) & {f"r{i}" for i in expected})
        wanted += len(expected)
    assert found / wanted >= 0.99, f"recall@10 {found / wanted:.3f} against brute force"


def test_delete_is_reflected_in_count(store_and_demo):
    store, demo = store_and_demo
    store.insert(
        demo, [{"id": f"x{i}", "vector": np.ones(demo.dim), "item": f"x{i}", "tenant": "public"} for i in range(5)]
    )
    store.delete(demo, 'id in ["x1", "x2"]')
    assert store.count(demo) == 3


def test_storing_a_row_again_replaces_it(store_and_demo):
    """A server does not enforce unique primary keys on insert; the store
    upserts, so the same item stored twice (two uploads racing, a resumed
    job) is one row."""
    store, demo = store_and_demo
    rows = [
        {"id": f"k{i}", "vector": np.ones(demo.dim), "item": f"k{i}", "tenant": "public", "title": "first"}
        for i in range(3)
    ]
    store.insert(demo, rows)
    store.insert(demo, [{**row, "title": "second"} for row in rows])
    assert store.count(demo) == 3
    assert {r["title"] for r in store.query(demo, "", ["title"])} == {"second"}


def test_index_is_first_preference_the_backend_takes(store_and_demo, milvus_backend):
    store, demo = store_and_demo
    assert demo.vectors[0].index[0] == "HNSW"
    info = store.collections["fake"].vector()
    if milvus_backend.is_server:
        assert not store.is_lite
        assert (info.index_type, info.index_params) == ("HNSW", {"M": 16, "efConstruction": 200})
        assert info.search_params(10) == {"ef": 64} and info.search_params(100) == {"ef": 100}
    else:
        assert store.is_lite and (info.index_type, info.index_params) == ("FLAT", {})  # exact (DESIGN.md)


def test_stats_show_the_backend_and_index(client, milvus_backend):
    stats = client.get("/api/demos/fake/stats").json()
    if milvus_backend.is_server:
        assert stats["backend"].startswith("v2.")
        assert (stats["index_type"], stats["index_params"], stats["search_params"]) == (
            "HNSW",
            {"M": 16, "efConstruction": 200},
            {"ef": 64},
        )
    else:
        assert stats["backend"].startswith("milvus_lite")
        assert (stats["index_type"], stats["index_params"], stats["search_params"]) == ("FLAT", {}, {})


def test_json_fields_hold_any_json_value(settings):
    """A Milvus server's JSON field takes only objects (2.3: "cannot
    unmarshal array"); the store wraps other values and unwraps them on read."""
    demo = configure_demos(settings, discover(settings))["fake"]
    saved = type(demo).fields
    type(demo).fields = saved + (
        ScalarField("extra", "json"),
        ScalarField("box", "int_list", max_items=4),
        ScalarField("weights", "float_list", max_items=3),
    )
    store = Store(settings.milvus)
    try:
        store.ensure_collection(demo)
        values = [[1, 2, [3, 4]], {"a": [1, 2]}, "text", 3.5, None, [["label", 0.25]]]
        store.insert(
            demo,
            [
                {
                    "id": f"j{i}",
                    "vector": np.ones(demo.dim),
                    "item": f"j{i}",
                    "tenant": "public",
                    "extra": v,
                    "box": [1, 2, 3, 4, 5],
                    "weights": [0.5, 1],
                }
                for i, v in enumerate(values)
            ],
        )
        rows = {r["id"]: r for r in store.query(demo, "", ["id", "extra", "box", "weights"])}
        assert [rows[f"j{i}"]["extra"] for i in range(len(values))] == [*values[:4], {}, values[5]]
        assert rows["j0"]["box"] == [1, 2, 3, 4] and rows["j0"]["weights"] == [0.5, 1.0]
        hit = store.search(demo, np.ones(demo.dim), 6)[0]
        assert hit["extra"] == rows[hit["id"]]["extra"]
    finally:
        type(demo).fields = saved
        store.disconnect()


def test_changed_dim_is_a_clear_error_not_wrong_results(tmp_path):
    config = write_config(tmp_path, "[demos.fake]\nload_sample_on_start = false\n")
    with TestClient(create_app(load_settings(config))) as client:
        assert client.post("/api/demos/fake/items", json={"records": [{"text": "kept"}]}).status_code == 201
    config.write_text(
        config.read_text().replace("load_sample_on_start = false", "load_sample_on_start = false\ndim = 48")
    )
    settings = load_settings(config)
    with TestClient(create_app(settings)) as client:
        ready = client.get("/readyz")
        assert (
            ready.status_code == 503
            and "vector field 'vector' has dim 32, the demo now encodes 48" in ready.json()["demos"]["fake"]
        )
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


def test_rows_stored_again_stay_visible_to_tenant_filters(store_and_demo):
    """Milvus before 2.3.10 upserts partition-key rows into the wrong
    partition (milvus-io/milvus#30607), so a filter on the tenant missed them;
    the store leaves the partition key out on such a server."""
    store, demo = store_and_demo
    rows = [
        {"id": f"p{i}", "vector": np.ones(demo.dim), "item": f"p{i}", "tenant": ["public", "v1", "v2"][i % 3]}
        for i in range(30)
    ]
    store.insert(demo, rows)
    store.insert(demo, rows[:9])
    assert store.count(demo) == 30
    assert store.count(demo, 'tenant == "public"') == 10
    assert store.count(demo, 'tenant in ["public", "v1"]') == 20
    assert len(store.search(demo, np.ones(demo.dim), 30, 'tenant == "v2"')) == 10
