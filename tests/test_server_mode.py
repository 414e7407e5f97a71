"""Server mode: two app processes share one Milvus server (the real one with
--milvus=server, else milvus-lite's engine over TCP) and one S3 bucket for media (moto's S3 server standing in for MinIO).
An item stored through one process is found, read and streamed through the
other; each keeps its own job records and read cache."""

import re

import httpx
import pytest

from vectorfair.testing import collection_prefix_for

from .conftest import write_config
from .live import free_port, start_app, start_milvus, start_s3, wait_for

pytest.importorskip("boto3", reason="pip install 'vectorfair[s3]'")


def app_in(root, name, milvus_uri, s3_port):
    folder = root / name
    folder.mkdir()
    config = write_config(folder, "[demos.fake]\nload_sample_on_start = false\n")
    # Both processes on one Milvus and one set of collections.
    text = re.sub(r'uri = "[^"]*"', f'uri = "{milvus_uri}"', config.read_text())
    text = re.sub(r'collection_prefix = "[^"]*"\n', "", text)
    config.write_text(text.replace("[milvus]\n", f'[milvus]\ncollection_prefix = "{collection_prefix_for(root)}"\n'))
    env = {
        "VECTORFAIR_MEDIA__BACKEND": "s3",
        "VECTORFAIR_MEDIA__ENDPOINT_URL": f"http://127.0.0.1:{s3_port}",
        "VECTORFAIR_MEDIA__BUCKET": "vectorfair-test",
        "VECTORFAIR_MEDIA__ACCESS_KEY": "test",
        "VECTORFAIR_MEDIA__SECRET_KEY": "test",
    }
    return start_app(config, free_port(), folder / "app.log", env=env)


def test_two_app_processes_share_milvus_and_media(tmp_path, procs, milvus_backend):
    s3_port = free_port()
    if milvus_backend.is_server:
        milvus_uri = milvus_backend.uri
    else:  # Milvus Lite's engine over TCP, as a server for both processes
        milvus_port = free_port()
        milvus_uri = f"http://127.0.0.1:{milvus_port}"
        procs.append(start_milvus(tmp_path / "milvus", milvus_port, tmp_path / "milvus.log"))
    procs.append(start_s3(s3_port, tmp_path / "s3.log"))
    first, a = app_in(tmp_path, "a", milvus_uri, s3_port)
    procs.append(first)
    second, b = app_in(tmp_path, "b", milvus_uri, s3_port)
    procs.append(second)
    for base in (a, b):
        wait_for(lambda base=base: httpx.get(f"{base}/readyz").status_code == 200, 60, what=f"{base} ready")

    text = b"shared media across processes\n---\nsecond part of the shared file"
    r = httpx.post(f"{a}/api/demos/fake/items", files={"files": ("shared.txt", text)}, timeout=60)
    assert r.status_code == 201, r.text
    # Another process's write is seen within Milvus's time tick (Session
    # consistency guarantees a process only its own writes at once).
    hits = wait_for(
        lambda: httpx.post(f"{b}/api/demos/fake/search", json={"query": "shared media processes"}, timeout=30).json()[
            "hits"
        ],
        5,
        interval=0.05,
        what="b to see a's item",
    )
    assert hits[0]["title"] == "shared.txt#0", "process b finds what process a stored"
    media = httpx.get(f"{b}{hits[0]['media_url']}", timeout=30)
    assert media.status_code == 200 and media.content == text and media.headers["content-type"].startswith("text/plain")
    part = httpx.get(f"{b}{hits[0]['media_url']}", headers={"Range": "bytes=0-5"}, timeout=30)
    assert part.status_code == 206 and part.content == text[:6]

    # A bulk job in b, seen from a; storing the same item from b is a duplicate.
    job = httpx.post(f"{b}/api/demos/fake/jobs", json={"sample": True}, timeout=30).json()
    done = wait_for(lambda: (j := httpx.get(f"{b}/api/jobs/{job['job_id']}").json())["state"] == "succeeded" and j, 60)
    assert done["done"] == 20
    wait_for(
        lambda: httpx.get(f"{a}/api/demos/fake/stats").json()["rows"] == 22,
        5,
        interval=0.05,
        what="a to count b's job",
    )
    again = httpx.post(f"{b}/api/demos/fake/items", files={"files": ("copy.txt", text)}, timeout=60).json()
    assert again["duplicates"] == again["ids"] and len(again["ids"]) == 1
    # Each process keeps its own job records.
    assert httpx.get(f"{a}/api/jobs").json() == []


def test_s3_store_is_content_addressed_and_never_serves_a_tampered_object(tmp_path):
    from moto import mock_aws

    from vectorfair.media import S3MediaStore

    with mock_aws():
        store = S3MediaStore("bucket", tmp_path / "cache-a", access_key="k", secret_key="s")
        key = store.put(b"clip bytes", "video/mp4")
        assert store.put(b"clip bytes", "video/mp4") == key
        other = S3MediaStore("bucket", tmp_path / "cache-b", access_key="k", secret_key="s")
        assert other.path(key).read_bytes() == b"clip bytes" and other.content_type(key) == "video/mp4"
        assert other.path("../../etc/passwd") is None and other.path("0" * 64) is None
        # Someone overwrites the object behind the key: a fresh cache refuses it.
        other.client.put_object(Bucket="bucket", Key=other._object(key), Body=b"evil")
        assert S3MediaStore("bucket", tmp_path / "cache-c", access_key="k", secret_key="s").path(key) is None
        store.delete(key)
        assert S3MediaStore("bucket", tmp_path / "cache-d", access_key="k", secret_key="s").path(key) is None
