"""Hostile uploads against a portal running the real demos (real decoders,
real models, Milvus Lite): each gets a 4xx that says what is wrong, and what
was stored before is exactly as it was after."""

import gzip
import io
import os
import struct
import tarfile
import zipfile
import zlib

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from vectorfair.api import create_app
from vectorfair.settings import load_settings

from .archives import tar_of, zip_of
from .conftest import write_config

ADMIN = {"X-API-Key": "hostile-admin"}
DEMOS = ("fake", "qa_chatbot", "image_search", "molecule_search", "audio_search", "video_analysis")
MiB = 1 << 20


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A valid-looking PNG whose header declares 10 gigapixels, in 100 bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


def photo() -> bytes:
    rng = np.random.default_rng(7)
    pixels = np.clip(np.linspace(0, 255, 320)[None, :, None] + rng.normal(0, 20, (240, 320, 3)), 0, 255)
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def wav_header(seconds: float, rate: int = 44100, data: bytes = b"") -> bytes:
    size = int(seconds * rate * 2)
    return (
        b"RIFF"
        + struct.pack("<I", 36 + size)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
        + b"data"
        + struct.pack("<I", size)
        + data
    )


def tar_gz_bomb(size: int) -> bytes:
    """One member of `size` zero bytes, gzip-compressed to ~1/1000 of that."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tf:
        info = tarfile.TarInfo("zeros.txt")
        info.size = size
        tf.addfile(info, io.BytesIO(bytes(size)))
    return gzip.compress(raw.getvalue(), compresslevel=1)


def hostile_inputs(zip_bomb: bytes, tar_bomb: bytes):
    """(label, demo, route, request kwargs) for every hostile input."""
    bomb = png_bomb()
    cases = [
        # Decompression bombs in images: refused from the header, before decoding.
        ("png bomb (10 gigapixels declared)", "image_search", "items", {"files": {"files": ("bomb.png", bomb)}}),
        ("png bomb as a search", "image_search", "search", {"files": {"file": ("bomb.png", bomb)}}),
        ("png bomb in a video demo search", "video_analysis", "search", {"files": {"file": ("bomb.png", bomb)}}),
        ("truncated jpeg", "image_search", "items", {"files": {"files": ("cut.jpg", photo()[:300])}}),
        # Wrong content: the name or the Content-Type lies about the bytes.
        (
            "html named .jpg",
            "image_search",
            "items",
            {"files": {"files": ("x.jpg", b"<html><script>alert(1)</script>")}},
        ),
        ("text sent as image/png", "image_search", "items", {"files": {"files": ("x.png", b"hello", "image/png")}}),
        ("an .exe", "image_search", "items", {"files": {"files": ("x.exe", b"MZ\x90\x00" + bytes(100))}}),
        ("jpeg sent to the audio demo", "audio_search", "items", {"files": {"files": ("x.wav", photo())}}),
        ("zip named .mp4", "video_analysis", "items", {"files": {"files": ("x.mp4", zip_of({"a.txt": b"a"}))}}),
        (
            "mp4 header then junk",
            "video_analysis",
            "items",
            {"files": {"files": ("x.mp4", b"\x00\x00\x00\x18ftypmp42" + bytes(4000))}},
        ),
        (
            "wav declaring 10 hours",
            "audio_search",
            "items",
            {"files": {"files": ("long.wav", wav_header(36000, data=bytes(4096)))}},
        ),
        ("wav cut after its header", "audio_search", "items", {"files": {"files": ("cut.wav", wav_header(5))}}),
        (
            "json body that is not json",
            "qa_chatbot",
            "items",
            {"content": b"{not json", "headers": {"Content-Type": "application/json"}},
        ),
        (
            "multipart sent as json",
            "qa_chatbot",
            "items",
            {"content": b"--x\r\n", "headers": {"Content-Type": "application/json"}},
        ),
        ("records of the wrong shape", "qa_chatbot", "items", {"json": {"records": [1, "two", None, []]}}),
        # Huge SMILES, as a record, as a search and as a file line.
        ("1 MB SMILES record", "molecule_search", "items", {"json": {"records": [{"smiles": "C" * MiB}]}}),
        ("100k-char SMILES search", "molecule_search", "search", {"json": {"query": "C" * 100_000}}),
        ("2k-char SMILES search", "molecule_search", "search", {"json": {"query": "C1" * 1000}}),
        (
            "SMILES file of one huge line",
            "molecule_search",
            "items",
            {"files": {"files": ("big.smi", b"C" * (2 * MiB) + b" huge\n")}},
        ),
        ("not a SMILES", "molecule_search", "search", {"json": {"query": "this is ( not [ a molecule"}}),
        # Zero-length files everywhere.
        *[
            (f"zero-length file to {demo}", demo, "items", {"files": {"files": (name, b"")}})
            for demo, name in (
                ("image_search", "empty.jpg"),
                ("audio_search", "empty.wav"),
                ("video_analysis", "empty.mp4"),
                ("molecule_search", "empty.smi"),
                ("fake", "empty.txt"),
            )
        ],
        *[
            (f"zero-length query to {demo}", demo, "search", {"files": {"file": (name, b"")}})
            for demo, name in (
                ("image_search", "empty.jpg"),
                ("audio_search", "empty.wav"),
                ("video_analysis", "empty.jpg"),
            )
        ],
        ("zero-length archive", "fake", "jobs", {"files": {"archive": ("empty.zip", b"")}}),
        ("zero-length long file", "video_analysis", "jobs", {"files": {"file": ("empty.mp4", b"")}}),
        # Archives: bombs, escaping names, too many members, links, lies.
        ("zip bomb (1 GiB of zeros in 1 MB)", "fake", "jobs", {"files": {"archive": ("bomb.zip", zip_bomb)}}),
        ("tar.gz bomb over the unpacked limit", "fake", "jobs", {"files": {"archive": ("bomb.tar.gz", tar_bomb)}}),
        (
            "zip with ../ names",
            "fake",
            "jobs",
            {"files": {"archive": ("t.zip", zip_of({"../../etc/cron.d/x.txt": b"x"}))}},
        ),
        (
            "tar with an absolute name",
            "fake",
            "jobs",
            {"files": {"archive": ("t.tar", tar_of({"/etc/passwd.txt": b"x"}, "w"))}},
        ),
        (
            "zip with a windows drive name",
            "fake",
            "jobs",
            {"files": {"archive": ("t.zip", zip_of({"C:\\\\win\\\\x.txt": b"x"}))}},
        ),
        (
            "tar.gz with ../ deep inside",
            "fake",
            "jobs",
            {"files": {"archive": ("t.tgz", tar_of({"ok/a.txt": b"a", "ok/../../b.txt": b"b"}))}},
        ),
        (
            "tar of symlinks only",
            "fake",
            "jobs",
            {"files": {"archive": ("l.tar", tar_of({}, "w", symlinks={"passwd.txt": "/etc/passwd"}))}},
        ),
        (
            "zip with 3000 members",
            "fake",
            "jobs",
            {"files": {"archive": ("many.zip", zip_of({f"{i}.txt": b"x" for i in range(3000)}, zipfile.ZIP_STORED))}},
        ),
        ("garbage named .zip", "fake", "jobs", {"files": {"archive": ("x.zip", b"PK\x03\x04" + bytes(200))}}),
        ("not an archive", "fake", "jobs", {"files": {"archive": ("x.zip", b"just text")}}),
        ("image archive of bombs", "image_search", "items", {"files": {"files": ("a.png", bomb)}}),
        # Bodies over the request limit, declared or not.
        ("30 MB body", "fake", "items", {"files": {"files": ("big.txt", b"a " * (15 * MiB))}}),
        ("20 files in one request", "fake", "items", {"files": [("files", (f"{i}.txt", b"x")) for i in range(20)]}),
    ]
    return cases


@pytest.fixture(scope="module")
def bombs() -> tuple[bytes, bytes]:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        with zf.open("zeros.txt", "w", force_zip64=True) as member:
            block = bytes(16 * MiB)
            for _ in range(64):
                member.write(block)
    return buffer.getvalue(), tar_gz_bomb(80 * MiB)


@pytest.mark.slow
def test_hostile_uploads_get_4xx_and_leave_stored_data_unchanged(tmp_path, bombs):
    config = write_config(
        tmp_path,
        (
            "".join(f"[demos.{name}]\nload_sample_on_start = false\n" for name in DEMOS)
            + '[admin]\napi_key = "hostile-admin"\n'
            + '[visitors]\nseparate = true\nsecret = "h"\n'
            + "[limits]\nmax_request_bytes = 25165824\nmax_files_per_request = 16\nmax_archive_members = 2000\n"
            + "max_archive_bytes = 67108864\nmax_member_bytes = 8388608\n"
        ),
        plugins=",".join(DEMOS),
    )
    with TestClient(create_app(load_settings(config))) as client:
        # Shared data to protect.
        stored = {
            "fake": client.post("/api/demos/fake/items", json={"records": [{"text": "keep me safe"}]}, headers=ADMIN),
            "qa_chatbot": client.post(
                "/api/demos/qa_chatbot/items",
                headers=ADMIN,
                json={"records": [{"question": "What is Milvus?", "answer": "A vector database."}]},
            ),
            "image_search": client.post(
                "/api/demos/image_search/items", headers=ADMIN, files={"files": ("photo.jpg", photo())}
            ),
            "molecule_search": client.post(
                "/api/demos/molecule_search/items",
                headers=ADMIN,
                json={"records": [{"smiles": "CCO", "name": "ethanol"}]},
            ),
        }
        for demo, response in stored.items():
            assert response.status_code == 201, (demo, response.text)
        before = snapshot(client)

        outcomes = []
        for label, demo, route, kwargs in hostile_inputs(*bombs):
            r = client.post(f"/api/demos/{demo}/{route}", **kwargs)
            outcomes.append(
                (
                    label,
                    r.status_code,
                    r.json().get("detail", "")
                    if r.headers.get("content-type", "").startswith("application/json")
                    else r.text[:100],
                )
            )
        if os.environ.get("HOSTILE_DEBUG"):
            print(*outcomes, sep="\n")
        wrong = [o for o in outcomes if not 400 <= o[1] < 500 or not o[2]]
        assert not wrong, wrong
        print(
            f"\nhostile inputs tried: {len(outcomes)}; statuses: "
            f"{ {code: sum(1 for o in outcomes if o[1] == code) for code in sorted({o[1] for o in outcomes})} }"
        )
        # Nothing a job could still be doing: every hostile archive was refused at upload.
        assert not [j for j in client.get("/api/jobs").json() if j["state"] in ("queued", "running")]
        assert snapshot(client) == before
        assert not any((tmp_path / "data" / "uploads").iterdir()), "refused uploads are not kept"


def snapshot(client) -> dict:
    """Every demo's count and, for every stored item, its full record and media bytes."""
    state = {}
    for demo in DEMOS:
        stats = client.get(f"/api/demos/{demo}/stats", headers=ADMIN).json()
        state[demo] = {"count": stats["count"]}
    for demo, query in (
        ("fake", {"query": "keep me safe"}),
        ("qa_chatbot", {"query": "What is Milvus?"}),
        ("molecule_search", {"query": "CCO"}),
    ):
        hits = client.post(f"/api/demos/{demo}/search", json=query, headers=ADMIN).json()["hits"]
        state[demo]["items"] = sorted((h["id"], h["title"], repr(sorted(h["fields"].items()))) for h in hits)
    hits = client.post("/api/demos/image_search/search", files={"file": ("q.jpg", photo())}, headers=ADMIN).json()[
        "hits"
    ]
    state["image_search"]["items"] = [(h["id"], client.get(h["media_url"], headers=ADMIN).content) for h in hits]
    return state
