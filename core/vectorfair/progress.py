"""Progress inside one item (the frames of a video, the seconds of a song).

A job counts items; an item that takes minutes calls `report_progress` from its
`parse_upload` so the job can say how far into that item it is. Outside a job
the call does nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

Reporter = Callable[[int, "int | None", str], None]
_reporter: ContextVar[Reporter | None] = ContextVar("vectorfair_progress", default=None)


def report_progress(done: int, total: int | None = None, unit: str = "steps") -> None:
    """Say that `done` of `total` `unit` of the current item are processed."""
    reporter = _reporter.get()
    if reporter is not None:
        reporter(done, total, unit)


@contextmanager
def reporting_to(reporter: Reporter | None) -> Iterator[None]:
    token = _reporter.set(reporter)
    try:
        yield
    finally:
        _reporter.reset(token)
