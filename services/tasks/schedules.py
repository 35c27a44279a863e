"""Task schedules: a task template, a cron trigger, and the firing of due schedules.

Firing locks the due schedule rows (`for update skip locked`), creates the task and moves
`next_run_time` past now in one transaction, so however many tasks-service processes run, a
time slot creates at most one task, and a crash in between creates none (the slot is fired
again on restart). As LUNA documents, a slot whose previous task is still unfinished is
skipped rather than queued.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from psycopg.types.json import Jsonb

from services.common import errors, times
from services.common.db import Pool
from services.tasks import cron, engine, store
from services.tasks.kinds import Deps, closed
from services.tasks.store import CANCELLED, COLLECTING, IN_PROGRESS, PENDING, TaskStore

log = logging.getLogger("luna.tasks.schedules")

TABLE = "tasks_schedules"
RUNNING, STOPPED = "running", "stopped"
ACTIONS = {"start": RUNNING, "pause": STOPPED, "stop": STOPPED}
UNFINISHED = (PENDING, IN_PROGRESS, COLLECTING)

BODY_SCHEMA: dict[str, Any] = closed(
    {
        "task": closed(
            {
                "task_type": {"type": "integer", "minimum": 1, "maximum": 9},
                "content": {"type": "object"},
                "description": {"type": "string", "maxLength": 128},
            },
            required=["task_type", "content"],
        ),
        "trigger": closed(
            {
                "cron": {"type": "string"},
                "cron_timezone": {"type": "string"},
            },
            required=["cron"],
        ),
        "behaviour": closed(
            {
                "start_immediately": {"type": "boolean"},
                "create_stopped": {"type": "boolean"},
            },
        ),
    },
    required=["task", "trigger"],
)
_VALIDATOR = Draft202012Validator(BODY_SCHEMA)


def _not_found(schedule_id: int) -> errors.LunaError:
    return errors.LunaError(errors.SCHEDULE_NOT_FOUND, f"Schedule with id {schedule_id} not found")


def validate_body(body: Any) -> tuple[dict[str, Any], cron.Cron]:
    err = best_match(_VALIDATOR.iter_errors(body))
    if err is not None:
        raise errors.bad_json(".".join(str(p) for p in err.absolute_path), err.message)
    trigger = body["trigger"]
    trigger.setdefault("cron_timezone", "utc")
    try:
        parsed = cron.parse(trigger["cron"], trigger["cron_timezone"])
    except cron.CronError as exc:
        raise errors.bad_json("trigger.cron", str(exc)) from None
    behaviour = body.setdefault("behaviour", {})
    behaviour.setdefault("start_immediately", False)
    behaviour.setdefault("create_stopped", False)
    body["task"].setdefault("description", "")
    return body, parsed


class Schedules:
    def __init__(self, pool: Pool, deps: Deps) -> None:
        self.pool = pool
        self.deps = deps
        self.store = TaskStore(pool)

    async def _task_from(
        self, conn: Any, account_id: str, schedule_id: int, task: dict[str, Any]
    ) -> int:
        return await engine.create_task(
            self.store,
            self.deps,
            account_id,
            task["task_type"],
            task.get("description", ""),
            dict(task["content"]),
            schedule_id,
            conn,
        )

    async def create(self, account_id: str, body: Any) -> int:
        body, parsed = validate_body(body)
        # Refuse a template that could never create a task (bad content, foreign list).
        await engine.create_task(
            _DryStore(),
            self.deps,
            account_id,
            body["task"]["task_type"],
            body["task"]["description"],
            dict(body["task"]["content"]),
        )
        stopped = body["behaviour"]["create_stopped"]
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "insert into tasks_schedules (account_id, task, trigger, behaviour, status,"
                " next_run_time) values (%s, %s, %s, %s, %s, %s) returning schedule_id",
                (
                    account_id,
                    Jsonb(body["task"]),
                    Jsonb(body["trigger"]),
                    Jsonb(body["behaviour"]),
                    STOPPED if stopped else RUNNING,
                    None if stopped else parsed.next_after(times.now()),
                ),
            )
            row = await cur.fetchone()
            assert row is not None
            schedule_id = int(row["schedule_id"])
            if body["behaviour"]["start_immediately"] and not stopped:
                await self._task_from(conn, account_id, schedule_id, body["task"])
        return schedule_id

    async def get(self, schedule_id: int, account_id: str = "") -> dict[str, Any]:
        row = await store.get_owned(
            self.pool, TABLE, "schedule_id", schedule_id, account_id, _not_found(schedule_id)
        )
        async with self.pool.connection() as conn:
            return await self._with_tasks(conn, row)

    async def _with_tasks(self, conn: Any, row: dict[str, Any]) -> dict[str, Any]:
        cur = await conn.execute(
            "select task_id from tasks_tasks where schedule_id = %s order by task_id",
            (row["schedule_id"],),
        )
        row["task_ids"] = [int(r["task_id"]) for r in await cur.fetchall()]
        return row

    async def list(
        self,
        account_id: str,
        task_type: int | None,
        create_time_gte: datetime | None,
        create_time_lt: datetime | None,
        page: int,
        page_size: int,
    ) -> list[dict[str, Any]]:
        cond, args = store.where(
            (
                ("account_id = %s", account_id or None),
                ("(task->>'task_type')::int = %s", task_type),
                ("create_time >= %s", create_time_gte),
                ("create_time < %s", create_time_lt),
            )
        )
        rows = await store.page_of(
            self.pool, TABLE, cond, args, "schedule_id desc", page, page_size
        )
        async with self.pool.connection() as conn:
            return [await self._with_tasks(conn, r) for r in rows]

    async def replace(self, schedule_id: int, account_id: str, body: Any) -> None:
        old = await self.get(schedule_id, account_id)
        body, parsed = validate_body(body)
        await engine.create_task(
            _DryStore(),
            self.deps,
            str(old["account_id"]),
            body["task"]["task_type"],
            body["task"]["description"],
            dict(body["task"]["content"]),
        )
        stopped = body["behaviour"]["create_stopped"]
        async with self.pool.connection() as conn, conn.transaction():
            await conn.execute(
                "update tasks_schedules set task = %s, trigger = %s, behaviour = %s,"
                " status = %s, next_run_time = %s, last_update_time = now()"
                " where schedule_id = %s",
                (
                    Jsonb(body["task"]),
                    Jsonb(body["trigger"]),
                    Jsonb(body["behaviour"]),
                    STOPPED if stopped else RUNNING,
                    None if stopped else parsed.next_after(times.now()),
                    schedule_id,
                ),
            )
            # LUNA: a task of the old schedule that is still running is cancelled.
            await conn.execute(
                "update tasks_tasks set task_status = %s, end_time = now(),"
                " last_update_time = now() where schedule_id = %s and task_status = any(%s)",
                (CANCELLED, schedule_id, list(UNFINISHED)),
            )
            if body["behaviour"]["start_immediately"] and not stopped:
                await self._task_from(conn, str(old["account_id"]), schedule_id, body["task"])

    async def set_status(self, schedule_id: int, account_id: str, action: str) -> None:
        if action not in ACTIONS:
            raise errors.bad_query("action")
        row = await self.get(schedule_id, account_id)
        status = ACTIONS[action]
        nxt = None
        if status == RUNNING:
            trigger = row["trigger"]
            nxt = cron.parse(trigger["cron"], trigger["cron_timezone"]).next_after(times.now())
        async with self.pool.connection() as conn:
            await conn.execute(
                "update tasks_schedules set status = %s, next_run_time = %s,"
                " last_update_time = now() where schedule_id = %s",
                (status, nxt, schedule_id),
            )

    async def delete(self, schedule_id: int, account_id: str) -> None:
        await store.delete_owned(
            self.pool, TABLE, "schedule_id", schedule_id, account_id, _not_found(schedule_id)
        )

    async def fire_due(self) -> list[int]:
        """Create the tasks of every due schedule; returns the new task ids."""
        created: list[int] = []
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "select * from tasks_schedules where status = %s and next_run_time <= now()"
                " order by schedule_id limit 50 for update skip locked",
                (RUNNING,),
            )
            for row in await cur.fetchall():
                sid = int(row["schedule_id"])
                busy = await conn.execute(
                    "select 1 from tasks_tasks where schedule_id = %s"
                    " and task_status = any(%s) limit 1",
                    (sid, list(UNFINISHED)),
                )
                if await busy.fetchone() is None:
                    try:
                        async with conn.transaction():  # a refused template skips one slot
                            created.append(
                                await self._task_from(
                                    conn, str(row["account_id"]), sid, row["task"]
                                )
                            )
                    except errors.LunaError as err:
                        if err.code in engine.RETRYABLE:
                            raise
                        log.warning("schedule %s could not create its task: %s", sid, err.detail)
                else:
                    log.info("schedule %s: previous task unfinished, slot skipped", sid)
                trigger = row["trigger"]
                nxt = cron.parse(trigger["cron"], trigger["cron_timezone"]).next_after(times.now())
                await conn.execute(
                    "update tasks_schedules set next_run_time = %s where schedule_id = %s",
                    (nxt, sid),
                )
        return created


class _DryStore(TaskStore):
    """Validation only: checks a template the way a real creation would, stores nothing."""

    def __init__(self) -> None:
        pass

    async def create(self, *args: Any, **kwargs: Any) -> int:
        return 0
