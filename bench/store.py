"""Milvus Lite on its own: insert rate and top-10 search latency at 10k and
100k vectors (384-d, COSINE, FLAT as the core chooses for Lite), against numpy
brute force on the same vectors, with recall@10 against that exact answer.

Usage: python bench/store.py [sizes ...]   (default: 10000 100000)
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import report, stats_ms

from vectorfair import Demo
from vectorfair.settings import MilvusSettings
from vectorfair.store import Store

DIM = 384
QUERIES = 50


class Vectors(Demo):
    name = "bench_vectors"
    title = "benchmark vectors"

    @property
    def dim(self):
        return DIM


def clustered(count: int, rng: np.random.Generator) -> np.ndarray:
    """Unit vectors around 200 centres: closer to real embeddings than uniform noise."""
    centres = rng.normal(size=(200, DIM)).astype(np.float32)
    data = centres[rng.integers(0, 200, count)] + 0.6 * rng.normal(size=(count, DIM)).astype(np.float32)
    return data / np.linalg.norm(data, axis=1, keepdims=True)


def bench(count: int) -> dict:
    rng = np.random.default_rng(count)
    data = clustered(count, rng)
    queries = clustered(QUERIES, rng)
    demo = Vectors()
    with tempfile.TemporaryDirectory() as root:
        store = Store(MilvusSettings(uri=str(Path(root) / "bench.db")))
        assert store.connect(), store.last_error
        store.ensure_collection(demo)
        started = time.perf_counter()
        for first in range(0, count, 2000):
            rows = [
                {
                    "id": f"v{i}",
                    "vector": data[i],
                    "title": "",
                    "item": f"v{i}",
                    "media": "",
                    "thumb": "",
                    "tenant": "public",
                    "created": 0,
                }
                for i in range(first, min(count, first + 2000))
            ]
            store.insert(demo, rows)
        store.settle(demo)
        insert_s = time.perf_counter() - started
        store.search(demo, queries[0], 10)  # warm
        milvus_latency, found = [], []
        for query in queries:
            began = time.perf_counter()
            hits = store.search(demo, query, 10)
            milvus_latency.append(time.perf_counter() - began)
            found.append({hit["id"] for hit in hits})
        store.disconnect()
    numpy_latency, recall = [], []
    for query, got in zip(queries, found):
        began = time.perf_counter()
        scores = data @ query
        top = np.argpartition(-scores, 10)[:10]
        numpy_latency.append(time.perf_counter() - began)
        recall.append(len(got & {f"v{i}" for i in top}) / 10)
    return {
        "vectors": count,
        "insert_s": round(insert_s, 2),
        "inserts_per_s": round(count / insert_s),
        "milvus_lite_search": stats_ms(milvus_latency),
        "numpy_brute_force": stats_ms(numpy_latency),
        "recall_at_10": round(float(np.mean(recall)), 4),
    }


def main():
    sizes = [int(s) for s in sys.argv[1:]] or [10_000, 100_000]
    runs = [bench(size) for size in sizes]
    rows = [
        [
            r["vectors"],
            r["inserts_per_s"],
            r["milvus_lite_search"]["p50_ms"],
            r["milvus_lite_search"]["p99_ms"],
            r["numpy_brute_force"]["p50_ms"],
            r["recall_at_10"],
        ]
        for r in runs
    ]
    report(
        "store: Milvus Lite vs numpy brute force (384-d, top 10)",
        {"runs": runs},
        rows,
        ["vectors", "inserts/s", "Lite p50 ms", "Lite p99 ms", "numpy p50 ms", "recall@10"],
    )


if __name__ == "__main__":
    main()
