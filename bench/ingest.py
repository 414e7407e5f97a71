"""Bulk loads through the jobs API of a live uvicorn, against the raw encoder
throughput in-process on the same items.

- qa_chatbot: its sample set (306 question/answer pairs) as a sample job;
- image_search: its 19 sample photos in 5 variants each (crops and sizes, so
  95 distinct images at their original resolutions), uploaded as one zip.

Usage: python bench/ingest.py [demo ...]
"""

from __future__ import annotations

import io
import sys
import time
import zipfile
from pathlib import Path

import httpx
from common import demo_in_process, live_server, report

from vectorfair.demo import Upload


def image_variants() -> list[tuple[str, bytes]]:
    import skimage
    from PIL import Image
    from vectorfair_image_search import SAMPLE_IMAGES

    out = []
    for name in SAMPLE_IMAGES:
        image = Image.open(Path(skimage.__file__).parent / "data" / name).convert("RGB")
        width, height = image.size
        for n, keep in enumerate((1.0, 0.9, 0.8, 0.7, 0.6)):
            crop = image.crop((0, 0, max(16, int(width * keep)), max(16, int(height * keep))))
            buffer = io.BytesIO()
            crop.save(buffer, "JPEG", quality=90)
            out.append((f"{Path(name).stem}-{n}.jpg", buffer.getvalue()))
    return out


def raw_rate(name: str, items: list) -> float:
    """Items per second of the encoder alone (items parsed beforehand), in batches of 32."""
    demo = demo_in_process(name)
    demo.warm_up()
    batch = 32
    payloads = [
        entry.payload
        for item in items
        for entry in (demo.parse_upload(item) if isinstance(item, Upload) else demo.parse_record(item))
    ]
    started = time.perf_counter()
    for first in range(0, len(payloads), batch):
        demo.encode(payloads[first : first + batch])
    return len(payloads) / (time.perf_counter() - started)


def sample_items(name: str) -> list:
    demo = demo_in_process(name)
    items = []
    for item in demo.sample_items():
        if isinstance(item, Upload):
            parts = demo.split_upload(item)
            items.extend(record for _, record in parts) if parts is not None else items.append(item)
        else:
            items.append(item)
    return items


def job_rate(name: str) -> dict:
    body = f"[demos.{name}]\nload_sample_on_start = false\n"
    # The bench loads the model itself (one search) before timing the job.
    with live_server(name, body, load_samples=False, env={"VECTORFAIR_WARM_UP_ON_START": "false"}) as (base, _, _):
        with httpx.Client(base_url=base, timeout=600) as client:
            # Load the model first, as a running server has: the job measures loading, not start-up.
            if name == "qa_chatbot":
                client.post(f"/api/demos/{name}/search", json={"query": "warm up"})
                started = time.perf_counter()
                job = client.post(f"/api/demos/{name}/jobs", json={"sample": True}).json()
            else:
                variants = image_variants()
                buffer = io.BytesIO()
                with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
                    for filename, data in variants:
                        zf.writestr(filename, data)
                client.post(f"/api/demos/{name}/search", files={"file": variants[0]})
                started = time.perf_counter()
                job = client.post(f"/api/demos/{name}/jobs", files={"archive": ("set.zip", buffer.getvalue())}).json()
            while (state := client.get(job["status_url"]).json())["state"] in ("queued", "running"):
                time.sleep(0.05)
            wall = time.perf_counter() - started
    return {
        "state": state["state"],
        "items": state["done"],
        "failed": state["failed"],
        "wall_s": round(wall, 2),
        "items_per_s": round(state["done"] / wall, 1),
    }


def main():
    names = sys.argv[1:] or ["qa_chatbot", "image_search"]
    result, rows = {}, []
    for name in names:
        items = sample_items(name) if name == "qa_chatbot" else [Upload(n, d) for n, d in image_variants()]
        raw = raw_rate(name, items)
        job = job_rate(name)
        result[name] = {
            "jobs_api": job,
            "raw_encoder_items_per_s": round(raw, 1),
            "ratio_jobs_over_raw": round(job["items_per_s"] / raw, 2),
        }
        rows.append([name, job["items"], job["items_per_s"], round(raw, 1), result[name]["ratio_jobs_over_raw"]])
    report(
        "ingest through the jobs API",
        result,
        rows,
        ["demo", "items", "jobs API items/s", "raw encoder items/s", "ratio"],
    )


if __name__ == "__main__":
    main()
