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
        milvus = f'uri = "{server}"\ncollection_prefix = "{collection_prefix_for(root)}"\n' + (
            f'token = "{token}"\n' if token else ""
        )
    else:
        milvus = f'uri = "{data}/milvus.db"\n'
    config.write_text(
        f'data_dir = "{data}"\nplugins = "{plugins}"\n'
        f"[milvus]\n{milvus}reconnect_interval = 0.5\n"
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

    def __init__(
        self,
        data_dir: Path,
        port: int,
        extra_args: tuple[str, ...] = (),
        log: Path | None = None,
        ready_timeout: float = 180.0,
        token: str = "",
    ):
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
        executable = shutil.which(
            "milvus-server", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
        )
        if executable is None:
            raise RuntimeError("milvus-server is not installed: pip install 'milvus==2.3.5' (the test extra)")
        _remove_stale_pid_file()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                # --proxy-port alone is a first choice: the wrapper takes the
                # next free port when it is still held (a restart right after a
                # stop); the extra config pins what the server itself binds.
                [
                    executable,
                    "--data",
                    str(self.data_dir),
                    "--proxy-port",
                    str(self.port),
                    "--extra-config",
                    f"proxy.port={self.port}",
                    *self.extra_args,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
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


def check_conformance(
    root: Path, demo: str, options: str = "", query: dict | None = None, self_search: int = 5
) -> dict:
    """Load `demo`'s sample data in a fresh app under `root`, then run
    `assert_conforms` on it."""
    with sample_loaded_client(root, demo, options) as client:
        return assert_conforms(client, demo, query, self_search)


def assert_conforms(client, demo: str, query: dict | None = None, self_search: int = 5) -> dict:
    """Checks any plugin runs in its own tests, on a client from
    `sample_loaded_client` (real Milvus, real HTTP); raises AssertionError
    naming what is wrong, returns what it saw.

    - the demo class honours the contract (`vectorfair.contract.problems`);
    - its collection is created from its declared schema (the app is ready);
    - the sample data loaded through the jobs API with no failed item;
    - the encoder returns vectors that fit the first vector field for the
      sample payloads, and the same vectors when asked again (determinism);
    - the first sample item, parsed and encoded again, gives the vector
      stored for it;
    - on every vector field, each of the first `self_search` stored rows
      that has it, searched by its own vector, comes back first (ties allowed);
    - `query` (keyword arguments of httpx's post, e.g. {"json": {"query":
      "..."}} or {"files": {...}}), or else the demo's `sample_query`,
      answers 200 with hits, with no filter and with the demo's Filter
      defaults sent explicitly (so a misspelled field in a filter
      expression fails here).
    """
    from . import contract
    from .demo import ItemError, Upload
    from .expr import in_list
    from .ingest import item_key
    from .schema import checked_vector, to_stored
    from .tenancy import PUBLIC_TENANT

    platform = client.app.state.platform
    instance = platform.demos[demo]
    problems = contract.problems(type(instance), instance)
    assert not problems, f"{demo} breaks the Demo contract: {problems}"
    ready = client.get("/readyz").json()
    assert ready["demos"].get(demo) == "ready", f"{demo}'s collection is not ready: {ready}"
    job = client.sample_job
    assert job["state"] == "succeeded" and job["failed"] == 0 and job["done"] > 0, (
        f"the sample data of {demo} did not load cleanly: {job}"
    )
    store = platform.store
    info = store.collection_info(instance)
    first = info.vector()

    # The encoder, on payloads parsed from the sample set, twice.
    parsed = []  # (source, entries) of the first sample items
    for source in itertools.islice(instance.sample_items(), 3):
        parts = instance.split_upload(source) if isinstance(source, Upload) else None
        records = [record for _, record in parts][:2] if parts is not None else [source]
        for record in records:
            if isinstance(record, ItemError):
                continue
            entries = list(
                instance.parse_upload(record) if isinstance(record, Upload) else instance.parse_record(record)
            )
            parsed.append((record, entries))
    payloads = [
        e.payload for _, entries in parsed for e in entries if e.payload is not None and first.name not in e.vectors
    ][:6]
    if payloads:
        once, again = instance.encode(payloads), instance.encode(payloads)
        assert len(once) == len(payloads), f"{demo}.encode returned {len(once)} vectors for {len(payloads)} payloads"
        for a, b in zip(once, again):
            a, b = checked_vector(a, first.declared), checked_vector(b, first.declared)
            assert _same_vector(a, b), f"{demo}.encode gave two different vectors for one payload: not deterministic"

    # The first sample item, encoded again, is what was stored for it.
    if parsed and parsed[0][1]:
        record, entries = parsed[0]
        entry = entries[0]
        vector = entry.vectors.get(first.name)
        if vector is None and entry.payload is not None:
            vector = instance.encode([entry.payload])[0]
        key = item_key(record, PUBLIC_TENANT, instance.identity(record))
        stored = store.stored_vectors_of(instance, first.name, in_list("id", [key]), limit=1)
        if vector is not None and stored:
            again = to_stored(checked_vector(vector, first.declared), first)
            assert _same_vector(again, stored[0][first.name]), (
                f"{demo}: the first sample item, parsed and encoded again, does not give the vector stored for it "
                "(is the encoder or parse_* deterministic?)"
            )

    # Each stored row finds itself, on every vector field.
    rows_checked = 0
    for field in info.vectors.values():
        if field.stored.convert is not None and field.stored is not field.declared:
            continue  # a demo's own conversion need not be invertible nor rank a row first
        rows = store.stored_vectors_of(instance, field.name, limit=self_search)
        for row in rows:
            value = row[field.name]
            query_vector = value if field.declared.kind == field.stored.kind else _declared_value(value, field)
            hits = store.search(instance, query_vector, 5, field=field.name)
            best = hits[0]["score"] if hits else None
            tied = {h["id"] for h in hits if abs(h["score"] - best) < 1e-5} if hits else set()
            assert row["id"] in tied, (
                f"row {row['id']} of {demo}, searched by its own {field.name!r} vector, is not first: {hits[:3]}"
            )
        rows_checked += len(rows)

    if query is None and instance.sample_query:
        query = {"json": {"query": instance.sample_query}}
    if query is not None:
        response = client.post(f"/api/demos/{demo}/search", **query)
        assert response.status_code == 200, f"search of {demo} answered {response.status_code}: {response.text}"
        assert response.json()["hits"], f"search of {demo} found nothing for {query}"
        if instance.Filter is not None:
            defaults = instance.Filter().model_dump(mode="json")
            with_filter = _with_filter(query, defaults)
            response = client.post(f"/api/demos/{demo}/search", **with_filter)
            assert response.status_code == 200, (
                f"search of {demo} with its Filter defaults {defaults} answered {response.status_code}: {response.text}"
            )
            matching = _filter_matching_a_stored_row(instance, store)
            if matching:
                response = client.post(f"/api/demos/{demo}/search", **_with_filter(query, {**defaults, **matching}))
                assert response.status_code == 200 and response.json()["hits"], (
                    f"search of {demo} with the filter {matching}, taken from a stored row, answered "
                    f"{response.status_code} with {response.text[:300]}: does filter_expression name its fields right?"
                )
    return {"sample_job": job, "rows_checked": rows_checked, "payloads_encoded": len(payloads)}


def _filter_matching_a_stored_row(instance, store) -> dict:
    """Filter values a stored row satisfies: each Filter member named after a
    scalar field (or `<field>_min` / `<field>_max`) set to that row's value."""
    from .expr import filter_target

    rows = store.query(instance, "", store.output_fields(instance), limit=1)
    if not rows:
        return {}
    values = {}
    for member in instance.Filter.model_fields:
        target = filter_target(member, instance.fields)
        value = rows[0].get(target[0].name) if target else None
        if value in (None, "", []) or isinstance(value, dict):
            continue
        # A list field: one of its values, alone or as a list.
        for option in [value[0], value[:1]] if isinstance(value, list) else [value]:
            try:
                instance.Filter.model_validate({**values, member: option})
            except Exception:
                continue  # a member whose type does not take this value
            values[member] = option
            break
    return values


def _same_vector(a, b) -> bool:
    import numpy as np

    if isinstance(a, dict) or isinstance(b, dict):
        a, b = dict(a), dict(b)
        return a.keys() == b.keys() and all(abs(a[k] - b[k]) <= 1e-4 * max(1.0, abs(a[k])) for k in a)
    if isinstance(a, (bytes, bytearray)) or isinstance(b, (bytes, bytearray)):
        return bytes(a if not isinstance(a, list) else a[0]) == bytes(b if not isinstance(b, list) else b[0])
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    return a.shape == b.shape and np.allclose(a, b, rtol=1e-3, atol=1e-4)


def _declared_value(value, field):
    """A stored fallback value back in the declared kind (for a self-search)."""
    import numpy as np

    if field.declared.kind == "binary" and field.stored.kind == "float":
        return np.asarray(value, dtype=np.float32).round().astype(np.uint8)
    if field.declared.kind == "binary" and field.stored.kind == "sparse":
        bits = np.zeros(field.declared.dim, dtype=np.uint8)
        bits[list(dict(value))] = 1
        return bits
    if field.declared.kind == "sparse":
        return {i: float(v) for i, v in enumerate(np.asarray(value, dtype=np.float32)) if v}
    return value


def _with_filter(query: dict, filter: dict) -> dict:
    import json as json_module

    if "json" in query:
        return {**query, "json": {**query["json"], "filter": filter}}
    return {**query, "data": {**query.get("data", {}), "filter": json_module.dumps(filter)}}
