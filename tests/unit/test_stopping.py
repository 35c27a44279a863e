"""`cancel_and_wait` ends a task even where Python 3.11's `asyncio.wait_for` drops the
cancellation (it returns the inner result when both arrive together), the way nats-py's
`next_msg` reads a busy subscription."""

from __future__ import annotations

import asyncio
import random

from services.common.stopping import cancel_and_wait


async def _reader(queue: asyncio.Queue[int]) -> None:
    """nats-py's next_msg shape: each read is a wait_for in a task of its own."""
    while True:

        async def timed_get() -> int:
            return await asyncio.wait_for(queue.get(), 30)

        await asyncio.create_task(timed_get())


async def _feed(queue: asyncio.Queue[int]) -> None:
    """A message every third loop turn: a reader is sometimes idle, sometimes not."""
    while True:
        queue.put_nowait(1)
        for _ in range(3):
            await asyncio.sleep(0)


async def test_a_reader_of_a_busy_queue_is_stopped_every_time() -> None:
    rng = random.Random(3)
    lost_by_one_cancel = 0
    for _ in range(100):
        queue: asyncio.Queue[int] = asyncio.Queue()
        feed = asyncio.create_task(_feed(queue))
        reader = asyncio.create_task(_reader(queue))
        for _ in range(rng.randint(1, 20)):
            await asyncio.sleep(0)
        reader.cancel()  # the usual `task.cancel(); await task`, bounded here
        done, _ = await asyncio.wait({reader}, timeout=0.02)
        lost_by_one_cancel += not done
        await asyncio.wait_for(cancel_and_wait(reader), 5)
        assert reader.done()
        await cancel_and_wait(feed)
    # The bug this guards against is real on this interpreter (fixed in Python 3.12).
    assert lost_by_one_cancel > 0


async def test_a_failed_task_is_reported_not_raised() -> None:
    async def fail() -> None:
        raise ValueError("boom")

    task = asyncio.create_task(fail())
    await asyncio.sleep(0)
    await cancel_and_wait(task)
    await cancel_and_wait(None)
    assert isinstance(task.exception(), ValueError)
