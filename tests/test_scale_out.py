"""The scale-out tier on real parts: a real redis-server (Debian's, on a port
of its own, persistence off), Milvus (the real server with --milvus=server,
else Milvus Lite's engine over TCP), moto's S3 server for media and kept
uploads, and `vectorfair serve` / `vectorfair worker` processes.

Jobs submitted through one web process are followed, streamed and cancelled
through another; a worker killed mid-job is replaced by another without an
item lost or stored twice; Redis restarting never leaves a job "running" nor
gives a 500; quotas and rate limits hold across web processes."""

import json
import re
import signal
import threading
import time

import httpx
import pytest

from vectorfair.demo import Upload
from vectorfair.ingest import item_key
from vectorfair.tenancy import PUBLIC_TENANT
from vectorfair.testing import collection_prefix_for

from .archives import zip_of
from .conftest import write_config
from .live import free_port, start_app, start_milvus, start_redis, start_s3, start_worker, wait_for

pytest.importorskip("boto3", reason="pip install 'vectorfair[s3]'")
pytest.importorskip("dramatiq", reason="pip install 'vectorfair[queue]'")
redis = pytest.importorskip("redis", reason="pip install 'vectorfair[queue]'")
BUCKET = "vectorfair-test"


class Cluster:
    """Redis, Milvus and S3 for one test, and the web and worker processes it starts."""

    def __init__(self, root, procs, milvus_backend, body=""):
        self.root, self.procs, self.body = root, procs, body
        self.redis_port, self.s3_port = free_port(), free_port()
        self.redis = start_redis(self.redis_port, root / "redis")
        procs.append(self.redis)
        if milvus_backend.is_server:
            self.milvus_uri = milvus_backend.uri
        else:
            milvus_port = free_port()
            self.milvus_uri = f"http://127.0.0.1:{milvus_port}"
            procs.append(start_milvus(root / "milvus", milvus_port, root / "milvus.log"))
        procs.append(start_s3(self.s3_port, root / "s3.log"))
        self.env = {
            "VECTORFAIR_MEDIA__BACKEND": "s3",
            "VECTORFAIR_MEDIA__ENDPOINT_URL": f"http://127.0.0.1:{self.s3_port}",
            "VECTORFAIR_MEDIA__BUCKET": BUCKET,
            "VECTORFAIR_MEDIA__ACCESS_KEY": "test",
            "VECTORFAIR_MEDIA__SECRET_KEY": "test",
            "VECTORFAIR_QUEUE__REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
        }
        self.workers = {}

    def config(self, name):
        folder = self.root / name
        folder.mkdir()
        config = write_config(folder, self.body)
        # Every process on one Milvus and one set of collections.
        text = re.sub(r'uri = "[^"]*"', f'uri = "{self.milvus_uri}"', config.read_text())
        text = re.sub(r'collection_prefix = "[^"]*"\n', "", text)
        prefix = collection_prefix_for(self.root)
        config.write_text(text.replace("[milvus]\n", f'[milvus]\ncollection_prefix = "{prefix}"\n'))
        return folder, config

    def web(self, name):
        folder, config = self.config(name)
        process, base = start_app(config, free_port(), folder / "app.log", env=self.env)
        self.procs.append(process)
        wait_for(lambda: httpx.get(f"{base}/readyz").status_code == 200, 60, what=f"{name} ready")
        return base

    def worker(self, name):
        folder, config = self.config(name)
        process = start_worker(config, folder / "worker.log", env=self.env)
        self.procs.append(process)
        self.workers[process.proc.pid] = process
        return process

    def client(self):
        return redis.Redis(port=self.redis_port)

    def record(self, job_id):
        return json.loads(self.client().get(f"vectorfair:job:{job_id}"))

    def kept_uploads(self):
        import boto3

        s3 = boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{self.s3_port}",
            aws_access_key_id="test",
            aws_secret_access_key="test",
            region_name="us-east-1",
        )
        return [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="uploads/").get("Contents", [])]


def notes(count, prefix="note"):
    return {
        f"{prefix}{n:04d}.txt": f"{prefix} number {n} of {count} words {n * 7919 % 1000}".encode() for n in range(count)
    }


