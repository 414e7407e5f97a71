"""The HTTP API: the same typed routes for every demo, plus health and jobs.

Routes are generated per demo (one OpenAPI tag each) so every demo's request
bodies and filters are typed in /docs. Errors are always JSON with a 4xx/5xx
status and a `detail` that says what to do.
"""

import asyncio
import contextlib
import json
import logging
import re
import time
import uuid
from pathlib import Path
from typing import Any, Literal

import anyio
from asgi_correlation_id import CorrelationIdMiddleware
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from sse_starlette.sse import EventSourceResponse
from starlette.datastructures import UploadFile

from .demo import Demo, QueryError, Upload
from .guard import (
    API_KEY_HEADER, RateLimits, ResponseHeaders, VisitorCookies, is_admin_request, require_admin, tenant_of,
)
from .observability import Metrics, RequestMetrics
from .ingest import ArchiveError, archive_kind, list_archive
from .jobs import TERMINAL
from .runtime import DemoNotReady, Platform, media_url
from .web import mount_web
from .settings import Settings
from .store import PUBLIC_TENANT, StoreUnavailable
from .tenancy import QUOTA_REFUSAL, VisitorCookie, row_tenant

log = logging.getLogger("vectorfair.api")
RETRY_AFTER_SECONDS = 5
# Row ids are made by the core (hex keys, "-n" for an item's further rows).
ITEM_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


# -- response models ----------------------------------------------------------------
class ErrorBody(BaseModel):
    detail: str


class DemoInfo(BaseModel):
    name: str
    title: str
    description: str
    inputs: list[str]
    accepts: list[str]
    accepts_records: bool
    sample_query: str | None
    count: int | None
    loading: bool
    status: str


class PluginOut(BaseModel):
    name: str
    module: str
    version: str | None
    demos: list[str]
    ok: bool
    error: str | None


class Failure(BaseModel):
    name: str
    error: str


class ItemsAdded(BaseModel):
    ids: list[str]
    duplicates: list[str]
    failed: list[Failure]


class JobCreated(BaseModel):
    job_id: str
    status_url: str
    events_url: str


class JobOut(BaseModel):
    job_id: str
    demo: str
    label: str
    state: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    total: int | None
    done: int
    failed: int
    duplicates: int
    errors: list[Failure]
    message: str
    created: float
    updated: float
    resumed: int
    step: dict[str, Any] | None = Field(
        None, description="progress inside the item being processed: item, done, total, unit (e.g. frames)")


class HitOut(BaseModel):
    id: str
    score: float = Field(description="higher is more similar")
    title: str
    media_url: str | None
    thumbnail_url: str | None
    fields: dict[str, Any]
    item: str = Field("", description="the stored item the hit belongs to (one item may be stored as many rows)")


class SearchResult(BaseModel):
    hits: list[HitOut]
    took_ms: float
    summary: dict[str, Any] | None = Field(None, description="what the demo adds, e.g. a chatbot's answer")


class Stats(BaseModel):
    demo: str
    count: int
    collection: str
    backend: str = Field(description='what stores the vectors: "milvus_lite-3.2.2", "v2.3.5", …')
    index_type: str
    index_params: dict[str, Any] = Field(description="the index's build parameters, e.g. HNSW's M and efConstruction")
    search_params: dict[str, Any] = Field(description="what a search of 10 hits asks of the index, e.g. HNSW's ef")
    metric: str
    dim: int
    active_jobs: int


class Item(BaseModel):
    id: str
    title: str
    item: str
    created: int
    media_url: str | None
    thumbnail_url: str | None
    fields: dict[str, Any]


class ItemDeleted(BaseModel):
    id: str
    item: str
    deleted_rows: int


ERRORS = {code: {"model": ErrorBody} for code in (400, 403, 404, 409, 413, 415, 422, 429, 503)}
ADMIN_ERRORS = {**ERRORS, 401: {"model": ErrorBody}}


