"""The estimator's Prometheus metrics: rows per inference call (how well concurrent requests
batch) and the time of each call, per model."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from prometheus_client import Histogram

from services.common import metrics

BATCH_SIZE = Histogram(
    "estimator_batch_size",
    "Rows (images or faces) per inference call, by model.",
    ["model"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
    registry=metrics.PROCESS.registry,
)
INFERENCE_SECONDS = Histogram(
    "estimator_inference_seconds",
    "Time of one inference call (one batch), by model.",
    ["model"],
    buckets=metrics.REQUEST_BUCKETS,
    registry=metrics.PROCESS.registry,
)
T = TypeVar("T")


async def observed(model: str, rows: int, call: Callable[[], Awaitable[T]]) -> T:
    started = time.perf_counter()
    result = await call()
    INFERENCE_SECONDS.labels(model).observe(time.perf_counter() - started)
    BATCH_SIZE.labels(model).observe(rows)
    return result
