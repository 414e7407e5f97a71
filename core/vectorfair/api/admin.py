"""A demo's collection: its size and index (GET /stats), and the admin's
DELETE /items (drop everything) and POST /reload (drop, load the sample)."""

from typing import Any

import anyio
from fastapi import APIRouter, Depends, Request

from ..demo import Demo
from ..guard import require_admin, tenant_of
from ..jobs import JobSource
from ..runtime import Platform
from .jobs import job_created, on_platform
from .schemas import ADMIN_ERRORS, ERRORS, FieldStats, JobCreated, Stats, VectorStats


def add_admin_routes(router: APIRouter, platform: Platform, demo: Demo) -> None:
    """Add GET /stats, DELETE /items and POST /reload to the demo's router.
    Dropping answers 409 while the demo has running jobs (DemoBusy)."""
    name = demo.name

    @router.get("/stats", response_model=Stats, responses=ERRORS, summary=f"Size and index of {demo.title}")
    async def stats(request: Request):
        tenant = tenant_of(request)
        return await anyio.to_thread.run_sync(lambda: collection_stats(platform, demo, tenant))

    @router.delete(
        "/items",
        responses=ADMIN_ERRORS,
        summary=f"Drop every item of {demo.title} (admin)",
        dependencies=[Depends(require_admin)],
    )
    async def drop_items() -> dict[str, Any]:
        """Deletes the demo's collection, everyone's items included, and creates it empty again."""
        await anyio.to_thread.run_sync(platform.drop_and_recreate, name)
        return {"demo": name, "dropped": True}

    @router.post(
        "/reload",
        response_model=JobCreated,
        status_code=202,
        responses=ADMIN_ERRORS,
        summary=f"Drop {demo.title} and load its sample data again (admin)",
        dependencies=[Depends(require_admin)],
    )
    async def reload():
        """Starts from a clean collection holding the sample data only; follow the job like any other."""
        await anyio.to_thread.run_sync(platform.drop_and_recreate, name)
        job = await on_platform(platform, platform.submit_job, name, JobSource("sample"), "sample data (reload)")
        return job_created(job)


def collection_stats(platform: Platform, demo: Demo, tenant: str) -> Stats:
    """The demo's collection as `tenant` sees it (blocking: it asks Milvus)."""
    platform.require(demo.name)
    info = platform.store.collections[demo.name]
    vectors = [
        VectorStats(
            name=v.name,
            declared_kind=v.declared.kind,
            kind=v.stored.kind,
            dim=v.stored.dim,
            metric=v.stored.metric,
            index_type=v.index_type,
            index_params=v.index_params,
            search_params=v.search_params(10),
        )
        for v in info.vectors.values()
    ]
    first = vectors[0]
    return Stats(
        demo=demo.name,
        count=platform.count_items(demo, tenant),
        rows=platform.count_visible(demo, tenant),
        collection=info.name,
        backend=platform.store.backend,
        index_type=first.index_type,
        index_params=first.index_params,
        search_params=first.search_params,
        metric=first.metric,
        dim=first.dim,
        vectors=vectors,
        fields=[
            FieldStats(name=f.name, kind=f.kind, index=info.scalar_indexes.get(f.name), description=f.description)
            for f in demo.fields
        ],
        active_jobs=len(platform.active_jobs(demo.name)),
    )
