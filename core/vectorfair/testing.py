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
