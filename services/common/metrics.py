"""Prometheus metrics of every process: one gRPC server interceptor (RPC counts and latencies),
a `/metrics` HTTP endpoint per gRPC service, JetStream consumer lag, and the figures
`luna status` prints.

Each process owns an `Exposition` (a registry plus async refreshers run just before a scrape,
for values that need I/O such as consumer lag). Services add their own metrics to
`PROCESS.registry`; the gateway keeps one exposition per listener so the REST and Sender
`/metrics` each describe their own requests, as LUNA's services do.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import grpc
import prometheus_client
from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.parser import text_string_to_metric_families

from services.common import config

log = logging.getLogger("luna.metrics")

# `*_created` series double the output for nothing a LUNA dashboard reads.
prometheus_client.disable_created_metrics()

ENABLED = config.declare(
    "LUNA_METRICS_ENABLED",
    True,
    "Collect Prometheus metrics: `/metrics` on the REST and Sender listeners and on each gRPC "
    "service's metrics address. 0 turns collection and those endpoints off.",
)
# LUNA's documented request histogram buckets (service manuals, "Metrics").
REQUEST_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
)
METRICS_PORT_OFFSET = config.METRICS_PORT_OFFSET


def enabled() -> bool:
    return ENABLED.get_bool()


def metrics_address(service: str) -> str:
    """host:port of `service`'s Prometheus endpoint; empty for none."""
    return config.METRICS_ADDRESSES[service].get()


Refresher = Callable[[], Awaitable[None]]


class Exposition:
    """A registry and the async refreshers that update its I/O-bound gauges on scrape."""

    def __init__(self, *, process: bool = False) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.refreshers: list[Refresher] = []
        if process:
            ProcessCollector(registry=self.registry)

    def add_refresher(self, refresher: Refresher) -> None:
        self.refreshers.append(refresher)

    async def render(self) -> bytes:
        for refresh in self.refreshers:
            try:
                await refresh()
            except Exception:  # a failed refresh keeps the last value; the scrape still answers
                log.exception("metrics refresher failed")
        return generate_latest(self.registry)

    async def handle(self, request: web.Request) -> web.Response:
        body = await self.render()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


# The gRPC services' exposition (one process each).
PROCESS = Exposition(process=True)

RPC_HANDLED = Counter(
    "grpc_server_handled",
    "RPCs completed on the server, by method and gRPC status code.",
    ["grpc_method", "grpc_code"],
    registry=PROCESS.registry,
)
RPC_SECONDS = Histogram(
    "grpc_server_handling_seconds",
    "Time from receiving an RPC to its last reply, by method.",
    ["grpc_method"],
    buckets=REQUEST_BUCKETS,
    registry=PROCESS.registry,
)
CONSUMER_PENDING = Gauge(
    "jetstream_consumer_pending_messages",
    "Consumer lag: messages of the stream not yet delivered to this process, plus those "
    "delivered but not yet processed.",
    ["stream", "consumer"],
    registry=PROCESS.registry,
)


_INT_CODES = {c.value[0]: c.name for c in grpc.StatusCode}


def _code_of(context: grpc.aio.ServicerContext, default: str) -> str:
    """The status the handler set (abort or set_code), else `default`."""
    with contextlib.suppress(Exception):
        code = context.code()
        if isinstance(code, grpc.StatusCode):
            return code.name
        if isinstance(code, int) and code in _INT_CODES:
            return _INT_CODES[code]
    return default


_CHILDREN: dict[tuple[Any, ...], Any] = {}


def _child(metric: Any, *labels: str) -> Any:
    """`metric.labels(*labels)`, memoised: methods and codes are a small fixed set."""
    key = (metric, *labels)
    child = _CHILDREN.get(key)
    if child is None:
        child = _CHILDREN[key] = metric.labels(*labels)
    return child


class CallMetrics:
    """One method's call count by final status code, and its call durations."""

    __slots__ = ("method", "seconds")

    def __init__(self, method: str) -> None:
        self.method = method
        self.seconds = _child(RPC_SECONDS, method)

    def done(self, context: grpc.aio.ServicerContext, started: float, outcome: str) -> None:
        self.seconds.observe(time.perf_counter() - started)
        _child(RPC_HANDLED, self.method, _code_of(context, outcome)).inc()