def events(base, job_id, timeout=120):
    """The job's server-sent events as (event, data) pairs, until the stream ends."""
    found, event = [], None
    with httpx.stream("GET", f"{base}/api/jobs/{job_id}/events", timeout=timeout) as stream:
        assert stream.status_code == 200
        for line in stream.iter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                found.append((event, json.loads(line.split(":", 1)[1])))
    return found


def rows(base, expected):
    """Wait until `base` counts `expected` rows: a Milvus server shows another
    process's writes within its time tick, not at once."""
    wait_for(lambda: httpx.get(f"{base}/api/demos/fake/stats").json()["rows"] == expected, 60, what=f"{expected} rows")


def submit(base, members):
    r = httpx.post(f"{base}/api/demos/fake/jobs", files={"archive": ("set.zip", zip_of(members))}, timeout=60)
    assert r.status_code == 202, r.text
    return r.json()["job_id"]


JOB_BODY = "[demos.fake]\nload_sample_on_start = false\nencode_delay = {delay}\n[jobs]\nbatch_size = 10\n"
QUEUE_BODY = "[queue]\nheartbeat_timeout_s = 3\nretry_backoff_s = 1\nstop_timeout_s = 2\n"


def test_a_job_submitted_through_one_web_process_is_followed_and_cancelled_through_another(
    tmp_path, procs, milvus_backend
):
    cluster = Cluster(tmp_path, procs, milvus_backend, JOB_BODY.format(delay=0.15) + QUEUE_BODY)
    a, b = cluster.web("a"), cluster.web("b")
    cluster.worker("w1"), cluster.worker("w2")

    members = notes(40)
    job_id = submit(a, members)
    assert httpx.get(f"{b}/api/jobs/{job_id}").status_code == 200, "b knows a's job at once"
    stream = events(b, job_id)
    assert stream[-1][0] == "end" and [e for e, _ in stream[:-1]] == ["progress"] * (len(stream) - 1)
    end = stream[-1][1]
    assert end["state"] == "succeeded" and end["done"] == 40 and end["failed"] == 0, end
    assert len({d["done"] for _, d in stream}) > 2, "progress is streamed while the job runs"
    assert cluster.record(job_id)["worker"].split(":")[-1] in {str(pid) for pid in cluster.workers}
    rows(a, 40)
    assert cluster.kept_uploads() == [], "the kept upload went when the job ended"
    assert [j["job_id"] for j in httpx.get(f"{a}/api/jobs").json()] == [job_id]

    # Another run: cancelled through b while a worker runs it.
    job_id = submit(a, notes(200, "other"))
    wait_for(lambda: httpx.get(f"{b}/api/jobs/{job_id}").json()["done"] > 0, 60, what="the job to run")
    cancelled = httpx.delete(f"{b}/api/jobs/{job_id}")
    assert cancelled.status_code == 200
    end = events(b, job_id)[-1]
    assert end[0] == "end" and end[1]["state"] == "cancelled", end
    assert 0 < end[1]["done"] < 200
    assert httpx.get(f"{a}/api/jobs/{job_id}").json()["state"] == "cancelled"
    wait_for(lambda: cluster.kept_uploads() == [], 10, what="the cancelled job's upload to go")
    # A job cancelled before any worker takes it never runs.
    for pid in list(cluster.workers):
        cluster.workers.pop(pid).kill(signal.SIGTERM)
    job_id = submit(b, notes(5, "late"))
    assert httpx.delete(f"{a}/api/jobs/{job_id}").json()["state"] == "cancelled"
    assert httpx.get(f"{b}/api/jobs/{job_id}").json()["message"] == "cancelled before it started"
    assert httpx.get(f"{b}/api/jobs/nope").status_code == 404


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_killed_worker_s_job_is_taken_over_and_stores_every_item_once(tmp_path, procs, milvus_backend):
    cluster = Cluster(tmp_path, procs, milvus_backend, JOB_BODY.format(delay=0.1) + QUEUE_BODY)
    a, b = cluster.web("a"), cluster.web("b")
    cluster.worker("w1"), cluster.worker("w2")

    members = notes(300)
    job_id = submit(a, members)
    wait_for(lambda: httpx.get(f"{b}/api/jobs/{job_id}").json()["done"] >= 60, 120, what="60 items done")
    running = int(cluster.record(job_id)["worker"].rsplit(":", 1)[1])
    killed_at = time.monotonic()
    cluster.workers.pop(running).kill(signal.SIGKILL)

    end = events(b, job_id, timeout=180)[-1][1]
    taken_over = time.monotonic() - killed_at
    assert end["state"] == "succeeded", end
    assert end["done"] == 300 and end["failed"] == 0 and end["resumed"] >= 1, end
    other = int(cluster.record(job_id)["worker"].rsplit(":", 1)[1])
    assert other != running and other in cluster.workers
    rows(a, 300)
    time.sleep(1)
    assert httpx.get(f"{a}/api/demos/fake/stats").json()["rows"] == 300, "no item stored twice"
    for name, data in members.items():
        key = item_key(Upload(name, data), PUBLIC_TENANT)
        item = httpx.get(f"{b}/api/demos/fake/items/{key}")
        assert item.status_code == 200 and item.json()["title"] == f"{name}#0", name
    assert cluster.kept_uploads() == []
    print(f"taken over and finished {taken_over:.1f} s after the kill; {end['duplicates']} items found stored")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_worker_stopped_mid_job_leaves_it_to_another_and_never_fails_it(tmp_path, procs, milvus_backend):
    # 30 batches of 0.5 s: at least 15 s, far longer than the stop timeout on any machine.
    cluster = Cluster(tmp_path, procs, milvus_backend, JOB_BODY.format(delay=0.5) + QUEUE_BODY)
    a = cluster.web("a")
    first = cluster.worker("w1")
    job_id = submit(a, notes(300))
    wait_for(lambda: httpx.get(f"{a}/api/jobs/{job_id}").json()["done"] > 0, 60, what="the job to run")
    stopped_at = time.monotonic()
    first.kill(signal.SIGTERM)  # stop_timeout_s = 2: the job outlives it
    assert first.proc.returncode == 0 and time.monotonic() - stopped_at < 15, first.output()[-2000:]
    assert "left to another worker" in first.output()
    assert httpx.get(f"{a}/api/jobs/{job_id}").json()["state"] == "running", "the job was not ended as failed"
    cluster.worker("w2")
    end = events(a, job_id, timeout=180)[-1][1]
    assert end["state"] == "succeeded" and end["done"] == 300 and end["resumed"] >= 1, end
    rows(a, 300)


