"""Jobs: bulk loads in the background. /api/jobs lists, follows and cancels
them; POST /api/demos/{demo}/jobs starts one."""

import asyncio
import json
import logging
import time

import anyio
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from sse_starlette.sse import EventSourceResponse
from starlette.datastructures import UploadFile

from ..contract import accepted_suffixes
from ..demo import Demo
from ..guard import API_KEY_HEADER, is_admin_request, require_admin, tenant_of
from ..jobs import TERMINAL, Job, JobSource
from ..queue import QueueUnavailable
from ..runtime import Platform
from ..tenancy import PUBLIC_TENANT
from .errors import bad_request
from .schemas import ADMIN_ERRORS, ERRORS, ErrorBody, JobCreated, JobOut
from .uploads import json_body, read_form, safe_name, save_archive, save_single

log = logging.getLogger("vectorfair.api")
# How long a job's event stream waits for a Redis that is away before it gives up.
STREAM_PATIENCE_S = 60.0


async def on_platform(platform: Platform, call, *args):
    """Run a job call of the platform. With the queue it reaches Redis (and
    the media bucket), so it runs in a thread; the embedded job runner is the
    event loop's own (its queue, its job objects) and is called on the loop."""
    if platform.queued:
        return await anyio.to_thread.run_sync(call, *args)
    return call(*args)


def add_job_routes(router: APIRouter, platform: Platform) -> None:
    """Add GET /api/jobs, GET and DELETE /api/jobs/{job_id} and its events."""

    @router.get("/api/jobs", response_model=list[JobOut], tags=["jobs"], responses={422: {"model": ErrorBody}})
    async def list_jobs(request: Request, demo: str | None = None, limit: int = Query(50, ge=1, le=500)):
        """Recent jobs (a visitor's own), newest first."""
        tenant = None if is_admin_request(request) else tenant_of(request)
        jobs = await on_platform(platform, platform.list_jobs, demo, tenant, limit)
        return [j.public() for j in jobs]

    @router.get("/api/jobs/{job_id}", response_model=JobOut, tags=["jobs"], responses=ERRORS)
    async def get_job(job_id: str, request: Request):
        """A job's state and progress, with the errors of failed items."""
        return (await job_or_404(platform, job_id, request)).public()

    @router.delete("/api/jobs/{job_id}", response_model=JobOut, tags=["jobs"], responses=ERRORS)
    async def cancel_job(job_id: str, request: Request):
        """Cancel a queued or running job; items stored before it stops are kept."""
        await job_or_404(platform, job_id, request)
        return (await on_platform(platform, platform.cancel_job, job_id)).public()

    @router.get("/api/jobs/{job_id}/events", tags=["jobs"], responses=ERRORS)
    async def job_events(job_id: str, request: Request):
        """Server-sent events: a `progress` event at each change, then one `end` event.
        With the queue, any web process streams any job (read from Redis); while
        Redis is away the stream waits, and says so with an `error` event after a minute."""
        job = await job_or_404(platform, job_id, request)

        async def stream():
            nonlocal job
            sent, away_since = -1, None
            while True:
                if await request.is_disconnected():
                    return
                if platform.queued:
                    try:
                        job = await anyio.to_thread.run_sync(platform.job, job_id) or job
                        away_since = None
                    except QueueUnavailable as exc:
                        away_since = away_since or time.monotonic()
                        if time.monotonic() - away_since > STREAM_PATIENCE_S:
                            yield {"event": "error", "data": json.dumps({"detail": str(exc)})}
                            return
                if job.version != sent:
                    sent = job.version
                    final = job.state in TERMINAL
                    yield {"event": "end" if final else "progress", "data": json.dumps(job.public())}
                    if final:
                        return
                await asyncio.sleep(0.2)

        return EventSourceResponse(stream(), ping=15)


def may_see_job(request: Request, job: Job) -> bool:
    return is_admin_request(request) or job.tenant == tenant_of(request)


async def job_or_404(platform: Platform, job_id: str, request: Request) -> Job:
    job = await on_platform(platform, platform.job, job_id)
    # Another visitor's job is "not found" too: its existence is not theirs to know.
    if job is None or not may_see_job(request, job):
        raise bad_request(404, f"no job {job_id[:64]!r}; GET /api/jobs lists your jobs")
    return job


