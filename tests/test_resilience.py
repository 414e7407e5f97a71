"""Real processes: Milvus going away and coming back, restarts, interrupted jobs."""

import re
import time

import httpx
import pytest
from vectorfair_fake import FakeDemo  # on sys.path through conftest, as the server finds it

from vectorfair.ingest import item_key

from .conftest import write_config
from .live import free_port, start_app, start_milvus, wait_for


def search(base, query="apple"):
    return httpx.post(f"{base}/api/demos/fake/search", json={"query": query, "top_k": 5}, timeout=30)


class RestartableMilvus:
    """The Milvus a resilience test stops and starts: on Lite, a `milvus-lite
    server` of the test's own (the same engine over TCP); on a server, the
    session's real Milvus server, SIGKILLed like a crash and restarted on its
    data."""

    def __init__(self, backend, tmp_path, procs):
        self.backend, self.tmp_path, self.procs = backend, tmp_path, procs
        if backend.is_server:
            self.server = backend.server
            self.uri = backend.uri
        else:
            self.port = free_port()
            self.uri = f"http://127.0.0.1:{self.port}"
            self.process = None
        self.starts = 0

    def start(self):
        self.starts += 1
        if self.backend.is_server:
            self.server.start()
        else:
            self.process = start_milvus(self.tmp_path / "milvus", self.port, self.tmp_path / f"milvus{self.starts}.log")
            self.procs.append(self.process)

    def kill(self):
        if self.backend.is_server:
            self.server.stop(kill=True)
        else:
            self.process.kill()

    def stop(self):
        if self.backend.is_server:
            self.server.stop()


@pytest.fixture
def restartable_milvus(milvus_backend, tmp_path, procs):
    if milvus_backend.is_server and milvus_backend.server is None:
        pytest.skip("the Milvus server was not started by this test session, so it cannot be restarted")
    milvus = RestartableMilvus(milvus_backend, tmp_path, procs)
    yield milvus
    if milvus_backend.is_server and milvus.server.process is None:
        milvus.server.start()  # the next tests need it, whatever happened here


def test_milvus_unreachable_then_back_then_gone_then_back(tmp_path, procs, restartable_milvus):
    milvus = restartable_milvus
    milvus.stop()
    app_port = free_port()
    config = write_config(tmp_path, "[demos.fake]\nload_sample_on_start = false\n")
    config.write_text(re.sub(r'uri = "[^"]*"', f'uri = "{milvus.uri}"\ntimeout = 3', config.read_text()))
    started = time.monotonic()
    app, base = start_app(config, app_port, tmp_path / "app.log")
    procs.append(app)
    startup_seconds = time.monotonic() - started

    # Milvus is not there: the app is up, not ready, and says so with 503s.
    ready = httpx.get(f"{base}/readyz")
    assert ready.status_code == 503 and ready.json()["milvus"]["connected"] is False
    r = search(base)
    assert r.status_code == 503 and r.headers["retry-after"] and "not reachable" in r.json()["detail"]
    r = httpx.post(f"{base}/api/demos/fake/items", json={"records": [{"text": "x"}]})
    assert r.status_code == 503
    assert httpx.get(f"{base}/api/demos").json()[0]["status"] == "Milvus unreachable"

    # Milvus arrives: the app connects by itself.
    milvus.start()
    wait_for(lambda: httpx.get(f"{base}/readyz").status_code == 200, 60, what="ready after Milvus started")
    r = httpx.post(f"{base}/api/demos/fake/items", json={"records": [{"text": "apple tree"}, {"text": "pear"}]})
    assert r.status_code == 201
    assert search(base).json()["hits"][0]["title"] == "apple tree"

    # Milvus dies mid-use: 503, then recovery without restarting the app.
    milvus.kill()
    wait_for(lambda: search(base).status_code == 503, 30, what="503 after Milvus died")
    assert httpx.get(f"{base}/readyz").status_code == 503
    milvus.start()
    wait_for(lambda: search(base).status_code == 200, 60, what="search after Milvus came back")
    assert search(base).json()["hits"][0]["title"] == "apple tree"
    assert httpx.get(f"{base}/api/demos/fake/stats").json()["count"] == 2
    assert startup_seconds < 30


def test_restart_keeps_data(tmp_path, procs):
    config = write_config(tmp_path, "[demos.fake]\nload_sample_on_start = false\n")
    port = free_port()
    app, base = start_app(config, port, tmp_path / "app.log")
    wait_for(lambda: httpx.get(f"{base}/readyz").status_code == 200, 30, what="ready")
    files = [("files", ("note.txt", b"persistent apple note", "text/plain"))]
    item_id = httpx.post(f"{base}/api/demos/fake/items", files=files).json()["ids"][0]
    app.kill(sig=15)

    app, base = start_app(config, port, tmp_path / "app2.log")
    procs.append(app)
    wait_for(lambda: httpx.get(f"{base}/readyz").status_code == 200, 30, what="ready after restart")
    assert httpx.get(f"{base}/api/demos/fake/stats").json()["count"] == 1
    assert search(base).json()["hits"][0]["id"] == item_id
    assert httpx.get(f"{base}/api/demos/fake/items/{item_id}/media").content == b"persistent apple note"


def test_job_cut_off_by_a_kill_resumes_without_duplicates(tmp_path, procs):
    config = write_config(
        tmp_path,
        "[jobs]\nbatch_size = 10\n[demos.fake]\nload_sample_on_start = false\nsample_size = 300\nencode_delay = 0.2\n",
    )
    port = free_port()
    app, base = start_app(config, port, tmp_path / "app.log")
    wait_for(lambda: httpx.get(f"{base}/readyz").status_code == 200, 30, what="ready")
    job_id = httpx.post(f"{base}/api/demos/fake/jobs", json={"sample": True}).json()["job_id"]
    wait_for(lambda: httpx.get(f"{base}/api/jobs/{job_id}").json()["done"] >= 60, 60, interval=0.05, what="progress")
    app.kill()  # SIGKILL: no shutdown code runs

    app, base = start_app(config, port, tmp_path / "app2.log")
    procs.append(app)
    job = wait_for(
        lambda: (j := httpx.get(f"{base}/api/jobs/{job_id}").json())["state"] == "succeeded" and j,
        120,
        what="resumed job to finish",
    )
    assert job["resumed"] == 1 and job["failed"] == 0
    assert job["duplicates"] >= 50  # the items stored before the kill were skipped, not stored again
    # Every sample item is there under its own key (one row each), and there
    # are no more rows than items: nothing lost, nothing stored twice.
    demo = FakeDemo(FakeDemo.Options(sample_size=300))
    keys = [item_key(record, "public", demo.identity(record)) for record in demo.sample_items()]
    assert len(set(keys)) == 300
    with httpx.Client(base_url=base) as client:
        missing = [k for k in keys if client.get(f"/api/demos/fake/items/{k}").status_code != 200]
    assert not missing, f"{len(missing)} of 300 items lost"
    assert httpx.get(f"{base}/api/demos/fake/stats").json()["count"] == 300
