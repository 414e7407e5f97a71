"""What each Milvus consistency level costs on a real server, and what it sees.

Starts a real Milvus server (PyPI `milvus`, 2.3.5; or uses --uri), fills a
collection of 10,000 384-d vectors, then for each level measures, in one run:
- a top-10 search and a count(*) long after the last write (steady state);
- the first search right after this process's own write, and whether it
  found the row just written (read-your-writes);
- how long a row written by another process takes to become visible.

Usage: python bench/consistency.py [--uri http://127.0.0.1:19530] [--rounds 30]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
from common import report, stats_ms

from vectorfair.testing import MilvusServer, free_port

LEVELS = ("Bounded", "Session", "Strong", "Eventually")
DIM = 384
ROWS = 10_000


def fill(client, name: str, rng: np.random.Generator) -> None:
    from pymilvus import DataType

    if client.has_collection(name):
        client.drop_collection(name)
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)
    index = client.prepare_index_params()
    index.add_index(
        field_name="vector", index_type="HNSW", metric_type="COSINE", params={"M": 16, "efConstruction": 200}
    )
    client.create_collection(name, schema=schema, index_params=index)
    for first in range(0, ROWS, 2000):
        client.insert(
            name,
            [{"id": f"v{i}", "vector": rng.normal(size=DIM).astype(np.float32)} for i in range(first, first + 2000)],
        )
    client.flush(name)


def other_process_writes(uri: str, name: str, row_id: str) -> None:
    code = (
        "import numpy as np, sys\nfrom pymilvus import MilvusClient\n"
        f"MilvusClient({uri!r}).insert({name!r}, [{{'id': {row_id!r}, 'vector': np.ones({DIM}, 'float32')}}])\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def measure(client, uri: str, name: str, level: str, rounds: int, rng: np.random.Generator) -> dict:
    query = rng.normal(size=DIM).astype(np.float32).tolist()
    steady_search, steady_count, after_write, seen = [], [], [], 0
    for _ in range(rounds):
        began = time.perf_counter()
        client.search(name, data=[query], limit=10, anns_field="vector", consistency_level=level)
        steady_search.append(time.perf_counter() - began)
        began = time.perf_counter()
        client.query(name, filter="", output_fields=["count(*)"], consistency_level=level)
        steady_count.append(time.perf_counter() - began)
    for n in range(rounds):
        row_id = f"own-{level}-{n}"
        client.insert(name, [{"id": row_id, "vector": rng.normal(size=DIM).astype(np.float32)}])
        began = time.perf_counter()
        found = client.query(name, filter=f'id == "{row_id}"', output_fields=["id"], consistency_level=level)
        after_write.append(time.perf_counter() - began)
        seen += bool(found)
    visible = []
    for n in range(min(rounds, 5)):
        row_id = f"other-{level}-{n}"
        other_process_writes(uri, name, row_id)
        began = time.perf_counter()
        while not client.query(name, filter=f'id == "{row_id}"', output_fields=["id"], consistency_level=level):
            time.sleep(0.005)
        visible.append(time.perf_counter() - began)
    return {
        "level": level,
        "search": stats_ms(steady_search),
        "count": stats_ms(steady_count),
        "read_after_own_write": stats_ms(after_write),
        "own_write_seen": f"{seen}/{rounds}",
        "other_process_write_visible_after": stats_ms(visible),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uri", help="an existing Milvus server (default: start one)")
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    from pymilvus import MilvusClient

    rng = np.random.default_rng(3)
    with tempfile.TemporaryDirectory() as root:
        server = nullcontext() if args.uri else MilvusServer(Path(root) / "milvus", free_port())
        with server:
            uri = args.uri or server.uri
            client = MilvusClient(uri)
            version = client.get_server_version()
            name = "bench_consistency"
            fill(client, name, rng)
            runs = [measure(client, uri, name, level, args.rounds, rng) for level in LEVELS]
            client.drop_collection(name)
    rows = [
        [
            r["level"],
            r["search"]["p50_ms"],
            r["count"]["p50_ms"],
            r["read_after_own_write"]["p50_ms"],
            r["own_write_seen"],
            r["other_process_write_visible_after"]["p50_ms"],
        ]
        for r in runs
    ]
    report(
        f"consistency levels on Milvus {version} ({ROWS:,} x {DIM}-d, HNSW)",
        {"runs": runs},
        rows,
        [
            "level",
            "search p50 ms",
            "count p50 ms",
            "read after own write p50 ms",
            "own write seen",
            "other process's write visible after p50 ms",
        ],
    )


if __name__ == "__main__":
    main()
