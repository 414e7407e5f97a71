"""Shared helpers of the benchmark scripts: machine facts, statistics, a live
server with a demo's sample data, and the JSON + markdown report."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from live import free_port, start_app, wait_for  # noqa: E402

from vectorfair.demo import Upload  # noqa: E402
from vectorfair.plugins import configure_demos, discover  # noqa: E402
from vectorfair.settings import load_settings  # noqa: E402
from vectorfair.testing import write_config  # noqa: E402


def qa_requests() -> list[dict]:
    """The QA paraphrase set as search requests (httpx keyword arguments)."""
    lines = (ROOT / "plugins/qa_chatbot/tests/paraphrases.jsonl").read_text().splitlines()
    return [{"json": {"query": json.loads(line)["query"], "top_k": 5}} for line in lines]


def molecule_requests(n: int, top_k: int = 10) -> list[dict]:
    """`n` SMILES from RDKit's NCI set (not the demo's sample) as search requests."""
    import random

    import rdkit

    lines = (Path(rdkit.__file__).parent / "Data/NCI/first_5K.smi").read_text().splitlines()[1:]
    return [{"json": {"query": line.split()[0], "top_k": top_k}} for line in random.Random(1).sample(lines, n)]


def image_requests(size: tuple[int, int] | None = None, quality: int = 75) -> list[dict]:
    """The image samples as JPEG search requests, resized to `size` if given."""
    import io

    import skimage
    from PIL import Image
    from vectorfair_image_search import SAMPLE_IMAGES

    out = []
    for name in SAMPLE_IMAGES:
        image = Image.open(Path(skimage.__file__).parent / "data" / name).convert("RGB")
        buffer = io.BytesIO()
        (image.resize(size) if size else image).save(buffer, "JPEG", quality=quality)
        out.append({"files": {"file": (name, buffer.getvalue())}, "data": {"top_k": "5"}})
    return out


def payload_of(demo, request: dict):
    """What the demo parses from a search request, as the server would."""
    if "json" in request:
        return demo.parse_query_text(request["json"]["query"])
    name, data = request["files"]["file"]
    return demo.parse_query_file(Upload(name, data))


def machine() -> dict:
    memory = 0
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                memory = int(line.split()[1]) // 1024 // 1024
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu": cpu, "memory_gib": memory, "python": platform.python_version()}


def stats_ms(seconds: list[float]) -> dict:
    ms = [s * 1000 for s in seconds]
    return {"n": len(ms), "p50_ms": round(statistics.median(ms), 2), "p99_ms": round(float(np.percentile(ms, 99)), 2)}


def demo_in_process(name: str, body: str = ""):
    with tempfile.TemporaryDirectory() as root:
        config = write_config(Path(root), body, plugins=name)
        settings = load_settings(config)
        return configure_demos(settings, discover(settings))[name]


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


@contextmanager
def live_server(
    plugins: str,
    body: str = "",
    load_samples: bool = True,
    timeout: float = 1200,
    env: dict | None = None,
    headers: dict | None = None,
):
    """A uvicorn process (`vectorfair serve`) on a fresh data dir with `plugins`
    enabled; waits until ready and, if asked, until the sample jobs finished
    (`headers`: the admin key of a portal, whose job list is per visitor)."""
    with tempfile.TemporaryDirectory() as root:
        config = write_config(Path(root), body, plugins=plugins)
        started = time.perf_counter()
        process, base = start_app(config, free_port(), Path(root, "app.log"), env=env)
        try:
            wait_for(lambda: httpx.get(f"{base}/readyz", timeout=5).status_code == 200, 120, what="readyz")
            ready_s = time.perf_counter() - started
            if load_samples:

                def finished():
                    jobs = httpx.get(f"{base}/api/jobs", timeout=10, headers=headers).json()
                    return jobs and all(j["state"] in ("succeeded", "failed", "cancelled") for j in jobs) and jobs

                wait_for(finished, timeout, interval=0.5, what="sample jobs")
            yield base, process, ready_s
        finally:
            process.kill()


def report(title: str, result: dict, rows: list[list], header: list[str]) -> None:
    """JSON first (for machines), then a markdown table (for docs/performance.md)."""
    print(json.dumps({"benchmark": title, "machine": machine(), **result}, indent=2))
    print()
    print(f"### {title}")
    print()
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(str(cell) for cell in row) + " |")


async def search_load(base: str, name: str, requests: list[dict], total: int, concurrency: int) -> dict:
    """`total` searches of demo `name` through HTTP, `concurrency` at a time,
    cycling through `requests` (httpx keyword arguments); after one to warm up."""
    latencies: list[float] = []
    errors = 0
    counter = iter(range(total))

    async def worker(client: httpx.AsyncClient):
        nonlocal errors
        for n in counter:
            request = requests[n % len(requests)]
            began = time.perf_counter()
            response = await client.post(f"/api/demos/{name}/search", **request)
            latencies.append(time.perf_counter() - began)
            errors += response.status_code != 200

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=300, limits=limits) as client:
        await client.post(f"/api/demos/{name}/search", **requests[0])  # warm
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        wall = time.perf_counter() - started
    return {"concurrency": concurrency, "qps": round(total / wall, 1), **stats_ms(latencies), "errors": errors}
