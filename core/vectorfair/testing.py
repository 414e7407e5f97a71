"""Helpers for testing vectorfair and its plugins."""

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path


def write_config(root: Path, body: str = "", plugins: str = "") -> Path:
    """A config under `root` whose data, Milvus Lite file and media all live in
    `root/data`, loading only `plugins` (comma-separated entry point names;
    empty loads every installed plugin). `body` is appended TOML."""
    data = Path(root) / "data"
    config = Path(root) / "vectorfair.toml"
    config.write_text(
        f'data_dir = "{data}"\nplugins = "{plugins}"\n'
        f'[milvus]\nuri = "{data}/milvus.db"\nreconnect_interval = 0.5\n'
        f'[media]\npath = "{data}/media"\n' + body
    )
    return config


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
