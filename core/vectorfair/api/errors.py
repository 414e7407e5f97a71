"""Errors as JSON: the app's exception handlers, the request body limit and
the wording of validation errors. Every error has a 4xx/5xx status and a
`detail` that says what to do."""

import json
import logging
import uuid
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from ..guard import RETRY_AFTER_SECONDS
from ..media import KeptUploadsUnavailable
from ..queue import QueueUnavailable
from ..runtime import DemoBusy, DemoNotReady
from ..store import StoreUnavailable

log = logging.getLogger("vectorfair.api")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StoreUnavailable)
    async def store_unavailable(request: Request, exc: StoreUnavailable):
        return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})

    @app.exception_handler(QueueUnavailable)
    async def queue_unavailable(request: Request, exc: QueueUnavailable):
        return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})

    @app.exception_handler(KeptUploadsUnavailable)
    async def kept_uploads_unavailable(request: Request, exc: KeptUploadsUnavailable):
        return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})

    @app.exception_handler(DemoNotReady)
    async def demo_not_ready(request: Request, exc: DemoNotReady):
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(DemoBusy)
    async def demo_busy(request: Request, exc: DemoBusy):
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        return JSONResponse(
            {"detail": "invalid request: " + validation_text(exc.errors()), "errors": _jsonable(exc.errors())},
            status_code=422,
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        reference = uuid.uuid4().hex[:12]
        log.exception("unhandled error %s on %s %s", reference, request.method, request.url.path)
        return JSONResponse(
            {"detail": f"internal error (reference {reference}); the server log has the details"}, status_code=500
        )


def validation_text(errors) -> str:
    """Pydantic errors as one line: `location: message; ...`."""
    parts = []
    for error in errors:
        location = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body",)) or "body"
        parts.append(f"{location}: {error.get('msg')}")
    return "; ".join(parts)


def _jsonable(errors) -> list[dict[str, Any]]:
    return json.loads(
        json.dumps([{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in errors], default=str)
    )


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
