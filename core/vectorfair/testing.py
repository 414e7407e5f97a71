"""Helpers for testing vectorfair and its plugins: a config under a temporary
root, an app with a demo's sample data loaded, and the conformance checks every
plugin can run in its own tests."""

from __future__ import annotations

import contextlib
import itertools
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
