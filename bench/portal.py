"""What portal mode costs: the QA demo with its sample data on a live server,
once as a local install and once as a portal (separate visitors, so every
search carries the tenant filter and every upload counts the visitor's usage;
rate limits on, with limits high enough never to answer 429; JSON logs).
Same queries, same machine; the two modes alternate, ROUNDS times each.

Usage: python bench/portal.py [--components] [--rounds N]
"""

from __future__ import annotations

import asyncio
import time

import httpx
from common import live_server, qa_requests, report, stats_ms

ADMIN = {"X-API-Key": "bench"}
VISITORS = (
    '[admin]\napi_key = "bench"\n[visitors]\nseparate = true\nsecret = "bench"\nmax_items = 100000\nmax_bytes = 0\n'
)
RATE_LIMITS = (
    '[rate_limits]\nenabled = true\nsearch = "1000000/minute"\nupload = "1000000/minute"\napi = "1000000/minute"\n'
)
JSON_LOGS = '[serve]\nlog_format = "json"\n'
PORTAL = VISITORS + RATE_LIMITS + JSON_LOGS
# `--components`: each part of the portal profile alone, to see which one costs.
COMPONENTS = {"visitors": VISITORS, "rate_limits": RATE_LIMITS, "json_logs": JSON_LOGS}
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
                r = client.post(
                    "/api/demos/qa_chatbot/items",
                    json={
                        "records": [{"question": f"Bench question {i} about portals?", "answer": f"Bench answer {i}."}]
                    },
                )
                assert r.status_code == 201, r.text
                uploads.append(time.perf_counter() - began)
            cookies = dict(client.cookies)
        return {"upload": stats_ms(uploads[5:]), "search": [asyncio.run(searches(base, cookies, c)) for c in (1, 8)]}


ROUNDS = 2


def median_of(runs: list[dict]) -> dict:
    """Per measurement, the median over rounds (the machine is noisy: rounds
    of the two modes alternate so drift hits both)."""
    import statistics

    def med(values):
        return round(statistics.median(values), 2)

    return {
        "upload": {k: med([r["upload"][k] for r in runs]) for k in ("p50_ms", "p99_ms")},
        "search": [
            {"concurrency": c, **{k: med([r["search"][i][k] for r in runs]) for k in ("p50_ms", "p99_ms", "qps")}}
            for i, c in enumerate((1, 8))
        ],
        "rounds": runs,
    }


def ratios_to(local: dict, other: dict) -> dict:
    return {
        "search_c1_p50": round(other["search"][0]["p50_ms"] / local["search"][0]["p50_ms"], 2),
        "search_c8_qps": round(other["search"][1]["qps"] / local["search"][1]["qps"], 2),
        "upload_p50": round(other["upload"]["p50_ms"] / local["upload"]["p50_ms"], 2),
    }


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--components", action="store_true", help="also measure each part of the profile alone")
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    args = parser.parse_args()
    modes = {"local": "", "portal": PORTAL, **(COMPONENTS if args.components else {})}
    runs: dict[str, list[dict]] = {name: [] for name in modes}
    for _ in range(args.rounds):
        for name, body in modes.items():
            runs[name].append(measure(body))
    results = {name: median_of(rounds) for name, rounds in runs.items()}
    local = results["local"]
    ratios = {name: ratios_to(local, result) for name, result in results.items() if name != "local"}
    rows = []
    for name, result in results.items():
        for s in result["search"]:
            rows.append([name, f"search c{s['concurrency']}", s["p50_ms"], s["p99_ms"], s["qps"]])
        rows.append([name, "add one record", result["upload"]["p50_ms"], result["upload"]["p99_ms"], ""])
    for name, ratio in ratios.items():
        rows.append(
            [
                f"ratio {name}/local",
                "search c1 p50, c8 qps, upload p50",
                ratio["search_c1_p50"],
                ratio["search_c8_qps"],
                ratio["upload_p50"],
            ]
        )
    report(
        f"Portal mode overhead (qa_chatbot, mode / local, median of {args.rounds} alternating rounds)",
        {**results, "ratios": ratios["portal"], "ratios_by_mode": ratios},
        rows,
        ["mode", "what", "p50 ms", "p99 ms", "q/s"],
    )


if __name__ == "__main__":
    main()