def test_redis_restarting_mid_job_gives_503_and_never_leaves_the_job_running(tmp_path, procs, milvus_backend):
    cluster = Cluster(tmp_path, procs, milvus_backend, JOB_BODY.format(delay=0.2) + QUEUE_BODY)
    a, b = cluster.web("a"), cluster.web("b")
    cluster.worker("w1")

    job_id = submit(a, notes(150))
    wait_for(lambda: httpx.get(f"{b}/api/jobs/{job_id}").json()["done"] > 0, 60, what="the job to run")
    cluster.redis.kill(signal.SIGKILL)
    for base in (a, b):
        for method, path in (
            ("GET", f"/api/jobs/{job_id}"),
            ("GET", "/api/jobs"),
            ("DELETE", f"/api/jobs/{job_id}"),
            ("GET", "/api/demos"),
        ):
            r = httpx.request(method, f"{base}{path}", timeout=30)
            assert r.status_code == 503 and r.headers["retry-after"], (method, path, r.status_code, r.text)
            assert "Redis" in r.json()["detail"]
        r = httpx.post(f"{base}/api/demos/fake/jobs", files={"archive": ("x.zip", zip_of(notes(3)))}, timeout=30)
        assert r.status_code == 503 and r.headers["retry-after"], r.text
    # A search needs no Redis.
    assert httpx.post(f"{a}/api/demos/fake/search", json={"query": "note number"}).status_code == 200
    time.sleep(2)

    # Back, empty (no persistence): the worker writes the job's end again.
    cluster.redis = start_redis(cluster.redis_port, tmp_path / "redis-again")
    procs.append(cluster.redis)

    def ended():
        r = httpx.get(f"{b}/api/jobs/{job_id}")
        return r.status_code == 200 and r.json()["state"] in ("succeeded", "failed") and r.json()

    end = wait_for(ended, 120, what="the job to end after Redis came back")
    if end["state"] == "succeeded":
        assert end["done"] == 150 and end["failed"] == 0, end
    else:  # it may fail (a write lost with Redis), but it ends and says why
        assert end["state"] == "failed" and end["message"], end
    # The worker consumes the new Redis's queue.
    again = submit(b, notes(5, "after"))
    done = wait_for(lambda: (j := httpx.get(f"{a}/api/jobs/{again}").json())["state"] == "succeeded" and j, 60)
    assert done["done"] == 5
    print(f"job after the restart: {end['state']}, {end['message']}")


