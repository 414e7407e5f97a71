"""The first minute of `make run`: every built-in demo enabled with its sample
data loading on start (the default config), timed from process start to each
demo's sample job ending — "first demo ready" and "all demos ready".

Usage: python bench/first_minute.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import httpx
from common import report
from live import free_port, start_app, wait_for

from vectorfair.testing import write_config

DEMOS = ("qa_chatbot", "image_search", "molecule_search", "audio_search", "video_analysis")


def main():
    with tempfile.TemporaryDirectory() as root:
        config = write_config(Path(root), plugins=",".join(DEMOS))
        started = time.perf_counter()
        process, base = start_app(config, free_port(), Path(root, "app.log"))
        ready: dict[str, dict] = {}
        try:
            wait_for(lambda: httpx.get(f"{base}/readyz", timeout=5).status_code == 200, 120, what="readyz")
            readyz_s = time.perf_counter() - started

            def all_ended():
                for job in httpx.get(f"{base}/api/jobs", timeout=10).json():
                    if job["state"] in ("succeeded", "failed") and job["demo"] not in ready:
                        ready[job["demo"]] = {
                            "state": job["state"],
                            "items": job["done"],
                            "ready_s": round(time.perf_counter() - started, 1),
                        }
                return len(ready) == len(DEMOS)

            wait_for(all_ended, 1800, interval=0.5, what="every sample job")
        finally:
            process.kill()
    order = sorted(ready, key=lambda d: ready[d]["ready_s"])
    result = {
        "readyz_s": round(readyz_s, 2),
        "first_demo_ready_s": ready[order[0]]["ready_s"],
        "all_demos_ready_s": max(r["ready_s"] for r in ready.values()),
        "demos": {d: ready[d] for d in order},
    }
    rows = [[d, ready[d]["state"], ready[d]["items"], ready[d]["ready_s"]] for d in order]
    report(
        "the first minute: each demo's sample data loaded after start",
        result,
        rows,
        ["demo (in the order they became ready)", "job", "items", "ready after (s)"],
    )


if __name__ == "__main__":
    main()
