"""The platform: settings, plugins, demos, store, media and jobs wired together.

The web app and the CLI both build one `Platform` and go through its methods
(search, drop and recreate, job lookups) so both behave the same; neither
knows any plugin.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from .archives import iter_archive, list_archive
from .batching import Batcher, attach_batcher
from .demo import Demo, Hit, SampleUnavailable, Upload
from .expr import all_of
from .ingest import Ingestor, Source
from .jobs import Job, JobFailed, JobRunner, JobSource, JobStore
from .media import LocalKeptUploads, open_kept_uploads, open_media_store
from .plugins import Discovery, configure_demos, discover
from .schema import MissingCapability, StoredVector
from .settings import Settings, load_settings
from .store import SchemaMismatch, Store, StoreUnavailable, is_lite_uri
from .tenancy import PUBLIC_TENANT, Tenancy

log = logging.getLogger("vectorfair")


class DemoNotReady(Exception):
    """The demo's collection does not fit it (schema mismatch); answered as 409."""


class DemoBusy(Exception):
    """The demo has queued or running jobs, so its collection cannot be dropped
    now; answered as 409. `jobs` are those jobs."""

    def __init__(self, demo_name: str, jobs: list[Job]):
        super().__init__(f"{demo_name} has running jobs; cancel them first (DELETE /api/jobs/{{job_id}})")
        self.demo_name = demo_name
        self.jobs = jobs


@dataclasses.dataclass
class SearchOutcome:
    """What a search gives: the hits (best first), the demo's `summarize()` of
    them (None when it adds nothing) and how long the search took, in
    milliseconds (parsing the query and summarizing excluded)."""

    hits: list[Hit]
    summary: dict[str, Any] | None
    took_ms: float


