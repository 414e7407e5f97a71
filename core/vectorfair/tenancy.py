"""Visitors of a hosted portal: who they are, what they see, how much they may
store and when it goes.

Every row carries a `tenant` (a Milvus partition key). The shared data is
tenant "public"; with `[visitors] separate = true` each anonymous visitor is
a tenant of their own, named in a signed cookie. The core adds the tenant to
every search, item read, media read and job listing, so a demo cannot forget
it. Usage is counted from what Milvus and the media store hold; the quota
taken item by item during an upload is quotas.py.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer

from .demo import Demo
from .expr import all_of, in_list, quote
from .media import MediaStore
from .quotas import Quota, Usage
from .settings import VisitorSettings
from .store import DELETE_CHUNK, Store

log = logging.getLogger("vectorfair.tenancy")
VISITOR_ID = re.compile(r"^v[0-9a-f]{24}$")
# Rows per query when listing a tenant's rows; a visitor holds far fewer.
QUERY_LIMIT = 16384
# The tenant of shared data: the sample sets and what admins load. A
# visitor's items carry their visitor id instead.
PUBLIC_TENANT = "public"


def new_visitor_id() -> str:
    return "v" + secrets.token_hex(12)


class VisitorCookie:
    """Signs and checks the cookie that names a visitor."""

    def __init__(self, settings: VisitorSettings, data_dir: Path):
        self.settings = settings
        self._serializer = URLSafeTimedSerializer(self._secret(settings, data_dir), salt="vectorfair-visitor")

    @staticmethod
    def _secret(settings: VisitorSettings, data_dir: Path) -> str:
        if settings.secret:
            return settings.secret
        kept = data_dir / "visitor_secret"
        if not kept.is_file():
            data_dir.mkdir(parents=True, exist_ok=True)
            kept.write_text(secrets.token_hex(32))
            kept.chmod(0o600)
        return kept.read_text().strip()

    def sign(self, visitor: str) -> str:
        return self._serializer.dumps(visitor)

    def visitor(self, cookie: str | None) -> str | None:
        """The visitor a cookie names, or None when it is missing, forged or too old."""
        if not cookie or len(cookie) > 512:
            return None
        try:
            value = self._serializer.loads(cookie, max_age=self.settings.cookie_max_age_s)
        except BadSignature:
            return None
        return value if isinstance(value, str) and VISITOR_ID.match(value) else None


class Tenancy:
    def __init__(self, settings: VisitorSettings, store: Store, media: MediaStore, demos: dict[str, Demo]):
        self.settings = settings
        self.store = store
        self.media = media
        self.demos = demos
        # The quotas of ingest runs open in this process, per visitor: what
        # they have taken is not in Milvus yet but counts as used.
        self.claims_lock = threading.Lock()
        self.open_quotas: dict[str, set[Quota]] = {}
        # With the queue: the claims of every process, in Redis (queue.RedisClaims).
        self.claims = None

    @property
    def separate(self) -> bool:
        return self.settings.separate

    # -- visibility --------------------------------------------------------------
    def visible_expression(self, tenant: str) -> str:
        """The filter that keeps a search to what `tenant` may see."""
        if not self.separate:
            return ""
        if tenant == PUBLIC_TENANT:
            return f"tenant == {quote(PUBLIC_TENANT)}"
        return in_list("tenant", [PUBLIC_TENANT, tenant])

    def can_see(self, tenant: str, row: dict[str, Any]) -> bool:
        return not self.separate or row_tenant(row) in (PUBLIC_TENANT, tenant)

    def owns(self, tenant: str, row: dict[str, Any]) -> bool:
        return not self.separate or row_tenant(row) == tenant

    # -- quotas ------------------------------------------------------------------
    def usage(self, tenant: str) -> Usage:
        items: set[tuple[str, str]] = set()
        blobs: set[str] = set()
        for name, demo in self._ready_demos():
            rows = self.store.query(demo, f"tenant == {quote(tenant)}", ["item", "media", "thumb"], QUERY_LIMIT)
            items.update((name, row.get("item", "")) for row in rows)
            blobs |= _blob_keys(rows)
        return Usage(items=len(items), bytes=sum(self._blob_size(k) for k in blobs))

    def quota(self, tenant: str) -> Quota | None:
        """The quota of one ingest run of `tenant`; None when nothing limits it
        (shared data, or visitors not kept apart)."""
        if not self.separate or tenant == PUBLIC_TENANT:
            return None
        return Quota(self, tenant)

    def _blob_size(self, key: str) -> int:
        path = self.media.path(key)
        try:
            return path.stat().st_size if path else 0
        except OSError:
            return 0

    # -- deleting ----------------------------------------------------------------
    def delete_item(self, demo: Demo, item: str, tenant: str) -> int:
        """Delete every row of one item of `tenant`; its files go when no other row uses them."""
        expression = all_of(f"item == {quote(item)}", f"tenant == {quote(tenant)}")
        rows = self.store.query(demo, expression, ["id", "media", "thumb"], QUERY_LIMIT)
        self._delete_rows(demo, rows)
        self.drop_unused_blobs(_blob_keys(rows))
        return len(rows)

    def expire(self, now: float | None = None) -> dict[str, int]:
        """Delete visitor rows older than `expire_after_s`; shared data is never touched."""
        cutoff = int((now or time.time()) - self.settings.expire_after_s)
        expression = all_of(f"tenant != {quote(PUBLIC_TENANT)}", f"created < {cutoff}")
        deleted: dict[str, int] = {}
        blobs: set[str] = set()
        for name, demo in self._ready_demos():
            rows = self.store.query(demo, expression, ["id", "media", "thumb"], QUERY_LIMIT)
            if rows:
                self._delete_rows(demo, rows)
                blobs |= _blob_keys(rows)
                deleted[name] = len(rows)
        removed = self.drop_unused_blobs(blobs, older_than=cutoff)
        if deleted:
            log.info("expired visitor rows %s and %d unused files", deleted, removed)
        return deleted

    def _delete_rows(self, demo: Demo, rows: list[dict[str, Any]]) -> None:
        self.store.delete_ids(demo, [row["id"] for row in rows])

    def drop_unused_blobs(self, keys: Iterable[str], older_than: float | None = None) -> int:
        """Delete the files no row refers to any more. Blobs are shared by
        content, so another tenant's row may still use one. `older_than` spares
        a file stored again since (an upload that is being inserted now)."""
        candidates = sorted(set(keys))
        if not candidates:
            return 0
        used: set[str] = set()
        for start in range(0, len(candidates), DELETE_CHUNK):
            chunk = candidates[start : start + DELETE_CHUNK]
            expression = f"({in_list('media', chunk)}) or ({in_list('thumb', chunk)})"
            for _, demo in self._ready_demos():
                used |= _blob_keys(self.store.query(demo, expression, ["media", "thumb"], QUERY_LIMIT))
        removed = 0
        for key in candidates:
            if key in used:
                continue
            path = self.media.path(key)
            if older_than is not None and path is not None and path.stat().st_mtime >= older_than:
                continue
            self.media.delete(key)
            removed += 1
        return removed

    def _ready_demos(self) -> list[tuple[str, Demo]]:
        return [(name, demo) for name, demo in self.demos.items() if name in self.store.collections]


def row_tenant(row: dict[str, Any]) -> str:
    return row.get("tenant") or PUBLIC_TENANT


def _blob_keys(rows: list[dict[str, Any]]) -> set[str]:
    return {k for row in rows for k in (row.get("media"), row.get("thumb")) if k}
