"""Plugins that declare a binary vector, two vector fields or a sparse vector
(fixture plugins written without any core edit) pass the conformance kit and
search exactly, on both Milvus Lite engines and on a real Milvus server."""

import numpy as np

from vectorfair.testing import assert_conforms, sample_loaded_client


def test_binary_vector_demo_conforms_and_ranks_by_tanimoto(tmp_path, milvus_backend):
    from vectorfair_shapes import WORDS, trigram_bits

    with sample_loaded_client(tmp_path, "bits") as client:
        assert_conforms(client, "bits")
        stats = client.get("/api/demos/bits/stats").json()
        (vector,) = stats["vectors"]
        assert vector["declared_kind"] == "binary" and vector["dim"] == 256
        if milvus_backend.stores_binary:  # stored as declared: Tanimoto = 1 - JACCARD distance
            assert (vector["kind"], vector["metric"], vector["index_type"]) == ("binary", "JACCARD", "BIN_FLAT")
        else:  # Milvus Lite 3 has no binary vectors: the declared fallback
            assert (vector["kind"], vector["metric"], vector["index_type"]) == ("float", "COSINE", "FLAT")
        texts = [f"{WORDS[i % 12]} {WORDS[(i * 5 + 3) % 12]} {i}" for i in range(30)]
        query = texts[7]
        hits = client.post("/api/demos/bits/search", json={"query": query, "top_k": 5}).json()["hits"]
        q = trigram_bits(query).astype(bool)
        expected = {}
        for text in texts:
            b = trigram_bits(text).astype(bool)
            tanimoto = (q & b).sum() / (q | b).sum()
            cosine = (q & b).sum() / np.sqrt(q.sum() * b.sum())
            expected[text] = tanimoto if milvus_backend.stores_binary else cosine
        best = sorted(expected.values(), reverse=True)[:5]
        assert [round(h["score"], 4) for h in hits] == [round(float(s), 4) for s in best]
        assert hits[0]["title"] == query


def test_two_vector_fields_search_one_per_query(tmp_path):
    with sample_loaded_client(tmp_path, "pairs") as client:
        assert_conforms(client, "pairs")
        stats = client.get("/api/demos/pairs/stats").json()
        assert [(v["name"], v["dim"], v["metric"]) for v in stats["vectors"]] == [
            ("words", 48, "COSINE"),
            ("rgb", 3, "L2"),
        ]
        red = client.post("/api/demos/pairs/search", json={"query": "#red", "top_k": 30}).json()["hits"]
        # Only the 16 rows with a colour have an rgb vector; red ones first, exactly.
        assert len(red) == 16 and all(h["fields"]["colour"] for h in red)
        reds = sum(h["fields"]["colour"] == "red" for h in red)
        assert reds == 2 and {h["fields"]["colour"] for h in red[:reds]} == {"red"} and red[0]["score"] == 1.0
        words = client.post("/api/demos/pairs/search", json={"query": "apple", "top_k": 30}).json()["hits"]
        assert len(words) == 24 and "apple" in words[0]["title"]
        only_blue = client.post(
            "/api/demos/pairs/search", json={"query": "#red", "top_k": 30, "filter": {"colour": "blue"}}
        ).json()["hits"]
        assert only_blue and {h["fields"]["colour"] for h in only_blue} == {"blue"}
        bad = client.post("/api/demos/pairs/search", json={"query": "#teal"})
        assert bad.status_code == 422 and "unknown colour" in bad.json()["detail"]


def test_sparse_vector_recipe_demo_with_numeric_filter(tmp_path, milvus_backend):
    with sample_loaded_client(tmp_path, "recipes") as client:
        assert_conforms(client, "recipes")
        (vector,) = client.get("/api/demos/recipes/stats").json()["vectors"]
        expected_kind = "sparse" if not milvus_backend.is_server or vector["kind"] == "sparse" else "float"
        assert vector["declared_kind"] == "sparse" and vector["kind"] == expected_kind
        hits = client.post("/api/demos/recipes/search", json={"query": "tomato basil"}).json()["hits"]
        assert hits[0]["title"] in ("Tomato soup", "Margherita pizza")
        quick = client.post(
            "/api/demos/recipes/search",
            json={"query": "tomato basil", "filter": {"minutes_max": 30, "cuisine": "italian"}},
        ).json()["hits"]
        assert [h["title"] for h in quick] == ["Tomato soup", "Carbonara"][: len(quick)] and quick
        assert all(h["fields"]["minutes"] <= 30 for h in quick)
        # Record files are read by the core for any demo that takes records.
        csv = "title,ingredients,cuisine,minutes\nShakshuka,egg tomato pepper cumin,levantine,25\n,missing title,x,1\n"
        added = client.post("/api/demos/recipes/items", files={"files": ("more.csv", csv, "text/csv")}).json()
        assert len(added["ids"]) == 1 and added["failed"][0]["name"] == "more.csv line 3"
        # A suffix the demo does not take is refused before any parser sees it.
        refused = client.post("/api/demos/recipes/items", files={"files": ("notes.txt", csv, "text/plain")}).json()
        assert not refused["ids"] and "not accepted" in refused["failed"][0]["error"]
