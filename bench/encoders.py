"""Each demo encoder's raw batched throughput in-process: the practical limit
of any load or search through it.

Usage: python bench/encoders.py [demo ...]
"""

from __future__ import annotations

import io
import sys
import time
from pathlib import Path

from common import ROOT, demo_in_process, report

from vectorfair.demo import Upload

BATCHES = (1, 8, 32)


def qa_payloads(demo):
    import json

    lines = (ROOT / "plugins/qa_chatbot/tests/paraphrases.jsonl").read_text().splitlines()
    return [demo.parse_query_text(json.loads(line)["query"]) for line in lines][:64]


def image_payloads(demo):
    import skimage
    from PIL import Image
    from vectorfair_image_search import SAMPLE_IMAGES

    out = []
    for name in SAMPLE_IMAGES:
        buffer = io.BytesIO()
        Image.open(Path(skimage.__file__).parent / "data" / name).convert("RGB").save(buffer, "JPEG")
        out.append(demo.parse_query_file(Upload(name, buffer.getvalue())))
    return (out * 4)[:64]


def molecule_payloads(demo):
    import rdkit

    lines = (Path(rdkit.__file__).parent / "Data/NCI/first_5K.smi").read_text().splitlines()[1:257]
    return [demo.parse_query_text(line.split()[0]) for line in lines]


def audio_payloads(demo):
    import soundfile
    from vectorfair_audio_search.samples import sample_files

    samples, rate = soundfile.read(io.BytesIO(dict(sample_files())["arcade/1918.mp3"]), dtype="float32")
    wav = io.BytesIO()
    soundfile.write(wav, samples[: rate * 25], rate, format="WAV")  # 25 s of music
    demo.options.query_hop_seconds = demo.options.hop_seconds  # windows as stored, 0.5 s apart
    return list(demo.parse_query_file(Upload("q.wav", wav.getvalue())).blocks)[:32]


PAYLOADS = {
    "qa_chatbot": qa_payloads,
    "image_search": image_payloads,
    "molecule_search": molecule_payloads,
    "audio_search": audio_payloads,
}
UNITS = {"audio_search": "2.32 s windows"}


def measure(demo, payloads, batch: int, seconds: float = 6.0) -> float:
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds or done < batch * 2:
        for first in range(0, len(payloads) - batch + 1, batch):
            demo.encode(payloads[first : first + batch])
            done += batch
    return done / (time.perf_counter() - started)


def video_rate() -> dict:
    """Video seconds processed per wall second (decode, keyframes, EfficientNet, dlib faces)."""
    from vectorfair_video_analysis.samples import sample_videos

    demo = demo_in_process("video_analysis")
    demo.warm_up()
    videos = sample_videos()
    started = time.perf_counter()
    seconds = 0.0
    for name, data in videos.items():
        entries = list(demo.parse_upload(Upload(name, data)))
        seconds += entries[0].fields["duration"]
    wall = time.perf_counter() - started
    return {
        "video_seconds": round(seconds, 1),
        "wall_s": round(wall, 2),
        "video_s_per_wall_s": round(seconds / wall, 2),
    }


def main():
    names = sys.argv[1:] or [*PAYLOADS, "video_analysis"]
    result, rows = {}, []
    for name in names:
        if name == "video_analysis":
            result[name] = video_rate()
            rows.append(
                [name, "video seconds", "-", "-", result[name]["video_s_per_wall_s"], "per wall second, 480x360"]
            )
            continue
        demo = demo_in_process(name)
        demo.warm_up()
        payloads = PAYLOADS[name](demo)
        rates = {f"batch_{b}": round(measure(demo, payloads, b), 1) for b in BATCHES}
        result[name] = {"items_per_s": rates, "unit": UNITS.get(name, "queries")}
        if name == "audio_search":
            result[name]["audio_s_per_wall_s"] = round(max(rates.values()) * demo.options.hop_seconds, 1)
        rows.append(
            [
                name,
                UNITS.get(name, "queries"),
                *rates.values(),
                f"{result[name].get('audio_s_per_wall_s', '')} audio s/s (hop 0.5 s)" if name == "audio_search" else "",
            ]
        )
    report(
        "encoders: raw in-process throughput (items/s)",
        result,
        rows,
        ["demo", "unit", *[f"batch {b}" for b in BATCHES], "note"],
    )


if __name__ == "__main__":
    main()
