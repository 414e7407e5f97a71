"""Every shared route, through HTTP, on real Milvus Lite with the fake demo."""

import json
import time

import pytest

from .archives import tar_of, zip_of


def add(client, *texts, tag="t"):
    r = client.post("/api/demos/fake/items", json={"records": [{"text": t, "tag": tag} for t in texts]})
    assert r.status_code == 201, r.text
    return r.json()["ids"]


def count(client):
    return client.get("/api/demos/fake/stats").json()["rows"]


def wait_job(client, job_id, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["state"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def assert_error(response, status, *words):
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    detail = response.json()["detail"]
    for word in words:
        assert word in detail, detail


# -- platform ---------------------------------------------------------------------------
def test_health_and_readiness(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["demos"] == {"fake": "ready"}


def test_demos_lists_inputs_and_count(client):
    add(client, "one", "two")
    [demo] = client.get("/api/demos").json()
    assert demo["name"] == "fake" and demo["title"] == "Fake text demo"
    assert demo["inputs"] == ["text"] and demo["count"] == 2 and demo["description"]


def test_openapi_has_a_typed_tag_per_demo(client):
    spec = client.get("/openapi.json").json()
    assert {"name": "fake", "description": "Fake text demo: Hashed bag-of-words vectors; for tests."} in spec["tags"]
    search = spec["paths"]["/api/demos/fake/search"]["post"]
    assert search["tags"] == ["fake"]
    body_ref = search["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    body = spec["components"]["schemas"][body_ref]
    assert set(body["properties"]) == {"query", "top_k", "filter"}
    assert "FakeFilter" in spec["components"]["schemas"]
    items = spec["paths"]["/api/demos/fake/items"]["post"]["requestBody"]["content"]
    assert set(items) == {"multipart/form-data", "application/json"}
    assert client.get("/docs").status_code == 200


# -- items ------------------------------------------------------------------------------
def test_add_files_and_records_with_per_item_failures(client):
    r = client.post(
        "/api/demos/fake/items",
        files=[
            ("files", ("a.txt", b"apple orchard", "text/plain")),
            ("files", ("bad.txt", b"FAIL please", "text/plain")),
            ("files", ("binary.txt", b"\xff\xfe\xfa", "text/plain")),
            ("files", ("empty.txt", b"", "text/plain")),
            ("files", ("pic.gif", b"GIF89a", "image/gif")),
            ("files", ("two.txt", b"first part\n---\nsecond part", "text/plain")),
        ],
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert len(body["ids"]) == 3  # one + two entries
    failed = {f["name"]: f["error"] for f in body["failed"]}
    assert failed["bad.txt"] == "this file asks to fail"
    assert "could not be read" in failed["binary.txt"]
    assert "empty" in failed["empty.txt"]
    assert ".gif not accepted" in failed["pic.gif"] and ".txt" in failed["pic.gif"]
    assert count(client) == 3


def test_all_items_bad_is_422_and_nothing_lost(client):
    add(client, "keep me")
    r = client.post("/api/demos/fake/items", json={"records": [{"text": ""}, {"nope": 1}, "not an object"]})
    assert_error(r, 422, "no item could be stored")
    assert len(r.json()["failed"]) == 3
    assert count(client) == 1


@pytest.mark.parametrize(
    "kwargs,status,words",
    [
        ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 400, ["not valid JSON"]),
        ({"json": {"records": []}}, 422, ["at least one record"]),
        ({"json": {"rows": [{"text": "x"}]}}, 422, ["records"]),
        ({"content": b"hello", "headers": {"content-type": "text/plain"}}, 415, ["multipart/form-data"]),
        ({"data": {"other": "x"}, "files": [("something", ("a.txt", b"x", "text/plain"))]}, 422, ["files"]),
    ],
)
def test_bad_item_requests_are_4xx(client, kwargs, status, words):
    add(client, "keep me")
    assert_error(client.post("/api/demos/fake/items", **kwargs), status, *words)
    assert count(client) == 1


def test_same_content_is_stored_once(client):
    first = add(client, "alpha beta")
    r = client.post(
        "/api/demos/fake/items", json={"records": [{"text": "alpha beta", "tag": "t"}, {"text": "gamma", "tag": "t"}]}
    )
    assert r.status_code == 201
    assert r.json()["duplicates"] == first and first[0] in r.json()["ids"]
    assert count(client) == 2


def test_get_item_media_with_range_and_thumbnail(client):
    r = client.post("/api/demos/fake/items", files=[("files", ("doc.txt", b"hello media world", "text/plain"))])
    [item_id] = r.json()["ids"]
    item = client.get(f"/api/demos/fake/items/{item_id}").json()
    assert item["title"] == "doc.txt#0" and item["fields"]["text"] == "hello media world"
    media = client.get(item["media_url"])
    assert media.status_code == 200 and media.content == b"hello media world"
    assert media.headers["content-type"].startswith("text/plain")
    part = client.get(item["media_url"], headers={"Range": "bytes=6-10"})
    assert part.status_code == 206 and part.content == b"media"
    assert_error(client.get(f"/api/demos/fake/items/{item_id}/thumbnail"), 404, "no stored thumbnail")
    assert_error(client.get("/api/demos/fake/items/nope"), 404, "no item")
    assert_error(client.get("/api/demos/fake/items/nope/media"), 404, "no item")


def test_the_files_of_items_milvus_refuses_are_removed_unless_another_row_uses_them(client, monkeypatch):
    import hashlib

    from vectorfair.demo import Upload
    from vectorfair.store import Store
    from vectorfair.tenancy import new_visitor_id

    platform = client.app.state.platform
    shared = b"refuse these shared words"
    stored = client.post("/api/demos/fake/items", files={"files": ("shared.txt", shared, "text/plain")})
    assert stored.status_code == 201, stored.text
    insert = Store.insert

    def refusing(self, demo, rows):
        if any("refuse" in row["text"] for row in rows):
            raise ValueError("Milvus refuses this row")
        insert(self, demo, rows)

    monkeypatch.setattr(Store, "insert", refusing)

    def blob(data):
        return platform.media.path(hashlib.sha256(data).hexdigest())

    # A visitor's copy of shared.txt is an item of its own, whose media is the stored item's blob.
    uploads = [Upload("kept.txt", b"kept words"), Upload("own.txt", b"refuse own words"), Upload("shared.txt", shared)]
    kept, own, copy = platform.ingestor("fake", tenant=new_visitor_id()).run(uploads)
    assert kept.ids and not kept.error
    assert own.error == copy.error == "could not be stored: Milvus refuses this row"
    assert blob(b"refuse own words") is None
    assert blob(b"kept words") is not None and blob(shared) is not None
    # An item refused alone (no item-by-item retry) loses its file too.
    [alone] = platform.ingestor("fake").run([Upload("alone.txt", b"refuse alone")])
    assert alone.error and blob(b"refuse alone") is None
    item = client.get(f"/api/demos/fake/items/{stored.json()['ids'][0]}").json()
    assert client.get(item["media_url"]).content == shared


@pytest.mark.parametrize("path", ["../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd"])
def test_media_never_follows_a_path(client, path):
    add(client, "x")
    r = client.get(f"/api/demos/fake/items/{path}/media")
    assert r.status_code == 404 and b"root:" not in r.content


# -- search -----------------------------------------------------------------------------
def test_search_ranks_filters_and_scores(client):
    add(client, "apple apple pie", "banana bread", tag="food")
    add(client, "apple computer", tag="tech")
    r = client.post("/api/demos/fake/search", json={"query": "apple pie", "top_k": 3})
    assert r.status_code == 200
    hits = r.json()["hits"]
    assert hits[0]["title"] == "apple apple pie"
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    assert r.json()["took_ms"] >= 0
    filtered = client.post("/api/demos/fake/search", json={"query": "apple", "filter": {"tag": "tech"}}).json()["hits"]
    assert [h["fields"]["tag"] for h in filtered] == ["tech"]


@pytest.mark.parametrize(
    "body,words",
    [
        ({"query": ""}, ["query"]),
        ({"query": "   "}, ["blank"]),
        ({"query": "x", "top_k": 0}, ["top_k"]),
        ({"query": "x", "top_k": 10_000}, ["top_k"]),
        ({"query": "x", "filter": {"colour": "red"}}, ["colour"]),
        ({"query": "x", "filter": {"tag": ["a"]}}, ["tag"]),
        ({"query": "x", "surprise": 1}, ["surprise"]),
        ({"top_k": 3}, ["query"]),
    ],
)
def test_bad_searches_are_422_with_a_reason(client, body, words):
    assert_error(client.post("/api/demos/fake/search", json=body), 422, *words)


def test_filter_values_cannot_inject(client):
    add(client, "secret", tag="hidden")
    r = client.post("/api/demos/fake/search", json={"query": "secret", "filter": {"tag": 'x" or tag != "y'}})
    assert r.status_code == 200 and r.json()["hits"] == []


def test_unknown_demo_is_404_naming_the_enabled_ones(client):
    assert_error(client.post("/api/demos/nope/search", json={"query": "x"}), 404, "no demo 'nope'", "fake")
    assert_error(client.get("/api/demos/nope/stats"), 404, "fake")


# -- jobs -------------------------------------------------------------------------------
def test_sample_job(client):
    r = client.post("/api/demos/fake/jobs", json={"sample": True})
    assert r.status_code == 202 and r.headers["location"] == f"/api/jobs/{r.json()['job_id']}"
    job = wait_job(client, r.json()["job_id"])
    assert job["state"] == "succeeded" and job["total"] == 20 and job["done"] == 20 and job["failed"] == 0
    assert count(client) == 20
    again = wait_job(client, client.post("/api/demos/fake/jobs", json={"sample": True}).json()["job_id"])
    assert again["state"] == "succeeded" and again["duplicates"] == 20
    assert count(client) == 20


@pytest.mark.parametrize("packer,suffix", [(zip_of, "zip"), (tar_of, "tar.gz")])
def test_archive_job_with_one_bad_item(client, packer, suffix):
    members = {f"docs/{i}.txt": f"word{i} common".encode() for i in range(40)}
    members["docs/bad.txt"] = b"FAIL this one"
    members["__MACOSX/._junk"] = b"junk"
    archive = packer(members)
    r = client.post("/api/demos/fake/jobs", files={"archive": (f"set.{suffix}", archive)})
    assert r.status_code == 202, r.text
    job = wait_job(client, r.json()["job_id"])
    assert job["state"] == "succeeded" and job["total"] == 41
    assert job["done"] == 40 and job["failed"] == 1
    assert job["errors"] == [{"name": "docs/bad.txt", "error": "this file asks to fail"}]
    assert count(client) == 40
    # Loading it again stores nothing twice.
    job = wait_job(
        client, client.post("/api/demos/fake/jobs", files={"archive": (f"set.{suffix}", archive)}).json()["job_id"]
    )
    assert job["duplicates"] == 40 and count(client) == 40


def test_one_long_file_loads_as_a_job_with_progress_inside_it(client):
    text = "\n---\n".join(f"part{i} long document" for i in range(25)).encode()
    r = client.post("/api/demos/fake/jobs", files={"file": ("dir/../long.txt", text)})
    assert r.status_code == 202, r.text
    job = wait_job(client, r.json()["job_id"])
    assert job["state"] == "succeeded" and job["label"] == "long.txt" and (job["total"], job["done"]) == (1, 1)
    assert job["step"] == {"item": "long.txt", "done": 25, "total": 25, "unit": "parts"}
    assert count(client) == 25
    assert client.get(
        f"/api/demos/fake/items/{client.post('/api/demos/fake/search', json={'query': 'part3'}).json()['hits'][0]['id']}"
    ).json()["item"]
    assert not any(client.app.state.platform.uploads_dir.iterdir()), "the kept upload is removed once stored"


@pytest.mark.parametrize(
    "upload,status,words",
    [
        (("movie.exe", b"MZ..."), 415, [".exe", ".txt"]),
        (("empty.txt", b""), 422, ["empty"]),
    ],
)
def test_a_long_file_job_refuses_what_the_demo_cannot_take(client, upload, status, words):
    assert_error(client.post("/api/demos/fake/jobs", files={"file": upload}), status, *words)
    assert client.get("/api/jobs").json() == []


def test_entries_that_bring_their_vector_are_stored_without_encoding(client):
    from vectorfair_fake import CALLS

    CALLS["encode_batches"].clear()
    r = client.post(
        "/api/demos/fake/items",
        json={"records": [{"text": "quince precomputed", "precomputed": True}, {"text": "kiwi encoded"}]},
    )
    assert r.status_code == 201, r.text
    assert CALLS["encode_batches"] == [1], "only the record without a vector is encoded"
    hits = client.post("/api/demos/fake/search", json={"query": "quince precomputed"}).json()["hits"]
    assert hits[0]["title"] == "quince precomputed" and hits[0]["score"] > 0.99


def test_job_events_stream_progress_then_end(client):
    job_id = client.post("/api/demos/fake/jobs", json={"sample": True}).json()["job_id"]
    events = []
    with client.stream("GET", f"/api/jobs/{job_id}/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        kind = None
        for line in stream.iter_lines():
            if line.startswith("event:"):
                kind = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                events.append((kind, json.loads(line.split(":", 1)[1])))
                if kind == "end":
                    break
    assert events[-1][0] == "end" and events[-1][1]["state"] == "succeeded" and events[-1][1]["done"] == 20
    assert all(kind == "progress" for kind, _ in events[:-1])


@pytest.mark.parametrize(
    "kwargs,status,words",
    [
        ({"json": {"sample": False}}, 422, ["sample"]),
        ({"json": {"sample": True, "extra": 1}}, 422, ["sample"]),
        ({"files": {"archive": ("x.zip", b"this is not an archive at all")}}, 415, ["zip or tar"]),
        ({"files": {"other": ("x.zip", zip_of({"a.txt": b"a"}))}}, 422, ["archive"]),
        ({"files": {"archive": ("x.zip", zip_of({}))}}, 422, ["no files"]),
        ({"files": {"archive": ("x.zip", zip_of({"a.txt": b"a"})[:30])}}, 422, ["damaged"]),
        ({"content": b"x", "headers": {"content-type": "text/plain"}}, 415, ["archive"]),
    ],
)
def test_bad_job_requests_are_4xx(client, kwargs, status, words):
    assert_error(client.post("/api/demos/fake/jobs", **kwargs), status, *words)
    assert client.get("/api/jobs").json() == []


def test_job_lookup_and_cancel(client):
    assert_error(client.get("/api/jobs/nope"), 404, "no job")
    assert_error(client.delete("/api/jobs/nope"), 404, "no job")
    job_id = client.post("/api/demos/fake/jobs", json={"sample": True}).json()["job_id"]
    cancelled = client.delete(f"/api/jobs/{job_id}").json()
    assert cancelled["state"] in ("cancelled", "running", "succeeded")
    final = wait_job(client, job_id)
    assert final["state"] in ("cancelled", "succeeded")
    assert [j["job_id"] for j in client.get("/api/jobs").json()] == [job_id]


# -- stats and drop ---------------------------------------------------------------------
def test_stats_and_drop(client, settings):
    add(client, "a", "b", "c")
    stats = client.get("/api/demos/fake/stats").json()
    index = {key: stats.pop(key) for key in ("backend", "index_type", "index_params", "search_params")}
    vectors, fields = stats.pop("vectors"), stats.pop("fields")
    assert stats == {
        "demo": "fake",
        "count": 3,
        "rows": 3,
        "collection": f"{settings.milvus.collection_prefix}_fake",
        "metric": "COSINE",
        "dim": 32,
        "active_jobs": 0,
    }
    assert index["index_type"] in ("FLAT", "HNSW")  # per backend: tests/test_store.py
    assert [(v["name"], v["declared_kind"], v["kind"], v["dim"], v["index_type"]) for v in vectors] == [
        ("vector", "float", "float", 32, index["index_type"])
    ]
    # The Filter's field has a scalar index (INVERTED on Lite and 2.4+, Trie on 2.3 servers).
    assert [(f["name"], f["kind"], f["index"] is not None) for f in fields] == [
        ("text", "str", False),
        ("tag", "str", True),
    ]
    r = client.delete("/api/demos/fake/items")
    assert r.status_code == 200 and count(client) == 0
    add(client, "a")
    assert count(client) == 1


def test_request_body_limit_is_413(tmp_path):
    from fastapi.testclient import TestClient

    from vectorfair.api import create_app
    from vectorfair.settings import load_settings

    from .conftest import write_config

    settings = load_settings(
        write_config(tmp_path, "[limits]\nmax_request_bytes = 1000\n[demos.fake]\nload_sample_on_start = false\n")
    )
    with TestClient(create_app(settings)) as client:
        r = client.post("/api/demos/fake/items", files=[("files", ("big.txt", b"x" * 5000, "text/plain"))])
        assert_error(r, 413, "limit")
        assert count(client) == 0


def test_errors_are_never_200(client):
    """A sweep of wrong calls: each is a 4xx JSON error."""
    calls = [
        ("get", "/api/demos/fake/items/" + "x" * 500, {}),
        ("post", "/api/demos/fake/search", {"content": b"[]", "headers": {"content-type": "application/json"}}),
        ("post", "/api/demos/fake/search", {"files": {"file": ("q.txt", b"x")}}),
        ("put", "/api/demos/fake/search", {}),
        ("get", "/api/jobs/" + "%00", {}),
        ("delete", "/api/demos/fake", {}),
    ]
    for method, url, kwargs in calls:
        r = getattr(client, method)(url, **kwargs)
        assert 400 <= r.status_code < 500, (url, r.status_code, r.text)
        assert "detail" in r.json()


def test_sample_data_loads_on_start(tmp_path):
    from fastapi.testclient import TestClient

    from vectorfair.api import create_app
    from vectorfair.settings import load_settings

    from .conftest import write_config

    settings = load_settings(write_config(tmp_path, "[demos.fake]\nsample_size = 12\n"))
    with TestClient(create_app(settings)) as client:
        deadline = time.time() + 30
        while time.time() < deadline and not client.get("/api/jobs").json():
            time.sleep(0.1)
        [job] = client.get("/api/jobs").json()
        assert job["label"] == "sample data"
        assert wait_job(client, job["job_id"])["state"] == "succeeded"
        assert count(client) == 12
    # A second start finds the demo loaded and queues nothing more.
    with TestClient(create_app(settings)) as client:
        time.sleep(1.5)
        assert len(client.get("/api/jobs").json()) == 1


def test_a_file_of_records_is_split_into_items_with_row_errors(client):
    data = b"first line words\n\nthird line words"
    r = client.post("/api/demos/fake/items", files=[("files", ("set.lines", data, "text/plain"))])
    assert r.status_code == 201
    assert len(r.json()["ids"]) == 2
    assert r.json()["failed"] == [{"name": "set.lines line 2", "error": "a record needs a non-empty 'text'"}]
    # Rows are items of their own: the same row in another file is not stored again.
    r = client.post(
        "/api/demos/fake/items", files=[("files", ("other.lines", b"third line words\nfourth", "text/plain"))]
    )
    assert len(r.json()["duplicates"]) == 1 and count(client) == 3
    job = wait_job(
        client,
        client.post(
            "/api/demos/fake/jobs",
            files={"archive": ("a.zip", zip_of({"x.lines": b"alpha\nbeta\ngamma", "y.txt": b"delta"}))},
        ).json()["job_id"],
    )
    assert job["total"] == 4 and job["done"] == 4


def test_search_carries_the_demo_summary(client):
    add(client, "apple pie")
    assert client.post("/api/demos/fake/search", json={"query": "apple"}).json()["summary"] == {"best": "apple pie"}


def test_same_content_twice_in_one_request(client):
    r = client.post(
        "/api/demos/fake/items", json={"records": [{"text": "twin"}, {"text": "twin"}, {"text": ""}, {"text": ""}]}
    )
    body = r.json()
    assert r.status_code == 201 and len(set(body["ids"])) == 1 and body["duplicates"] == body["ids"][:1]
    assert len(body["failed"]) == 2 and count(client) == 1


def test_a_job_waits_for_milvus_instead_of_failing(client):
    from vectorfair.runtime import DemoNotReady
    from vectorfair.store import StoreUnavailable

    jobs = client.app.state.platform.jobs
    calls = []

    def away_twice(demo):
        calls.append(demo)
        if len(calls) <= 2:
            raise StoreUnavailable("Milvus is away")

    jobs.require_demo = away_twice
    job = wait_job(client, client.post("/api/demos/fake/jobs", json={"sample": True}).json()["job_id"])
    assert job["state"] == "succeeded" and len(calls) == 3 and count(client) == 20

    def mismatched(demo):
        raise DemoNotReady("collection vf_fake does not match demo 'fake'")

    jobs.require_demo = mismatched
    job = wait_job(client, client.post("/api/demos/fake/jobs", json={"sample": True}).json()["job_id"])
    assert job["state"] == "failed" and "does not match" in job["message"]


def test_demo_identity_decides_what_is_the_same_item(client):
    first = add(client, "Apple Pie")
    r = client.post("/api/demos/fake/items", json={"records": [{"text": "  apple pie ", "tag": "other"}]})
    assert r.status_code == 201 and r.json()["duplicates"] == first and count(client) == 1


def test_encoder_pass_can_add_fields(client):
    [auto, plain] = add(client, "auto tagged", "plain text", tag="given")
    assert client.get(f"/api/demos/fake/items/{auto}").json()["fields"]["tag"] == "encoded"
    assert client.get(f"/api/demos/fake/items/{plain}").json()["fields"]["tag"] == "given"


def test_pages_are_served_from_the_app(client):
    home = client.get("/")
    assert home.status_code == 200 and "Fake text demo" in home.text and 'href="/demos/fake"' in home.text
    page = client.get("/demos/fake")
    assert page.status_code == 200 and '<script type="application/json" id="vf-page">' in page.text
    assert "http://" not in page.text and "https://" not in page.text  # nothing from a CDN
    assert client.get("/static/app.js").status_code == 200 and client.get("/static/app.css").status_code == 200
    assert_error(client.get("/demos/nope"), 404, "no demo 'nope'")


# -- read your writes, nothing stored twice (both backends) -----------------------------
def test_what_an_upload_stored_is_counted_and_found_by_the_next_request(client):
    """On a server the default (Bounded) consistency misses fresh writes; the
    store reads with Session consistency, so each next request sees them."""
    for n in range(1, 6):
        word = f"zebra{n}"
        stored = client.post("/api/demos/fake/items", files={"files": (f"{word}.txt", f"{word} stripes".encode())})
        assert stored.status_code == 201, stored.text
        assert count(client) == n
        hits = client.post("/api/demos/fake/search", json={"query": f"{word} stripes", "top_k": 1}).json()["hits"]
        assert hits and hits[0]["id"] == stored.json()["ids"][0]
        assert client.get(f"/api/demos/fake/items/{hits[0]['id']}").status_code == 200


def test_the_same_upload_twice_at_the_same_moment_is_stored_once(tmp_path):
    """Both requests pass the stored-already check before either inserts
    (the encoder is slow on purpose); rows are upserted by content key, so
    each item is one row. The same holds for two jobs of one archive."""
    from concurrent.futures import ThreadPoolExecutor

    from fastapi.testclient import TestClient

    from vectorfair.api import create_app
    from vectorfair.settings import load_settings

    from .conftest import write_config

    config = write_config(tmp_path, "[demos.fake]\nload_sample_on_start = false\nencode_delay = 0.5\n")
    notes = {f"note{i}.txt": f"note number {i} of the batch".encode() for i in range(12)}
    files = [("files", (name, data, "text/plain")) for name, data in notes.items()]
    archive = zip_of({f"more/{name}": data + b" again" for name, data in notes.items()})
    with TestClient(create_app(load_settings(config))) as client:
        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(lambda _: client.post("/api/demos/fake/items", files=files), range(2)))
        assert [a.status_code for a in answers] == [201, 201], [a.text for a in answers]
        assert all(len(a.json()["ids"]) == 12 for a in answers)
        jobs = [
            client.post("/api/demos/fake/jobs", files={"archive": ("more.zip", archive, "application/zip")}).json()[
                "job_id"
            ]
            for _ in range(2)
        ]
        for job_id in jobs:
            while client.get(f"/api/jobs/{job_id}").json()["state"] in ("queued", "running"):
                time.sleep(0.1)
            assert client.get(f"/api/jobs/{job_id}").json()["state"] == "succeeded"
        platform = client.app.state.platform
        rows = platform.store.query(platform.demos["fake"], "", ["id", "item"])
        assert len(rows) == 24 and len({row["id"] for row in rows}) == 24
        assert count(client) == 24


def test_drop_and_reload_are_refused_while_the_demo_has_a_job(client):
    from vectorfair.store import StoreUnavailable

    add(client, "a", "b")
    platform = client.app.state.platform

    def away(demo):
        raise StoreUnavailable("Milvus is away")

    # The job waits for a Milvus that never comes: it stays queued.
    platform.jobs.require_demo = away
    job_id = client.post("/api/demos/fake/jobs", json={"sample": True}).json()["job_id"]
    for method, route in (("DELETE", "/api/demos/fake/items"), ("POST", "/api/demos/fake/reload")):
        assert_error(client.request(method, route), 409, "fake has running jobs; cancel them first")
    assert count(client) == 2
    assert client.delete(f"/api/jobs/{job_id}").json()["state"] == "cancelled"
    assert client.delete("/api/demos/fake/items").status_code == 200 and count(client) == 0


def test_the_platform_is_what_the_routes_use(client):
    """Search, drop and job lookups are Platform methods (the CLI uses the same)."""
    add(client, "apple pie", "banana split")
    platform = client.app.state.platform
    outcome = platform.search("fake", "apple", 1)
    assert [h.title for h in outcome.hits] == ["apple pie"] and outcome.summary == {"best": "apple pie"}
    assert outcome.took_ms >= 0
    assert [h.title for h in platform.search_hits("fake", "apple", 1)] == ["apple pie"]
    job_id = client.post("/api/demos/fake/jobs", json={"sample": True}).json()["job_id"]
    assert platform.job(job_id).demo == "fake" and platform.job("nope") is None
    assert [j.id for j in platform.list_jobs(demo="fake")] == [job_id] and platform.list_jobs(demo="other") == []
    wait_job(client, job_id)
    assert platform.active_jobs("fake") == []
    platform.drop_and_recreate("fake")
    assert count(client) == 0
