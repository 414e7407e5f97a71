"""Helpers for testing vectorfair and its plugins: a config under a temporary
root, an app with a demo's sample data loaded, and the conformance checks every
plugin can run in its own tests."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

# Set to a Milvus server's URI (http://127.0.0.1:19530), `write_config` points
# every test's config at it instead of a Milvus Lite file, each test root
# with a collection prefix of its own; the token, when the server wants one.
TEST_MILVUS_URI = "VECTORFAIR_TEST_MILVUS_URI"
TEST_MILVUS_TOKEN = "VECTORFAIR_TEST_MILVUS_TOKEN"


def write_config(root: Path, body: str = "", plugins: str = "") -> Path:
    """A config under `root` whose data, media and (on Milvus Lite) database
    all live in `root/data`, loading only `plugins` (comma-separated entry
    point names; empty loads every installed plugin). `body` is appended
    TOML. With $VECTORFAIR_TEST_MILVUS_URI set, Milvus is that server and the
    collections are named after `root` (`collection_prefix_for`)."""
    data = Path(root) / "data"
    config = Path(root) / "vectorfair.toml"
    server = os.environ.get(TEST_MILVUS_URI)
    if server:
        token = os.environ.get(TEST_MILVUS_TOKEN, "")
        milvus = (f'uri = "{server}"\ncollection_prefix = "{collection_prefix_for(root)}"\n'
                  + (f'token = "{token}"\n' if token else ""))
    else:
        milvus = f'uri = "{data}/milvus.db"\n'
    config.write_text(
        f'data_dir = "{data}"\nplugins = "{plugins}"\n'
        f'[milvus]\n{milvus}reconnect_interval = 0.5\n'
        f'[media]\npath = "{data}/media"\n' + body
    )
    return config


def collection_prefix_for(root: Path) -> str:
    """A collection prefix of this test root's own, so tests sharing one
    Milvus server never see each other's data."""
    return "t" + hashlib.sha1(str(Path(root).resolve()).encode()).hexdigest()[:16]


def free_port() -> int:
    """A TCP port nobody listens on now, on the loopback address."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# -- a real Milvus server ---------------------------------------------------------------
MILVUS_PID_FILE = Path("/run/milvus/standalone.pid")


class MilvusServer:
    """A real Milvus standalone from PyPI's `milvus` package ("Embedded
    Milvus" 2.3.5: embedded etcd, local storage, no Docker), in its own
    process group. One runs per machine at a time: the standalone keeps a
    fixed pid file, /run/milvus/standalone.pid.

        with MilvusServer(tmp_path / "milvus", port=free_port()) as server:
            ...  # server.uri

    `stop(kill=True)` is a crash (SIGKILL); `start()` again restarts on the
    same data."""

    def __init__(self, data_dir: Path, port: int, extra_args: tuple[str, ...] = (), log: Path | None = None,
                 ready_timeout: float = 180.0, token: str = ""):
        self.token = token
        self.data_dir = Path(data_dir)
        self.port = port
        self.extra_args = tuple(extra_args)
        self.log = log or self.data_dir.with_suffix(".log")
        self.ready_timeout = ready_timeout
        self.process: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MilvusServer:
        executable = shutil.which("milvus-server", path=os.pathsep.join([str(Path(sys.executable).parent),
                                                                          os.environ.get("PATH", "")]))
        if executable is None:
            raise RuntimeError("milvus-server is not installed: pip install 'milvus==2.3.5' (the test extra)")
        _remove_stale_pid_file()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                # --proxy-port alone is a first choice: the wrapper takes the
                # next free port when it is still held (a restart right after a
                # stop); the extra config pins what the server itself binds.
                [executable, "--data", str(self.data_dir), "--proxy-port", str(self.port),
                 "--extra-config", f"proxy.port={self.port}", *self.extra_args],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            self._wait_ready()
        except BaseException:
            self.stop(kill=True)
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"milvus-server exited with {self.process.returncode}; see {self.log}")
            if self._answers():
                return
            time.sleep(0.5)
        raise TimeoutError(f"Milvus did not answer on port {self.port} in {self.ready_timeout:.0f} s; see {self.log}")

    def _answers(self) -> bool:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", self.port)) != 0:
                return False
        # The proxy port opens before the coordinators are up: ready once a
        # real call is answered.
        from pymilvus import MilvusClient

        try:
            client = MilvusClient(self.uri, token=self.token, timeout=5)
            try:
                client.list_collections()
            finally:
                client.close()
            return True
        except Exception as exc:
            # A server that refuses the token is up; the caller wanted that.
            from .store import is_auth_failure

            return is_auth_failure(exc)

    def stop(self, kill: bool = False, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after `timeout` (the standalone can take
        minutes to stop); `kill`: SIGKILL at once, as a crash would. What the
        server acknowledged is in its write-ahead log either way."""
        process, self.process = self.process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL if kill else signal.SIGTERM)
        if not _group_gone(process, timeout):
            # The standalone is a child of the wrapper: the whole group goes.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            _group_gone(process, 15.0)

    def __enter__(self) -> MilvusServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _remove_stale_pid_file() -> None:
    try:
        pid = int(MILVUS_PID_FILE.read_text().strip() or 0)
    except (OSError, ValueError):
        pid = 0
    if pid:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            pass
        except PermissionError:
            return
        else:
            raise RuntimeError(f"another Milvus standalone (pid {pid}) is running; one runs per machine")
    with contextlib.suppress(OSError):
        MILVUS_PID_FILE.unlink()


