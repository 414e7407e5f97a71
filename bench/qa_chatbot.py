"""QA chatbot: encode time per query in-process, and search latency through a
live uvicorn on the sample FAQ. Prints JSON."""

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from vectorfair.testing import write_config

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
from live import free_port, start_app, wait_for  # noqa: E402

QUERIES = [json.loads(line)["query"] for line in
           (Path(__file__).parents[1] / "plugins/qa_chatbot/tests/paraphrases.jsonl").read_text().splitlines()]


def percentile(values, q):
    return float(np.percentile(values, q))


def main():
    from vectorfair_qa_chatbot import QAChatbot

    demo = QAChatbot()
    started = time.perf_counter()
    demo.warm_up()
    load_s = time.perf_counter() - started
    single = []
    for query in QUERIES:
        t = time.perf_counter()
        demo.encode([query])
        single.append((time.perf_counter() - t) * 1000)
    t = time.perf_counter()
    demo.encode(QUERIES)
    batched_ms = (time.perf_counter() - t) * 1000 / len(QUERIES)

    with tempfile.TemporaryDirectory() as root:
        config = write_config(Path(root), plugins="qa_chatbot")
        app, base = start_app(config, free_port(), Path(root, "app.log"))
        try:
            wait_for(lambda: httpx.get(f"{base}/readyz").status_code == 200, 60)
            jobs = wait_for(lambda: httpx.get(f"{base}/api/jobs").json(), 60)
            job = wait_for(lambda: (j := httpx.get(f"{base}/api/jobs/{jobs[0]['job_id']}").json())["state"] == "succeeded" and j, 300)
            load_seconds = job["updated"] - job["created"]
            with httpx.Client(base_url=base, timeout=30) as client:
                client.post("/api/demos/qa_chatbot/search", json={"query": "warm up"})
                latencies, took = [], []
                for query in QUERIES * 2:
                    t = time.perf_counter()
                    r = client.post("/api/demos/qa_chatbot/search", json={"query": query, "top_k": 5})
                    latencies.append((time.perf_counter() - t) * 1000)
                    took.append(r.json()["took_ms"])
        finally:
            app.kill()
    print(json.dumps({
        "machine": {"cpus": os.cpu_count()},
        "model_load_s": round(load_s, 2),
        "encode_ms_per_query_single": {"median": round(statistics.median(single), 2), "p99": round(percentile(single, 99), 2)},
        "encode_ms_per_query_batched": round(batched_ms, 2),
        "sample_load": {"items": job["done"], "seconds": round(load_seconds, 2),
                        "items_per_s": round(job["done"] / load_seconds, 1)},
        "http_search_ms": {"n": len(latencies), "median": round(statistics.median(latencies), 2),
                           "p99": round(percentile(latencies, 99), 2)},
        "server_took_ms_median": round(statistics.median(took), 2),
    }, indent=2))


if __name__ == "__main__":
    main()
