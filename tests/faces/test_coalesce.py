"""coalesce.Coalescer: concurrent calls go together as batches, each caller gets its own
result or exception, and a caller that went away is left out."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from services.faces.coalesce import Coalescer


class Recorder:
    """A batch run that records its batches and waits for `gate` before answering."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def run(self, items: Sequence[int]) -> list[int | BaseException]:
        self.batches.append(list(items))
        await self.gate.wait()
        return [ValueError(f"bad {i}") if i < 0 else i * 10 for i in items]


async def test_calls_made_while_a_batch_runs_go_together_as_the_next() -> None:
    rec = Recorder()
    rec.gate.clear()
    c: Coalescer[int, int] = Coalescer(rec.run)
    first = asyncio.ensure_future(c.submit(1))
    await asyncio.sleep(0.01)  # the first batch is under way, held at the gate
    rest = [asyncio.ensure_future(c.submit(i)) for i in range(2, 7)]
    await asyncio.sleep(0.01)
    assert rec.batches == [[1]]  # one batch at a time: the others wait
    rec.gate.set()
    assert await first == 10
    assert await asyncio.gather(*rest) == [20, 30, 40, 50, 60]
    assert rec.batches == [[1], [2, 3, 4, 5, 6]]


async def test_calls_of_one_loop_turn_share_the_first_batch() -> None:
    rec = Recorder()
    c: Coalescer[int, int] = Coalescer(rec.run)
    assert await asyncio.gather(*(c.submit(i) for i in range(4))) == [0, 10, 20, 30]
    assert rec.batches == [[0, 1, 2, 3]]


async def test_each_caller_gets_its_own_exception_and_batch_failures_reach_all() -> None:
    rec = Recorder()
    c: Coalescer[int, int] = Coalescer(rec.run)
    got = await asyncio.gather(c.submit(1), c.submit(-2), c.submit(3), return_exceptions=True)
    assert got[0] == 10 and got[2] == 30
    assert isinstance(got[1], ValueError) and str(got[1]) == "bad -2"

    async def broken(items: Sequence[int]) -> list[int]:
        raise RuntimeError("database away")

    c2: Coalescer[int, int] = Coalescer(broken)
    got = await asyncio.gather(c2.submit(1), c2.submit(2), return_exceptions=True)
    assert [type(g) for g in got] == [RuntimeError, RuntimeError]
    # ...and the coalescer goes on working afterwards.
    c2._run = rec.run  # type: ignore[assignment]
    assert await c2.submit(5) == 50


async def test_a_cancelled_caller_is_left_out_and_batches_respect_max_batch() -> None:
    rec = Recorder()
    rec.gate.clear()
    c: Coalescer[int, int] = Coalescer(rec.run, max_batch=2)
    first = asyncio.ensure_future(c.submit(0))
    await asyncio.sleep(0.01)
    gone = asyncio.ensure_future(c.submit(99))
    waiting = [asyncio.ensure_future(c.submit(i)) for i in (1, 2, 3)]
    await asyncio.sleep(0.01)
    gone.cancel()
    rec.gate.set()
    assert await first == 0
    assert await asyncio.gather(*waiting) == [10, 20, 30]
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert 99 not in [i for b in rec.batches for i in b]
    assert all(len(b) <= 2 for b in rec.batches)


class Stalled(Recorder):
    """A batch run in which a batch holding item 1 waits for `gate` (a lock held elsewhere)
    and any other answers at once."""

    async def run(self, items: Sequence[int]) -> list[int | BaseException]:
        self.batches.append(list(items))
        if 1 in items:
            await self.gate.wait()
        return [i * 10 for i in items]


async def test_a_stalled_batch_lets_one_spare_batch_run_beside_it() -> None:
    """With spare_after_s, calls made while the batch under way is stalled past it go in a
    batch of their own instead of waiting for it; never more than one beside it."""
    rec = Stalled()
    rec.gate.clear()
    c: Coalescer[int, int] = Coalescer(rec.run, spare_after_s=0.0)
    first = asyncio.ensure_future(c.submit(1))
    await asyncio.sleep(0.01)  # under way, stalled
    # (Bounded waits: without the spare these calls would wait for the stalled batch.)
    assert await asyncio.wait_for(asyncio.gather(c.submit(2), c.submit(3)), 10) == [20, 30]
    assert await asyncio.wait_for(c.submit(4), 10) == 40  # the spare ended, so another starts
    assert not first.done() and rec.batches == [[1], [2, 3], [4]]
    # A spare that stalls too: the next calls wait for one of the two.
    second = asyncio.ensure_future(c.submit(1))
    await asyncio.sleep(0.01)
    third = asyncio.ensure_future(c.submit(5))
    await asyncio.sleep(0.01)
    assert rec.batches == [[1], [2, 3], [4], [1]] and not third.done()
    rec.gate.set()
    assert await asyncio.gather(first, second, third) == [10, 10, 50]


async def test_a_spare_batch_starts_when_the_stall_reaches_spare_after_s() -> None:
    """Before spare_after_s the calls wait (they will share the next batch); once the batch
    under way has run that long a timer starts the spare, no new call needed."""
    rec = Stalled()
    rec.gate.clear()
    c: Coalescer[int, int] = Coalescer(rec.run, spare_after_s=0.05)
    first = asyncio.ensure_future(c.submit(1))
    await asyncio.sleep(0)
    await asyncio.sleep(0)  # under way
    waiting = asyncio.ensure_future(c.submit(2))
    await asyncio.sleep(0)
    assert rec.batches == [[1]]
    assert await asyncio.wait_for(waiting, 10) == 20  # the timer's spare, first still stalled
    assert not first.done()
    rec.gate.set()
    assert await first == 10
