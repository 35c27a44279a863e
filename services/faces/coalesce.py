"""Concurrent calls of one write, run together: group commit in the service.

A call that finds fewer than `max_running` batches under way starts one at once (on the next
loop turn, so calls made in the same turn join it); calls made while batches run wait and go
together as the next batch. Nothing waits for a timer: alone, a call runs as soon as it
would have without coalescing; under load, a batch takes everything queued meanwhile, so one
transaction (one commit, one fsync, one pool checkout, set-based statements) serves many calls.

`spare_after_s` bounds head-of-line blocking: once the oldest batch under way has run that
long (waiting on a lock, say), one more batch may start, so calls that would not wait on that
lock are not held up behind it. Under a steady load batches end well before that, and
batches stay few and large (fewer transactions per call).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from services.common import errors

T = TypeVar("T")
R = TypeVar("R")

# What a batch answers: per item, its result or the exception that item's caller gets.
BatchRun = Callable[[Sequence[T]], Awaitable[Sequence[R | BaseException]]]


def each_alone_if_refused(insert: Callable[[Sequence[T]], Awaitable[list[R]]]) -> BatchRun[T, R]:
    """The batch run of an all-or-nothing `insert`: every item in one transaction; when one is
    refused (its LunaError undoes the batch), each item again alone, for its own answer."""

    async def run(items: Sequence[T]) -> Sequence[R | BaseException]:
        try:
            return await insert(items)
        except errors.LunaError as exc:
            if len(items) == 1:
                return [exc]

        async def alone(item: T) -> R:
            return (await insert([item]))[0]

        return await asyncio.gather(*(alone(item) for item in items), return_exceptions=True)

    return run


class Coalescer(Generic[T, R]):
    def __init__(
        self,
        run: BatchRun[T, R],
        *,
        max_batch: int = 64,
        max_running: int = 1,
        spare_after_s: float | None = None,
    ) -> None:
        self._run = run
        self._max_batch = max_batch
        self._max_running = max_running
        self._spare_after_s = spare_after_s
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._running = 0  # batches scheduled or under way
        self._scheduled = False  # one is scheduled and has not taken its calls yet
        self._tasks: set[asyncio.Task[None]] = set()
        self._started: dict[object, float] = {}  # batch -> when it took its calls (loop time)
        self._timer: asyncio.TimerHandle | None = None

    async def submit(self, item: T) -> R:
        """`item`'s result, from whichever batch it goes in."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        self._start()
        return await future

    def _limit(self) -> int:
        """Batches that may run now: one more than `max_running` while the oldest one under
        way is older than `spare_after_s` (a timer calls _start again when it will be)."""
        if self._spare_after_s is None or not self._started:
            return self._max_running
        loop = asyncio.get_running_loop()
        due = min(self._started.values()) + self._spare_after_s
        if loop.time() >= due:
            return self._max_running + 1
        if self._running >= self._max_running and self._timer is None:
            self._timer = loop.call_at(due, self._on_timer)
        return self._max_running

    def _on_timer(self) -> None:
        self._timer = None
        self._start()

    def _start(self) -> None:
        if self._queue and not self._scheduled and self._running < self._limit():
            self._running += 1
            self._scheduled = True
            task = asyncio.ensure_future(self._batch())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _batch(self) -> None:
        me = object()
        try:
            # Taken when the batch starts, not when it was scheduled: calls made in between
            # join it. A caller that went away (cancelled) is left out.
            self._scheduled = False
            self._started[me] = asyncio.get_running_loop().time()
            batch = [(item, f) for item, f in self._queue[: self._max_batch] if not f.done()]
            del self._queue[: self._max_batch]
            self._start()  # what is left over, when another batch may run
            if not batch:
                return
            try:
                results: Sequence[R | BaseException] = await self._run([i for i, _ in batch])
            except Exception as exc:
                results = [exc] * len(batch)
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)
        finally:
            self._started.pop(me, None)
            self._running -= 1
            self._start()
