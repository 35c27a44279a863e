"""Request metrics of an aiohttp listener in LUNA's documented format.

`request_count_total{path="GET:/healthcheck",status_code="200"}`, `errors_count_total{path,
error_code}` and the `requests` duration histogram (LUNA's buckets), where `path` is the method
and the route *template* (`GET:/6/faces/{face_id}`), so the number of series stays bounded
whatever URLs clients send.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import Counter, Histogram

from services.common import metrics

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def path_label(request: web.Request) -> str:
    method = request.method if request.method in METHODS else "OTHER"
    resource = request.match_info.route.resource
    if resource is None:  # no route matched (404/405): one series for all of them
        return f"{method}:unmatched"
    return f"{method}:{resource.canonical}"


def _error_code(response: web.StreamResponse) -> str:
    body = getattr(response, "body", None)
    if isinstance(body, bytes) and body[:1] == b"{":
        try:
            code = orjson.loads(body).get("error_code")
        except (orjson.JSONDecodeError, AttributeError):
            code = None
        if isinstance(code, int):
            return str(code)
    return "unknown"


class HttpMetrics:
    """The counters, the histogram and the middleware that feeds them, for one listener."""

    def __init__(self, exposition: metrics.Exposition) -> None:
        self.exposition = exposition
        registry = exposition.registry
        self.count = Counter(
            "request_count", "Counter of requests", ["path", "status_code"], registry=registry
        )
        self.errors = Counter(
            "errors_count", "Counter of errors", ["path", "error_code"], registry=registry
        )
        self.duration = Histogram(
            "requests",
            "Request durations in seconds",
            ["path", "status_code"],
            buckets=metrics.REQUEST_BUCKETS,
            registry=registry,
        )
        # Label lookups take a lock and build tuples; the children are reused per series.
        self._series: dict[tuple[Any, int], tuple[Any, Any, str]] = {}

    def record(
        self, request: web.Request, status: int, response: web.StreamResponse | None, took: float
    ) -> None:
        # Keyed by the matched route object: resolving its template costs ~10 us a request.
        # Unmatched requests get a fresh route each time, so they are not cached.
        route = request.match_info.route
        series = self._series.get((route, status))
        if series is None:
            path, code = path_label(request), str(status)
            series = (self.count.labels(path, code), self.duration.labels(path, code), path)
            if route.resource is not None:
                self._series[(route, status)] = series
        series[0].inc()
        if status != 101:  # a websocket's "duration" is its whole session
            series[1].observe(took)
        if status >= 400:
            error_code = _error_code(response) if response is not None else "unknown"
            self.errors.labels(series[2], error_code).inc()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            self.record(request, exc.status, None, time.perf_counter() - started)
            raise
        self.record(request, response.status, response, time.perf_counter() - started)
        return response


def install(
    app: web.Application, exposition: metrics.Exposition | None = None
) -> HttpMetrics | None:
    """Outermost middleware and `GET /metrics` on `app`; nothing when metrics are disabled."""
    if not metrics.enabled():
        return None
    collected = HttpMetrics(exposition or metrics.Exposition(process=True))
    app.middlewares.insert(0, collected.middleware)
    app.router.add_get("/metrics", collected.exposition.handle)
    app["http_metrics"] = collected
    return collected


def track_events_follower(app: web.Application) -> None:
    """The lag of the gateway's EVENTS follower, on the REST listener's `/metrics`."""
    collected: HttpMetrics | None = app.get("http_metrics")
    if collected is None:
        return
    from prometheus_client import Gauge

    lag = Gauge(
        "jetstream_consumer_pending_messages",
        "Consumer lag: messages of the stream not yet delivered to this process, plus those "
        "delivered but not yet processed.",
        ["stream", "consumer"],
        registry=collected.exposition.registry,
    )
    metrics.track_consumer(
        collected.exposition, lag, "EVENTS", "gateway", lambda: app["sender_hub"].sub
    )
