"""Helpers that run the real server (and a Milvus server) as processes."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from vectorfair.schema import Backend
from vectorfair.testing import free_port  # noqa: F401 - the tests and benches import it from here

FIXTURES = Path(__file__).parent / "plugin_fixtures"
BIN = Path(sys.executable).parent


def wait_for(check, timeout=30.0, interval=0.2, what="condition"):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = check()
            if last:
                return last
        except (httpx.HTTPError, OSError) as exc:
            last = exc
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


class Process:
    def __init__(self, args, env=None, log: Path | None = None):
        self.log = log
        out = open(log, "ab") if log else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            args, env={**os.environ, **(env or {})}, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )

    def kill(self, sig=signal.SIGKILL):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log else ""


def start_milvus(data_dir: Path, port: int, log: Path) -> Process:
    """The installed Milvus Lite engine serving one database over TCP, for
    several processes: Lite 3's `milvus-lite server`, or Lite 2's own
    `milvus` binary (what milvus_lite.server.Server starts, given an address)."""
    import milvus_lite

    from vectorfair.store import LITE_VERSION_PREFIX, installed_lite

    if Backend(LITE_VERSION_PREFIX + installed_lite(), True).engine == "lite-python":
        args = [sys.executable, "-m", "milvus_lite.cmdline", "server", "--data-dir", str(data_dir)]
        process = Process([*args, "--host", "127.0.0.1", "--port", str(port)], log=log)
    else:
        lib = Path(milvus_lite.__file__).parent / "lib"
        data_dir.mkdir(parents=True, exist_ok=True)
        args = [str(lib / "milvus"), str(data_dir / "milvus.db"), f"127.0.0.1:{port}", "ERROR"]
        process = Process(args, env={"LD_LIBRARY_PATH": str(lib), "DYLD_LIBRARY_PATH": str(lib)}, log=log)

    def listening():
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    wait_for(listening, 60, what="milvus-lite server")
    return process


def start_app(config: Path, port: int, log: Path, env=None) -> tuple[Process, str]:
    env = {"PYTHONPATH": os.pathsep.join([str(FIXTURES), os.environ.get("PYTHONPATH", "")]), **(env or {})}
    process = Process(
        [str(BIN / "vectorfair"), "serve", "--config", str(config), "--port", str(port)], env=env, log=log
    )
    base = f"http://127.0.0.1:{port}"

    def healthy():
        if process.proc.poll() is not None:
            raise AssertionError(f"server exited:\n{process.output()}")
        return httpx.get(f"{base}/healthz", timeout=2).status_code == 200

    wait_for(healthy, 60, what="vectorfair serve")
    return process, base


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def start_redis(port: int, folder: Path) -> Process:
    """Debian's redis-server on `port`, persistence off (`make test` installs it)."""
    folder.mkdir(parents=True, exist_ok=True)
    process = Process(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        + ["--dir", str(folder), "--protected-mode", "no"],
        log=folder / "redis.log",
    )
    wait_for(lambda: listening(port), 30, what="redis-server")
    return process


def start_s3(port: int, log: Path) -> Process:
    """moto's S3 server, standing in for MinIO."""
    process = Process([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], log=log)
    wait_for(lambda: listening(port), 60, what="S3 server")
    return process


def start_worker(config: Path, log: Path, env=None) -> Process:
    """`vectorfair worker`, returned once it consumes the queue."""
    env = {"PYTHONPATH": os.pathsep.join([str(FIXTURES), os.environ.get("PYTHONPATH", "")]), **(env or {})}
    process = Process([str(BIN / "vectorfair"), "worker", "--config", str(config)], env=env, log=log)

    def consuming():
        if process.proc.poll() is not None:
            raise AssertionError(f"worker exited:\n{process.output()}")
        return "consuming" in process.output()

    wait_for(consuming, 60, what="vectorfair worker")
    return process