class Platform:
    def __init__(self, settings: Settings | None = None, extra_plugins: Iterable[Any] = ()):
        self.settings = settings or load_settings()
        self.discovery: Discovery = discover(self.settings, list(extra_plugins))
        self.demos: dict[str, Demo] = configure_demos(self.settings, self.discovery)
        self.store = Store(self.settings.milvus)
        self.media = open_media_store(self.settings.media)
        self.data_dir = Path(self.settings.data_dir)
        self.uploads_dir = self.data_dir / "uploads"
        self.uploads_dir.mkdir(parents=True, exist_ok=True)
        self.demo_errors: dict[str, str] = {}
        self.tenancy = Tenancy(self.settings.visitors, self.store, self.media, self.demos)
        # Called with (demo name, batch size) for every model call on queries.
        self.batch_listeners: list[Any] = []
        self._ready_lock = threading.Lock()
        self._last_attempt = 0.0
        self.batchers: dict[str, Batcher] = {}
        self.search_batchers: dict[str, Batcher] = {}
        self._configure_encoders()
        self._configure_searches()
        if self.settings.queue.redis_url:
            # The scale-out tier: jobs on a Redis queue, run by `vectorfair worker`.
            from .queue import QueuedJobs, RedisClaims

            self.kept_uploads = open_kept_uploads(self.media, self.uploads_dir)
            self.jobs = QueuedJobs(self.settings.queue, self.kept_uploads)
            self.tenancy.claims = RedisClaims(self.jobs.client, self.settings.queue.namespace)
        else:
            self.kept_uploads = LocalKeptUploads(self.uploads_dir)
            self.jobs = JobRunner(
                JobStore(self.data_dir / "jobs.sqlite3"),
                self.ingestor,
                self.open_job_source,
                self.uploads_dir,
                require_demo=self.require,
            )

    @property
    def queued(self) -> bool:
        """Jobs go through the Redis queue to `vectorfair worker` processes."""
        return bool(self.settings.queue.redis_url)

    @property
    def hook(self):
        return self.discovery.manager.hook

    def ingestor(self, demo_name: str, tenant: str = PUBLIC_TENANT) -> Ingestor:
        """An ingestor storing for `tenant`, within that visitor's quota."""
        return Ingestor(
            self.demos[demo_name],
            self.store,
            self.media,
            self.settings.jobs.batch_size,
            tenant=tenant,
            quota=self.tenancy.quota(tenant),
            drop_unused_blobs=self.tenancy.drop_unused_blobs,
        )

    def _configure_encoders(self) -> None:
        encoders = self.settings.encoders
        if encoders.torch_threads:
            import torch

            torch.set_num_threads(encoders.torch_threads)
        blas_threads = encoders.blas_threads
        if blas_threads is None:
            blas_threads = 1 if is_lite_uri(self.settings.milvus.uri) else 0
        if blas_threads:
            from threadpoolctl import threadpool_limits

            threadpool_limits(blas_threads, user_api="blas")
        if not encoders.batching:
            return
        for name, demo in self.demos.items():
            batcher = Batcher(
                demo.encode,
                encoders.max_batch,
                encoders.max_wait_ms / 1000,
                name=name,
                on_batch=lambda size, name=name: self._batch_ran(name, size),
            )
            attach_batcher(demo, batcher)
            self.batchers[name] = batcher

    def _configure_searches(self) -> None:
        search = self.settings.search
        if not search.batching:
            return
        for name, demo in self.demos.items():
            self.search_batchers[name] = Batcher(
                functools.partial(self._search_batch, demo),
                search.max_batch,
                search.max_wait_ms / 1000,
                name=f"{name}-search",
            )

    def _search_batch(self, demo: Demo, queries: list[tuple[str | None, str, int, Any]]) -> list[list[dict]]:
        """Rows for many (field, expression, limit, vector) queries: one Milvus
        call per distinct (field, expression, limit)."""
        found: list[list[dict]] = [[] for _ in queries]
        groups: dict[tuple[str | None, str, int], list[int]] = {}
        for position, (field, expression, limit, _) in enumerate(queries):
            groups.setdefault((field, expression, limit), []).append(position)
        for (field, expression, limit), positions in groups.items():
            vectors = [queries[position][3] for position in positions]
            for position, rows in zip(positions, self.store.search_many(demo, vectors, limit, expression, field)):
                found[position] = rows
        return found

    def _batch_ran(self, demo_name: str, size: int) -> None:
        for listener in self.batch_listeners:
            listener(demo_name, size)

    # -- readiness ---------------------------------------------------------------
    def prepare(self, force: bool = False) -> bool:
        """Connect and make sure every demo's collection exists and fits.

        Cheap when already done; throttled when Milvus is down so requests do
        not pile reconnect attempts on it.
        """
        if self.store.connected and all(n in self.store.collections or n in self.demo_errors for n in self.demos):
            return True
        with self._ready_lock:
            now = time.monotonic()
            if not force and now - self._last_attempt < min(1.0, self.settings.milvus.reconnect_interval):
                return self.store.connected
            self._last_attempt = now
            if not self.store.connect():
                return False
            for name, demo in self.demos.items():
                if name in self.store.collections or name in self.demo_errors:
                    continue
                try:
                    self.store.ensure_collection(demo)
                except (SchemaMismatch, MissingCapability) as exc:
                    self.demo_errors[name] = str(exc)
                    log.error("%s", exc)
                except StoreUnavailable:
                    return False
            return True

    def require(self, demo_name: str) -> Demo:
        """The demo, ready for use; raises StoreUnavailable or DemoNotReady."""
        demo = self.demos[demo_name]
        if not self.prepare():
            raise StoreUnavailable(self.store.unavailable_message())
        if demo_name in self.demo_errors:
            raise DemoNotReady(self.demo_errors[demo_name])
        return demo

    def readiness(self) -> dict[str, Any]:
        ready = self.prepare()
        demos = {
            name: ("ready" if name in self.store.collections else self.demo_errors.get(name, "waiting for Milvus"))
            for name in self.demos
        }
        return {
            "ready": ready and not self.demo_errors,
            "milvus": {
                "uri": self.settings.milvus.uri,
                "connected": self.store.connected,
                "error": self.store.last_error,
            },
            "demos": demos,
        }

    def count_visible(self, demo: Demo, tenant: str = PUBLIC_TENANT) -> int:
        """How many rows of `demo` `tenant` may see."""
        return self.store.count(demo, self.tenancy.visible_expression(tenant))

    # -- search --------------------------------------------------------------------
    def search(
        self,
        demo_name: str,
        payload: Any,
        top_k: int,
        filter_model: BaseModel | None = None,
        tenant: str = PUBLIC_TENANT,
    ) -> SearchOutcome:
        """Search `demo_name` for a parsed query (`Demo.parse_query_text` or
        `parse_query_file`) among what `tenant` may see, and summarize the
        hits as the demo does. Raises StoreUnavailable, DemoNotReady, or
        QueryError for a query the demo cannot use."""
        started = time.perf_counter()
        hits = self.search_hits(demo_name, payload, top_k, filter_model, tenant)
        took_ms = round((time.perf_counter() - started) * 1000, 2)
        return SearchOutcome(hits, self.demos[demo_name].summarize(payload, hits), took_ms)

    def search_hits(
        self,
        demo_name: str,
        payload: Any,
        top_k: int,
        filter_model: BaseModel | None = None,
        tenant: str = PUBLIC_TENANT,
    ) -> list[Hit]:
        """Only the hits of `search`: among what `tenant` may see, the shared
        data and, for a visitor, their own items."""
        demo = self.require(demo_name)
        if filter_model is None and demo.Filter is not None:
            filter_model = default_filter(demo)
        expression = all_of(
            demo.filter_expression(filter_model) if filter_model is not None else "",
            self.tenancy.visible_expression(tenant),
        )

        nearest = Nearest(self.store, demo, expression, self.search_batchers.get(demo_name))
        return demo.search(nearest, payload, top_k, filter_model)

    # -- dropping ------------------------------------------------------------------
    def drop_and_recreate(self, demo_name: str) -> None:
        """Delete the demo's collection, everyone's items included, and create
        it empty again; this also clears a schema mismatch (DemoNotReady).
        Raises DemoBusy while the demo has queued or running jobs, and
        StoreUnavailable when Milvus is away."""
        demo = self.demos[demo_name]
        busy = self.active_jobs(demo_name)
        if busy:
            raise DemoBusy(demo_name, busy)
        if demo_name not in self.demo_errors and not self.prepare():
            raise StoreUnavailable(self.store.unavailable_message())
        # A collection that does not fit its demo is dropped too: that is the way out.
        with self._ready_lock:  # not while the readiness loop creates collections
            self.demo_errors.pop(demo_name, None)
            self.store.drop(demo)
            self.store.ensure_collection(demo)

    # -- jobs ----------------------------------------------------------------------
    def job(self, job_id: str) -> Job | None:
        """The job with this id, or None."""
        return self.jobs.get(job_id)

    def list_jobs(self, demo: str | None = None, tenant: str | None = None, limit: int | None = None) -> list[Job]:
        """Jobs newest first, of one demo and of one tenant (None: any), at most `limit`."""
        return self.jobs.list(demo, tenant, limit)

    def active_jobs(self, demo: str | None = None, tenant: str | None = None) -> list[Job]:
        """Queued and running jobs, of one demo and of one tenant (None: any)."""
        return self.jobs.active(demo, tenant)

    def submit_job(self, demo: str, source: JobSource, label: str = "", tenant: str = PUBLIC_TENANT) -> Job:
        """Queue a bulk load of `source`: the sample set, or an archive or one
        long file kept in `uploads_dir`."""
        return self.jobs.submit(demo, source, label=label, tenant=tenant)

    def sample_failure(self, demo_name: str) -> str | None:
        """Why the latest sample load of a demo failed, if it did."""
        samples = [job for job in self.list_jobs(demo_name) if job.source.kind == "sample"]
        return samples[0].message if samples and samples[0].state == "failed" else None

    def count_items(self, demo: Demo, tenant: str = PUBLIC_TENANT) -> int:
        """How many items (what users stored: recordings, videos) of `demo` `tenant` may see."""
        return self.store.count_items(demo, self.tenancy.visible_expression(tenant))

    def cancel_job(self, job_id: str) -> Job | None:
        """Cancel a queued or running job (items it stored are kept); the job, or None."""
        return self.jobs.cancel(job_id)

    # -- job sources ---------------------------------------------------------------
    def open_job_source(self, job: Job) -> tuple[int | None, Iterable[Source]]:
        source = job.source
        if source.kind == "sample":
            # Sample sets are small enough to hold, and a known total gives a real progress bar.
            demo = self.demos[job.demo]
            try:
                items = list(demo.sample_items())
            except SampleUnavailable as exc:
                raise JobFailed(f"no sample data for {demo.title}: {exc}") from None
            if not items:
                raise JobFailed(f"the sample set of {demo.title} is empty: its sample_items() found nothing to load")
            return len(items), items
        kept = self.kept_uploads.path(source.file or "")
        if kept is None:
            raise JobFailed("its upload is gone; submit it again")
        if source.kind == "file":
            # One long file (a video, a recording); the job's label is its name.
            return 1, [Upload(job.label or "upload", kept.read_bytes())]
        return len(list_archive(kept, self.settings.limits)), iter_archive(kept, self.settings.limits)

    def submit_sample_jobs(self, only_empty: bool = True) -> list[Job]:
        """Queue the sample load of every demo that wants one and is empty,
        cheapest first (`Demo.sample_cost`): jobs run one at a time, so a
        demo whose sample loads in seconds should not wait behind one that
        takes minutes."""
        submitted = []
        for name, demo in sorted(self.demos.items(), key=lambda pair: (pair[1].sample_cost, pair[0])):
            if not demo.options.load_sample_on_start or name not in self.store.collections:
                continue
            if self.active_jobs(name):
                continue
            try:
                if only_empty and self.store.count(demo) > 0:
                    continue
            except StoreUnavailable:
                continue
            submitted.append(self.submit_job(name, JobSource("sample"), label="sample data"))
        return submitted

    def close(self) -> None:
        for batcher in [*self.batchers.values(), *self.search_batchers.values()]:
            batcher.close()
        self.store.disconnect()
        self.jobs.close()