def track_consumer(
    exposition: Exposition, gauge: Gauge, stream: str, consumer: str, get_sub: Callable[[], Any]
) -> None:
    """Report the lag of the JetStream push subscription `get_sub()` (re-read at each scrape,
    since a follower may replace it) as `gauge{stream, consumer}`."""
    child = gauge.labels(stream, consumer)

    async def refresh() -> None:
        sub = get_sub()
        if sub is None:
            return
        info = await sub.consumer_info()
        child.set((info.num_pending or 0) + (info.num_ack_pending or 0) + sub.pending_msgs)

    exposition.add_refresher(refresh)


async def start_http(address: str, exposition: Exposition = PROCESS) -> web.AppRunner | None:
    """Serve `GET /metrics` of `exposition` on `address` (host:port); None when disabled."""
    if not enabled() or not address:
        return None
    host, _, port = address.rpartition(":")
    app = web.Application()
    app.router.add_get("/metrics", exposition.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host or "127.0.0.1", int(port)).start()
    log.info("metrics on http://%s/metrics", address)
    return runner


async def start_for_service(name: str) -> web.AppRunner | None:
    """The service's metrics endpoint; a busy port costs the metrics, never the service."""
    if name not in config.SERVICE_PORTS:
        return None
    address = metrics_address(name)
    try:
        return await start_http(address)
    except OSError as exc:
        log.error("%s: cannot serve metrics on %s: %s", name, address, exc)
        return None


# --- reading them back (luna status) ----------------------------------------------------------
def parse(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Samples by name: `{sample name: [(labels, value), ...]}`."""
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples.setdefault(s.name, []).append((s.labels, s.value))
    return samples


def _total(samples: dict[str, list[tuple[dict[str, str], float]]], name: str) -> float:
    return sum(v for _, v in samples.get(name, ()))


def _where(
    samples: dict[str, list[tuple[dict[str, str], float]]],
    name: str,
    keep: Callable[[dict[str, str]], bool],
) -> float:
    return sum(v for labels, v in samples.get(name, ()) if keep(labels))


def summary(text: str) -> str:
    """The main figures of one `/metrics` page, on one line."""
    s = parse(text)
    parts: list[str] = []
    if "request_count_total" in s:  # an HTTP listener (LUNA's names)
        requests = _total(s, "request_count_total")
        errors = _total(s, "errors_count_total")
        count, total = _total(s, "requests_count"), _total(s, "requests_sum")
        parts.append(f"requests={requests:.0f} errors={errors:.0f}")
        if count:
            parts.append(f"mean={total / count * 1000:.1f}ms")
    if "sender_subscriptions" in s:
        parts.append(f"subscriptions={_total(s, 'sender_subscriptions'):.0f}")
    if "grpc_server_handled_total" in s:
        rpcs = _total(s, "grpc_server_handled_total")
        failed = _where(s, "grpc_server_handled_total", lambda labels: labels["grpc_code"] != "OK")
        count = _total(s, "grpc_server_handling_seconds_count")
        total = _total(s, "grpc_server_handling_seconds_sum")
        parts.append(f"rpcs={rpcs:.0f} failed={failed:.0f}")
        if count:
            parts.append(f"mean={total / count * 1000:.1f}ms")
    if "matcher_faces" in s:
        parts.append(f"faces={_total(s, 'matcher_faces'):.0f}")
        parts.append(f"collections={_total(s, 'matcher_collections'):.0f}")
    batches = _total(s, "estimator_batch_size_count")
    if batches:
        rows = _total(s, "estimator_batch_size_sum")
        seconds = _total(s, "estimator_inference_seconds_sum")
        parts.append(f"batches={batches:.0f} mean_batch={rows / batches:.1f}")
        parts.append(f"inference={seconds / batches * 1000:.1f}ms/batch")
    for labels, value in s.get("jetstream_consumer_pending_messages", ()):
        parts.append(f"lag[{labels.get('stream')}]={value:.0f}")
    if "process_resident_memory_bytes" in s:
        parts.append(f"rss={_total(s, 'process_resident_memory_bytes') / 2**20:.0f}MiB")
    return " ".join(parts)


def names(text: str) -> Iterable[str]:
    return parse(text).keys()
