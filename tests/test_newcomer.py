"""What a newcomer meets first: counts of items (not rows), cheap samples
first, an empty sample set that says why, and data_dir as the root of
everything stored."""

from pathlib import Path

from fastapi.testclient import TestClient

from vectorfair import SampleUnavailable
from vectorfair.api import create_app
from vectorfair.runtime import Platform
from vectorfair.settings import load_settings

from .conftest import write_config
from .test_api import wait_job


def test_data_dir_is_the_root_of_everything_stored(tmp_path, monkeypatch):
    config = tmp_path / "vectorfair.toml"
    config.write_text("[demos.fake]\nload_sample_on_start = false\n")
    monkeypatch.setenv("VECTORFAIR_DATA_DIR", str(tmp_path / "elsewhere"))
    settings = load_settings(config)
    assert settings.milvus.uri == str(tmp_path / "elsewhere" / "milvus.db")
    assert settings.media.path == tmp_path / "elsewhere" / "media"
    monkeypatch.setenv("VECTORFAIR_MEDIA__PATH", str(tmp_path / "media-here"))
    assert load_settings(config).media.path == tmp_path / "media-here"  # an explicit path is kept
    monkeypatch.delenv("VECTORFAIR_MEDIA__PATH")
    platform = Platform(load_settings(config, plugins="fake"))
    try:
        assert platform.prepare(force=True)
        stored = {p.name for p in (tmp_path / "elsewhere").iterdir()}
        assert {"milvus.db", "jobs.sqlite3", "uploads"} <= stored
        assert not (Path.cwd() / "data" / "milvus.db").exists() or Path.cwd() == tmp_path
    finally:
        platform.close()


def test_counts_are_items_with_their_rows_beside(tmp_path):
    config = write_config(tmp_path, "[demos.fake]\nload_sample_on_start = false\n")
    with TestClient(create_app(load_settings(config))) as client:
        # One file of three parts: one item stored as three rows.
        parts = b"first part\n---\nsecond part\n---\nthird part"
        assert client.post("/api/demos/fake/items", files={"files": ("three.txt", parts)}).status_code == 201
        assert client.post("/api/demos/fake/items", json={"records": [{"text": "one row"}]}).status_code == 201
        (info,) = client.get("/api/demos").json()
        assert (info["count"], info["rows"], info["item_noun"]) == (2, 4, "items")
        stats = client.get("/api/demos/fake/stats").json()
        assert (stats["count"], stats["rows"]) == (2, 4)


def test_an_empty_sample_set_fails_its_job_with_the_reason(tmp_path):
    config = write_config(tmp_path, "[demos.fake]\nload_sample_on_start = false\nsample_size = 0\n")
    with TestClient(create_app(load_settings(config))) as client:
        job = wait_job(client, client.post("/api/demos/fake/jobs", json={"sample": True}).json()["job_id"])
        assert job["state"] == "failed" and "sample set of Fake text demo is empty" in job["message"]
        (info,) = client.get("/api/demos").json()
        assert info["sample_error"] == job["message"]


def test_a_missing_sample_source_is_named(tmp_path, monkeypatch):
    from vectorfair_fake import FakeDemo

    def missing(self):
        raise SampleUnavailable("the fake sample needs the package fake-data; pip install fake-data")
        yield  # a generator, as sample_items usually is

    monkeypatch.setattr(FakeDemo, "sample_items", missing)
    config = write_config(tmp_path, "[demos.fake]\nload_sample_on_start = false\n")
    with TestClient(create_app(load_settings(config))) as client:
        job = wait_job(client, client.post("/api/demos/fake/jobs", json={"sample": True}).json()["job_id"])
        assert job["state"] == "failed"
        assert (
            job["message"] == "no sample data for Fake text demo: the fake sample needs the package fake-data; "
            "pip install fake-data"
        )


def test_cheap_samples_load_first(tmp_path, monkeypatch):
    from vectorfair_fake import FakeDemo
    from vectorfair_recipes import Recipes

    monkeypatch.setattr(FakeDemo, "sample_cost", 100.0)
    monkeypatch.setattr(Recipes, "sample_cost", 2.0)
    config = write_config(tmp_path, "", plugins="fake,recipes")
    platform = Platform(load_settings(config))
    try:
        assert platform.prepare(force=True)
        submitted = []
        monkeypatch.setattr(platform.jobs, "submit", lambda demo, *a, **k: submitted.append(demo))
        platform.submit_sample_jobs()
        assert submitted == ["recipes", "fake"]
    finally:
        platform.close()