# -- app ------------------------------------------------------------------------------
def create_app(settings: Settings | None = None, extra_plugins=(), platform: Platform | None = None) -> FastAPI:
    """The ASGI app. Raises ConfigError before serving when the config is wrong."""
    platform = platform or Platform(settings, extra_plugins)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        platform.jobs.start()
        watcher = asyncio.create_task(_keep_ready(platform), name="vectorfair-ready")
        cleaner = (asyncio.create_task(_expire_visitor_data(platform), name="vectorfair-expiry")
                   if platform.settings.visitors.separate else None)
        for result in platform.hook.startup(app=app, demos=platform.demos):
            if asyncio.iscoroutine(result):
                await result
        try:
            yield
        finally:
            watcher.cancel()
            if cleaner is not None:
                cleaner.cancel()
            await platform.jobs.stop()
            platform.close()

    app = FastAPI(
        title="vectorfair",
        description="Vector-search demos on Milvus. Every demo has the same routes; see its tag.",
        version="0.1.0",
        lifespan=lifespan,
        openapi_tags=[{"name": "platform"}, {"name": "jobs"}]
        + [{"name": demo.name, "description": f"{demo.title}: {demo.description}"} for demo in platform.demos.values()],
    )
    app.state.platform = platform
    settings = platform.settings
    _install_error_handlers(app)
    # Added innermost first: the request id wraps everything, so even a 429 or
    # a 413 is counted, logged and answered with the security headers.
    app.add_middleware(BodyLimit, max_bytes=settings.limits.max_request_bytes)
    if settings.visitors.separate:
        app.add_middleware(VisitorCookies, cookie=VisitorCookie(settings.visitors, platform.data_dir))
    if settings.rate_limits.enabled:
        app.add_middleware(RateLimits, settings=settings)
    app.add_middleware(ResponseHeaders, headers=settings.http.headers)
    if settings.http.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.http.cors_origins, allow_credentials=True,
                           allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Content-Type", API_KEY_HEADER, "X-Request-ID"],
                           expose_headers=["X-Request-ID", "Retry-After", "Location"])
    app.state.metrics = Metrics(platform)
    app.add_middleware(RequestMetrics, metrics=app.state.metrics)
    app.add_middleware(CorrelationIdMiddleware)
    app.include_router(_platform_router(platform))
    for demo in platform.demos.values():
        app.include_router(_demo_router(platform, demo))
    for routers in platform.hook.register_routes(app=app, demos=platform.demos):
        for router in routers or []:
            app.include_router(router)
    app.include_router(_unknown_demo_router(platform))
    extra = [pair for pairs in platform.hook.extra_static(demos=platform.demos) for pair in (pairs or [])]
    mount_web(app, platform, extra)
    return app


async def _keep_ready(platform: Platform) -> None:
    """Reconnect to Milvus while it is away; queue sample loads once it is there."""
    samples_queued = False
    while True:
        try:
            ready = await anyio.to_thread.run_sync(platform.prepare)
            if ready and not samples_queued:
                await anyio.to_thread.run_sync(platform.submit_sample_jobs)
                samples_queued = True
                if platform.settings.warm_up_on_start:
                    asyncio.create_task(_warm_up(platform), name="vectorfair-warm-up")
            elif ready:
                await anyio.to_thread.run_sync(platform.store.ping)
        except Exception:
            log.exception("readiness check failed")
        await asyncio.sleep(platform.settings.milvus.reconnect_interval)


async def _expire_visitor_data(platform: Platform) -> None:
    """Delete visitors' items and finished jobs once they are older than
    `expire_after_s`, and the kept uploads of jobs that ended."""
    while True:
        await asyncio.sleep(platform.settings.visitors.cleanup_interval_s)
        try:
            platform.jobs.prune(time.time() - platform.settings.visitors.expire_after_s)
            # Off the event loop: reaching a Milvus that is away may take its timeout.
            if await anyio.to_thread.run_sync(platform.prepare):
                await anyio.to_thread.run_sync(platform.tenancy.expire)
        except StoreUnavailable:
            pass  # Milvus is away; the next round catches up
        except Exception:
            log.exception("expiring visitor data failed")


async def _warm_up(platform: Platform) -> None:
    for name, demo in platform.demos.items():
        started = time.perf_counter()
        try:
            await anyio.to_thread.run_sync(demo.warm_up)
            log.info("warmed up %s in %.1f s", name, time.perf_counter() - started)
        except Exception:
            log.exception("warming up %s failed; it will load on first use", name)


