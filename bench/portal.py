"""What portal mode costs: the QA demo with its sample data on a live server,
once as a local install and once as a portal (separate visitors, so every
search carries the tenant filter and every upload counts the visitor's usage;
rate limits on, with limits high enough never to answer 429; JSON logs).
Same queries, same machine; the two modes alternate, ROUNDS times each.

Usage: python bench/portal.py
"""

from __future__ import annotations

import asyncio
import time

import httpx

from common import live_server, qa_requests, report, stats_ms

ADMIN = {"X-API-Key": "bench"}
PORTAL = ('[admin]\napi_key = "bench"\n[visitors]\nseparate = true\nsecret = "bench"\nmax_items = 100000\nmax_bytes = 0\n'
          '[rate_limits]\nenabled = true\nsearch = "1000000/minute"\nupload = "1000000/minute"\napi = "1000000/minute"\n'
          '[serve]\nlog_format = "json"\n')
SEARCHES = 240
UPLOADS = 30


async def searches(base: str, cookies: dict, concurrency: int) -> dict:
    requests = qa_requests()
    latencies: list[float] = []
    counter = iter(range(SEARCHES))

    async def worker(client: httpx.AsyncClient):
        for n in counter:
            began = time.perf_counter()
            response = await client.post("/api/demos/qa_chatbot/search", **requests[n % len(requests)])
            assert response.status_code == 200, response.text
            latencies.append(time.perf_counter() - began)

    async with httpx.AsyncClient(base_url=base, cookies=cookies, timeout=120) as client:
        await client.post("/api/demos/qa_chatbot/search", **requests[0])
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        wall = time.perf_counter() - started
    return {"concurrency": concurrency, "qps": round(SEARCHES / wall, 1), **stats_ms(latencies)}


def measure(body: str) -> dict:
    with live_server("qa_chatbot", body, env={"VECTORFAIR_WARM_UP_ON_START": "false"}, headers=ADMIN) as (base, _, _):
        with httpx.Client(base_url=base, timeout=120) as client:
            # A visitor with items of their own, so the tenant filter has rows to pass.
            uploads = []
            for i in range(UPLOADS):
                began = time.perf_counter()
                r = client.post("/api/demos/qa_chatbot/items", json={"records": [
                    {"question": f"Bench question {i} about portals?", "answer": f"Bench answer {i}."}]})
                assert r.status_code == 201, r.text
                uploads.append(time.perf_counter() - began)
            cookies = dict(client.cookies)
        return {"upload": stats_ms(uploads[5:]),
                "search": [asyncio.run(searches(base, cookies, c)) for c in (1, 8)]}


ROUNDS = 2


def median_of(runs: list[dict]) -> dict:
    """Per measurement, the median over rounds (the machine is noisy: rounds
    of the two modes alternate so drift hits both)."""
    import statistics

    def med(values):
        return round(statistics.median(values), 2)

    return {
        "upload": {k: med([r["upload"][k] for r in runs]) for k in ("p50_ms", "p99_ms")},
        "search": [{"concurrency": c, **{k: med([r["search"][i][k] for r in runs]) for k in ("p50_ms", "p99_ms", "qps")}}
                   for i, c in enumerate((1, 8))],
        "rounds": runs,
    }


def main() -> None:
    runs: dict[str, list[dict]] = {"local": [], "portal": []}
    for _ in range(ROUNDS):
        runs["local"].append(measure(""))
        runs["portal"].append(measure(PORTAL))
    local, portal = median_of(runs["local"]), median_of(runs["portal"])
    rows = []
    for name, result in (("local", local), ("portal", portal)):
        for s in result["search"]:
            rows.append([name, f"search c{s['concurrency']}", s["p50_ms"], s["p99_ms"], s["qps"]])
        rows.append([name, "add one record", result["upload"]["p50_ms"], result["upload"]["p99_ms"], ""])
    ratios = {
        "search_c1_p50": round(portal["search"][0]["p50_ms"] / local["search"][0]["p50_ms"], 2),
        "search_c8_qps": round(portal["search"][1]["qps"] / local["search"][1]["qps"], 2),
        "upload_p50": round(portal["upload"]["p50_ms"] / local["upload"]["p50_ms"], 2),
    }
    report(f"Portal mode overhead (qa_chatbot, portal / local, median of {ROUNDS} alternating rounds)",
           {"local": local, "portal": portal, "ratios": ratios},
           rows + [["ratio portal/local", "search c1 p50, c8 qps, upload p50",
                    ratios["search_c1_p50"], ratios["search_c8_qps"], ratios["upload_p50"]]],
           ["mode", "what", "p50 ms", "p99 ms", "q/s"])


if __name__ == "__main__":
    main()
