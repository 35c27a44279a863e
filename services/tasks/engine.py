"""The task engine: creation, planning into parts, publishing parts to TASKS_WORK, collecting.

State lives in PostgreSQL; NATS only carries "run part N" messages. Every step can be repeated
after a crash: a pending task is planned again (its row is locked while planning, so two tasks
processes never plan it twice), an unpublished part is published again (the Nats-Msg-Id makes
a duplicate a no-op), and a task whose parts are all finished is collected by whichever
process gets its row lock first.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime
from typing import Any

import orjson
from nats.js import JetStreamContext
from psycopg.types.json import Jsonb

from services.common import db, errors, luna_json, nats_streams
from services.common.db import Pool
from services.common.stopping import cancel_and_wait
from services.tasks import kinds
from services.tasks.kinds import Deps
from services.tasks.settings import Work
from services.tasks.store import (
    COLLECTING,
    DONE,
    FAILED,
    IN_PROGRESS,
    PENDING,
    SUB_FAILED,
    ItemError,
    TaskStore,
    fast_json_cursor,
)
from services.tasks.types import load_all

log = logging.getLogger("luna.tasks")

WORK_SUBJECT = "luna.tasks.work"
# A sibling service that is down or slow: the same work may succeed later.
RETRYABLE = (errors.INTERNAL, errors.QUEUE_UNAVAILABLE, errors.REQUEST_TIMEOUT)


def message_id(task_id: int, subtask_id: int, created: datetime) -> str:
    # The creation time keeps ids unique across a database that was recreated (ids restart)
    # while NATS still remembers the old ones in its duplicate window.
    return f"task-{task_id}-part-{subtask_id}-{int(created.timestamp() * 1e6)}"


async def create_task(
    store: TaskStore,
    deps: Deps,
    account_id: str,
    task_type: int,
    description: str,
    content: Any,
    schedule_id: int = 0,
    conn: Any = None,
) -> int:
    """Validate everything first, then one insert: a refused task leaves nothing behind."""
    load_all()
    kind = kinds.kind_for(task_type)
    if len(description) > 128:
        raise errors.bad_json("description", f"{description[:20]}...' is too long")
    valid = kind.validate(content)
    prepared = await kind.prepare(deps, account_id, valid)
    return await store.create(account_id, task_type, description, prepared, schedule_id, conn)


class Engine:
    """The tasks service's background work: plan, publish, collect, in a loop."""

    def __init__(self, pool: Pool, deps: Deps, js: JetStreamContext, work: Work) -> None:
        self.pool = pool
        self.work = work
        self.store = TaskStore(pool)
        self.deps = deps
        self.js = js
        self.wake = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None
        from services.tasks.schedules import Schedules

        self.schedules = Schedules(pool, deps)

    def start(self) -> None:
        self._loop = asyncio.create_task(self._run())

    async def stop(self) -> None:
        await cancel_and_wait(self._loop)

    async def _run(self) -> None:
        while True:
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("task sweep failed; retrying")
            try:
                await asyncio.wait_for(self.wake.wait(), self.work.sweep_interval_s)
            except TimeoutError:
                pass
            self.wake.clear()

    async def sweep(self) -> None:
        await self.schedules.fire_due()
        while await self.plan_one():
            pass
        await self.publish_pending()
        for task_id in await self._collectable():
            await collect(self.store, task_id, self.work.max_result_errors)

    async def plan_one(self) -> bool:
        """Plan the oldest pending task nobody else is planning; False when none is left."""
        load_all()
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "select * from tasks_tasks where task_status = %s order by task_id"
                " limit 1 for update skip locked",
                (PENDING,),
            )
            row = await cur.fetchone()
            if row is None:
                return False
            task = dict(row)
            kind = kinds.kind_for(task["task_type"])
            try:
                parts = await kind.plan(self.deps, task)
            except errors.LunaError as err:
                if err.code in RETRYABLE:
                    raise  # a sibling is down: plan again on the next pass
                failure: ItemError | None = ItemError.of(err)
            else:
                failure = None
                if not parts:
                    parts = [{}]
                async with conn.cursor() as c:
                    await c.executemany(
                        "insert into tasks_subtasks (task_id, part, content) values (%s, %s, %s)"
                        " on conflict (task_id, part) do nothing",
                        [(task["task_id"], i, Jsonb(p)) for i, p in enumerate(parts)],
                    )
                await conn.execute(
                    "update tasks_tasks set parts_all = %s, task_status = %s,"
                    " last_update_time = now() where task_id = %s",
                    (len(parts), IN_PROGRESS, task["task_id"]),
                )
        if failure is not None:
            log.info("task %s failed while planning: %s", task["task_id"], failure.detail)
            await self.store.fail_task(task, failure)
        else:
            log.info("task %s planned in %d parts", task["task_id"], len(parts))
        return True

    async def publish_pending(self) -> None:
        rows = await db.fetch_all(
            self.pool,
            "select s.subtask_id, s.task_id, s.create_time, t.task_type from tasks_subtasks s"
            " join tasks_tasks t using (task_id) where not s.published"
            " and t.task_status = %s order by s.subtask_id limit 10000",
            (IN_PROGRESS,),
        )
        # Pipelined: every part goes out, then the acks are awaited together, and the
        # acknowledged ones are marked in one statement (a 100-part task was 200 round trips).
        results = await nats_streams.publish_many(
            self.js,
            [
                (
                    f"{WORK_SUBJECT}.{row['task_type']}",
                    orjson.dumps({"task_id": row["task_id"], "subtask_id": row["subtask_id"]}),
                    message_id(row["task_id"], row["subtask_id"], row["create_time"]),
                )
                for row in rows
            ],
        )
        published = [
            row["subtask_id"]
            for row, result in zip(rows, results, strict=True)
            if not isinstance(result, BaseException)
        ]
        if published:
            async with self.pool.connection() as conn:
                await conn.execute(
                    "update tasks_subtasks set published = true where subtask_id = any(%s)",
                    (published,),
                )
        if len(published) < len(rows):
            raise next(r for r in results if isinstance(r, BaseException))

    async def _collectable(self) -> list[int]:
        rows = await db.fetch_all(
            self.pool, "select task_id from tasks_tasks where task_status = %s", (COLLECTING,)
        )
        return [int(r["task_id"]) for r in rows]