# -- errors ---------------------------------------------------------------------------
def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StoreUnavailable)
    async def store_unavailable(request: Request, exc: StoreUnavailable):
        return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})

    @app.exception_handler(DemoNotReady)
    async def demo_not_ready(request: Request, exc: DemoNotReady):
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        return JSONResponse(
            {"detail": "invalid request: " + _validation_text(exc.errors()), "errors": _jsonable(exc.errors())},
            status_code=422,
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        reference = uuid.uuid4().hex[:12]
        log.exception("unhandled error %s on %s %s", reference, request.method, request.url.path)
        return JSONResponse(
            {"detail": f"internal error (reference {reference}); the server log has the details"}, status_code=500
        )


def _validation_text(errors) -> str:
    parts = []
    for error in errors:
        location = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body",)) or "body"
        parts.append(f"{location}: {error.get('msg')}")
    return "; ".join(parts)


def _jsonable(errors) -> list[dict[str, Any]]:
    return json.loads(json.dumps([{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in errors], default=str))


class BodyLimit:
    """413 for request bodies over the limit, declared or streamed."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        too_large = JSONResponse(
            {"detail": f"request body over the limit of {self.max_bytes} bytes; send fewer or smaller files"},
            status_code=413,
        )
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            return await too_large(scope, receive, send)
        seen = 0

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _BodyTooLarge
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _BodyTooLarge:
            await too_large(scope, receive, send)


class _BodyTooLarge(Exception):
    pass


def bad_request(status: int, detail: str) -> HTTPException:
    return HTTPException(status_code=status, detail=detail)


# -- platform routes ----------------------------------------------------------------
def _platform_router(platform: Platform) -> APIRouter:
    router = APIRouter(tags=["platform"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        """The process is up (it says nothing about Milvus; see /readyz)."""
        return {"status": "ok"}

    @router.get("/readyz", responses={503: {"description": "Milvus unreachable or a demo's collection does not fit"}})
    async def readyz():
        """Ready to serve: Milvus reachable and every demo's collection fits."""
        state = await anyio.to_thread.run_sync(platform.readiness)
        if state["ready"]:
            return state
        return JSONResponse(state, status_code=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})

    @router.get("/api/plugins", response_model=list[PluginOut])
    async def plugins():
        """Every plugin found, with the demos it offers or why it is broken."""
        return [
            PluginOut(name=p.name, module=p.module, version=p.version, demos=p.demos, ok=p.ok, error=p.error)
            for p in platform.discovery.plugins
        ]

    @router.get("/api/demos", response_model=list[DemoInfo])
    async def demos(request: Request):
        """The enabled demos, what they accept and how many items they hold (that you can see)."""
        tenant = tenant_of(request)
        return await anyio.to_thread.run_sync(lambda: [demo_info(platform, d, tenant) for d in platform.demos.values()])

    @router.get("/api/jobs", response_model=list[JobOut], tags=["jobs"], responses={422: {"model": ErrorBody}})
    async def list_jobs(request: Request, demo: str | None = None, limit: int = Query(50, ge=1, le=500)):
        """Recent jobs (a visitor's own), newest first."""
        jobs = [j for j in platform.jobs.jobs.values()
                if (demo is None or j.demo == demo) and _may_see_job(request, j)]
        return [j.public() for j in sorted(jobs, key=lambda j: -j.created)[:limit]]

    @router.get("/api/jobs/{job_id}", response_model=JobOut, tags=["jobs"], responses=ERRORS)
    async def get_job(job_id: str, request: Request):
        """A job's state and progress, with the errors of failed items."""
        return _job_or_404(platform, job_id, request).public()

    @router.delete("/api/jobs/{job_id}", response_model=JobOut, tags=["jobs"], responses=ERRORS)
    async def cancel_job(job_id: str, request: Request):
        """Cancel a queued or running job; items stored before it stops are kept."""
        _job_or_404(platform, job_id, request)
        return platform.jobs.cancel(job_id).public()

    @router.get("/api/jobs/{job_id}/events", tags=["jobs"], responses=ERRORS)
    async def job_events(job_id: str, request: Request):
        """Server-sent events: a `progress` event at each change, then one `end` event."""
        job = _job_or_404(platform, job_id, request)

        async def stream():
            sent = -1
            while True:
                if await request.is_disconnected():
                    return
                if job.version != sent:
                    sent = job.version
                    final = job.state in TERMINAL
                    yield {"event": "end" if final else "progress", "data": json.dumps(job.public())}
                    if final:
                        return
                await asyncio.sleep(0.2)

        return EventSourceResponse(stream(), ping=15)

    if platform.settings.http.metrics:
        @router.get("/metrics", response_class=PlainTextResponse,
                    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}})
        async def metrics(request: Request):
            """Prometheus metrics: requests, latencies, encoder batch sizes, jobs."""
            return request.app.state.metrics.response()

    return router


