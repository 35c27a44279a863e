"""The estimator's budget of decoded pixels in flight, over all requests at once.

Bytes on the wire say little about memory: a 115 KB PNG of zeros decodes to 119 MB of RGB. So
before an image is decoded it takes its width x height (read from the header) out of one
shared budget and gives it back once its detections are built. Memory then stays bounded
however many large images arrive together. Small images have a lane of their own, so a small
request is never queued behind large ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

_T = TypeVar("_T")

# Images above this many pixels are decoded and scaled in low-priority threads: on a busy
# machine the CPU then goes to the many small requests first, the few large ones get the rest.
LARGE_PIXELS = 4_000_000
_LOW_PRIORITY_NICE = 10

# A waiter older than this stops others from passing it, so a large image is delayed by a
# stream of small ones, never starved.
OVERTAKE_FOR_S = 2.0


class _Lane:
    """A budget of pixels with its waiters."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.used = 0
        self._waiters: list[tuple[int, float, asyncio.Future[None]]] = []

    async def acquire(self, need: int) -> None:
        if self.used + need <= self.capacity and not self._someone_starving():
            self.used += need
            return
        waiter = (need, time.monotonic(), asyncio.get_running_loop().create_future())
        self._waiters.append(waiter)
        try:
            await waiter[2]
        except asyncio.CancelledError:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
                self.wake()  # it may have been the one everybody waited behind
            elif waiter[2].done() and not waiter[2].cancelled():
                self.release(need)  # granted just as it was cancelled: give it back
            raise

    def release(self, need: int) -> None:
        self.used -= need
        self.wake()

    def _someone_starving(self) -> bool:
        now = time.monotonic()
        return any(now - since > OVERTAKE_FOR_S for _, since, _ in self._waiters)

    def wake(self) -> None:
        # In arrival order, but anyone who fits goes, unless someone ahead of it has waited
        # too long already.
        now = time.monotonic()
        for waiter in list(self._waiters):
            need, since, fut = waiter
            if fut.done():
                self._waiters.remove(waiter)
            elif self.used + need <= self.capacity:
                self._waiters.remove(waiter)
                self.used += need
                fut.set_result(None)
            elif now - since > OVERTAKE_FOR_S:
                return


class PixelBudget:
    """Two lanes: images up to LARGE_PIXELS share a small lane (an eighth of the budget) that
    large images never use, so a small request never waits behind large ones; large images
    share the rest and cannot be starved by small ones either."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("pixel budget must be positive")
        self.capacity = capacity
        small = min(capacity, max(2 * LARGE_PIXELS, capacity // 8))
        self._small = _Lane(small)
        self._large = _Lane(max(1, capacity - small))
        self.peak = 0

    @property
    def used(self) -> int:
        return self._small.used + self._large.used

    @contextlib.asynccontextmanager
    async def hold(self, pixels: int) -> AsyncIterator[None]:
        """Hold `pixels` of the budget while the block runs. An image larger than its whole
        lane (still within the per-image limit) waits until it can run alone."""
        lane = self._small if pixels <= LARGE_PIXELS else self._large
        need = max(0, min(pixels, lane.capacity))
        await lane.acquire(need)
        self.peak = max(self.peak, self.used)
        try:
            yield
        finally:
            # Synchronous on purpose: a cancelled request must never keep its share.
            lane.release(need)


def _lower_priority() -> None:
    # Linux: a thread's nice value is its own (setpriority on its thread id).
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), _LOW_PRIORITY_NICE)
    except (OSError, AttributeError):
        pass


_bulk: ThreadPoolExecutor | None = None


async def run_sized(pixels: int, fn: Callable[..., _T], *args: object, **kwargs: object) -> _T:
    """`fn(*args, **kwargs)` off the event loop: in the low-priority pool for a large image,
    in the default pool otherwise."""
    global _bulk
    loop = asyncio.get_running_loop()
    call = functools.partial(fn, *args, **kwargs)
    if pixels <= LARGE_PIXELS:
        return await loop.run_in_executor(None, call)
    if _bulk is None:
        _bulk = ThreadPoolExecutor(2, "bulk-decode", initializer=_lower_priority)
    return await loop.run_in_executor(_bulk, call)
