"""A real Milvus server at a million vectors: insert rate, index build time,
memory, search latency and recall@10 against brute force, at two index
settings. The figures docs/scaling.md carries to 100 million.

Data: synthetic but clustered (like real embeddings, unlike uniform noise):
`--clusters` centres on the unit sphere, each row a centre plus Gaussian
noise, normalised; metric IP (= cosine). Queries are fresh draws from the
same mixture; the truth is numpy's exact top 10 over all rows.

Starts a Milvus server (PyPI `milvus` 2.3.5) in a temporary directory unless
--uri names one. Usage: python bench/scale.py [--rows 1000000] [--dim 384]
"""

from __future__ import annotations

import argparse
import os
import signal
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
from common import report, stats_ms

from vectorfair.testing import MilvusServer, free_port

INDEXES = {
    # name: (index type, build params, [search params ...])
    "IVF_FLAT": ("IVF_FLAT", {"nlist": 1024}, [{"nprobe": 16}, {"nprobe": 64}]),
    "HNSW": ("HNSW", {"M": 16, "efConstruction": 64}, [{"ef": 32}, {"ef": 128}]),
}


def mixture(rng: np.random.Generator, centres: np.ndarray, n: int, noise: float) -> np.ndarray:
    rows = centres[rng.integers(0, len(centres), n)] + rng.normal(0, noise, (n, centres.shape[1])).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def group_rss_mib(pgid: int) -> float:
    """Resident memory of every process in the server's process group."""
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            if os.getpgid(int(pid)) != pgid:
                continue
            with open(f"/proc/{pid}/status") as fh:
                total += next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:"))
        except (OSError, StopIteration):
            continue
    return round(total / 1024, 1)


def exact_top10(data: np.ndarray, queries: np.ndarray) -> np.ndarray:
    truth = []
    for start in range(0, len(queries), 50):
        scores = queries[start : start + 50] @ data.T
        truth.append(np.argsort(-scores, axis=1)[:, :10])
    return np.vstack(truth)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--clusters", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--indexes", default="IVF_FLAT,HNSW")
    parser.add_argument("--uri")
    args = parser.parse_args()
    from pymilvus import DataType, MilvusClient

    rng = np.random.default_rng(18)
    centres = rng.normal(size=(args.clusters, args.dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    data = mixture(rng, centres, args.rows, noise=0.04)
    queries = mixture(rng, centres, args.queries, noise=0.04)
    truth = exact_top10(data, queries)

    server = nullcontext()
    if not args.uri:
        server = MilvusServer(Path(tempfile.mkdtemp()) / "milvus", port=free_port(), ready_timeout=300)
    with server as running:
        uri = args.uri or running.uri
        client = MilvusClient(uri, timeout=3600)
        pgid = os.getpgid(running.process.pid) if running else None
        result = {"rows": args.rows, "dim": args.dim, "memory_mib": {}}
        result["memory_mib"]["server_idle"] = group_rss_mib(pgid) if pgid else None
        name = "scale_bench"
        if client.has_collection(name):
            client.drop_collection(name)
        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=args.dim)
        client.create_collection(name, schema=schema)

        started = time.perf_counter()
        batch = 10_000
        for first in range(0, args.rows, batch):
            chunk = data[first : first + batch]
            client.insert(name, [{"id": first + i, "vector": v} for i, v in enumerate(chunk.tolist())])
        client.flush(name)
        insert_s = time.perf_counter() - started
        result["insert"] = {"seconds": round(insert_s, 1), "rows_per_s": round(args.rows / insert_s)}
        result["memory_mib"]["after_insert"] = group_rss_mib(pgid) if pgid else None

        runs, rows = {}, []
        for label in args.indexes.split(","):
            index_type, build, searches = INDEXES[label]
            client.release_collection(name)
            for existing in client.list_indexes(name):
                client.drop_index(name, existing)
            params = client.prepare_index_params()
            params.add_index("vector", index_type=index_type, metric_type="IP", params=build)
            started = time.perf_counter()
            client.create_index(name, params)
            while True:  # the build runs in the background on the server
                info = client.describe_index(name, "vector")
                if info.get("state") == "Finished" or int(info.get("indexed_rows", 0)) >= args.rows:
                    break
                time.sleep(2)
            build_s = time.perf_counter() - started
            started = time.perf_counter()
            client.load_collection(name)
            load_s = time.perf_counter() - started
            memory = group_rss_mib(pgid) if pgid else None
            runs[label] = {"build": build, "build_s": round(build_s, 1), "load_s": round(load_s, 1)}
            runs[label]["memory_loaded_mib"] = memory
            for search in searches:
                latencies, found = [], 0
                query_list = queries.tolist()
                client.search(name, [query_list[0]], limit=10, search_params={"metric_type": "IP", "params": search})
                for q, vector in enumerate(query_list):
                    began = time.perf_counter()
                    hits = client.search(
                        name, [vector], limit=10, search_params={"metric_type": "IP", "params": search}
                    )[0]
                    latencies.append(time.perf_counter() - began)
                    found += len({h["id"] for h in hits} & set(truth[q].tolist()))
                recall = found / (10 * len(query_list))
                key = ",".join(f"{k}={v}" for k, v in search.items())
                runs[label][key] = {**stats_ms(latencies), "recall_at_10": round(recall, 4)}
                rows.append(
                    [
                        label,
                        build,
                        key,
                        round(build_s, 1),
                        memory,
                        runs[label][key]["p50_ms"],
                        runs[label][key]["p99_ms"],
                        round(recall, 4),
                    ]
                )
        result["indexes"] = runs
        client.drop_collection(name)
        client.close()
    report(
        f"a Milvus server at {args.rows:,} {args.dim}-d vectors",
        result,
        rows,
        [
            "index",
            "build params",
            "search params",
            "build s",
            "server RSS MiB (loaded)",
            "p50 ms",
            "p99 ms",
            "recall@10",
        ],
    )


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    main()
