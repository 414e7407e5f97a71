"""Dynamic batching of query encodes: the Batcher alone, then through HTTP."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from fastapi.testclient import TestClient

from vectorfair.api import create_app
from vectorfair.batching import Batcher
from vectorfair.settings import load_settings
from vectorfair.testing import write_config


def slow_encoder(calls, delay=0.02):
    def encode(payloads):
        calls.append(list(payloads))
        if "poison" in payloads:
            raise ValueError("poison")
        time.sleep(delay)
        return np.array([[float(p), 1.0] for p in payloads], dtype=np.float32)

    return encode


def test_concurrent_calls_share_model_calls_and_get_their_own_rows():
    calls = []
    batcher = Batcher(slow_encoder(calls), max_batch=8, max_wait=0.02)
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda n: batcher(str(n)), range(16)))
    batcher.close()
    assert [r[0] for r in results] == list(range(16))
    assert sum(len(c) for c in calls) == 16 and len(calls) < 16 and max(len(c) for c in calls) <= 8


def test_one_bad_payload_fails_only_its_own_call():
    calls = []
    batcher = Batcher(slow_encoder(calls), max_batch=8, max_wait=0.05)
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(batcher, p) for p in ("1", "poison", "3", "4")]
        outcomes = []
        for future in futures:
            try:
                outcomes.append(future.result()[0])
            except ValueError as exc:
                outcomes.append(str(exc))
    batcher.close()
    assert outcomes == [1.0, "poison", 3.0, 4.0]


def test_a_lone_call_waits_at_most_max_wait():
    batcher = Batcher(slow_encoder([], delay=0.0), max_batch=32, max_wait=0.01)
    batcher("0")  # starts the thread
    began = time.perf_counter()
    batcher("1")
    assert time.perf_counter() - began < 0.2
    batcher.close()


def all_at_once(call, count: int) -> list:
    """`call(n)` for n in range(count), from `count` threads released together."""
    barrier = threading.Barrier(count)

    def together(n):
        barrier.wait()
        return call(n)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(together, range(count)))


@pytest.mark.parametrize("batching", [True, False])
def test_concurrent_http_searches_are_batched_when_enabled(tmp_path, batching):
    from vectorfair_fake import CALLS

    config = write_config(
        tmp_path,
        plugins="fake",
        body="[demos.fake]\nload_sample_on_start = false\nencode_delay = 0.05\n"
        f"[encoders]\nbatching = {str(batching).lower()}\nmax_wait_ms = 20\n",
    )
    with TestClient(create_app(load_settings(config))) as client:
        client.post("/api/demos/fake/items", json={"records": [{"text": f"word{i} shared"} for i in range(5)]})

        def one(n):
            r = client.post("/api/demos/fake/search", json={"query": f"word{n % 5} shared", "top_k": 3})
            return r.status_code, [(h["title"], round(h["score"], 5)) for h in r.json()["hits"]]

        expected = [one(n) for n in range(12)]
        CALLS["encode_batches"].clear()
        results = all_at_once(one, 12)
    assert results == expected, "each caller gets the answer to its own query"
    batches = CALLS["encode_batches"]
    assert sum(batches) == 12
    if batching:
        assert max(batches) > 1 and len(batches) < 12
    else:
        assert batches == [1] * 12


@pytest.mark.parametrize("batching", [True, False])
def test_concurrent_searches_share_milvus_calls(tmp_path, monkeypatch, batching):
    """Searches gathered into one Milvus call with many vectors, grouped by
    filter and limit, each caller getting exactly its own answer."""
    from vectorfair.store import Store

    calls = []
    search_many = Store.search_many

    def counted(self, demo, vectors, limit, expression="", field=None):
        calls.append((len(vectors), limit, expression))
        time.sleep(0.03)  # a Milvus call long enough for the others to queue behind it
        return search_many(self, demo, vectors, limit, expression, field)

    config = write_config(
        tmp_path,
        plugins="fake",
        body=f"[demos.fake]\nload_sample_on_start = false\n[search]\nbatching = {str(batching).lower()}\n",
    )
    with TestClient(create_app(load_settings(config))) as client:
        client.post(
            "/api/demos/fake/items",
            json={"records": [{"text": f"word{i} shared", "tag": f"t{i % 2}"} for i in range(6)]},
        )

        def one(n):
            body = {"query": f"word{n % 6} shared", "top_k": 2 + n % 2}
            if n % 3 == 0:
                body["filter"] = {"tag": "t1"}
            r = client.post("/api/demos/fake/search", json=body)
            return r.status_code, [(h["title"], round(h["score"], 5)) for h in r.json()["hits"]]

        expected = [one(n) for n in range(18)]
        monkeypatch.setattr(Store, "search_many", counted)
        results = all_at_once(one, 18)
    assert results == expected, "each caller gets the answer to its own query"
    assert sum(size for size, _, _ in calls) == 18
    if batching:
        assert max(size for size, _, _ in calls) > 1 and len(calls) < 18
    else:
        assert all(size == 1 for size, _, _ in calls)
