"""What stands between the public and the API: who is asking (visitor
cookie, admin key), how often (rate limits) and which headers every answer
carries. Pure ASGI middleware, so streamed answers (SSE, media) pass through
untouched."""

from __future__ import annotations

import math
import re
import secrets
import time
from http.cookies import SimpleCookie

import anyio
from fastapi import HTTPException, Request, Security
from fastapi.security import APIKeyHeader
from limits import parse_many
from limits.errors import StorageError
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from starlette.datastructures import MutableHeaders
from starlette.responses import JSONResponse

from .settings import Settings
from .tenancy import PUBLIC_TENANT, VisitorCookie, new_visitor_id

API_KEY_HEADER = "X-API-Key"
api_key_header = APIKeyHeader(
    name=API_KEY_HEADER, auto_error=False, description="the admin key of the deployment ([admin] api_key)"
)


def is_admin(settings: Settings, presented: str | None) -> bool:
    key = settings.admin.api_key
    if not key:
        # No key set: a local install is its own admin; a portal has none.
        return not settings.visitors.separate
    return bool(presented) and secrets.compare_digest(presented.encode(), key.encode())


def is_admin_request(request: Request) -> bool:
    return is_admin(request.app.state.platform.settings, request.headers.get(API_KEY_HEADER))


def tenant_of(request: Request) -> str:
    """Whose data a request reads and writes: a visitor's own tenant, or the
    shared data for an admin and for installs without separate visitors."""
    if not request.app.state.platform.settings.visitors.separate or is_admin_request(request):
        return PUBLIC_TENANT
    return request.scope.get("state", {}).get("visitor") or PUBLIC_TENANT


async def require_admin(request: Request, api_key: str | None = Security(api_key_header)) -> None:
    """Dependency of the admin routes."""
    settings: Settings = request.app.state.platform.settings
    if is_admin(settings, api_key):
        return
    if not settings.admin.api_key:
        raise HTTPException(403, "admin routes are off on this portal: no [admin] api_key is configured")
    if not api_key:
        raise HTTPException(
            401,
            f"this route is for admins: send the admin key in the {API_KEY_HEADER} header",
            headers={"WWW-Authenticate": API_KEY_HEADER},
        )
    raise HTTPException(403, f"the {API_KEY_HEADER} header does not hold the admin key")


class VisitorCookies:
    """Puts the visitor's id in `scope["state"]["visitor"]`, minting one (and
    setting its signed cookie) for a new visitor or a forged cookie."""

    def __init__(self, app, cookie: VisitorCookie):
        self.app = app
        self.cookie = cookie
        self.settings = cookie.settings

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        jar = SimpleCookie()
        for name, value in scope.get("headers") or []:
            if name == b"cookie":
                try:
                    jar.load(value.decode("latin-1"))
                except Exception:  # a malformed Cookie header: treat as none
                    pass
        morsel = jar.get(self.settings.cookie_name)
        visitor = self.cookie.visitor(morsel.value if morsel else None)
        fresh = visitor is None
        if fresh:
            visitor = new_visitor_id()
        scope.setdefault("state", {})["visitor"] = visitor
        if not fresh:
            return await self.app(scope, receive, send)
        secure = self.settings.cookie_secure == "always" or (
            self.settings.cookie_secure == "auto" and scope.get("scheme") == "https"
        )
        cookie = (
            f"{self.settings.cookie_name}={self.cookie.sign(visitor)}; Path=/; HttpOnly; SameSite=Lax; "
            f"Max-Age={self.settings.cookie_max_age_s}" + ("; Secure" if secure else "")
        )

        async def send_with_cookie(message):
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append("set-cookie", cookie)
            await send(message)

        await self.app(scope, receive, send_with_cookie)


# Which limit a request counts against: searches and uploads cost a model
# call (and uploads disk), the rest of the API is cheap.
_SEARCH = re.compile(r"^/api/demos/[^/]+/search$")
_UPLOAD = re.compile(r"^/api/demos/[^/]+/(items|jobs)$")
_UNLIMITED = ("/healthz", "/readyz", "/metrics", "/static/")
# What a 503 asks the client to wait (Milvus, Redis or S3 away).
RETRY_AFTER_SECONDS = 5
# The limit counts in Redis are read in a thread at every request: a Redis
# that is away must answer within a second, never hold a thread for long.
_REDIS_OPTIONS = {"socket_connect_timeout": 1.0, "socket_timeout": 1.0}


class RateLimits:
    """429 with Retry-After when a client address goes over its limit
    (counted by the `limits` library, moving window)."""

    def __init__(self, app, settings: Settings):
        self.app = app
        self.settings = settings
        config = settings.rate_limits
        # wrap_exceptions: a Redis that is away raises StorageError, answered 503.
        # In Redis the counts are read in a thread, never on the event loop; in
        # memory they are the loop's own.
        self.remote = config.storage_uri.startswith(("redis", "rediss"))
        options = _REDIS_OPTIONS if self.remote else {}
        self.limiter = MovingWindowRateLimiter(storage_from_string(config.storage_uri, wrap_exceptions=True, **options))
        self.rules = {kind: parse_many(getattr(config, kind)) for kind in ("search", "upload", "api")}

    def kind(self, method: str, path: str) -> str | None:
        if path.startswith(_UNLIMITED):
            return None
        if method == "POST" and _SEARCH.match(path):
            return "search"
        if method == "POST" and _UPLOAD.match(path):
            return "upload"
        return "api"

    def count(self, rule, kind: str, client: str) -> tuple[bool, float | None]:
        """Count the request; whether it is allowed, and if not when the window resets."""
        allowed = self.limiter.hit(rule, kind, client)
        return allowed, None if allowed else self.limiter.get_window_stats(rule, kind, client)[0]

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        kind = self.kind(scope["method"], scope["path"])
        headers = dict(scope.get("headers") or [])
        presented = headers.get(API_KEY_HEADER.lower().encode(), b"").decode("latin-1")
        if kind is None or (self.settings.admin.api_key and is_admin(self.settings, presented)):
            return await self.app(scope, receive, send)
        client = (scope.get("client") or ("unknown", 0))[0]
        for rule in self.rules[kind]:
            try:
                if self.remote:
                    allowed, reset = await anyio.to_thread.run_sync(self.count, rule, kind, client)
                else:
                    allowed, reset = self.count(rule, kind, client)
            except StorageError:
                response = JSONResponse(
                    {"detail": "the rate limit counts (Redis) are unreachable; retry in a few seconds"},
                    status_code=503,
                    headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
                )
                return await response(scope, receive, send)
            if not allowed:
                wait = max(1, math.ceil(reset - time.time()))
                response = JSONResponse(
                    {
                        "detail": f"too many {'requests' if kind == 'api' else kind + ' requests'} from your address "
                        f"(limit {rule}); "
                        f"retry in {wait} s"
                    },
                    status_code=429,
                    headers={"Retry-After": str(wait)},
                )
                return await response(scope, receive, send)
        await self.app(scope, receive, send)


class ResponseHeaders:
    """Adds the configured headers (security headers by default) to every
    response that does not set them itself."""

    def __init__(self, app, headers: dict[str, str]):
        self.app = app
        self.headers = [(k.lower(), v) for k, v in headers.items()]

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not self.headers:
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers:
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