def job_created(job: Job) -> JSONResponse:
    """202 with where to follow the job."""
    return JSONResponse(
        {"job_id": job.id, "status_url": f"/api/jobs/{job.id}", "events_url": f"/api/jobs/{job.id}/events"},
        status_code=202,
        headers={"Location": f"/api/jobs/{job.id}"},
    )


async def submit_kept(platform: Platform, demo: str, source: JobSource, label: str, tenant: str) -> Job:
    """Queue a job on an upload kept in the uploads directory; with the queue,
    the upload goes to the shared media store first, so any worker can run it."""

    def submit() -> Job:
        try:
            platform.kept_uploads.keep(platform.uploads_dir / source.file)
            return platform.submit_job(demo, source, label=label, tenant=tenant)
        except BaseException:
            try:
                platform.kept_uploads.delete(source.file)
            except Exception:  # the media store is away too: the error that counts is the first
                log.warning("the upload %s of a job not queued could not be removed", source.file, exc_info=True)
            raise

    return await on_platform(platform, submit)


def add_demo_job_routes(router: APIRouter, platform: Platform, demo: Demo) -> None:
    """Add POST /api/demos/{demo}/jobs: an archive, one long file, or the sample data."""
    name = demo.name
    limits = platform.settings.limits

    async def create_job(request: Request):
        content_type = request.headers.get("content-type", "")
        tenant = tenant_of(request)
        # Off the event loop: reaching a Milvus that is away may take its timeout.
        await anyio.to_thread.run_sync(platform.require, name)
        if content_type.startswith("application/json"):
            body = await json_body(request)
            if not isinstance(body, dict) or body.get("sample") is not True or set(body) - {"sample"}:
                raise bad_request(422, 'send {"sample": true} to load the sample data, or upload an archive')
            # The sample is shared data: loading it is an admin's call.
            await require_admin(request, request.headers.get(API_KEY_HEADER))
            job = await on_platform(
                platform, lambda: platform.submit_job(name, JobSource("sample"), label="sample data")
            )
        else:
            visitors = platform.settings.visitors
            active = await on_platform(platform, lambda: platform.active_jobs(tenant=tenant))
            if tenant != PUBLIC_TENANT and len(active) >= visitors.max_active_jobs:
                raise HTTPException(
                    429,
                    f"you have {visitors.max_active_jobs} jobs queued or running; wait for one "
                    "to end (GET /api/jobs) or cancel it",
                    headers={"Retry-After": "10"},
                )
            form = await read_form(
                request, 'multipart/form-data with an `archive` or `file` field, or JSON {"sample": true}'
            )
            archive, single = form.get("archive"), form.get("file")
            if isinstance(archive, UploadFile):
                stored = await save_archive(platform, archive)
                job = await submit_kept(
                    platform, name, JobSource("archive", stored.name), safe_name(archive.filename or "archive"), tenant
                )
            elif isinstance(single, UploadFile) and accepted_suffixes(demo):
                stored = await save_single(platform, single, demo, limits)
                job = await submit_kept(
                    platform, name, JobSource("file", stored.name), safe_name(single.filename), tenant
                )
            else:
                raise bad_request(
                    422,
                    "send a zip or tar as a multipart file field named `archive`"
                    + (
                        f", or one long file ({', '.join(accepted_suffixes(demo))}) as `file`"
                        if accepted_suffixes(demo)
                        else ""
                    ),
                )
        return job_created(job)

    router.add_api_route(
        "/jobs",
        create_job,
        methods=["POST"],
        status_code=202,
        response_model=JobCreated,
        responses=ADMIN_ERRORS,
        summary=f"Bulk-load {demo.title}",
        description="Loads an archive (zip or tar of items), one long file, or the demo's sample data (admins only) "
        "in the background. Follow it with GET /api/jobs/{job_id} or its server-sent events.",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "archive": {
                                    "type": "string",
                                    "format": "binary",
                                    "description": "zip, tar, tar.gz, tar.bz2 or tar.xz",
                                },
                                "file": {
                                    "type": "string",
                                    "format": "binary",
                                    "description": "or one file that takes long to process (a video, a recording)",
                                },
                            },
                        }
                    },
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["sample"],
                            "properties": {"sample": {"type": "boolean", "enum": [True]}},
                        }
                    },
                },
            }
        },
    )
