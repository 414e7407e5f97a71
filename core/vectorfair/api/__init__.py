"""The HTTP API: the same typed routes for every demo, plus health and jobs.

Routes are generated per demo (one OpenAPI tag each) so every demo's request
bodies and filters are typed in /docs. Errors are always JSON with a 4xx/5xx
status and a `detail` that says what to do.

One module per resource: `search`, `items`, `jobs` and `admin` each add their
routes to a demo's router; `platform` has the routes that are not a demo's;
`schemas` the response models, `errors` the error handling and `uploads` the
reading of request bodies. Every route goes through the `Platform`.
"""

import asyncio
import contextlib
import logging
import time

import anyio
from asgi_correlation_id import CorrelationIdMiddleware
from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from .. import __version__
from ..demo import Demo
from ..guard import API_KEY_HEADER, RateLimits, ResponseHeaders, VisitorCookies
from ..observability import Metrics, RequestMetrics
from ..queue import QueueUnavailable
from ..runtime import Platform
from ..settings import Settings
from ..store import StoreUnavailable
from ..tenancy import VisitorCookie
from ..web import mount_web
from .admin import add_admin_routes
from .errors import RETRY_AFTER_SECONDS, BodyLimit, bad_request, install_error_handlers
from .items import ITEM_ID, add_item_routes
from .jobs import add_demo_job_routes
from .platform import demo_info, platform_router, unknown_demo_router
from .schemas import (
    ADMIN_ERRORS,
    ERRORS,
    DemoInfo,
    ErrorBody,
    Failure,
    FieldStats,
    HitOut,
    Item,
    ItemDeleted,
    ItemsAdded,
    JobCreated,
    JobOut,
    PluginOut,
    SearchResult,
    Stats,
    VectorStats,
)
from .search import add_search_routes

__all__ = [
    "create_app",
    "demo_router",
    "demo_info",
    "bad_request",
    "BodyLimit",
    "RETRY_AFTER_SECONDS",
    "ITEM_ID",
    "ERRORS",
    "ADMIN_ERRORS",
    "DemoInfo",
    "ErrorBody",
    "Failure",
    "FieldStats",
    "HitOut",
    "Item",
    "ItemDeleted",
    "ItemsAdded",
    "JobCreated",
    "JobOut",
    "PluginOut",
    "SearchResult",
    "Stats",
    "VectorStats",
]

log = logging.getLogger("vectorfair.api")


def create_app(settings: Settings | None = None, extra_plugins=(), platform: Platform | None = None) -> FastAPI:
    """The ASGI app. Raises ConfigError before serving when the config is wrong."""
    platform = platform or Platform(settings, extra_plugins)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        platform.jobs.start()
        watcher = asyncio.create_task(_keep_ready(platform), name="vectorfair-ready")
        cleaner = (
            asyncio.create_task(_expire_visitor_data(platform), name="vectorfair-expiry")
            if platform.settings.visitors.separate
            else None
        )
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
        version=__version__,
        lifespan=lifespan,
        openapi_tags=[{"name": "platform"}, {"name": "jobs"}]
        + [{"name": demo.name, "description": f"{demo.title}: {demo.description}"} for demo in platform.demos.values()],
    )
    app.state.platform = platform
    settings = platform.settings
    install_error_handlers(app)
    # Added innermost first: the request id wraps everything, so even a 429 or
    # a 413 is counted, logged and answered with the security headers.
    app.add_middleware(BodyLimit, max_bytes=settings.limits.max_request_bytes)
    if settings.visitors.separate:
        app.add_middleware(VisitorCookies, cookie=VisitorCookie(settings.visitors, platform.data_dir))
    if settings.rate_limits.enabled:
        app.add_middleware(RateLimits, settings=settings)
    app.add_middleware(ResponseHeaders, headers=settings.http.headers)
    if settings.http.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.http.cors_origins,
            allow_credentials=True,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Content-Type", API_KEY_HEADER, "X-Request-ID"],
            expose_headers=["X-Request-ID", "Retry-After", "Location"],
        )
    app.state.metrics = Metrics(platform)
    app.add_middleware(RequestMetrics, metrics=app.state.metrics)
    app.add_middleware(CorrelationIdMiddleware)
    app.include_router(platform_router(platform))
    for demo in platform.demos.values():
        app.include_router(demo_router(platform, demo))
    for routers in platform.hook.register_routes(app=app, demos=platform.demos):
        for router in routers or []:
            app.include_router(router)
    app.include_router(unknown_demo_router(platform))
    extra = [pair for pairs in platform.hook.extra_static(demos=platform.demos) for pair in (pairs or [])]
    mount_web(app, platform, extra)
    return app


def demo_router(platform: Platform, demo: Demo) -> APIRouter:
    """The demo's routes under /api/demos/{name}, tagged with its name."""
    router = APIRouter(prefix=f"/api/demos/{demo.name}", tags=[demo.name])
    add_search_routes(router, platform, demo)
    add_item_routes(router, platform, demo)
    add_demo_job_routes(router, platform, demo)
    add_admin_routes(router, platform, demo)
    return router


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
            before = time.time() - platform.settings.visitors.expire_after_s
            try:
                if platform.queued:  # Redis: off the event loop
                    await anyio.to_thread.run_sync(platform.jobs.prune, before)
                else:
                    platform.jobs.prune(before)
            except QueueUnavailable:
                pass  # Redis is away; the next round prunes
            # Off the event loop: reaching a Milvus that is away may take its timeout.
            if await anyio.to_thread.run_sync(platform.prepare):
                await anyio.to_thread.run_sync(platform.tenancy.expire)
        except StoreUnavailable:
            pass  # Milvus is away; the next round catches up
        except Exception:
            log.exception("expiring visitor data failed")


async def _warm_up(platform: Platform) -> None:
    # In the order their samples load, so the first demos ready are warm too.
    for name, demo in sorted(platform.demos.items(), key=lambda pair: (pair[1].sample_cost, pair[0])):
        started = time.perf_counter()
        try:
            await anyio.to_thread.run_sync(demo.warm_up)
            log.info("warmed up %s in %.1f s", name, time.perf_counter() - started)
        except Exception:
            log.exception("warming up %s failed; it will load on first use", name)
