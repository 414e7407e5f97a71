"""How much a visitor of a hosted portal may store, taken item by item.

Usage is counted from what Milvus and the media store hold (`Tenancy.usage`),
so there is no second ledger to drift from the data; only the items of
ingest runs still open are held here, in memory, until they are stored or
refused. `Tenancy.quota(tenant)` builds a visitor's `Quota` for one run.
"""

from __future__ import annotations

import dataclasses
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

    def take(self, source: Any) -> str | None:
        """None when the item fits (and is counted), else why it does not."""
        size = len(source.data) if isinstance(source, Upload) else 0
        later = f"delete some of your items or wait until they expire ({_duration(self.settings.expire_after_s)} after upload)"
        with self.tenancy.claims_lock:
            runs = self.tenancy.open_quotas.setdefault(self.tenant, set())
            runs.add(self)
            if self._stored is None:
                # Items of a run still open may be both stored and claimed: counted
                # twice until it ends, which refuses early rather than late.
                self._stored = self.tenancy.usage(self.tenant)
            items_used = self._stored.items + sum(run.claimed.items for run in runs)
            bytes_used = self._stored.bytes + sum(run.claimed.bytes for run in runs)
            if self.settings.max_items and items_used >= self.settings.max_items:
                return f"{QUOTA_REFUSAL}all {self.settings.max_items} items of it are used; {later}"
            if self.settings.max_bytes and bytes_used + size > self.settings.max_bytes:
                return (
                    f"{QUOTA_REFUSAL}this file ({size} bytes) does not fit the "
                    f"{max(self.settings.max_bytes - bytes_used, 0)} bytes left of {self.settings.max_bytes}; {later}"
                )
            self.claimed.items += 1
            self.claimed.bytes += size
        return None

    def release(self) -> None:
        """The run is over: what it stored is in Milvus now, the rest is free again."""
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