QUOTA_BODY = """
[demos.fake]
load_sample_on_start = false
encode_delay = 0.3
[visitors]
separate = true
secret = "a secret both web processes share"
max_items = 6
[rate_limits]
enabled = true
upload = "6/minute"
"""


def test_a_visitor_s_parallel_uploads_through_two_processes_stay_within_quota_and_rate_limits(
    tmp_path, procs, milvus_backend
):
    cluster = Cluster(tmp_path, procs, milvus_backend, QUOTA_BODY)
    a, b = cluster.web("a"), cluster.web("b")
    first = httpx.get(f"{a}/api/jobs")
    cookie = {"vf_visitor": first.cookies["vf_visitor"]}
    assert httpx.get(f"{b}/api/jobs", cookies=cookie).status_code == 200

    results = []

    def upload(base, n):
        files = [("files", (f"v{n}-{i}.txt", f"visitor item {n} {i}".encode())) for i in range(3)]
        r = httpx.post(f"{base}/api/demos/fake/items", files=files, cookies=cookie, timeout=60)
        results.append(r)

    threads = [threading.Thread(target=upload, args=(base, n)) for n, base in enumerate([a, b, a, b])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stored = 0
    for r in results:
        assert r.status_code in (201, 403), r.text
        if r.status_code == 201:
            stored += len(r.json()["ids"])
    assert stored <= 6, f"{stored} items stored through two processes; the quota is 6"
    counted = httpx.get(f"{b}/api/demos/fake/stats", cookies=cookie).json()
    assert counted["rows"] <= 6, counted
    assert any(r.status_code == 403 or r.json().get("failed") for r in results), "the quota refused some"

    # 4 uploads so far, counted across both processes: 2 more pass, the next is refused wherever it goes.
    assert httpx.post(f"{a}/api/demos/fake/items", files={"files": ("x.txt", b"x")}, cookies=cookie).status_code != 429
    assert httpx.post(f"{b}/api/demos/fake/items", files={"files": ("y.txt", b"y")}, cookies=cookie).status_code != 429
    limited = httpx.post(f"{a}/api/demos/fake/items", files={"files": ("z.txt", b"z")}, cookies=cookie)
    assert limited.status_code == 429 and limited.headers["retry-after"]
    assert httpx.post(f"{b}/api/demos/fake/items", files={"files": ("z.txt", b"z")}, cookies=cookie).status_code == 429


def test_the_embedded_default_needs_no_redis(settings):
    from vectorfair.jobs import JobRunner
    from vectorfair.runtime import Platform

    platform = Platform(settings)
    try:
        assert not platform.queued and isinstance(platform.jobs, JobRunner) and platform.tenancy.claims is None
        assert settings.rate_limits.storage_uri == "memory://"
    finally:
        platform.close()


def test_an_embedded_job_submitted_from_a_thread_starts_at_once(tmp_path):
    """The embedded runner's queue belongs to the event loop: a submit from a
    thread must wake the loop, not wait for its next timer."""
    import asyncio

    from vectorfair.jobs import JobRunner, JobSource, JobStore

    async def main() -> float:
        loop, started = asyncio.get_running_loop(), asyncio.Event()

        def require(demo):
            loop.call_soon_threadsafe(started.set)
            raise RuntimeError("enough: the job started")

        runner = JobRunner(JobStore(tmp_path / "jobs.sqlite3"), None, None, tmp_path, require_demo=require)
        runner.start()
        try:
            await asyncio.sleep(0.1)  # the runner is waiting on its queue, the loop is idle
            at = time.monotonic()
            # A bare thread: nothing but the submit itself may wake the loop.
            threading.Thread(target=runner.submit, args=("fake", JobSource("sample"))).start()
            await asyncio.wait_for(started.wait(), 10)
            return time.monotonic() - at
        finally:
            await runner.stop()
            runner.close()

    assert asyncio.run(main()) < 1.0


# -- the job records and leases on a bare redis-server, in this process ----------------
@pytest.fixture
def queue_settings(tmp_path, procs):
    from vectorfair.settings import QueueSettings

    port = free_port()
    procs.append(start_redis(port, tmp_path / "redis"))
    return QueueSettings(redis_url=f"redis://127.0.0.1:{port}/0", heartbeat_timeout_s=3)


@pytest.fixture
def queued_jobs(queue_settings, tmp_path):
    from vectorfair.media import LocalKeptUploads
    from vectorfair.queue import QueuedJobs

    jobs = QueuedJobs(queue_settings, LocalKeptUploads(tmp_path / "uploads"))
    yield jobs
    jobs.close()


def running_job(store, worker="gone:1"):
    from vectorfair.jobs import Job, JobSource

    job = Job(id="j" + str(time.monotonic_ns()), demo="fake", source=JobSource("archive", "a.zip"), label="a")
    job.state, job.worker, job.done, job.version = "running", worker, 10, 5
    store.save(job)
    return job


def test_cancelling_a_running_job_no_worker_holds_ends_it(queued_jobs, tmp_path):
    job = running_job(queued_jobs.store)
    (tmp_path / "uploads" / "a.zip").write_bytes(b"zip")
    cancelled = queued_jobs.cancel(job.id)
    assert cancelled.state == "cancelled" and "no worker" in cancelled.message, cancelled
    assert queued_jobs.get(job.id).state == "cancelled" and queued_jobs.active() == []
    assert (tmp_path / "uploads" / "a.zip").exists(), "the worker that gets its message removes the upload"


def test_cancelling_a_job_a_worker_holds_leaves_it_to_the_worker(queued_jobs):
    store = queued_jobs.store
    job = running_job(store, "alive:1")
    assert store.take_lease(job.id, "alive:1:run", 10_000)
    assert queued_jobs.cancel(job.id).state == "running"
    assert store.cancel_requested(job.id) and store.get(job.id).state == "running"


def test_only_the_lease_holder_writes_a_job_and_a_worker_that_lost_it_stops(queue_settings, tmp_path):
    from types import SimpleNamespace

    from vectorfair.queue import ENDED, LEASED, SAVED, JobWorker, _Lease

    platform = SimpleNamespace(settings=SimpleNamespace(queue=queue_settings), demos={}, kept_uploads=None)
    worker = JobWorker(platform)
    try:
        store = worker.store
        job = running_job(store)
        assert store.take_lease(job.id, "other:2:run", 10_000), "another worker took the job over"
        assert store.save(job, holder="other:2:run") == SAVED
        assert store.save(job, holder="late:1:run") == LEASED
        lease = _Lease("late:1:run")
        stale = store.get(job.id)
        stale.done = 99
        worker._save(stale, lease)
        assert lease.lost.is_set() and store.get(job.id).done == 10, "the stale worker wrote nothing"
        assert worker._cancel_check(stale, lease)(), "and it stops at its next item"
        # An ended record is never put back by a late progress write.
        job.state = "cancelled"
        assert store.save(job) == SAVED
        job.state = "running"
        assert store.save(job, holder="other:2:run") == ENDED
    finally:
        worker.client.close()
        worker.broker.close()


def test_an_ended_job_is_never_written_again_not_even_by_another_end(queue_settings, tmp_path):
    from types import SimpleNamespace

    from vectorfair.media import LocalKeptUploads
    from vectorfair.queue import ENDED, SAVED, JobWorker, _Lease

    uploads = LocalKeptUploads(tmp_path / "uploads")
    platform = SimpleNamespace(settings=SimpleNamespace(queue=queue_settings), demos={}, kept_uploads=uploads)
    worker = JobWorker(platform)
    try:
        store = worker.store
        job = running_job(store)
        job.state = "succeeded"
        assert store.save(job, holder="w:1:run") == SAVED
        job.state = "cancelled"
        assert store.save(job, holder="-") == ENDED, "a cancel racing the worker's end"
        assert store.get(job.id).state == "succeeded"
        # A worker that regained the lease after another ended the job writes
        # nothing, stops, and removes the kept upload.
        (tmp_path / "uploads" / "a.zip").write_bytes(b"zip")
        assert store.take_lease(job.id, "late:1:run", 10_000)
        late = store.get(job.id)
        late.state, late.message = "failed", "late"
        lease = _Lease("late:1:run")
        worker._save(late, lease, final=True)
        assert lease.lost.is_set() and worker._cancel_check(late, lease)()
        assert store.get(job.id).state == "succeeded" and store.get(job.id).message != "late"
        assert not (tmp_path / "uploads" / "a.zip").exists()
    finally:
        worker.client.close()
        worker.broker.close()


def test_a_worker_exiting_with_a_run_cut_off_releases_its_quota_claims(queue_settings):
    from types import SimpleNamespace

    from vectorfair.queue import RedisClaims, redis_client

    client = redis_client(queue_settings.redis_url)
    try:
        claims = RedisClaims(client, "vf")
        stored = SimpleNamespace(items=0, bytes=0)
        assert claims.take("t", "run1", stored, 10, 5, 0) == (True, 0, 0)
        assert claims.take("t", "run2", stored, 10, 5, 0) == (True, 1, 10)
        claims.release_open()
        assert client.keys("vf:claim:*") == [] and not client.smembers("vf:claims:t")
        # A run still going takes nothing more: it waits for the process to exit.
        late = threading.Thread(target=claims.take, args=("t", "run1", stored, 10, 5, 0), daemon=True)
        late.start()
        late.join(0.3)
        assert late.is_alive() and client.keys("vf:claim:*") == []
    finally:
        client.close()


def test_a_worker_with_no_job_running_stops_at_once_and_says_so(queue_settings):
    from types import SimpleNamespace

    from vectorfair.queue import JobWorker

    queue_settings.stop_timeout_s = 0.1  # shorter than Dramatiq's idle threads take to exit
    platform = SimpleNamespace(settings=SimpleNamespace(queue=queue_settings), demos={}, kept_uploads=None)
    worker = JobWorker(platform)
    try:
        worker.start()
        assert worker.stop() is True, "no job was running"
    finally:
        worker.client.close()


def test_a_job_that_cannot_be_queued_leaves_no_record_and_redis_errors_are_503s(queued_jobs, monkeypatch):
    from vectorfair.jobs import JobSource
    from vectorfair.queue import QueueUnavailable

    def refuse(message):
        raise redis.ConnectionError("gone")

    monkeypatch.setattr(queued_jobs.broker, "enqueue", refuse)
    with pytest.raises(QueueUnavailable):
        queued_jobs.submit("fake", JobSource("sample"))
    assert queued_jobs.list() == [], "no record stays queued without its message"

    def out_of_memory():
        raise redis.ResponseError("OOM command not allowed when used memory > 'maxmemory'")

    monkeypatch.setattr(queued_jobs.store, "newest_first", out_of_memory)
    with pytest.raises(QueueUnavailable):
        queued_jobs.list()


def test_an_upload_the_media_store_cannot_take_is_a_503(tmp_path):
    from types import SimpleNamespace

    import boto3
    from botocore.config import Config

    from vectorfair.media import KeptUploadsUnavailable, S3KeptUploads

    client = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{free_port()}",  # nothing listens there
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
        config=Config(connect_timeout=1, retries={"max_attempts": 1}),
    )
    kept = S3KeptUploads(SimpleNamespace(client=client, bucket=BUCKET), tmp_path / "uploads")
    upload = tmp_path / "uploads" / "a.zip"
    upload.write_bytes(b"zip")
    with pytest.raises(KeptUploadsUnavailable, match="retry"):
        kept.keep(upload)
    assert upload.exists(), "nothing is lost: the caller removes it"
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from vectorfair.api.errors import RETRY_AFTER_SECONDS, install_error_handlers

    app = FastAPI()
    install_error_handlers(app)

    @app.post("/keep")
    def keep():
        kept.keep(upload)

    r = TestClient(app).post("/keep")
    assert r.status_code == 503 and r.headers["retry-after"] == str(RETRY_AFTER_SECONDS), r.text
    assert "S3" in r.json()["detail"]
