"""The example plugin, installed from its own directory, on real Milvus Lite and HTTP."""

import io
from pathlib import Path

import pytest
from PIL import Image

from vectorfair.testing import assert_conforms, sample_loaded_client


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    with sample_loaded_client(tmp_path_factory.mktemp("palette"), "palette") as test_client:
        yield test_client


def png(colour, size=(64, 48)):
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()


def test_conforms(client):
    assert_conforms(client, "palette", query={"files": {"file": ("q.png", png((30, 120, 30)))}})


def test_greys_find_the_grey_textures(client):
    r = client.post("/api/demos/palette/search", json={"query": "gray 2, dimgray, darkgray", "top_k": 3})
    assert r.status_code == 200, r.text
    assert {h["title"] for h in r.json()["hits"]} <= {"grass.png", "gravel.png", "brick.png", "moon.png"}


def test_an_image_finds_itself(client):
    import skimage

    data = Path(skimage.__file__).parent.joinpath("data", "coffee.png").read_bytes()
    r = client.post("/api/demos/palette/search", files={"file": ("coffee.png", data)})
    assert r.json()["hits"][0]["title"] == "coffee.png" and r.json()["hits"][0]["score"] > 0.999


@pytest.mark.parametrize("query,words", [("not-a-colour", "not a colour"), (" , ", "at least one colour")])
def test_bad_colour_queries_are_422(client, query, words):
    r = client.post("/api/demos/palette/search", json={"query": query})
    assert r.status_code == 422 and words in r.json()["detail"]


def test_a_non_image_is_refused_and_nothing_is_lost(client):
    before = client.get("/api/demos/palette/stats").json()["count"]
    r = client.post(
        "/api/demos/palette/items",
        files=[("files", ("x.png", b"not an image")), ("files", ("red.png", png((200, 10, 10))))],
    )
    assert r.status_code == 201 and r.json()["failed"][0]["name"] == "x.png"
    assert client.get("/api/demos/palette/stats").json()["count"] == before + 1
