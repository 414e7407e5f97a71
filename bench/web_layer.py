"""The web layer's own cost: CPU per request of a live `vectorfair serve`
process on a demo whose encoder and search cost next to nothing (the test
suite's `fake` demo: hashed words, 20 rows), read from /proc (user + system
time of the server process alone; embedded Lite 2 runs in a child process
and is not counted, Lite 3 runs inside and is).

For each route, `--requests` requests at concurrency 8: queries/s, p50, and
server CPU ms per request. For search, the in-process cost of the same
encode + Milvus search is measured too, so the web layer's share is the
difference; the ceiling is 1000 / (web CPU ms) requests per second per core.

Usage: python bench/web_layer.py [--requests 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

from common import live_server, report, search_load
from live import FIXTURES

from vectorfair.runtime import Platform
from vectorfair.settings import load_settings
from vectorfair.testing import write_config

sys.path.insert(0, str(FIXTURES))  # the `fake` demo, for the in-process measure too
CONCURRENCY = 8
QUERIES = ["apple banana", "cherry", "banana split", "apple pie with cherry", "kiwi"]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (/proc/PID/stat fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measured(base: str, pid: int, method: str, path: str, requests: list[dict], total: int) -> dict:
    import httpx

    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        for request in requests[:3]:  # warm
            await client.request(method, path, **request)
    before = cpu_seconds(pid)
    if method == "POST":
        run = await search_load(base, "fake", requests, total, CONCURRENCY)
    else:
        run = await get_load(base, path, total)
    cpu = cpu_seconds(pid) - before
    return {**run, "server_cpu_ms_per_request": round(cpu * 1000 / total, 3)}


async def get_load(base: str, path: str, total: int) -> dict:
    import statistics

    import httpx

    latencies: list[float] = []
    counter = iter(range(total))
    errors = 0

    async def worker(client):
        nonlocal errors
        for _ in counter:
            began = time.perf_counter()
            response = await client.get(path)
            latencies.append(time.perf_counter() - began)
            errors += response.status_code >= 400

    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        await asyncio.gather(*(worker(client) for _ in range(CONCURRENCY)))
    elapsed = time.perf_counter() - started
    return {
        "concurrency": CONCURRENCY,
        "qps": round(total / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "errors": errors,
    }


def in_process_search_ms(total: int) -> float:
    """CPU ms per query of the fake demo's encode + one Milvus search, in this
    process (no HTTP): what the search route costs beyond the web layer."""
    with tempfile.TemporaryDirectory() as root:
        platform = Platform(load_settings(write_config(Path(root), plugins="fake")))
        try:
            demo = platform.demos["fake"]
            platform.prepare(force=True)
            platform.ingestor("fake").run(list(demo.sample_items()))
            platform.store.settle(demo)
            before = time.process_time()
            for n in range(total):
                (vector,) = demo.encode([QUERIES[n % len(QUERIES)]])
                platform.store.search(demo, vector, 5)
            return (time.process_time() - before) * 1000 / total
        finally:
            platform.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    searches = [{"json": {"query": q, "top_k": 5}} for q in QUERIES]
    routes = [("GET", "/healthz", [{}]), ("GET", "/api/demos", [{}]), ("POST", "/api/demos/fake/search", searches)]
    result = {}
    with live_server("fake") as (base, process, _):
        for method, path, requests in routes:
            result[f"{method} {path}"] = asyncio.run(
                measured(base, process.proc.pid, method, path, requests, args.requests)
            )
    search = result["POST /api/demos/fake/search"]
    in_process = in_process_search_ms(args.requests)
    web = search["server_cpu_ms_per_request"] - in_process
    result["search_in_process_cpu_ms"] = round(in_process, 3)
    result["search_web_layer_cpu_ms"] = round(web, 3)
    result["web_layer_ceiling_qps_per_core"] = round(1000 / web, 1) if web > 0 else None
    rows = [
        [name, r["qps"], r["p50_ms"], r["server_cpu_ms_per_request"], r["errors"]]
        for name, r in result.items()
        if isinstance(r, dict)
    ]
    rows.append(["search: encode + Milvus in-process", "-", "-", round(in_process, 3), "-"])
    rows.append(["search: the web layer's own", "-", "-", round(web, 3), "-"])
    report(
        f"the web layer's own cost (fake demo, concurrency {CONCURRENCY})",
        result,
        rows,
        ["route", "queries/s", "p50 ms", "server CPU ms / request", "errors"],
    )


if __name__ == "__main__":
    main()