class Nearest:
    """What `Demo.search` calls to search Milvus: `nearest(vector, limit,
    field=None)` gives the rows nearest to `vector` on a vector field (the
    first by default) as hits, best first, the demo's filter applied."""

    def __init__(self, store: Store, demo: Demo, expression: str, batcher: Batcher | None = None):
        self.store, self.demo, self.expression, self.batcher = store, demo, expression, batcher

    def __call__(self, vector: Any, limit: int, field: str | None = None) -> list[Hit]:
        if self.batcher is not None:  # gathered with concurrent searches into one Milvus call
            rows = self.batcher((field, self.expression, limit, vector))
        else:
            rows = self.store.search(self.demo, vector, limit, self.expression, field)
        return [to_hit(self.demo, row) for row in rows]

    def stored(self, field: str | None = None) -> StoredVector:
        """The field as this backend stores it: `.stored.kind`, `.stored.metric`
        tell a declared binary field from its float or sparse fallback."""
        return self.store.collection_info(self.demo).vector(field)


def to_hit(demo: Demo, row: dict[str, Any]) -> Hit:
    return Hit(
        row["id"],
        float(row["score"]),
        row.get("title", ""),
        {f.name: row.get(f.name) for f in demo.fields},
        media_url(demo, row["id"], row.get("media"), "media"),
        media_url(demo, row["id"], row.get("thumb"), "thumbnail"),
        item=row.get("item", ""),
    )


def default_filter(demo: Demo) -> BaseModel | None:
    """The demo's Filter with its defaults, applied when a search sends none
    (a demo may rely on a default, such as which kind of row to search)."""
    try:
        return demo.Filter.model_validate({})
    except ValidationError:
        return None


def media_url(demo: Demo, row_id: str, key: str | None, kind: str) -> str | None:
    return f"/api/demos/{demo.name}/items/{row_id}/{kind}" if key else None