def _may_see_job(request: Request, job) -> bool:
    return is_admin_request(request) or job.tenant == tenant_of(request)


def _job_or_404(platform: Platform, job_id: str, request: Request):
    job = platform.jobs.jobs.get(job_id)
    # Another visitor's job is "not found" too: its existence is not theirs to know.
    if job is None or not _may_see_job(request, job):
        raise bad_request(404, f"no job {job_id[:64]!r}; GET /api/jobs lists your jobs")
    return job


def demo_info(platform: Platform, demo: Demo, tenant: str = PUBLIC_TENANT) -> DemoInfo:
    count, status = None, "ready"
    if demo.name in platform.demo_errors:
        status = platform.demo_errors[demo.name]
    else:
        try:
            platform.require(demo.name)
            count = platform.count_visible(demo, tenant)
        except StoreUnavailable:
            status = "Milvus unreachable"
    return DemoInfo(
        name=demo.name, title=demo.title, description=demo.description, inputs=list(demo.inputs),
        accepts=list(demo.accepts), accepts_records=demo.accepts_records, sample_query=demo.sample_query,
        count=count, loading=bool(platform.jobs.active(demo.name)), status=status,
    )


def _unknown_demo_router(platform: Platform) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.api_route("/api/demos/{name}/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    @router.api_route("/api/demos/{name}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    async def unknown(name: str, rest: str = ""):
        if name in platform.demos:
            raise bad_request(404, f"demo {name!r} has no route {rest!r}; see /docs")
        raise bad_request(404, f"no demo {name!r}; enabled demos: {', '.join(platform.demos) or 'none'}")

    return router


# -- demo routes ----------------------------------------------------------------------
def _demo_router(platform: Platform, demo: Demo) -> APIRouter:
    name = demo.name
    limits = platform.settings.limits
    router = APIRouter(prefix=f"/api/demos/{name}", tags=[name])
    SearchBody = create_model(
        f"{_camel(name)}Search",
        __config__=ConfigDict(extra="forbid"),
        query=(str, Field(min_length=1, max_length=limits.max_query_chars, description=" or ".join(demo.inputs))),
        top_k=(int, Field(10, ge=1, le=limits.max_top_k)),
        filter=(demo.Filter | None, None) if demo.Filter else (dict | None, Field(None, description="this demo has no filters")),
    )

    def ready() -> Demo:
        return platform.require(name)

    def search_blocking(payload: Any, top_k: int, filter_model: BaseModel | None, tenant: str) -> dict[str, Any]:
        started = time.perf_counter()
        hits = platform.search(name, payload, top_k, filter_model, tenant=tenant)
        return {"hits": [h.__dict__ for h in hits], "took_ms": round((time.perf_counter() - started) * 1000, 2),
                "summary": demo.summarize(payload, hits)}

    def parse_filter(raw: Any) -> BaseModel | None:
        if raw in (None, "", {}):
            return None
        if demo.Filter is None:
            raise bad_request(422, f"{demo.title} takes no filter; leave it out")
        try:
            return demo.Filter.model_validate(raw)
        except ValidationError as exc:
            raise bad_request(422, f"invalid filter: {_validation_text(exc.errors())}") from None

    # -- search --------------------------------------------------------------------
    search_doc = f"Search {demo.title} by {' or '.join(demo.inputs)}; hits are ranked, best first."

    async def search_text(body: SearchBody, request: Request):  # type: ignore[valid-type]
        return await _search(lambda: demo.parse_query_text(body.query), body.top_k,
                             body.filter if demo.Filter else parse_filter(body.filter), tenant_of(request))

    if demo.file_inputs():
        async def search_file(request: Request):
            if demo.text_inputs() and request.headers.get("content-type", "").startswith("application/json"):
                # A demo that takes text as well as files takes the text query as JSON too.
                try:
                    body = SearchBody.model_validate(await _json_body(request))
                except ValidationError as exc:
                    raise bad_request(422, f"invalid search: {_validation_text(exc.errors())}") from None
                return await search_text(body, request)
            form = await _form(request, "multipart/form-data with a `file` field and an optional `top_k` field")
            upload = form.get("file")
            text = form.get("query")
            if not isinstance(upload, UploadFile) and not (demo.text_inputs() and isinstance(text, str) and text):
                raise bad_request(422, f"send the query as a multipart file field named `file` ({', '.join(demo.inputs)})")
            top_k = _int_field(form.get("top_k"), 10, 1, limits.max_top_k, "top_k")
            filter_raw = form.get("filter")
            try:
                filter_model = parse_filter(json.loads(filter_raw) if isinstance(filter_raw, str) and filter_raw else None)
            except json.JSONDecodeError:
                raise bad_request(422, "the `filter` field must be a JSON object") from None
            if isinstance(upload, UploadFile):
                data = await upload.read()
                if not data:
                    raise bad_request(422, "the uploaded query file is empty")
                parse = lambda: demo.parse_query_file(Upload(upload.filename or "query", data, upload.content_type))
            else:
                parse = lambda: demo.parse_query_text(text)
            return await _search(parse, top_k, filter_model, tenant_of(request))

        router.add_api_route(
            "/search", search_file, methods=["POST"], response_model=SearchResult, responses=ERRORS,
            summary=f"Search {demo.title}", description=search_doc,
            openapi_extra=_search_file_body(demo, limits.max_top_k),
        )
    else:
        router.add_api_route(
            "/search", search_text, methods=["POST"], response_model=SearchResult, responses=ERRORS,
            summary=f"Search {demo.title}", description=search_doc,
        )

    async def _search(parse, top_k: int, filter_model: BaseModel | None, tenant: str):
        def run():
            # A demo may find a query unusable while parsing it or while searching.
            try:
                return search_blocking(parse(), top_k, filter_model, tenant)
            except QueryError as exc:
                raise bad_request(422, str(exc)) from None

        return await anyio.to_thread.run_sync(run)

    # -- items ---------------------------------------------------------------------
    async def add_items(request: Request):
        sources = await _item_sources(request, demo, limits)
        tenant = tenant_of(request)

        def run():
            ready()
            return platform.ingestor(name, tenant).run(sources)

        outcomes = await anyio.to_thread.run_sync(run)
        body = ItemsAdded(
            ids=[i for o in outcomes if not o.error for i in o.ids],
            duplicates=[i for o in outcomes if o.duplicate and not o.error for i in o.ids],
            failed=[Failure(name=o.name, error=o.error) for o in outcomes if o.error],
        )
        if outcomes and not body.ids:
            over_quota = all(f.error.startswith(QUOTA_REFUSAL) for f in body.failed)
            return JSONResponse(
                {"detail": "no item could be stored: " + "; ".join(f"{f.name}: {f.error}" for f in body.failed[:10]),
                 **body.model_dump()},
                status_code=403 if over_quota else 422,
            )
        return JSONResponse(body.model_dump(), status_code=201)

    bodies = {}
    if demo.accepts:
        bodies["multipart/form-data"] = {"type": "object", "required": ["files"], "properties": {
            "files": {"type": "array", "items": {"type": "string", "format": "binary"},
                      "description": f"one or more files: {', '.join(demo.accepts)}"}}}
    if demo.accepts_records:
        bodies["application/json"] = {"type": "object", "required": ["records"], "properties": {
            "records": {"type": "array", "items": {"type": "object"}, "description": "records to add"}}}
    router.add_api_route(
        "/items", add_items, methods=["POST"], status_code=201, response_model=ItemsAdded, responses=ERRORS,
        summary=f"Add items to {demo.title}",
        description="Stores the items now; one that cannot be used is listed in `failed`, the rest are stored. "
        "Items already stored (same content) are not stored again.",
        openapi_extra={"requestBody": {"required": True, "content": {k: {"schema": v} for k, v in bodies.items()}}},
    )

    # -- jobs ----------------------------------------------------------------------
    async def create_job(request: Request):
        content_type = request.headers.get("content-type", "")
        tenant = tenant_of(request)
        # Off the event loop: reaching a Milvus that is away may take its timeout.
        await anyio.to_thread.run_sync(ready)
        if content_type.startswith("application/json"):
            body = await _json_body(request)
            if not isinstance(body, dict) or body.get("sample") is not True or set(body) - {"sample"}:
                raise bad_request(422, 'send {"sample": true} to load the sample data, or upload an archive')
            # The sample is shared data: loading it is an admin's call.
            await require_admin(request, request.headers.get(API_KEY_HEADER))
            job = platform.jobs.submit(name, "sample", label="sample data")
        else:
            visitors = platform.settings.visitors
            if tenant != PUBLIC_TENANT and len(platform.jobs.active(tenant=tenant)) >= visitors.max_active_jobs:
                raise HTTPException(429, f"you have {visitors.max_active_jobs} jobs queued or running; wait for one "
                                         "to end (GET /api/jobs) or cancel it", headers={"Retry-After": "10"})
            form = await _form(request, 'multipart/form-data with an `archive` or `file` field, or JSON {"sample": true}')
            archive, single = form.get("archive"), form.get("file")
            if isinstance(archive, UploadFile):
                stored = await _save_archive(platform, archive)
                job = platform.jobs.submit(name, f"archive:{stored.name}", label=_safe_name(archive.filename or "archive"),
                                           tenant=tenant)
            elif isinstance(single, UploadFile) and demo.accepts:
                stored = await _save_single(platform, single, demo, limits)
                job = platform.jobs.submit(name, f"file:{stored.name}", label=_safe_name(single.filename), tenant=tenant)
            else:
                raise bad_request(422, "send a zip or tar as a multipart file field named `archive`"
                                  + (f", or one long file ({', '.join(demo.accepts)}) as `file`" if demo.accepts else ""))
        return JSONResponse(
            {"job_id": job.id, "status_url": f"/api/jobs/{job.id}", "events_url": f"/api/jobs/{job.id}/events"},
            status_code=202, headers={"Location": f"/api/jobs/{job.id}"},
        )

    router.add_api_route(
        "/jobs", create_job, methods=["POST"], status_code=202, response_model=JobCreated, responses=ADMIN_ERRORS,
        summary=f"Bulk-load {demo.title}",
        description="Loads an archive (zip or tar of items), one long file, or the demo's sample data (admins only) "
        "in the background. Follow it with GET /api/jobs/{job_id} or its server-sent events.",
        openapi_extra={"requestBody": {"required": True, "content": {
            "multipart/form-data": {"schema": {"type": "object", "properties": {
                "archive": {"type": "string", "format": "binary", "description": "zip, tar, tar.gz, tar.bz2 or tar.xz"},
                "file": {"type": "string", "format": "binary",
                         "description": "or one file that takes long to process (a video, a recording)"}}}},
            "application/json": {"schema": {"type": "object", "required": ["sample"], "properties": {
                "sample": {"type": "boolean", "enum": [True]}}}},
        }}},
    )

    # -- reading -------------------------------------------------------------------
    @router.get("/items/{item_id}", response_model=Item, responses=ERRORS, summary=f"One item of {demo.title}")
    async def get_item(item_id: str, request: Request):
        row = await _row(item_id, tenant_of(request))
        return Item(
            id=row["id"], title=row.get("title", ""), item=row.get("item", ""), created=row.get("created", 0),
            media_url=media_url(demo, row["id"], row.get("media"), "media"),
            thumbnail_url=media_url(demo, row["id"], row.get("thumb"), "thumbnail"),
            fields={f.name: row.get(f.name) for f in demo.fields},
        )

    async def _row(item_id: str, tenant: str) -> dict[str, Any]:
        """The row, if `tenant` may see it; another visitor's row is "no item" too."""
        if not ITEM_ID.fullmatch(item_id):
            raise bad_request(404, f"no item {item_id[:64]!r} in {name}; ids are letters, digits, '-' and '_'")
        row = await anyio.to_thread.run_sync(lambda: (ready(), platform.store.get(demo, item_id))[1])
        if row is None or not platform.tenancy.can_see(tenant, row):
            raise bad_request(404, f"no item {item_id!r} in {name}; search or GET /api/demos/{name}/stats")
        return row

    async def _blob(item_id: str, field: str, what: str, request: Request):
        row = await _row(item_id, tenant_of(request))
        path = platform.media.path(row.get(field) or "")
        if path is None:
            raise bad_request(404, f"item {item_id!r} has no stored {what}")
        content_type = platform.media.content_type(row[field]) or "application/octet-stream"
        shared = row_tenant(row) == PUBLIC_TENANT
        return FileResponse(path, media_type=content_type,
                            headers={"Cache-Control": "public, max-age=86400" if shared else "private, max-age=3600"})

    @router.get("/items/{item_id}/media", responses={**ERRORS, 200: {"content": {"application/octet-stream": {}}}},
                response_class=FileResponse, summary="The item's stored media (HTTP range requests work)")
    async def get_media(item_id: str, request: Request):
        return await _blob(item_id, "media", "media", request)

    @router.get("/items/{item_id}/thumbnail", responses={**ERRORS, 200: {"content": {"image/*": {}}}},
                response_class=FileResponse, summary="The item's thumbnail")
    async def get_thumbnail(item_id: str, request: Request):
        return await _blob(item_id, "thumb", "thumbnail", request)

    @router.delete("/items/{item_id}", response_model=ItemDeleted, responses=ADMIN_ERRORS,
                   summary=f"Delete one item of {demo.title}")
    async def delete_item(item_id: str, request: Request):
        """Deletes the item a row belongs to (every row of it: a video's keyframes, a recording's windows).
        Visitors delete their own items; shared items need the admin key."""
        tenant = tenant_of(request)
        row = await _row(item_id, tenant)
        if not platform.tenancy.owns(tenant, row):
            raise bad_request(403, "this item is shared data; only an admin (X-API-Key) can delete it")
        item = row.get("item") or row["id"]
        deleted = await anyio.to_thread.run_sync(
            lambda: platform.tenancy.delete_item(demo, item, row_tenant(row)))
        return ItemDeleted(id=row["id"], item=item, deleted_rows=deleted)

    @router.get("/stats", response_model=Stats, responses=ERRORS, summary=f"Size and index of {demo.title}")
    async def stats(request: Request):
        tenant = tenant_of(request)

        def run():
            ready()
            info = platform.store.collections[name]
            return Stats(demo=name, count=platform.count_visible(demo, tenant), collection=info.name,
                         backend=platform.store.backend, index_type=info.index_type, index_params=info.index_params,
                         search_params=info.search_params(10), metric=demo.metric, dim=demo.dim,
                         active_jobs=len(platform.jobs.active(name)))

        return await anyio.to_thread.run_sync(run)

    def drop_and_recreate() -> None:
        if platform.jobs.active(name):
            raise bad_request(409, f"{name} has running jobs; cancel them first (DELETE /api/jobs/{{job_id}})")
        if name in platform.demo_errors:
            platform.demo_errors.pop(name)
        else:
            ready()
        platform.store.drop(demo)
        platform.store.ensure_collection(demo)

    @router.delete("/items", responses=ADMIN_ERRORS, summary=f"Drop every item of {demo.title} (admin)",
                   dependencies=[Depends(require_admin)])
    async def drop_items() -> dict[str, Any]:
        """Deletes the demo's collection, everyone's items included, and creates it empty again."""
        await anyio.to_thread.run_sync(drop_and_recreate)
        return {"demo": name, "dropped": True}

    @router.post("/reload", response_model=JobCreated, status_code=202, responses=ADMIN_ERRORS,
                 summary=f"Drop {demo.title} and load its sample data again (admin)",
                 dependencies=[Depends(require_admin)])
    async def reload():
        """Starts from a clean collection holding the sample data only; follow the job like any other."""
        await anyio.to_thread.run_sync(drop_and_recreate)
        job = platform.jobs.submit(name, "sample", label="sample data (reload)")
        return JSONResponse(
            {"job_id": job.id, "status_url": f"/api/jobs/{job.id}", "events_url": f"/api/jobs/{job.id}/events"},
            status_code=202, headers={"Location": f"/api/jobs/{job.id}"},
        )

    return router


async def _item_sources(request: Request, demo: Demo, limits) -> list[Any]:
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        if not demo.accepts_records:
            raise bad_request(415, f"{demo.title} takes files: send multipart/form-data with a `files` field")
        body = await _json_body(request)
        records = body.get("records") if isinstance(body, dict) else None
        if not isinstance(records, list) or not records:
            raise bad_request(422, 'send {"records": [ {...}, ... ]} with at least one record')
        if len(records) > limits.max_archive_members:
            raise bad_request(413, f"at most {limits.max_archive_members} records per request; use a job for more")
        return records
    if not demo.accepts:
        raise bad_request(415, f'{demo.title} takes JSON records: send {{"records": [...]}}')
    form = await _form(request, "multipart/form-data with one or more `files` fields"
                       + (' or JSON {"records": [...]}' if demo.accepts_records else ""),
                       max_files=limits.max_files_per_request)
    files = [f for f in form.getlist("files") if isinstance(f, UploadFile)]
    if not files:
        raise bad_request(422, "no files: send each file as a multipart field named `files`")
    return [Upload(_safe_name(f.filename), await f.read(), f.content_type) for f in files]


def _safe_name(name: str | None) -> str:
    return (name or "upload").replace("\\", "/").rsplit("/", 1)[-1][:255] or "upload"


async def _json_body(request: Request) -> Any:
    try:
        return await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise bad_request(400, "the body is not valid JSON") from None


async def _form(request: Request, expected: str, max_files: int = 1000):
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise bad_request(415, f"unsupported content type {content_type or 'none'!r}; send {expected}")
    try:
        return await request.form(max_files=max_files, max_fields=100)
    except Exception as exc:
        reason = getattr(exc, "detail", None) or str(exc)
        if "Too many files" in reason:
            raise bad_request(413, f"at most {max_files} files per request; send the rest in another request, "
                                   "or many at once as an archive job") from None
        if "Too many fields" in reason:
            raise bad_request(413, "at most 100 form fields per request") from None
        raise bad_request(400, f"the multipart body could not be read ({reason}); send {expected}") from None


def _int_field(raw: Any, default: int, low: int, high: int, name: str) -> int:
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise bad_request(422, f"`{name}` must be a whole number from {low} to {high}") from None
    if not low <= value <= high:
        raise bad_request(422, f"`{name}` must be from {low} to {high}")
    return value


async def _save_archive(platform: Platform, archive: UploadFile) -> Path:
    """Keep the archive on disk until its job succeeds, so a restart can resume it."""
    head = await archive.read(512)
    if archive_kind(head) is None:
        raise bad_request(415, "the `archive` is not a zip or tar file; send .zip, .tar, .tar.gz, .tar.bz2 or .tar.xz")
    await archive.seek(0)
    target = platform.uploads_dir / f"{uuid.uuid4().hex}.archive"
    await _write_upload(archive, target)
    try:
        await anyio.to_thread.run_sync(list_archive, target, platform.settings.limits)
    except ArchiveError as exc:
        target.unlink(missing_ok=True)
        raise bad_request(422, str(exc)) from None
    return target


async def _write_upload(upload: UploadFile, target: Path, max_bytes: int | None = None) -> int | None:
    """Copy an upload to `target` in 1 MiB chunks; its size, or None (and no
    file) when it is over `max_bytes`."""
    size = 0
    with open(target, "wb") as out:
        while chunk := await upload.read(1 << 20):
            size += len(chunk)
            if max_bytes is not None and size > max_bytes:
                break
            out.write(chunk)
    if max_bytes is not None and size > max_bytes:
        target.unlink(missing_ok=True)
        return None
    return size


async def _save_single(platform: Platform, upload: UploadFile, demo: Demo, limits) -> Path:
    """Keep one uploaded file until its job succeeds; refused early when the
    demo cannot take its suffix or it is over the per-file limit."""
    filename = _safe_name(upload.filename)
    suffix = Upload(filename, b"").suffix
    if suffix not in demo.accepts:
        raise bad_request(415, f"{suffix or 'a file without a suffix'} is not accepted; {demo.title} takes {', '.join(demo.accepts)}")
    target = platform.uploads_dir / f"{uuid.uuid4().hex}__{filename}"
    size = await _write_upload(upload, target, limits.max_member_bytes)
    if size is None:
        raise bad_request(413, f"the file is over the limit of {limits.max_member_bytes} bytes for one file")
    if size == 0:
        target.unlink(missing_ok=True)
        raise bad_request(422, "the file is empty")
    return target


def _search_file_body(demo: Demo, max_top_k: int) -> dict[str, Any]:
    body = _multipart_body({
        "file": {"type": "string", "format": "binary", "description": f"the query ({', '.join(demo.inputs)})"},
        **({"query": {"type": "string", "description": "or a text query"}} if demo.text_inputs() else {}),
        "top_k": {"type": "integer", "default": 10, "minimum": 1, "maximum": max_top_k},
        "filter": {"type": "string", "description": "optional JSON object of filters"},
    }, required=[] if demo.text_inputs() else ["file"])
    if demo.text_inputs():
        body["requestBody"]["content"]["application/json"] = {"schema": {
            "type": "object", "required": ["query"], "additionalProperties": False, "properties": {
                "query": {"type": "string", "minLength": 1}, "top_k": {"type": "integer", "minimum": 1, "maximum": max_top_k},
                "filter": {"type": "object", "description": "this demo's filters"}}}}
    return body


def _multipart_body(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": required, "properties": properties}}}}}


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))
