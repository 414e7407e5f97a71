"""Bulk loads in the background, with progress that survives a restart.

Job records live in SQLite next to the data. A job that a restart cut off is
queued again when its source is still there (already stored items are skipped
by their content hash, so resuming never stores an item twice), and marked
failed otherwise, never left "running" forever.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal, get_args

import anyio

from .ingest import Ingestor, Outcome, Source
from .store import StoreUnavailable
from .tenancy import PUBLIC_TENANT

log = logging.getLogger("vectorfair.jobs")
TERMINAL = ("succeeded", "failed", "cancelled")
MAX_ERRORS_KEPT = 1000
WAITING = "waiting for Milvus"
JobSourceKind = Literal["sample", "archive", "file"]


class JobFailed(Exception):
    """A job cannot run for a reason its message states (an empty sample set,
    say); the job fails with that message and no traceback is logged."""


@dataclasses.dataclass(frozen=True)
class JobSource:
    """Where a job's items come from: the demo's sample set ("sample"), or an
    upload kept in the uploads directory under the name `file`: a zip or tar
    of items ("archive") or one long file ("file").

    Stored as text in the job store ("sample", "archive:<file>", "file:<file>");
    `parse` and `str()` convert at that boundary only."""

    kind: JobSourceKind
    file: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in get_args(JobSourceKind):
            raise ValueError(f"unknown job source kind {self.kind!r}")
        if self.kind == "sample" and self.file is not None:
            raise ValueError("a sample job source takes no file")
        if self.kind != "sample" and not self.file:
            raise ValueError(f"an {self.kind!r} job source needs the name of its kept upload")

    @classmethod
    def parse(cls, text: str) -> JobSource:
        if text == "sample":
            return cls("sample")
        kind, colon, name = text.partition(":")
        if kind not in ("archive", "file") or not colon or not name:
            raise ValueError(f"not a job source: {text[:200]!r}")
        return cls(kind, name)  # type: ignore[arg-type]

    def __str__(self) -> str:
        return self.kind if self.file is None else f"{self.kind}:{self.file}"


@dataclasses.dataclass
class Job:
    id: str
    demo: str
    source: JobSource
    label: str = ""
    state: str = "queued"
    total: int | None = None
    done: int = 0
    failed: int = 0
    duplicates: int = 0
    errors: list[dict[str, str]] = dataclasses.field(default_factory=list)
    message: str = ""
    created: float = dataclasses.field(default_factory=time.time)
    updated: float = dataclasses.field(default_factory=time.time)
    resumed: int = 0
    # Progress inside the item being processed, for items that take long
    # (a video's frames): {"item", "done", "total", "unit"}.
    step: dict[str, Any] | None = None
    # Whose items the job stores: "public" (shared data) or a visitor.
    tenant: str = PUBLIC_TENANT
    # The worker process running it (host:pid), with the queue.
    worker: str = ""
    version: int = 0

    @property
    def upload_file(self) -> str | None:
        """The kept upload's file name in the uploads directory, if any."""
        return self.source.file

    def public(self) -> dict[str, Any]:
        return {
            "job_id": self.id,
            "demo": self.demo,
            "label": self.label,
            "state": self.state,
            "total": self.total,
            "done": self.done,
            "failed": self.failed,
            "duplicates": self.duplicates,
            "errors": self.errors,
            "message": self.message,
            "created": self.created,
            "updated": self.updated,
            "resumed": self.resumed,
            "step": self.step,
        }


def job_to_json(job: Job, with_version: bool = True) -> str:
    """A job record as the job stores keep it: JSON, the source as text."""
    fields = dataclasses.asdict(job)
    if not with_version:
        fields.pop("version")
    fields["source"] = str(job.source)
    return json.dumps(fields)


def job_from_json(body: str | bytes) -> Job:
    fields = json.loads(body)
    known = {f.name for f in dataclasses.fields(Job)}
    return Job(**{**{k: v for k, v in fields.items() if k in known}, "source": JobSource.parse(fields["source"])})


