"""The task engine against real PostgreSQL and NATS JetStream: a part redelivered after a
worker died mid-run is applied once, two planners never split a task twice, a part that keeps
failing becomes a dead-letter task error, and cancel stops a running part within a second.

The parts here run a test kind whose effect is a row keyed by (task, part, item), written the
way the real kinds write theirs (a set operation), so "applied once" is observable."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import orjson
import pytest
from nats.aio.client import Client as NATS

from services.common import errors
from services.common.db import Pool
from services.tasks import engine, kinds, settings
from services.tasks.kinds import Deps, Kind, Outcome
from services.tasks.store import ItemError, TaskStore
from services.tasks.worker import DURABLE, Worker, ensure_consumer

ACCOUNT = "6d1b0b9e-3d59-4b55-9a55-0c0a2b8f1a11"
EFFECTS = """create table if not exists test_effects (
    task_id bigint, part int, item int, primary key (task_id, part, item))"""


class Counting(Kind):
    """Three parts of four items; each run writes its items and counts its runs."""

    task_type = 90
    name = "counting"
    schema = {"type": "object"}
    pool: Pool
    runs: dict[int, int]
    batches: list[int]
    behaviour = "ok"

    async def plan(self, deps: Deps, task: dict[str, Any]) -> list[dict[str, Any]]:
        if self.behaviour == "selects nothing":
            return []
        return [{"part": p, "items": [p * 10 + i for i in range(4)]} for p in range(3)]

    async def run(self, deps: Deps, subtask: dict[str, Any]) -> Outcome:
        part = subtask["content"]["part"]
        self.runs[part] = self.runs.get(part, 0) + 1
        if self.behaviour == "explode":
            raise RuntimeError("worker-side failure")
        if self.behaviour == "slow":
            await asyncio.sleep(30)
        async with self.pool.connection() as conn:
            for item in subtask["content"]["items"]:
                await conn.execute(
                    "insert into test_effects values (%s, %s, %s) on conflict do nothing",
                    (subtask["task_id"], part, item),
                )
        return Outcome(subtask["content"]["items"], [ItemError(22004, f"part {part} note")])

    async def run_many(
        self, deps: Deps, subtasks: list[dict[str, Any]]
    ) -> list[Outcome | errors.LunaError]:
        self.batches.append(len(subtasks))
        return await super().run_many(deps, subtasks)

    def merge(self, task: dict[str, Any], results: list[Any]) -> Any:
        return sorted(i for r in results if r for i in r)


@pytest.fixture
async def kind(pool: Pool) -> Counting:
    k = Counting()
    k.pool, k.runs, k.batches = pool, {}, []
    kinds.register(k)
    async with pool.connection() as conn:
        await conn.execute(EFFECTS)
    return k


@pytest.fixture
def fast_acks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUNA_TASKS_ACK_WAIT", "1")
    monkeypatch.setenv("LUNA_TASKS_MAX_ATTEMPTS", "2")


async def planned_task(pool: Pool, nc: NATS) -> tuple[TaskStore, engine.Engine, int]:
    store = TaskStore(pool)
    task_id = await store.create(ACCOUNT, Counting.task_type, "", {})
    eng = engine.Engine(pool, Deps(), nc.jetstream(), settings.work())
    await ensure_consumer(nc.jetstream(), settings.work())
    assert await eng.plan_one()
    await eng.publish_pending()
    return store, eng, task_id


async def pull(nc: NATS, n: int = 1, timeout: float = 5) -> list[Any]:
    sub = await nc.jetstream().pull_subscribe(
        f"{engine.WORK_SUBJECT}.>", durable=DURABLE, stream="TASKS_WORK"
    )
    got: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        try:
            got += await sub.fetch(n - len(got), timeout=1)
        except Exception:
            pass
    await sub.unsubscribe()
    return got


async def test_part_redelivered_after_a_crash_is_applied_once(
    pool: Pool, nc: NATS, kind: Counting, fast_acks: None
) -> None:
    store, _, task_id = await planned_task(pool, nc)
    worker = Worker(store, Deps(), settings.work())
    msgs = await pull(nc, 3)
    assert len(msgs) == 3
    # The first delivery dies after its effects, before recording them or acking.
    first = msgs[0]
    ref = orjson.loads(first.data)
    claimed = await store.claim_subtask(ref["subtask_id"])
    assert claimed is not None
    await kind.run(Deps(), claimed)
    for msg in msgs[1:]:
        await worker.handle(msg)
    task = await store.get(task_id)
    assert task["task_status"] == 1 and task["parts_done"] == 2
    # After the ack wait the part comes back and finishes.
    again = await pull(nc, 1, timeout=10)
    assert len(again) == 1 and again[0].metadata.num_delivered == 2
    assert orjson.loads(again[0].data) == ref
    await worker.handle(again[0])
    task = await store.get(task_id)
    assert task["task_status"] == 5 and task["parts_done"] == task["parts_all"] == 3
    async with pool.connection() as conn:
        cur = await conn.execute(
            "select count(*) as n from test_effects where task_id = %s", (task_id,)
        )
        assert (await cur.fetchone())["n"] == 12
    content_type, body = await store.result(task_id)
    result = orjson.loads(body)
    assert content_type == "application/json"
    assert result["result"] == sorted(p * 10 + i for p in range(3) for i in range(4))
    assert sorted(e["detail"] for e in result["errors"]) == [f"part {p} note" for p in range(3)]
    assert kind.runs[claimed["content"]["part"]] == 2  # ran twice, applied once
    # A late duplicate delivery of a finished part changes nothing.
    assert await store.claim_subtask(ref["subtask_id"]) is None
    assert await pull(nc, 1, timeout=2) == []


async def test_parts_applied_together_after_a_crash_are_recorded_once_each(
    pool: Pool, nc: NATS, kind: Counting, fast_acks: None
) -> None:
    """A kind with `batch_parts`: a worker that pulls one part pulls the task's other waiting
    parts and applies them together; a batch whose worker died before recording it comes back
    part by part and is applied, and recorded, once."""
    kind.batch_parts = 3
    store, _, task_id = await planned_task(pool, nc)
    worker = Worker(store, Deps(), settings.work())
    # The first worker claims and applies all three together, then dies before recording.
    msgs = await pull(nc, 3)
    claimed = await store.claim_subtasks([orjson.loads(m.data)["subtask_id"] for m in msgs])
    assert len(claimed) == 3
    await kind.run_many(Deps(), claimed)
    # After the ack wait they come back; pulling one brings the others along.
    sub = await nc.jetstream().pull_subscribe(
        f"{engine.WORK_SUBJECT}.>", durable=DURABLE, stream="TASKS_WORK"
    )
    first: list[Any] = []
    deadline = time.monotonic() + 10
    while not first and time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            first = await sub.fetch(1, timeout=1)
    assert first
    await asyncio.sleep(0.3)  # the other two are back in the stream too
    await worker.handle_batch(sub, first[0])
    await sub.unsubscribe()
    assert kind.batches == [3, 3]
    assert kind.runs == {0: 2, 1: 2, 2: 2}  # each ran twice, each applied once
    task = await store.get(task_id)
    assert task["task_status"] == 5 and task["parts_done"] == task["parts_all"] == 3
    async with pool.connection() as conn:
        cur = await conn.execute(
            "select count(*) as n from test_effects where task_id = %s", (task_id,)
        )
        assert (await cur.fetchone())["n"] == 12
    _, body = await store.result(task_id)
    assert sorted(e["detail"] for e in orjson.loads(body)["errors"]) == [
        f"part {p} note" for p in range(3)
    ]
    assert await pull(nc, 1, timeout=2) == []


async def test_a_task_that_selects_nothing_runs_no_part(
    pool: Pool, nc: NATS, kind: Counting
) -> None:
    """An empty plan becomes one placeholder part, which the worker finishes without handing it
    to the kind (a gc reading its empty content as "no filter" once deleted every event)."""
    kind.behaviour = "selects nothing"
    store, _, task_id = await planned_task(pool, nc)
    worker = Worker(store, Deps(), settings.work())
    msgs = await pull(nc, 1)
    assert len(msgs) == 1
    await worker.handle(msgs[0])
    assert kind.runs == {}
    task = await store.get(task_id)
    assert task["task_status"] == 5 and task["parts_done"] == task["parts_all"] == 1
    _, body = await store.result(task_id)
    assert orjson.loads(body)["result"] == []


async def test_two_planners_split_a_task_once(pool: Pool, nc: NATS, kind: Counting) -> None:
    store = TaskStore(pool)
    task_id = await store.create(ACCOUNT, Counting.task_type, "", {})
    engines = [engine.Engine(pool, Deps(), nc.jetstream(), settings.work()) for _ in range(2)]
    planned = await asyncio.gather(*(e.plan_one() for e in engines))
    assert sorted(planned) == [False, True]
    await asyncio.gather(*(e.publish_pending() for e in engines))
    assert len(await store.subtasks(task_id)) == 3
    info = await nc.jetstream().stream_info("TASKS_WORK")
    assert info.state.messages == 3  # Nats-Msg-Id dropped the second publisher's copies


async def test_failing_part_becomes_a_dead_letter_error(
    pool: Pool, nc: NATS, kind: Counting, fast_acks: None
) -> None:
    kind.behaviour = "explode"
    store, _, task_id = await planned_task(pool, nc)
    worker = Worker(store, Deps(), settings.work())
    deadline = time.monotonic() + 40
    while (await store.get(task_id))["task_status"] not in (3, 5):
        assert time.monotonic() < deadline
        for msg in await pull(nc, 3, timeout=3):
            await worker.handle(msg)
    task = await store.get(task_id)
    assert task["task_status"] == 3 and task["parts_done"] == 3
    rows = await store.subtasks(task_id)
    assert {r["subtask_status"] for r in rows} == {3}
    errs = await store.list_errors(engine_filter(task_id), 1, 100)
    assert len(errs) == 3 and all("failed 2 times" in e["detail"] for e in errs)
    assert all(n == 2 for n in kind.runs.values())
    with pytest.raises(errors.LunaError) as info:
        await store.result(task_id)
    assert info.value.code == 28017


async def test_cancel_stops_a_running_part(pool: Pool, nc: NATS, kind: Counting) -> None:
    kind.behaviour = "slow"
    store, _, task_id = await planned_task(pool, nc)
    worker = Worker(store, Deps(), settings.work())
    msgs = await pull(nc, 1)
    running = asyncio.create_task(worker.handle(msgs[0]))
    await asyncio.sleep(0.5)
    started = time.monotonic()
    await store.cancel(task_id)
    await asyncio.wait_for(running, 3)
    assert time.monotonic() - started < 2
    assert {r["subtask_status"] for r in await store.subtasks(task_id)} == {2}
    with pytest.raises(errors.LunaError) as info:
        await store.cancel(task_id)
    assert info.value.code == 28019


def engine_filter(task_id: int) -> Any:
    from services.tasks.store import ErrorFilter

    return ErrorFilter(task_ids=[task_id])