def _group_gone(leader: subprocess.Popen, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        leader.poll()  # reap the wrapper, or its zombie keeps the group alive
        try:
            os.killpg(leader.pid, 0)
        except ProcessLookupError:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


@contextlib.contextmanager
def sample_loaded_client(root: Path, demo: str, options: str = "", timeout: float = 600) -> Iterator:
    """A Starlette TestClient on an app with only `demo` enabled and its sample
    data loaded through the jobs API; `options` is TOML for its section.
    The finished job is at `client.sample_job`."""
    from fastapi.testclient import TestClient

    from .api import create_app
    from .settings import load_settings

    config = write_config(root, f"[demos.{demo}]\nload_sample_on_start = false\n{options}", plugins=demo)
    with TestClient(create_app(load_settings(config))) as client:
        job_id = client.post(f"/api/demos/{demo}/jobs", json={"sample": True}).json()["job_id"]
        deadline = time.monotonic() + timeout
        while (job := client.get(f"/api/jobs/{job_id}").json())["state"] in ("queued", "running"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the sample load of {demo} did not finish in {timeout} s: {job}")
            time.sleep(0.2)
        client.sample_job = job
        yield client


def check_conformance(root: Path, demo: str, options: str = "", query: dict | None = None,
                      self_search: int = 5) -> dict:
    """Load `demo`'s sample data in a fresh app under `root`, then run
    `assert_conforms` on it."""
    with sample_loaded_client(root, demo, options) as client:
        return assert_conforms(client, demo, query, self_search)


def assert_conforms(client, demo: str, query: dict | None = None, self_search: int = 5) -> dict:
    """Checks any plugin runs in its own tests, on a client from
    `sample_loaded_client` (real Milvus Lite, real HTTP); raises
    AssertionError naming what is wrong, returns what it saw.

    - the demo class honours the contract (names, fields, metric, Options);
    - its collection is created from its schema (the app is ready);
    - the encoder returns finite vectors of `dim` for the sample payloads;
    - the sample data loaded through the jobs API with no failed item;
    - each of the first `self_search` stored rows, searched by its own
      vector, comes back first (ties on score allowed);
    - `query` (keyword arguments of httpx's post, e.g. {"json": {"query":
      "..."}} or {"files": {...}}), or else the demo's `sample_query`,
      answers 200 with hits.
    """
    import numpy as np

    from .demo import Upload

    platform = client.app.state.platform
    instance = platform.demos[demo]
    problems = type(instance).contract_problems()
    assert not problems, f"{demo} breaks the Demo contract: {problems}"
    ready = client.get("/readyz").json()
    assert ready["demos"].get(demo) == "ready", f"{demo}'s collection is not ready: {ready}"
    job = client.sample_job
    assert job["state"] == "succeeded" and job["failed"] == 0 and job["done"] > 0, \
        f"the sample data of {demo} did not load cleanly: {job}"

    # The encoder, on payloads parsed from the sample set.
    payloads = []
    for source in itertools.islice(instance.sample_items(), 3):
        parts = instance.split_upload(source) if isinstance(source, Upload) else None
        records = [record for _, record in parts][:2] if parts is not None else [source]
        for record in records:
            entries = instance.parse_upload(record) if isinstance(record, Upload) else instance.parse_record(record)
            payloads += [entry.payload for entry in entries if entry.vector is None][:2]
    if payloads:
        vectors = np.asarray(instance.encode(payloads), dtype=np.float32)
        assert vectors.shape == (len(payloads), instance.dim), \
            f"{demo}.encode returned {vectors.shape}, expected ({len(payloads)}, {instance.dim})"
        assert np.isfinite(vectors).all(), f"{demo}.encode returned NaN or infinite values"

    # Each stored row finds itself.
    store = platform.store
    rows = store.query(instance, "", ["id", "vector"], limit=self_search)
    for row in rows:
        hits = store.search(instance, np.asarray(row["vector"], dtype=np.float32), 5)
        best = hits[0]["distance"] if hits else None
        tied = {h["id"] for h in hits if abs(h["distance"] - best) < 1e-5} if hits else set()
        assert row["id"] in tied, f"row {row['id']} of {demo}, searched by its own vector, is not first: {hits[:3]}"

    if query is None and instance.sample_query:
        query = {"json": {"query": instance.sample_query}}
    if query is not None:
        response = client.post(f"/api/demos/{demo}/search", **query)
        assert response.status_code == 200, f"search of {demo} answered {response.status_code}: {response.text}"
        assert response.json()["hits"], f"search of {demo} found nothing for {query}"
    return {"sample_job": job, "rows_checked": len(rows), "payloads_encoded": len(payloads)}
