"""Reverse image search on its real model (EfficientNet-Lite0), real Milvus Lite, real HTTP."""

import io
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import skimage
from PIL import Image, ImageEnhance
from vectorfair_image_search import SAMPLE_IMAGES

from vectorfair.testing import sample_loaded_client

pytestmark = pytest.mark.slow
SAMPLES = Path(skimage.__file__).parent / "data"


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    with sample_loaded_client(tmp_path_factory.mktemp("img"), "image_search") as test_client:
        job = test_client.sample_job
        assert job["state"] == "succeeded" and job["failed"] == 0 and job["done"] == len(SAMPLE_IMAGES), job
        yield test_client


def encode(image, fmt="JPEG", **kwargs):
    out = io.BytesIO()
    image.save(out, fmt, **kwargs)
    return out.getvalue()


def search(client, data, name="q.jpg", top_k=5, **form):
    r = client.post("/api/demos/image_search/search", files={"file": (name, data)}, data={"top_k": str(top_k), **form})
    assert r.status_code == 200, r.text
    return r.json()["hits"]


def transforms(image):
    width, height = image.size
    crop = image.crop((int(width * 0.15), int(height * 0.15), int(width * 0.85), int(height * 0.85)))
    return {
        "crop70": encode(crop),
        "resize": encode(image.resize((max(32, width // 3), max(32, height // 3)))),
        "jpeg40": encode(image, quality=40),
        "brightness_contrast": encode(ImageEnhance.Contrast(ImageEnhance.Brightness(image).enhance(1.3)).enhance(0.8)),
        "rotate": encode(image.rotate(8, resample=Image.BICUBIC, expand=False)),
        "hflip": encode(image.transpose(Image.FLIP_LEFT_RIGHT)),
    }


def test_copy_detection_finds_the_source_at_top1(client):
    found, misses, latencies = 0, [], []
    for name in SAMPLE_IMAGES:
        image = Image.open(SAMPLES / name).convert("RGB")
        for kind, data in transforms(image).items():
            started = time.perf_counter()
            hits = search(client, data)
            latencies.append(time.perf_counter() - started)
            if hits[0]["title"] == name:
                found += 1
            else:
                misses.append((name, kind, hits[0]["title"]))
    total = len(SAMPLE_IMAGES) * 6
    print(
        f"\ncopy detection top-1: {found}/{total} = {found / total:.3f}; misses {misses}; "
        f"HTTP search median {sorted(latencies)[len(latencies) // 2] * 1000:.0f} ms"
    )
    assert found / total >= 0.95


def test_hits_carry_labels_media_and_thumbnails(client):
    hit = search(client, (SAMPLES / "coffee.png").read_bytes(), "coffee.png", top_k=1)[0]
    assert hit["title"] == "coffee.png" and hit["score"] == pytest.approx(1.0, abs=1e-4)
    assert "espresso" in hit["fields"]["labels"] and len(hit["fields"]["label_scores"]) == 5
    assert hit["fields"]["width"] == 600 and hit["fields"]["format"] == "PNG"
    media = client.get(hit["media_url"])
    assert media.status_code == 200 and media.content == (SAMPLES / "coffee.png").read_bytes()
    thumb = client.get(hit["thumbnail_url"])
    assert thumb.headers["content-type"] == "image/jpeg" and max(Image.open(io.BytesIO(thumb.content)).size) == 256


def test_label_filter(client):
    hits = search(client, (SAMPLES / "chelsea.png").read_bytes(), top_k=10, filter='{"label": "espresso"}')
    assert [h["title"] for h in hits] == ["coffee.png"]
    hits = search(client, (SAMPLES / "chelsea.png").read_bytes(), top_k=10, filter='{"label": ["espresso", "missile"]}')
    assert {h["title"] for h in hits} == {"coffee.png", "rocket.jpg"}


def test_exact_duplicate_is_recognised(client):
    data = (SAMPLES / "rocket.jpg").read_bytes()
    before = client.get("/api/demos/image_search/stats").json()["count"]
    r = client.post("/api/demos/image_search/items", files=[("files", ("again.jpg", data, "image/jpeg"))])
    assert r.status_code == 201 and r.json()["duplicates"] == r.json()["ids"]
    assert client.get("/api/demos/image_search/stats").json()["count"] == before


def test_formats_exif_and_hostile_files(client):
    base = Image.open(SAMPLES / "astronaut.png").convert("RGB").resize((120, 80))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    gif = io.BytesIO()
    frames = [base.quantize(), base.transpose(Image.FLIP_TOP_BOTTOM).quantize()]
    frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:])
    bomb = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(bomb, "PNG")
    jpeg = encode(base, quality=90)
    files = {
        "rotated.jpg": encode(base, exif=exif),
        "anim.gif": gif.getvalue(),
        "pic.bmp": encode(base, "BMP"),
        "pic.tiff": encode(base.rotate(3), "TIFF"),
        "pic.webp": encode(base.rotate(6), "WEBP"),
        "bomb.png": bomb.getvalue(),
        "truncated.jpg": jpeg[: len(jpeg) // 2],
        "not-an-image.jpg": b"%PDF-1.4 this is a pdf pretending to be a jpeg",
        "empty.png": b"",
        "script.png": b"<script>alert(1)</script>",
        "notes.txt": b"hello",
    }
    before = client.get("/api/demos/image_search/stats").json()["count"]
    r = client.post(
        "/api/demos/image_search/items", files=[("files", (n, d, "application/octet-stream")) for n, d in files.items()]
    )
    assert r.status_code == 201, r.text
    body = r.json()
    failed = {f["name"]: f["error"] for f in body["failed"]}
    assert set(failed) == {"bomb.png", "truncated.jpg", "not-an-image.jpg", "empty.png", "script.png", "notes.txt"}
    assert "limit of 40000000" in failed["bomb.png"] and "truncated" in failed["truncated.jpg"]
    assert "not an image" in failed["not-an-image.jpg"] and ".txt not accepted" in failed["notes.txt"]
    assert len(body["ids"]) == 5
    assert client.get("/api/demos/image_search/stats").json()["count"] == before + 5
    items = {client.get(f"/api/demos/image_search/items/{i}").json()["title"]: i for i in body["ids"]}
    rotated = client.get(f"/api/demos/image_search/items/{items['rotated.jpg']}").json()["fields"]
    assert (rotated["width"], rotated["height"]) == (80, 120)  # EXIF orientation applied
    assert client.get(f"/api/demos/image_search/items/{items['anim.gif']}").json()["fields"]["format"] == "GIF"


def test_bad_queries_are_4xx(client):
    r = client.post("/api/demos/image_search/search", files={"file": ("q.jpg", b"not an image")})
    assert r.status_code == 422 and "not an image" in r.json()["detail"]
    r = client.post("/api/demos/image_search/search", json={"query": "a cat"})
    assert r.status_code == 415
    r = client.post(
        "/api/demos/image_search/search",
        files={"file": ("q.jpg", encode(Image.new("RGB", (64, 64))))},
        data={"filter": '{"colour": "red"}'},
    )
    assert r.status_code == 422 and "colour" in r.json()["detail"]


def test_archive_job_with_a_bad_member(client):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        for i in range(3):
            zf.writestr(
                f"photos/{i}.png",
                encode(Image.fromarray((np.random.default_rng(i).random((64, 64, 3)) * 255).astype(np.uint8)), "PNG"),
            )
        zf.writestr("photos/broken.jpg", b"\xff\xd8\xff\xe0 broken")
    job_id = client.post("/api/demos/image_search/jobs", files={"archive": ("p.zip", archive.getvalue())}).json()[
        "job_id"
    ]
    while (job := client.get(f"/api/jobs/{job_id}").json())["state"] in ("queued", "running"):
        time.sleep(0.2)
    assert job["state"] == "succeeded" and job["done"] == 3 and job["failed"] == 1
    assert job["errors"][0]["name"] == "photos/broken.jpg"


def test_conforms_to_the_plugin_contract(client):
    from vectorfair.testing import assert_conforms

    query = encode(Image.open(SAMPLES / "coffee.png").convert("RGB"))
    assert_conforms(client, "image_search", query={"files": {"file": ("coffee.jpg", query)}})