class JobStore:
    """SQLite persistence of job records (one row per job, JSON body)."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, created REAL, body TEXT)")
        self._lock = threading.Lock()

    def save(self, job: Job) -> None:
        body = job_to_json(job, with_version=False)
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO jobs VALUES (?, ?, ?)", (job.id, job.created, body))

    def all(self) -> list[Job]:
        with self._lock:
            rows = self._db.execute("SELECT body FROM jobs ORDER BY created").fetchall()
        return [job_from_json(body) for (body,) in rows]

    def delete(self, job_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


# Returns how many items the source holds (None when unknown) and the items.
SourceOpener = Callable[[Job], tuple[int | None, Iterable[Source]]]


class JobRunner:
    """Runs queued jobs one at a time (2 cores: parallel jobs only fight)."""

    def __init__(
        self,
        store: JobStore,
        ingestor_for: Callable[[str, str], Ingestor],
        open_source: SourceOpener,
        uploads_dir: Path,
        require_demo: Callable[[str], Any] = lambda demo: None,
    ):
        self.store = store
        self.ingestor_for = ingestor_for
        # Raises StoreUnavailable until Milvus is there and the demo's
        # collection is loaded; a job waits for that instead of failing.
        self.require_demo = require_demo
        self.open_source = open_source
        self.uploads_dir = uploads_dir
        self.jobs: dict[str, Job] = {job.id: job for job in store.all()}
        self._queue: asyncio.Queue[str] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._worker: asyncio.Task | None = None
        self._cancel: set[str] = set()

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> None:
        self._queue = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        for job in sorted(self.jobs.values(), key=lambda j: j.created):
            if job.state not in TERMINAL:
                self._recover(job)
        self._worker = asyncio.create_task(self._work(), name="vectorfair-jobs")

    async def stop(self) -> None:
        if self._worker is not None:
            for job in self.jobs.values():
                if job.state == "running":
                    self._cancel.add(job.id)
            self._worker.cancel()
            try:
                await self._worker
            except (asyncio.CancelledError, Exception):
                pass

    def _recover(self, job: Job) -> None:
        if self._source_exists(job):
            job.state, job.resumed = "queued", job.resumed + 1
            job.message = "resumed after a restart; items stored before it are skipped"
            self._touch(job)
            self._queue.put_nowait(job.id)
        else:
            job.state = "failed"
            job.message = "interrupted by a restart and its upload is gone; submit it again"
            self._touch(job)

    def _source_exists(self, job: Job) -> bool:
        if job.source.kind == "sample":
            return True
        return job.upload_file is not None and (self.uploads_dir / job.upload_file).is_file()

    # -- API ---------------------------------------------------------------------
    def submit(self, demo: str, source: JobSource, label: str = "", tenant: str = PUBLIC_TENANT) -> Job:
        job = Job(id=uuid.uuid4().hex, demo=demo, source=source, label=label, tenant=tenant)
        self.jobs[job.id] = job
        self._touch(job)
        assert self._queue is not None and self._loop is not None, "JobRunner.start() was not called"
        if _running_loop() is self._loop:
            self._queue.put_nowait(job.id)
        else:  # called from a thread: asyncio.Queue is not thread-safe, and the loop must wake
            self._loop.call_soon_threadsafe(self._queue.put_nowait, job.id)
        return job

    def cancel(self, job_id: str) -> Job | None:
        job = self.jobs.get(job_id)
        if job is None or job.state in TERMINAL:
            return job
        self._cancel.add(job_id)
        if job.state == "queued":
            job.state, job.message = "cancelled", "cancelled before it started"
            self._touch(job)
        return job

    def get(self, job_id: str) -> Job | None:
        return self.jobs.get(job_id)

    def list(self, demo: str | None = None, tenant: str | None = None, limit: int | None = None) -> list[Job]:
        """Jobs newest first, of one demo and of one tenant (None: any), at most `limit`."""
        found = [
            j for j in self.jobs.values() if (demo is None or j.demo == demo) and (tenant is None or j.tenant == tenant)
        ]
        return sorted(found, key=lambda j: -j.created)[:limit]

    def close(self) -> None:
        self.store.close()

    def active(self, demo: str | None = None, tenant: str | None = None) -> list[Job]:
        return [
            j
            for j in self.jobs.values()
            if j.state not in TERMINAL and (demo is None or j.demo == demo) and (tenant is None or j.tenant == tenant)
        ]

    def prune(self, before: float) -> int:
        """Remove the kept uploads of jobs that ended before `before` (a failed
        or cancelled job's upload is never used again), and forget visitors'
        finished jobs of that age; shared-data jobs stay as history."""
        pruned = 0
        for job in list(self.jobs.values()):
            if job.state not in TERMINAL or job.updated >= before:
                continue
            if job.upload_file:
                (self.uploads_dir / job.upload_file).unlink(missing_ok=True)
            if job.tenant != PUBLIC_TENANT:
                del self.jobs[job.id]
                self.store.delete(job.id)
                pruned += 1
        return pruned

    # -- work --------------------------------------------------------------------
    def _touch(self, job: Job) -> None:
        job.updated = time.time()
        job.version += 1
        self.store.save(job)

    async def _work(self) -> None:
        assert self._queue is not None
        while True:
            job_id = await self._queue.get()
            job = self.jobs.get(job_id)
            if job is None or job.state in TERMINAL:
                continue
            if await self._wait_until_ready(job):
                await self._run(job)

    async def _wait_until_ready(self, job: Job) -> bool:
        while job.id not in self._cancel:
            try:
                await anyio.to_thread.run_sync(self.require_demo, job.demo)
                return True
            except StoreUnavailable:
                if job.message != WAITING:
                    job.message = WAITING
                    self._touch(job)
                await asyncio.sleep(1.0)
            except Exception as exc:  # the demo's collection does not fit it
                job.state, job.message = "failed", str(exc)
                self._touch(job)
                return False
        self._cancel.discard(job.id)
        return False

    async def _run(self, job: Job) -> None:
        job.state, job.done, job.failed, job.duplicates, job.errors, job.step = "running", 0, 0, 0, [], None
        self._touch(job)
        try:
            await anyio.to_thread.run_sync(self._run_blocking, job, abandon_on_cancel=True)
        except StoreUnavailable as exc:
            job.state, job.message = "failed", f"{exc}; submit the job again, stored items are skipped"
        except JobFailed as exc:
            job.state, job.message = "failed", str(exc)
        except Exception as exc:
            log.exception("job %s failed", job.id)
            job.state, job.message = "failed", f"{type(exc).__name__}: {exc}"
        else:
            if job.id in self._cancel:
                job.state, job.message = "cancelled", "cancelled; items stored before that are kept"
            else:
                job.state, job.message = "succeeded", succeeded_message(job)
        self._cancel.discard(job.id)
        self._touch(job)
        if job.state == "succeeded" and job.upload_file:
            (self.uploads_dir / job.upload_file).unlink(missing_ok=True)

    def _run_blocking(self, job: Job) -> None:
        ingest_job(job, self.ingestor_for, self.open_source, self._touch, lambda: job.id in self._cancel)


def ingest_job(
    job: Job,
    ingestor_for: Callable[[str, str], Ingestor],
    open_source: SourceOpener,
    save: Callable[[Job], None],
    should_stop: Callable[[], bool],
    save_every: float = 0.5,
) -> None:
    """Run one job's ingestion, counting outcomes into `job` and calling
    `save(job)` at most every `save_every` seconds (and once the total is known).
    Shared by the in-process runner and the queue's workers."""
    job.total, sources = open_source(job)
    save(job)
    last_save = [0.0]

    def changed() -> None:
        job.version += 1
        now = time.monotonic()
        # Watchers in this process follow `version` in memory; the stored
        # copy only needs to be close enough to resume from and to report.
        if now - last_save[0] > save_every:
            last_save[0] = now
            save(job)

    def on_outcome(outcome: Outcome) -> None:
        if outcome.error:
            job.failed += 1
            if len(job.errors) < MAX_ERRORS_KEPT:
                job.errors.append({"name": outcome.name, "error": outcome.error})
        else:
            job.done += 1
            job.duplicates += outcome.duplicate
        changed()

    def on_split(extra: int) -> None:
        if job.total is not None:
            job.total += extra

    def on_step(item: str, done: int, total: int | None, unit: str) -> None:
        job.step = {"item": item, "done": done, "total": total, "unit": unit}
        changed()

    ingestor_for(job.demo, job.tenant).run(
        sources,
        on_outcome=on_outcome,
        should_stop=should_stop,
        on_split=on_split,
        on_step=on_step,
        catch_up=job.resumed > 0,
    )


def succeeded_message(job: Job) -> str:
    return f"stored {job.done - job.duplicates} new item(s), {job.duplicates} already stored, {job.failed} failed"
