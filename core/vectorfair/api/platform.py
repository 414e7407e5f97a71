"""Routes of the platform rather than of one demo: health, readiness, the
plugins and demos, Prometheus metrics, and 404s for unknown demos."""

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from ..contract import accepted_suffixes, takes_records
from ..demo import Demo
from ..guard import tenant_of
from ..runtime import DemoNotReady, Platform
from ..store import StoreUnavailable
from ..tenancy import PUBLIC_TENANT
from .errors import RETRY_AFTER_SECONDS, bad_request
from .jobs import add_job_routes
from .schemas import DemoInfo, PluginOut


def platform_router(platform: Platform) -> APIRouter:
    """/healthz, /readyz, /api/plugins, /api/demos, /api/jobs… and /metrics (when on)."""
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

    add_job_routes(router, platform)

    if platform.settings.http.metrics:

        @router.get(
            "/metrics",
            response_class=PlainTextResponse,
            responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
        )
        async def metrics(request: Request):
            """Prometheus metrics: requests, latencies, encoder batch sizes, jobs."""
            metrics = request.app.state.metrics
            # The job gauges read Redis with the queue: off the event loop then.
            if platform.queued:
                return await anyio.to_thread.run_sync(metrics.response)
            return metrics.response()

    return router


def demo_info(platform: Platform, demo: Demo, tenant: str = PUBLIC_TENANT) -> DemoInfo:
    """What /api/demos and `vectorfair demos` say about a demo (blocking: it counts in Milvus)."""
    count, rows, status = None, None, "ready"
    if demo.name in platform.demo_errors:
        status = platform.demo_errors[demo.name]
    else:
        try:
            platform.require(demo.name)
            count, rows = platform.count_items(demo, tenant), platform.count_visible(demo, tenant)
        except StoreUnavailable:
            status = "Milvus unreachable"
        except DemoNotReady as exc:
            status = str(exc)
    return DemoInfo(
        name=demo.name,
        title=demo.title,
        description=demo.description,
        inputs=list(demo.inputs),
        accepts=list(accepted_suffixes(demo)),
        accepts_records=takes_records(demo),
        sample_query=demo.sample_query,
        count=count,
        rows=rows,
        item_noun=demo.item_noun,
        row_noun=demo.row_noun,
        loading=bool(platform.active_jobs(demo.name)),
        status=status,
        sample_error=platform.sample_failure(demo.name),
    )


def unknown_demo_router(platform: Platform) -> APIRouter:
    """404s that name the enabled demos (included last, after every demo's routes)."""
    router = APIRouter(include_in_schema=False)

    @router.api_route("/api/demos/{name}/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    @router.api_route("/api/demos/{name}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    async def unknown(name: str, rest: str = ""):
        if name in platform.demos:
            raise bad_request(404, f"demo {name!r} has no route {rest!r}; see /docs")
        raise bad_request(404, f"no demo {name!r}; enabled demos: {', '.join(platform.demos) or 'none'}")

    return router
