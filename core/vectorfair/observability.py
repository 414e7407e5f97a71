"""Logs and metrics.

Every request gets an id (asgi-correlation-id: taken from a valid incoming
X-Request-ID or made, echoed in the response) that every log line written
while serving it carries. `[serve] log_format = "json"` writes one JSON
object per line (python-json-logger). Prometheus metrics (prometheus-client)
are served at /metrics from a registry of the app's own, so several apps in
one process (tests) do not collide.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from starlette.responses import Response

from .jobs import TERMINAL
from .queue import QueueUnavailable

access_log = logging.getLogger("vectorfair.access")


def logging_config(log_format: str = "text", level: str = "INFO") -> dict[str, Any]:
    """A logging.config.dictConfig for the app and uvicorn alike."""
    formatters = {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
        "text": {"format": "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"},
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "vectorfair.observability.RequestIdFilter"}},
        "formatters": {log_format: formatters[log_format]},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": log_format,
                "filters": ["request_id"],
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["default"], "level": level.upper()},
        "loggers": {
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            # vectorfair.access writes one line per request with its fields.
            "uvicorn.access": {"handlers": [], "propagate": False},
        },
    }


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to every record ("-" outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        from asgi_correlation_id import correlation_id

        record.request_id = correlation_id.get() or "-"
        return True


class Metrics:
    def __init__(self, platform):
        self.platform = platform
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "vectorfair_http_requests", "HTTP requests answered", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "vectorfair_http_request_duration_seconds",
            "Time to answer an HTTP request",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.batch_size = Histogram(
            "vectorfair_encoder_batch_size",
            "Queries encoded together in one model call",
            ["demo"],
            registry=self.registry,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
        )
        self.registry.register(_JobCollector(platform))
        platform.batch_listeners.append(lambda demo, size: self.batch_size.labels(demo).observe(size))

    def response(self) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


class _JobCollector:
    """Job gauges, read from the job table at each scrape."""

    def __init__(self, platform):
        self.platform = platform

    def collect(self):
        jobs = GaugeMetricFamily("vectorfair_jobs", "Jobs by demo and state", labels=["demo", "state"])
        items = GaugeMetricFamily(
            "vectorfair_job_items", "Items processed by the jobs that are not finished", labels=["demo", "outcome"]
        )
        left = GaugeMetricFamily(
            "vectorfair_job_items_total_expected",
            "Items the unfinished jobs hold in all (where known)",
            labels=["demo"],
        )
        states: dict[tuple[str, str], int] = {}
        progress: dict[tuple[str, str], int] = {}
        expected: dict[str, int] = {}
        try:
            found = self.platform.list_jobs()
        except QueueUnavailable:  # Redis is away: no job gauges this scrape
            found = []
        for job in found:
            states[job.demo, job.state] = states.get((job.demo, job.state), 0) + 1
            if job.state in TERMINAL:
                continue
            for outcome, count in (
                ("stored", job.done - job.duplicates),
                ("duplicate", job.duplicates),
                ("failed", job.failed),
            ):
                progress[job.demo, outcome] = progress.get((job.demo, outcome), 0) + count
            expected[job.demo] = expected.get(job.demo, 0) + (job.total or 0)
        for (demo, state), count in states.items():
            jobs.add_metric([demo, state], count)
        for (demo, outcome), count in progress.items():
            items.add_metric([demo, outcome], count)
        for demo, count in expected.items():
            left.add_metric([demo], count)
        yield from (jobs, items, left)


class RequestMetrics:
    """Counts and times every request under its route template (never the raw
    path, which would make a label per item id), and logs one access line."""

    def __init__(self, app, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = [500]

        async def send_status(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            elapsed = time.perf_counter() - started
            self.metrics.requests.labels(scope["method"], route, str(status[0])).inc()
            self.metrics.latency.labels(scope["method"], route).observe(elapsed)
            access_log.info(
                "%s %s %d %.1f ms",
                scope["method"],
                scope["path"],
                status[0],
                elapsed * 1000,
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "route": route,
                    "status": status[0],
                    "duration_ms": round(elapsed * 1000, 2),
                    "client": (scope.get("client") or ("-",))[0],
                    "visitor": scope.get("state", {}).get("visitor"),
                },
            )
