"""The scale-out tier on this machine, with the QA demo's real encoder:

1. ingest throughput of queued jobs with 1 and 2 `vectorfair worker`
   processes (4 jobs of JOB_ITEMS question/answer pairs each, submitted at once);
2. search latency at concurrency 8 while a large job runs: the embedded
   default (the job runs in the web process) against a web process with a
   separate worker process (the job runs there), and with no job running.

Milvus is milvus-lite's engine over TCP, Redis is Debian's redis-server;
web and workers share one data dir (local media: kept uploads are files there).

Usage: python bench/workers.py
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
from common import qa_requests, report, search_load

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
from live import free_port, start_app, start_milvus, start_redis, start_worker, wait_for  # noqa: E402

from vectorfair.testing import write_config  # noqa: E402

DEMO = "qa_chatbot"
JOB_ITEMS = 400
JOBS = 4
BIG_JOB_ITEMS = 20000
SEARCHES = 240
TERMINAL = ("succeeded", "failed", "cancelled")


def qa_file(count: int, tag: str) -> bytes:
    rows = [
        {
            "question": f"How do I configure option {tag}-{n} of part {n % 37}?",
            "answer": f"Set {tag}-{n} to {n * 7 % 101}.",
        }
        for n in range(count)
    ]
    return "\n".join(json.dumps(r) for r in rows).encode()


def submit(base: str, count: int, tag: str) -> str:
    files = {"file": (f"{tag}.jsonl", qa_file(count, tag))}
    r = httpx.post(f"{base}/api/demos/{DEMO}/jobs", files=files, timeout=120)
    r.raise_for_status()
    return r.json()["job_id"]


def wait_jobs(base: str, ids: list[str], timeout: float = 3600) -> list[dict]:
    def ended():
        jobs = [httpx.get(f"{base}/api/jobs/{i}", timeout=30).json() for i in ids]
        return all(j["state"] in TERMINAL for j in jobs) and jobs

    return wait_for(ended, timeout, interval=0.5, what="jobs")


class Setup:
    def __init__(self, stack: ExitStack, root: Path, queue: bool, torch_threads: int = 0):
        self.stack, self.root = stack, root
        milvus_port = free_port()
        self.procs = [start_milvus(root / "milvus", milvus_port, root / "milvus.log")]
        body = f"[demos.{DEMO}]\nload_sample_on_start = false\n[encoders]\ntorch_threads = {torch_threads}\n"
        if queue:
            redis_port = free_port()
            self.procs.append(start_redis(redis_port, root / "redis"))
            body += f'[queue]\nredis_url = "redis://127.0.0.1:{redis_port}/0"\n'
        self.config = write_config(root, body, plugins=DEMO)
        text = re.sub(r'uri = "[^"]*"', f'uri = "http://127.0.0.1:{milvus_port}"', self.config.read_text())
        self.config.write_text(text)
        stack.callback(self.close)

    def web(self) -> str:
        process, base = start_app(self.config, free_port(), self.root / f"web{len(self.procs)}.log")
        self.procs.append(process)
        wait_for(lambda: httpx.get(f"{base}/readyz", timeout=5).status_code == 200, 120, what="readyz")
        return base

    def worker(self) -> None:
        self.procs.append(start_worker(self.config, self.root / f"worker{len(self.procs)}.log"))

    def close(self) -> None:
        for process in reversed(self.procs):
            process.kill()


def ingest(workers: int, torch_threads: int = 0) -> dict:
    """`torch_threads` 0: one per core in every process (they compete on 2 cores)."""
    with ExitStack() as stack, tempfile.TemporaryDirectory() as root:
        setup = Setup(stack, Path(root), queue=True, torch_threads=torch_threads)
        base = setup.web()
        for _ in range(workers):
            setup.worker()
        # Load the model in each worker before timing.
        wait_jobs(base, [submit(base, 8, f"warm{n}") for n in range(workers)])
        started = time.perf_counter()
        ids = [submit(base, JOB_ITEMS, f"job{n}") for n in range(JOBS)]
        jobs = wait_jobs(base, ids)
        wall = time.perf_counter() - started
        assert all(j["state"] == "succeeded" for j in jobs), jobs
        items = sum(j["done"] for j in jobs)
        return {
            "workers": workers,
            "torch_threads": torch_threads or "per core",
            "items": items,
            "seconds": round(wall, 1),
            "items_per_s": round(items / wall, 1),
        }


def search_during_job(mode: str) -> dict:
    """`mode`: "embedded" (job in the web process), "worker" (job in a separate
    worker process), "idle" (no job)."""
    with ExitStack() as stack, tempfile.TemporaryDirectory() as root:
        setup = Setup(stack, Path(root), queue=mode == "worker")
        base = setup.web()
        if mode == "worker":
            setup.worker()
        wait_jobs(base, [submit(base, 8, "warm")])
        job = None
        if mode != "idle":
            job = submit(base, BIG_JOB_ITEMS, "big")
            wait_for(lambda: httpx.get(f"{base}/api/jobs/{job}").json()["done"] > 0, 300, what="the big job")
        result = asyncio.run(search_load(base, DEMO, qa_requests(), SEARCHES, 8))
        if job is not None:
            state = httpx.get(f"{base}/api/jobs/{job}").json()
            assert state["state"] == "running", f"the job ended during the searches: {state['state']}"
            httpx.delete(f"{base}/api/jobs/{job}")
        return {"mode": mode, **result}


def main() -> None:
    ingest_rows = [ingest(1), ingest(2), ingest(2, torch_threads=1)]
    search_rows = [search_during_job(mode) for mode in ("idle", "embedded", "worker")]
    result = {"ingest": ingest_rows, "search_concurrency_8": search_rows, "job_items": JOB_ITEMS, "jobs": JOBS}
    rows = [
        [f"{r['workers']} worker(s), torch threads {r['torch_threads']}", r["items"], r["seconds"], r["items_per_s"]]
        for r in ingest_rows
    ]
    rows += [[f"search: {r['mode']}", r["qps"], r["p50_ms"], r["p99_ms"]] for r in search_rows]
    report(
        "Workers: ingest with 1 and 2 workers; search at concurrency 8 while a job runs",
        result,
        rows,
        ["workers / search while", "items or qps", "seconds or p50 ms", "items/s or p99 ms"],
    )


if __name__ == "__main__":
    main()
