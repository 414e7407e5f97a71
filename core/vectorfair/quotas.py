"""How much a visitor of a hosted portal may store, taken item by item.

Usage is counted from what Milvus and the media store hold (`Tenancy.usage`),
so there is no second ledger to drift from the data; only the items of
ingest runs still open are held here, in memory, until they are stored or
refused. With the queue (`[queue] redis_url`), those claims are held in Redis
instead (`queue.RedisClaims`), so runs in every web and worker process count
against one another. `Tenancy.quota(tenant)` builds a visitor's `Quota` for one run.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import TYPE_CHECKING, Any

from .demo import Upload

if TYPE_CHECKING:
    from .tenancy import Tenancy

# Starts every quota refusal, so the API can answer 403 when nothing else failed.
QUOTA_REFUSAL = "over your quota: "


@dataclasses.dataclass
class Usage:
    items: int = 0
    bytes: int = 0


class Quota:
    """What a visitor may still store in one ingest run, taken item by item.

    Items other runs of the same visitor have taken but not finished count as
    used, so parallel uploads cannot pass the limit together. The stored part
    is recounted from Milvus whenever one of those runs has ended since.
    """

    def __init__(self, tenancy: Tenancy, tenant: str):
        self.tenancy = tenancy
        self.tenant = tenant
        self.settings = tenancy.settings
        self.claimed = Usage()
        self._stored: Usage | None = None
        self.run_id = uuid.uuid4().hex
        self._generation: int | None = None

    def take(self, source: Any) -> str | None:
        """None when the item fits (and is counted), else why it does not."""
        size = len(source.data) if isinstance(source, Upload) else 0
        if self.tenancy.claims is not None:
            return self._take_shared(size)
        with self.tenancy.claims_lock:
            runs = self.tenancy.open_quotas.setdefault(self.tenant, set())
            runs.add(self)
            if self._stored is None:
                # Items of a run still open may be both stored and claimed: counted
                # twice until it ends, which refuses early rather than late.
                self._stored = self.tenancy.usage(self.tenant)
            items_used = self._stored.items + sum(run.claimed.items for run in runs)
            bytes_used = self._stored.bytes + sum(run.claimed.bytes for run in runs)
            refusal = self._refusal(items_used, bytes_used, size)
            if refusal:
                return refusal
            self.claimed.items += 1
            self.claimed.bytes += size
        return None

    def _refusal(self, items_used: int, bytes_used: int, size: int) -> str | None:
        later = f"delete some of your items or wait until they expire ({_duration(self.settings.expire_after_s)} after upload)"
        if self.settings.max_items and items_used >= self.settings.max_items:
            return f"{QUOTA_REFUSAL}all {self.settings.max_items} items of it are used; {later}"
        if self.settings.max_bytes and bytes_used + size > self.settings.max_bytes:
            return (
                f"{QUOTA_REFUSAL}this file ({size} bytes) does not fit the "
                f"{max(self.settings.max_bytes - bytes_used, 0)} bytes left of {self.settings.max_bytes}; {later}"
            )
        return None

    def _take_shared(self, size: int) -> str | None:
        """`take` against the claims of every process, checked and counted in one Redis script."""
        claims = self.tenancy.claims
        generation = claims.generation(self.tenant)
        if self._stored is None or generation != self._generation:
            # Another run ended since: what it stored is in Milvus now.
            self._stored, self._generation = self.tenancy.usage(self.tenant), generation
        taken, items_used, bytes_used = claims.take(
            self.tenant, self.run_id, self._stored, size, self.settings.max_items, self.settings.max_bytes
        )
        if taken:
            self.claimed.items += 1
            self.claimed.bytes += size
            return None
        return self._refusal(items_used, bytes_used, size) or f"{QUOTA_REFUSAL}it is used up"

    def release(self) -> None:
        """The run is over: what it stored is in Milvus now, the rest is free again."""
        if self.tenancy.claims is not None:
            self.tenancy.claims.release(self.tenant, self.run_id)
            self.claimed, self._stored = Usage(), None
            return
        with self.tenancy.claims_lock:
            runs = self.tenancy.open_quotas.get(self.tenant, set())
            runs.discard(self)
            for other in runs:
                other._stored = None
            if not runs:
                self.tenancy.open_quotas.pop(self.tenant, None)
            self.claimed = Usage()
            self._stored = None


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:g} h"
    if seconds >= 60:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"
