"""Soak: every demo's sample loaded in one live `vectorfair serve` (the
default config: every demo on embedded Milvus Lite), then mixed searches
(all demos) and uploads, `--concurrency` requests at a time for
`--seconds`. Reports per demo and kind: requests, errors (status >= 400 or
no answer), p50 / p99 / max latency, searches slower than 2 s; the server's
RSS every 10 s; and the slowest requests with their time into the run (a
stall shows as many slow requests at one moment).

Usage: python bench/soak.py [--seconds 600] [--concurrency 32] [--upload-share 0.1]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import random
import statistics
import time

import httpx
import numpy as np
from common import image_requests, live_server, molecule_requests, qa_requests, report, rss_mib, stats_ms

SLOW_S = 2.0
# Every built-in demo and the example plugin, as `make run` serves them.
DEMOS = ("image_search", "video_analysis", "qa_chatbot", "molecule_search", "audio_search", "palette")


def search_requests() -> dict[str, list[dict]]:
    """Per demo, search requests (httpx keyword arguments) a visitor sends."""
    images = image_requests(size=(320, 240))
    return {
        "qa_chatbot": qa_requests(),
        "image_search": images,
        "molecule_search": molecule_requests(30),
        "video_analysis": [{"json": {"query": "space shuttle", "top_k": 5}}, *images[:4]],
        "audio_search": audio_requests(),
        "palette": [{"json": {"query": q, "top_k": 5}} for q in ("orange 2, brown", "blue", "red 3, white")],
    }


def audio_requests() -> list[dict]:
    """The three shortest sample recordings (sound effects) as queries."""
    from vectorfair_audio_search.samples import sample_files

    shortest = sorted(sample_files(), key=lambda file: len(file[1]))[:3]
    return [{"files": {"file": (name.split("/")[-1], data)}, "data": {"top_k": "5"}} for name, data in shortest]


def upload(kind: str, n: int) -> tuple[str, dict]:
    """The n-th upload of one kind: (demo, httpx keyword arguments); each is
    new content, so it is encoded and stored, not found stored already."""
    if kind == "qa_chatbot":
        record = {"question": f"What is soak question number {n}?", "answer": f"It is answer {n} of the soak."}
        return kind, {"json": {"records": [record]}}
    if kind == "molecule_search":
        return kind, {
            "json": {"records": [{"smiles": "C" * (n % 40 + 1) + "O" + "C" * (n // 40 % 40), "name": f"soak{n}"}]}
        }
    from PIL import Image

    rng = np.random.default_rng(n)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)).save(buffer, "PNG")
    return "image_search", {"files": {"files": (f"soak{n}.png", buffer.getvalue())}}


def demo_list_ms(base: str, n: int = 50) -> dict:
    """GET /api/demos (what the home page waits for: every demo with its
    counts), `n` times one after another."""
    with httpx.Client(base_url=base, timeout=30) as client:
        client.get("/api/demos")
        took = []
        for _ in range(n):
            began = time.perf_counter()
            client.get("/api/demos").raise_for_status()
            took.append(time.perf_counter() - began)
    return stats_ms(took)


async def soak(base: str, pid: int, seconds: float, concurrency: int, upload_share: float) -> dict:
    searches = search_requests()
    demos = [d["name"] for d in httpx.get(f"{base}/api/demos", timeout=30).json()]
    searches = {name: requests for name, requests in searches.items() if name in demos}
    latencies: dict[tuple[str, str], list[float]] = {}
    errors: dict[tuple[str, str], list[str]] = {}
    slowest: list[tuple[float, float, str]] = []
    rss: list[tuple[int, float]] = []
    uploads = iter(range(10**9))
    rng = random.Random(1)
    started = time.perf_counter()
    deadline = started + seconds

    async def one(client: httpx.AsyncClient):
        while time.perf_counter() < deadline:
            if rng.random() < upload_share:
                n = next(uploads)
                demo, request = upload(("qa_chatbot", "molecule_search", "image_search")[n % 3], n)
                kind, url = "upload", f"{base}/api/demos/{demo}/items"
            else:
                demo = rng.choice(list(searches))
                request = rng.choice(searches[demo])
                kind, url = "search", f"{base}/api/demos/{demo}/search"
            began = time.perf_counter()
            try:
                response = await client.post(url, **request)
                failure = None if response.status_code < 400 else f"{response.status_code} {response.text[:200]}"
            except httpx.HTTPError as exc:
                failure = f"{type(exc).__name__}: {exc}"
            took = time.perf_counter() - began
            latencies.setdefault((demo, kind), []).append(took)
            if failure:
                errors.setdefault((demo, kind), []).append(failure)
            slowest.append((took, began - started, f"{kind} {demo}"))
            slowest.sort(reverse=True)
            del slowest[20:]

    async def sample_rss():
        while time.perf_counter() < deadline:
            rss.append((round(time.perf_counter() - started), round(rss_mib(pid), 1)))
            await asyncio.sleep(10)

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        await asyncio.gather(sample_rss(), *(one(client) for _ in range(concurrency)))
    rows = {}
    for (demo, kind), values in sorted(latencies.items()):
        ms = [v * 1000 for v in values]
        rows[f"{demo} {kind}"] = {
            "n": len(ms),
            "errors": len(errors.get((demo, kind), [])),
            "first_errors": errors.get((demo, kind), [])[:3],
            "p50_ms": round(statistics.median(ms), 1),
            "p99_ms": round(float(np.percentile(ms, 99)), 1),
            "max_ms": round(max(ms), 1),
            "over_2s": sum(v > SLOW_S for v in values),
        }
    after_warm_up = [mib for t, mib in rss if t >= min(120, seconds / 4)]
    return {
        "seconds": seconds,
        "concurrency": concurrency,
        "requests": sum(len(v) for v in latencies.values()),
        "errors": sum(len(v) for v in errors.values()),
        "searches_over_2s": sum(r["over_2s"] for k, r in rows.items() if k.endswith("search")),
        "per_demo": rows,
        "rss_mib": rss,
        "rss_after_warm_up_mib": {"first": after_warm_up[0], "last": after_warm_up[-1], "max": max(after_warm_up)}
        if after_warm_up
        else {},
        "slowest": [{"ms": round(t * 1000), "at_s": round(at, 1), "request": what} for t, at, what in slowest],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--upload-share", type=float, default=0.1)
    args = parser.parse_args()
    with live_server(",".join(DEMOS), "[jobs]\nbatch_size = 32\n") as (base, process, ready_s):
        demo_list = demo_list_ms(base)
        result = asyncio.run(soak(base, process.proc.pid, args.seconds, args.concurrency, args.upload_share))
        result["demo_list_after"] = demo_list_ms(base)
    result["ready_s"] = round(ready_s, 1)
    result["demo_list_before"] = demo_list
    rows = [
        [name, r["n"], r["errors"], r["p50_ms"], r["p99_ms"], r["max_ms"], r["over_2s"]]
        for name, r in result["per_demo"].items()
    ]
    report(
        f"soak: {args.seconds:.0f} s of mixed searches and uploads at concurrency {args.concurrency}",
        result,
        rows,
        ["demo and kind", "requests", "errors", "p50 ms", "p99 ms", "max ms", "over 2 s"],
    )


if __name__ == "__main__":
    main()