async def collect(store: TaskStore, task_id: int, max_errors: int) -> None:
    """Merge the parts of a task in "collect results" into its result, once; the result
    embeds at most `max_errors` task errors."""
    load_all()
    async with store.pool.connection() as conn, conn.transaction():
        cur = await conn.execute(
            "select * from tasks_tasks where task_id = %s and task_status = %s"
            " for update skip locked",
            (task_id, COLLECTING),
        )
        row = await cur.fetchone()
        if row is None:
            return
        task = dict(row)
        kind = kinds.kind_for(task["task_type"])
        cur = await conn.execute(
            "select subtask_status from tasks_subtasks where task_id = %s", (task_id,)
        )
        statuses = [r["subtask_status"] for r in await cur.fetchall()]
        cur = await conn.execute(
            "select error_id, task_id, subtask_id, error_code, description, detail,"
            " additional_info, error_time from tasks_errors"
            " where task_id = %s order by error_id limit %s",
            (task_id, max_errors),
        )
        errors_json = [luna_json.task_error(**r) for r in await cur.fetchall()]
        if statuses and all(s == SUB_FAILED for s in statuses):
            await _finish_task(conn, task_id, FAILED)
            return
        if not kind.stores_result(task):  # the task asked for none (gc store_results=false)
            await _finish_task(conn, task_id, DONE)
            log.info("task %s done (no result stored)", task_id)
            return
        result_id = str(uuid.uuid4())
        if kind.flat:
            size = await _collect_flat(conn, result_id, task_id, errors_json)
        else:
            cur = fast_json_cursor(conn)
            await cur.execute(
                "select result from tasks_subtasks where task_id = %s order by part", (task_id,)
            )
            results = [p["result"] for p in await cur.fetchall()]
            content_type, body = kind.collect(task, results, errors_json)
            await conn.execute(
                "insert into tasks_results (result_id, task_id, content_type, body)"
                " values (%s, %s, %s, %s)",
                (result_id, task_id, content_type, body),
            )
            size = len(body)
        await _finish_task(conn, task_id, DONE, result_id)
    log.info("task %s done (result %s, %d bytes)", task_id, result_id, size)


async def _finish_task(conn: Any, task_id: int, status: int, result_id: str | None = None) -> None:
    await conn.execute(
        "update tasks_tasks set task_status = %s, result_id = %s, end_time = now(),"
        " last_update_time = now() where task_id = %s",
        (status, result_id, task_id),
    )


async def _collect_flat(conn: Any, result_id: str, task_id: int, errors_json: list) -> int:
    """The result of a flat kind (gc, estimator) joined by PostgreSQL from the stored part
    texts into the result row: 100k gc items (9 MB) never travel to the collector and back.
    A flat part's result is a JSON array written without surrounding whitespace (orjson, or
    the events service's gc items), so its items are the bytes between its brackets (bytea
    offsets; text offsets count characters). Returns the body's size."""
    cur = await conn.execute(
        "insert into tasks_results (result_id, task_id, content_type, body)"
        " select %s, %s, 'application/json', convert_to('{\"result\":[', 'UTF8')"
        " || coalesce(string_agg(substring(b from 2 for octet_length(b) - 2), ','::bytea"
        " order by part), ''::bytea) || convert_to('],\"errors\":' || %s || '}', 'UTF8')"
        " from (select part, convert_to(result::text, 'UTF8') as b from tasks_subtasks"
        " where task_id = %s and result is not null) p where octet_length(b) > 2"
        " returning octet_length(body) as size",
        (result_id, task_id, orjson.dumps(errors_json).decode(), task_id),
    )
    row = await cur.fetchone()
    return int(row["size"]) if row else 0
