"""Hosted portal mode: visitors as tenants, quotas, expiry, admin routes,
rate limits, headers, metrics and logs, through real HTTP on real Milvus Lite."""

import json
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from fastapi.testclient import TestClient

from vectorfair.api import create_app
from vectorfair.settings import load_settings

from .archives import zip_of
from .conftest import write_config
from .live import free_port, start_app, wait_for

ADMIN = {"X-API-Key": "test-admin-key"}


def portal_settings(tmp_path, extra: str = ""):
    return load_settings(
        write_config(
            tmp_path,
            (
                "[demos.fake]\nload_sample_on_start = false\n"
                '[admin]\napi_key = "test-admin-key"\n'
                # `extra` may go on with [visitors] keys or start sections of its own.
                '[visitors]\nseparate = true\nsecret = "s3cret-for-tests"\n' + extra
            ),
        )
    )


def wait_job(client, job_id, headers=None, timeout=60):
    deadline = time.monotonic() + timeout
    while (job := client.get(f"/api/jobs/{job_id}", headers=headers).json())["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.1)
    return job


def load_sample(client):
    r = client.post("/api/demos/fake/jobs", json={"sample": True}, headers=ADMIN)
    assert r.status_code == 202, r.text
    assert wait_job(client, r.json()["job_id"], ADMIN)["state"] == "succeeded"


def upload(client, name: str, text: str, expect: int = 201):
    r = client.post("/api/demos/fake/items", files={"files": (name, text.encode())})
    assert r.status_code == expect, r.text
    return r.json()


def search_ids(client, query: str) -> set[str]:
    r = client.post("/api/demos/fake/search", json={"query": query, "top_k": 50})
    assert r.status_code == 200, r.text
    return {h["id"] for h in r.json()["hits"]}


@pytest.fixture
def portal(tmp_path):
    app = create_app(portal_settings(tmp_path))
    with TestClient(app) as first:
        load_sample(first)
        yield app, first


def visitor(app) -> TestClient:
    # Another browser: the same running app, its own cookie jar.
    return TestClient(app)


def test_a_visitor_sees_the_shared_data_and_only_their_own_uploads(portal):
    app, a = portal
    b = visitor(app)
    mine = upload(a, "secret.txt", "zebra quokka private note")["ids"][0]
    assert a.cookies.get("vf_visitor"), "a new visitor gets a signed cookie"

    # Search: A finds it first, B never, both see the shared sample.
    assert a.post("/api/demos/fake/search", json={"query": "zebra quokka"}).json()["hits"][0]["id"] == mine
    assert mine not in search_ids(b, "zebra quokka private note")
    assert len(search_ids(b, "apple banana sample")) == 20
    # By id, media and thumbnail: "no item" for B, exactly as for an unknown id.
    for route in ("", "/media", "/thumbnail"):
        r = b.get(f"/api/demos/fake/items/{mine}{route}")
        assert r.status_code == 404 and "no item" in r.json()["detail"], (route, r.text)
    media = a.get(f"/api/demos/fake/items/{mine}/media")
    assert media.status_code == 200 and media.content == b"zebra quokka private note"
    assert media.headers["cache-control"].startswith("private")
    # Counts are of what each one can see.
    assert a.get("/api/demos/fake/stats").json()["count"] == 21
    assert b.get("/api/demos/fake/stats").json()["count"] == 20
    assert {d["name"]: d["count"] for d in b.get("/api/demos").json()}["fake"] == 20
    # B uploading the same bytes makes B's own item; A's is untouched.
    theirs = upload(b, "secret.txt", "zebra quokka private note")["ids"][0]
    assert theirs != mine and search_ids(b, "zebra quokka") & {mine, theirs} == {theirs}
    # A forged cookie is a new visitor, not A.
    forged = visitor(app)
    forged_value = a.cookies.get("vf_visitor")[:-2] + "xx"
    r = forged.get(f"/api/demos/fake/items/{mine}", headers={"Cookie": f"vf_visitor={forged_value}"})
    assert r.status_code == 404
    assert r.headers["set-cookie"].startswith("vf_visitor=") and forged_value not in r.headers["set-cookie"]
    assert "HttpOnly" in r.headers["set-cookie"] and "SameSite=Lax" in r.headers["set-cookie"]


def test_jobs_are_private_to_their_visitor(portal):
    app, a = portal
    b = visitor(app)
    archive = zip_of({f"d/{i}.txt": f"walrus {i}".encode() for i in range(5)})
    r = a.post("/api/demos/fake/jobs", files={"archive": ("set.zip", archive)})
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    assert wait_job(a, job_id)["state"] == "succeeded"
    assert job_id in {j["job_id"] for j in a.get("/api/jobs").json()}
    assert job_id not in {j["job_id"] for j in b.get("/api/jobs").json()}
    for method, route in (("GET", ""), ("GET", "/events"), ("DELETE", "")):
        assert b.request(method, f"/api/jobs/{job_id}{route}").status_code == 404
    assert len(search_ids(a, "walrus") - search_ids(b, "walrus")) == 5
    assert job_id in {j["job_id"] for j in a.get("/api/jobs", headers=ADMIN).json()}


def test_visitors_delete_their_own_items_only(portal):
    app, a = portal
    b = visitor(app)
    mine = upload(a, "mine.txt", "ocelot\n---\nocelot second part")["ids"]
    # B has uploaded nothing, so whatever B finds is shared data; A's own hits would be deletable.
    shared = next(iter(search_ids(b, "apple")))
    assert shared not in mine
    assert b.delete(f"/api/demos/fake/items/{mine[0]}").status_code == 404
    r = a.delete(f"/api/demos/fake/items/{shared}")
    assert r.status_code == 403 and "admin" in r.json()["detail"]
    r = a.delete(f"/api/demos/fake/items/{mine[1]}")
    assert r.status_code == 200 and r.json()["deleted_rows"] == 2, r.text
    assert a.get(f"/api/demos/fake/items/{mine[0]}").status_code == 404
    assert not search_ids(a, "ocelot") & set(mine)
    assert a.get("/api/demos/fake/stats").json()["count"] == 20


def test_quotas_refuse_what_does_not_fit_and_keep_what_is_stored(tmp_path):
    app = create_app(portal_settings(tmp_path, "max_items = 3\nmax_bytes = 100\n"))
    with TestClient(app) as a:
        first = upload(a, "one.txt", "lynx one")["ids"]
        r = a.post(
            "/api/demos/fake/items",
            files=[
                ("files", ("two.txt", b"lynx two")),
                ("files", ("three.txt", b"lynx three")),
                ("files", ("four.txt", b"lynx four")),
            ],
        )
        assert r.status_code == 201 and len(r.json()["ids"]) == 2
        assert r.json()["failed"][0]["name"] == "four.txt" and "quota" in r.json()["failed"][0]["error"]
        r = a.post("/api/demos/fake/items", json={"records": [{"text": "lynx five"}]})
        assert r.status_code == 403 and "over your quota" in r.json()["detail"] and "3 items" in r.json()["detail"]
        # Deleting one frees its place; a file over the bytes left is refused.
        assert a.delete(f"/api/demos/fake/items/{first[0]}").status_code == 200
        r = a.post("/api/demos/fake/items", files={"files": ("big.txt", b"lynx " * 40)})
        assert r.status_code == 403 and "bytes" in r.json()["detail"]
        # An item that fails takes no place once its upload has ended.
        assert "asks to fail" in upload(a, "bad.txt", "FAIL lynx", expect=422)["detail"]
        upload(a, "small.txt", "lynx small")
        assert a.get("/api/demos/fake/stats").json()["count"] == 3
        # Other visitors and the admin have their own room.
        assert upload(visitor(app), "x.txt", "lynx other")["ids"]
        assert (
            a.post("/api/demos/fake/items", json={"records": [{"text": "shared lynx"}]}, headers=ADMIN).status_code
            == 201
        )


def test_parallel_uploads_of_one_visitor_share_one_quota(tmp_path):
    settings = portal_settings(tmp_path, "max_items = 4\n")
    # A slow encoder keeps every upload in flight while the others take their places.
    settings.demos["fake"]["encode_delay"] = 0.5
    app = create_app(settings)
    with TestClient(app) as a:
        upload(a, "first.txt", "puffin first")
        requests = [[("files", (f"{n}-{i}.txt", f"puffin {n} {i}".encode())) for i in range(2)] for n in range(6)]
        with ThreadPoolExecutor(len(requests)) as pool:
            answers = list(pool.map(lambda files: a.post("/api/demos/fake/items", files=files), requests))
        stored = sum(len(r.json()["ids"]) for r in answers if r.status_code == 201)
        refused = [f for r in answers for f in r.json().get("failed", [])]
        assert stored == 3, [r.text for r in answers]
        assert len(refused) == 9 and all("over your quota" in f["error"] for f in refused), refused
        assert {r.status_code for r in answers} <= {201, 403}
        assert a.get("/api/demos/fake/stats").json()["count"] == 4
        # Once those are done, the count starts from what is stored.
        assert upload(a, "late.txt", "puffin late", expect=403)
        assert a.delete(f"/api/demos/fake/items/{next(iter(search_ids(a, 'puffin first')))}").status_code == 200
        upload(a, "later.txt", "puffin later")


def test_visitor_data_expires_and_unused_files_go_with_it(tmp_path):
    app = create_app(portal_settings(tmp_path, "expire_after_s = 2\ncleanup_interval_s = 0.5\n"))
    with TestClient(app) as a:
        load_sample(a)
        platform = app.state.platform
        # The admin holds the same bytes as shared data: that file must stay.
        shared = a.post(
            "/api/demos/fake/items", files={"files": ("s.txt", b"heron shared text")}, headers=ADMIN
        ).json()["ids"][0]
        mine = upload(a, "h.txt", "heron shared text")["ids"][0]
        alone = upload(a, "g.txt", "gannet only mine")["ids"][0]
        failed_job = a.post(
            "/api/demos/fake/jobs", files={"archive": ("f.zip", zip_of({"bad.txt": b"FAIL me"}))}
        ).json()["job_id"]
        assert wait_job(a, failed_job)["state"] == "succeeded"
        row = platform.store.get(platform.demos["fake"], alone)
        assert platform.media.path(row["media"]) is not None
        deadline = time.monotonic() + 20
        while any(a.get(f"/api/demos/fake/items/{i}").status_code == 200 for i in (mine, alone)):
            assert time.monotonic() < deadline, "visitor data did not expire"
            time.sleep(0.3)
        assert platform.media.path(row["media"]) is None, "a file no row uses is deleted"
        assert a.get(f"/api/demos/fake/items/{shared}/media").content == b"heron shared text"
        assert a.get("/api/demos/fake/stats").json()["count"] == 21
        assert platform.store.count(platform.demos["fake"], 'tenant != "public"') == 0
        # The visitor's finished job is forgotten once it too is older than the
        # limit (it ended after the uploads, so possibly a round later).
        while a.get(f"/api/jobs/{failed_job}").status_code != 404:
            assert time.monotonic() < deadline, "the visitor's finished job was not forgotten"
            time.sleep(0.3)
        assert not any(platform.uploads_dir.iterdir())


def test_a_visitor_may_hold_only_a_few_jobs(tmp_path):
    settings = portal_settings(tmp_path, "max_active_jobs = 1\n")
    settings.demos["fake"]["encode_delay"] = 0.5
    with TestClient(create_app(settings)) as a:
        archive = zip_of({f"{i}.txt": f"slow {i}".encode() for i in range(40)})
        first = a.post("/api/demos/fake/jobs", files={"archive": ("a.zip", archive)})
        assert first.status_code == 202
        r = a.post("/api/demos/fake/jobs", files={"archive": ("b.zip", archive)})
        assert r.status_code == 429 and r.headers["retry-after"] and "1 jobs queued or running" in r.json()["detail"]
        assert visitor(a.app).post("/api/demos/fake/jobs", files={"archive": ("c.zip", archive)}).status_code == 202
        assert a.delete(f"/api/jobs/{first.json()['job_id']}").json()["state"] in ("cancelled", "running")


def test_admin_routes_need_the_key(portal):
    app, a = portal
    for method, route, body in (
        ("DELETE", "/api/demos/fake/items", None),
        ("POST", "/api/demos/fake/reload", None),
        ("POST", "/api/demos/fake/jobs", {"sample": True}),
    ):
        r = a.request(method, route, json=body)
        assert r.status_code == 401 and "X-API-Key" in r.json()["detail"], (route, r.text)
        r = a.request(method, route, json=body, headers={"X-API-Key": "wrong"})
        assert r.status_code == 403, (route, r.text)
    assert a.get("/api/demos/fake/stats").json()["count"] == 20, "nothing was dropped"
    r = a.post("/api/demos/fake/reload", headers=ADMIN)
    assert r.status_code == 202 and wait_job(a, r.json()["job_id"], ADMIN)["state"] == "succeeded"
    assert a.delete("/api/demos/fake/items", headers=ADMIN).json() == {"demo": "fake", "dropped": True}
    assert a.get("/api/demos/fake/stats").json()["count"] == 0


def test_a_portal_without_an_admin_key_has_no_admin(tmp_path):
    settings = portal_settings(tmp_path)
    settings.admin.api_key = ""
    with TestClient(create_app(settings)) as a:
        r = a.delete("/api/demos/fake/items", headers={"X-API-Key": ""})
        assert r.status_code == 403 and "api_key" in r.json()["detail"]


def test_rate_limits_answer_429_with_retry_after(tmp_path):
    settings = portal_settings(tmp_path, '[rate_limits]\nenabled = true\nsearch = "3/minute"\napi = "5/minute"\n')
    with TestClient(create_app(settings)) as a:
        codes = [a.post("/api/demos/fake/search", json={"query": "apple"}).status_code for _ in range(4)]
        assert codes[:3] == [200] * 3 and codes[3] == 429
        r = a.post("/api/demos/fake/search", json={"query": "apple"})
        assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 60
        assert "3 per 1 minute" in r.json()["detail"]
        assert a.post("/api/demos/fake/search", json={"query": "apple"}, headers=ADMIN).status_code == 200
        assert all(a.get("/healthz").status_code == 200 for _ in range(10)), "health checks are not limited"
        # A per-minute window, so a slow machine cannot spread the calls past it.
        codes = [a.get("/api/demos").status_code for _ in range(8)]
        assert codes == [200] * 5 + [429] * 3, codes


def test_security_headers_cors_and_request_ids(tmp_path):
    settings = portal_settings(tmp_path, '[http]\ncors_origins = ["https://docs.example.org"]\n')
    with TestClient(create_app(settings)) as a:
        page = a.get("/")
        assert page.status_code == 200
        assert page.headers["x-content-type-options"] == "nosniff" and page.headers["x-frame-options"] == "DENY"
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert re.fullmatch(r"[0-9a-f]{32}", page.headers["x-request-id"])
        given = uuid.uuid4().hex
        assert a.get("/healthz", headers={"X-Request-ID": given}).headers["x-request-id"] == given
        preflight = {"Access-Control-Request-Method": "POST"}
        allowed = a.options("/api/demos/fake/search", headers={"Origin": "https://docs.example.org", **preflight})
        assert allowed.headers["access-control-allow-origin"] == "https://docs.example.org"
        other = a.options("/api/demos/fake/search", headers={"Origin": "https://evil.example", **preflight})
        assert "access-control-allow-origin" not in other.headers


def test_metrics_count_requests_batches_and_jobs(portal):
    app, a = portal
    for query in ("apple", "banana", "cherry"):
        a.post("/api/demos/fake/search", json={"query": query})
    a.get("/api/demos/fake/items/nothing-here")
    text = a.get("/metrics").text
    assert 'vectorfair_http_requests_total{method="POST",route="/api/demos/fake/search",status="200"} 3.0' in text
    assert 'route="/api/demos/fake/items/{item_id}",status="404"' in text, "labels use the route template"
    assert re.search(r'vectorfair_encoder_batch_size_count\{demo="fake"\} [1-9]', text)
    assert 'vectorfair_jobs{demo="fake",state="succeeded"} 1.0' in text
    assert "vectorfair_http_request_duration_seconds_bucket" in text


def test_no_route_takes_a_filesystem_path(portal):
    app, _ = portal
    names = {
        p["name"].lower()
        for op in app.openapi()["paths"].values()
        for spec in op.values()
        for p in spec.get("parameters", [])
    }
    assert not names & {"path", "file", "filename", "dir", "directory", "filepath"}, names


def test_json_logs_carry_the_request_id(tmp_path, procs):
    config = write_config(tmp_path, '[demos.fake]\nload_sample_on_start = false\n[serve]\nlog_format = "json"\n')
    log = tmp_path / "app.log"
    process, base = start_app(config, free_port(), log)
    procs.append(process)
    wait_for(lambda: httpx.get(f"{base}/readyz").status_code == 200, timeout=60)
    given = uuid.uuid4().hex
    assert (
        httpx.post(
            f"{base}/api/demos/fake/search", json={"query": "apple"}, headers={"X-Request-ID": given}
        ).status_code
        == 200
    )

    def access_lines():
        lines = [line for line in log.read_text().splitlines() if line.startswith("{") and line.endswith("}")]
        records = [json.loads(line) for line in lines]
        return [r for r in records if r.get("request_id") == given and r["logger"] == "vectorfair.access"]

    # The line is written as the response ends, so it may land a moment after the client has it.
    access = wait_for(access_lines, timeout=10, what="an access log line with the request id")
    log_tail = log.read_text()[-2000:]
    assert access and access[0]["status"] == 200 and access[0]["route"] == "/api/demos/fake/search", log_tail
    assert {"time", "level", "message", "duration_ms"} <= set(access[0])
