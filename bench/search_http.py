"""Search through HTTP on a live uvicorn with the demo's sample data, at
concurrency 1, 8 and 32, with dynamic batching (query encodes and Milvus
searches) on and off; and, for the same queries, the model's own batched
encode rate in-process and the in-process encode + one search per query.

Usage: python bench/search_http.py [demo ...]   (default: qa_chatbot image_search)
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

from common import image_requests, live_server, payload_of, qa_requests, report, search_load

from vectorfair.runtime import Platform
from vectorfair.settings import load_settings
from vectorfair.testing import write_config

CONCURRENCY = (1, 8, 32)


REQUESTS = {"qa_chatbot": (qa_requests, 240), "image_search": (lambda: image_requests(size=(320, 240)), 96)}


def in_process_qps(name: str, requests: list[dict], search: bool, batch: int = 32) -> float:
    """Queries per second in this process, encoded in batches of `batch`:
    with `search`, each vector also searched once on the demo's sample data
    (what HTTP can at best approach); without, the model's own rate (the
    issue's yardstick for HTTP)."""
    with tempfile.TemporaryDirectory() as root:
        config = write_config(
            Path(root), f"[demos.{name}]\nload_sample_on_start = false\n[encoders]\nbatching = false\n", plugins=name
        )
        platform = Platform(load_settings(config))
        try:
            demo = platform.demos[name]
            if search:
                platform.prepare(force=True)
                platform.ingestor(name).run(list(demo.sample_items()))
            payloads = [payload_of(demo, request) for request in requests]
            batch = min(batch, len(payloads))
            demo.encode(payloads[:batch])  # warm
            total, started = 0, time.perf_counter()
            while time.perf_counter() - started < 8 or total < 2 * batch:
                for first in range(0, len(payloads) - batch + 1, batch):
                    vectors = demo.encode(payloads[first : first + batch])
                    for vector in vectors if search else ():
                        platform.store.search(demo, vector, 5)
                    total += batch
            return total / (time.perf_counter() - started)
        finally:
            platform.close()


def main():
    names = sys.argv[1:] or list(REQUESTS)
    result, rows = {}, []
    for name in names:
        make, total = REQUESTS[name]
        requests = make()
        runs = {}
        for batching in (True, False):
            # Batching on: query encodes and Milvus searches both gathered.
            flag = str(batching).lower()
            body = f"[encoders]\nbatching = {flag}\n[search]\nbatching = {flag}\n"
            with live_server(name, body) as (base, _, _):
                runs["on" if batching else "off"] = [
                    asyncio.run(search_load(base, name, requests, total if c > 1 else total // 4, c))
                    for c in CONCURRENCY
                ]
        ceiling = in_process_qps(name, requests, search=True)
        encode_only = in_process_qps(name, requests, search=False)
        by_c = {r["concurrency"]: r for r in runs["on"]}
        off_c = {r["concurrency"]: r for r in runs["off"]}
        result[name] = {
            "batching_on": runs["on"],
            "batching_off": runs["off"],
            "in_process_encode_search_qps": round(ceiling, 1),
            "in_process_encode_only_qps": round(encode_only, 1),
            "ratios": {
                "http_c32_over_encode_only": round(by_c[32]["qps"] / encode_only, 2),
                "http_c8_over_encode_only": round(by_c[8]["qps"] / encode_only, 2),
                "p99_over_p50_c32": round(by_c[32]["p99_ms"] / by_c[32]["p50_ms"], 2),
                "http_c32_over_in_process": round(by_c[32]["qps"] / ceiling, 2),
                "batching_on_over_off_c32": round(by_c[32]["qps"] / off_c[32]["qps"], 2),
                "p99_over_p50_c8": round(by_c[8]["p99_ms"] / by_c[8]["p50_ms"], 2),
            },
        }
        for mode in ("on", "off"):
            for run in runs[mode]:
                rows.append([name, mode, run["concurrency"], run["qps"], run["p50_ms"], run["p99_ms"], run["errors"]])
        rows.append([name, "in-process encode + search", "-", round(ceiling, 1), "-", "-", "-"])
        rows.append([name, "in-process encode only", "-", round(encode_only, 1), "-", "-", "-"])
    report(
        "search through HTTP (live uvicorn)",
        result,
        rows,
        ["demo", "batching", "concurrency", "queries/s", "p50 ms", "p99 ms", "errors"],
    )


if __name__ == "__main__":
    main()
