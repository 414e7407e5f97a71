"""Start-up and memory: seconds from `vectorfair serve` to a 200 from /readyz
with every installed demo enabled (models load lazily), then the resident
memory once every demo's model is loaded (one search each).

Usage: python bench/startup.py
"""

from __future__ import annotations

import io
import time

import httpx
from common import live_server, report, rss_mib


def child_rss(pid: int) -> float:
    """The server's resident memory: the `vectorfair` process and its children."""
    import subprocess

    pids = [pid] + [
        int(p) for p in subprocess.run(["pgrep", "-g", str(pid)], capture_output=True, text=True).stdout.split()
    ]
    return max(rss_mib(p) for p in set(pids) if p)


def first_searches(client: httpx.Client) -> dict:
    from PIL import Image

    image = io.BytesIO()
    Image.new("RGB", (64, 64), (120, 80, 40)).save(image, "JPEG")
    import numpy as np
    import soundfile

    audio = io.BytesIO()
    soundfile.write(audio, (0.3 * np.sin(np.linspace(0, 3000, 44100 * 3))).astype(np.float32), 44100, format="WAV")
    requests = {
        "qa_chatbot": {"json": {"query": "how do I start"}},
        "molecule_search": {"json": {"query": "CCO"}},
        "image_search": {"files": {"file": ("q.jpg", image.getvalue())}},
        "video_analysis": {"files": {"file": ("q.jpg", image.getvalue())}},
        "audio_search": {"files": {"file": ("q.wav", audio.getvalue())}},
    }
    timings = {}
    for demo in [d["name"] for d in client.get("/api/demos").json()]:
        if demo in requests:
            began = time.perf_counter()
            status = client.post(f"/api/demos/{demo}/search", **requests[demo]).status_code
            timings[demo] = {"status": status, "first_search_s": round(time.perf_counter() - began, 2)}
    return timings


def main():
    body = "".join(
        f"[demos.{d}]\nload_sample_on_start = false\n"
        for d in ("qa_chatbot", "image_search", "molecule_search", "audio_search", "video_analysis")
    )
    # Models load on first use here, so /readyz shows the lazy start-up.
    with live_server("", body, load_samples=False, env={"VECTORFAIR_WARM_UP_ON_START": "false"}) as (
        base,
        process,
        ready_s,
    ):
        rss_idle = child_rss(process.proc.pid)
        with httpx.Client(base_url=base, timeout=600) as client:
            searches = first_searches(client)
        rss_loaded = child_rss(process.proc.pid)
    result = {
        "readyz_s": round(ready_s, 2),
        "rss_mib_before_models": round(rss_idle),
        "rss_mib_all_models": round(rss_loaded),
        "first_searches": searches,
    }
    rows = [
        ["/readyz after start (s)", round(ready_s, 2)],
        ["RSS before any model (MiB)", round(rss_idle)],
        ["RSS with every model loaded (MiB)", round(rss_loaded)],
    ]
    rows += [[f"first search, {d} (s)", t["first_search_s"]] for d, t in searches.items()]
    report("start-up and memory, every demo enabled", result, rows, ["measure", "value"])


if __name__ == "__main__":
    main()
