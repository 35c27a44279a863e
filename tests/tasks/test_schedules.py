"""Schedules: cron arithmetic, and firing against a real PostgreSQL: two tasks processes firing
at once create one task per time slot, a slot whose previous task is unfinished is skipped, and
a stopped schedule never fires."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from services.common.db import Pool
from services.tasks import cron
from services.tasks.kinds import Deps
from services.tasks.schedules import Schedules

ACCOUNT = "6d1b0b9e-3d59-4b55-9a55-0c0a2b8f1a11"
GC = {"task_type": 4, "content": {"target": "events"}}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("expr", "tz", "after", "expected"),
    [
        ("* * * * *", "utc", "2026-01-01T10:00:30", "2026-01-01T10:01:00"),
        ("5 4 * * *", "utc", "2026-01-01T04:05:00", "2026-01-02T04:05:00"),
        ("*/15 9-17 * * mon-fri", "utc", "2026-01-02T17:50:00", "2026-01-05T09:00:00"),
        ("0 0 29 2 *", "utc", "2026-03-01T00:00:00", "2028-02-29T00:00:00"),
        ("0 0 1 * 0", "utc", "2026-01-01T12:00:00", "2026-01-04T00:00:00"),  # 1st OR Sunday
        ("30 2 * * *", "Europe/Moscow", "2026-01-01T00:00:00", "2026-01-01T23:30:00"),
        ("0 12 * jan,jul 7", "utc", "2026-02-01T00:00:00", "2026-07-05T12:00:00"),
    ],
)
def test_next_after(expr: str, tz: str, after: str, expected: str) -> None:
    assert cron.parse(expr, tz).next_after(at(after)) == at(expected)


@pytest.mark.parametrize(
    ("expr", "tz"),
    [("* * * *", "utc"), ("61 * * * *", "utc"), ("* * 30 2 *", "utc"), ("* * * * *", "Mars/Base"),
     ("*/0 * * * *", "utc"), ("5-1 * * * *", "utc")],
)  # fmt: skip
def test_bad_expressions(expr: str, tz: str) -> None:
    with pytest.raises(cron.CronError):
        cron.parse(expr, tz)


async def _due(pool: Pool, schedule_id: int) -> None:
    async with pool.connection() as conn:
        await conn.execute(
            "update tasks_schedules set next_run_time = now() - interval '1 second'"
            " where schedule_id = %s",
            (schedule_id,),
        )


async def _tasks_of(pool: Pool, schedule_id: int) -> list[dict]:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "select task_id, task_status from tasks_tasks where schedule_id = %s", (schedule_id,)
        )
        return [dict(r) for r in await cur.fetchall()]


async def test_one_task_per_slot_with_two_processes(pool: Pool) -> None:
    a, b = Schedules(pool, Deps()), Schedules(pool, Deps())
    sid = await a.create(ACCOUNT, {"task": GC, "trigger": {"cron": "0 3 * * *"}})
    row = await a.get(sid)
    assert row["status"] == "running" and row["next_run_time"].hour == 3
    assert row["task_ids"] == []
    await _due(pool, sid)
    for _ in range(5):  # both race on the same due slot, repeatedly
        created = await asyncio.gather(a.fire_due(), b.fire_due())
        assert sum(len(c) for c in created) <= 1
    tasks = await _tasks_of(pool, sid)
    assert len(tasks) == 1
    assert (await a.get(sid))["next_run_time"] > datetime.now(UTC)
    # The next slot while the first task is unfinished: skipped, not queued.
    await _due(pool, sid)
    assert await a.fire_due() == []
    assert len(await _tasks_of(pool, sid)) == 1
    async with pool.connection() as conn:
        await conn.execute("update tasks_tasks set task_status = 5 where schedule_id = %s", (sid,))
    await _due(pool, sid)
    assert len(await b.fire_due()) == 1
    # Stopped: never fires; started again: next slot computed afresh.
    await a.set_status(sid, ACCOUNT, "pause")
    assert (await a.get(sid))["next_run_time"] is None
    assert await a.fire_due() == []
    await a.set_status(sid, ACCOUNT, "start")
    assert (await a.get(sid))["status"] == "running"


async def test_start_immediately_and_replace_cancels_running(pool: Pool) -> None:
    s = Schedules(pool, Deps())
    body = {
        "task": GC,
        "trigger": {"cron": "0 3 * * *", "cron_timezone": "Asia/Tokyo"},
        "behaviour": {"start_immediately": True},
    }
    sid = await s.create(ACCOUNT, body)
    first = await _tasks_of(pool, sid)
    assert len(first) == 1 and first[0]["task_status"] == 0
    assert (await s.get(sid))["next_run_time"].astimezone(UTC).hour == 18  # 03:00 JST
    await s.replace(sid, ACCOUNT, {"task": GC, "trigger": {"cron": "*/5 * * * *"}})
    assert [t["task_status"] for t in await _tasks_of(pool, sid)] == [2]
    stopped = await s.create(
        ACCOUNT,
        {"task": GC, "trigger": {"cron": "* * * * *"}, "behaviour": {"create_stopped": True}},
    )
    assert (await s.get(stopped))["status"] == "stopped"
