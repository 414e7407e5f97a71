"""Per demo, measured in one run on this machine, printed as JSON:
- the encoder in-process: ms per query encoded alone, and per item in a batch;
- a live uvicorn with the demo's sample data: how long the sample load took,
  and search latency through HTTP (median, p99, sequential requests).

Usage: python bench/demos.py [qa_chatbot image_search molecule_search]
"""

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
from common import image_requests, molecule_requests, payload_of, qa_requests  # noqa: E402
from live import free_port, start_app, wait_for  # noqa: E402

from vectorfair.plugins import configure_demos, discover  # noqa: E402
from vectorfair.settings import load_settings  # noqa: E402
from vectorfair.testing import write_config  # noqa: E402

QUERIES = {
    "qa_chatbot": qa_requests,
    "image_search": lambda: image_requests(quality=60),
    "molecule_search": lambda: molecule_requests(30),
}


def summary(values):
    return {
        "n": len(values),
        "median": round(statistics.median(values), 2),
        "p99": round(float(np.percentile(values, 99)), 2),
    }


def bench(name: str) -> dict:
    requests = QUERIES[name]()
    with tempfile.TemporaryDirectory() as root:
        config = write_config(Path(root), plugins=name)
        demo = configure_demos(load_settings(config), discover(load_settings(config)))[name]
        started = time.perf_counter()
        demo.warm_up()
        load_s = time.perf_counter() - started
        payloads = [payload_of(demo, r) for r in requests]
        single = []
        for payload in payloads:
            t = time.perf_counter()
            demo.encode([payload])
            single.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        demo.encode(payloads)
        batched = (time.perf_counter() - t) * 1000 / len(payloads)

        app, base = start_app(config, free_port(), Path(root, "app.log"))
        try:
            wait_for(lambda: httpx.get(f"{base}/readyz").status_code == 200, 60)
            jobs = wait_for(lambda: httpx.get(f"{base}/api/jobs").json(), 60)
            job = wait_for(
                lambda: (
                    (j := httpx.get(f"{base}/api/jobs/{jobs[0]['job_id']}").json())["state"] in ("succeeded", "failed")
                    and j
                ),
                900,
            )
            latencies = []
            with httpx.Client(base_url=base, timeout=120) as client:
                client.post(f"/api/demos/{name}/search", **requests[0])
                for request in requests:
                    t = time.perf_counter()
                    r = client.post(f"/api/demos/{name}/search", **request)
                    r.raise_for_status()
                    latencies.append((time.perf_counter() - t) * 1000)
        finally:
            app.kill()
    seconds = job["updated"] - job["created"]
    return {
        "model_load_s": round(load_s, 2),
        "encode_ms_single": summary(single),
        "encode_ms_per_item_batched": round(batched, 2),
        "sample_load": {
            "state": job["state"],
            "items": job["done"],
            "seconds": round(seconds, 1),
            "items_per_s": round(job["done"] / seconds, 1),
        },
        "http_search_ms": summary(latencies),
    }


def main():
    names = sys.argv[1:] or list(QUERIES)
    print(json.dumps({"machine": {"cpus": os.cpu_count()}, **{name: bench(name) for name in names}}, indent=2))


if __name__ == "__main__":
    main()
