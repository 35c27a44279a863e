"""The tasks service's tables: tasks, subtasks, errors and results (migrations/0001).

Every state change is one statement or one transaction whose WHERE clause names the status it
expects, so two processes racing on the same row (a redelivered subtask, two collectors, a
cancel during a finish) resolve to exactly one winner without locks held across calls.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from psycopg.types.json import Json, Jsonb, set_json_loads

from services.common import db, errors
from services.common.db import Pool

# LUNA task statuses (catalogue tasks-api §3).
PENDING, IN_PROGRESS, CANCELLED, FAILED, COLLECTING, DONE = 0, 1, 2, 3, 4, 5
FINISHED = (CANCELLED, FAILED, DONE)
# Subtask statuses.
SUB_PENDING, SUB_IN_PROGRESS, SUB_CANCELLED, SUB_FAILED, SUB_DONE = 0, 1, 2, 3, 4


@dataclass(frozen=True)
class RawJson:
    """A result that is JSON text already (a gc part's items as the events service wrote
    them): stored as it is, never decoded and encoded again."""

    text: bytes


def fast_json(value: Any) -> Json:
    """A JSON parameter serialised by orjson (a gc part's result names 10000 events)."""
    if isinstance(value, RawJson):
        return Json(value, dumps=lambda raw: raw.text)
    return Json(value, dumps=orjson.dumps)


def fast_json_cursor(conn: Any) -> Any:
    """A cursor of `conn` that parses JSON columns with orjson (a task's part results)."""
    cur = conn.cursor()
    set_json_loads(orjson.loads, cur)
    return cur


@dataclass
class ItemError:
    """An error of one object or of a whole part, recorded in the task's error log."""

    code: int
    detail: str
    additional_info: str | None = None

    @classmethod
    def of(cls, err: errors.LunaError, additional_info: str | None = None) -> ItemError:
        return cls(err.code, err.detail, additional_info)


@dataclass
class TaskFilter:
    account_id: str = ""
    task_ids: list[int] = field(default_factory=list)
    task_type: int | None = None
    task_status: int | None = None
    create_time_gte: datetime | None = None
    create_time_lt: datetime | None = None
    end_time_gte: datetime | None = None
    end_time_lt: datetime | None = None
    result_id: str = ""
    schedule_id: int = 0


@dataclass
class ErrorFilter:
    account_id: str = ""
    task_ids: list[int] = field(default_factory=list)
    error_ids: list[int] = field(default_factory=list)
    error_code: int | None = None
    task_type: int | None = None
    status_code: int | None = None
    error_time_gte: datetime | None = None
    error_time_lt: datetime | None = None


def where(
    equal: Iterable[tuple[str, Any]], any_of: Iterable[tuple[str, list[Any]]] = ()
) -> tuple[str, list[Any]]:
    """A filter as SQL: each `equal` condition whose value is not None, each `any_of` column
    whose list is not empty."""
    conds, args = ["true"], []
    for sql, value in equal:
        if value is not None:
            conds.append(sql)
            args.append(value)
    for column, values in any_of:
        if values:
            conds.append(f"{column} = any(%s)")
            args.append(values)
    return " and ".join(conds), args


def _task_where(f: TaskFilter) -> tuple[str, list[Any]]:
    return where(
        (
            ("account_id = %s", f.account_id or None),
            ("task_type = %s", f.task_type),
            ("task_status = %s", f.task_status),
            ("create_time >= %s", f.create_time_gte),
            ("create_time < %s", f.create_time_lt),
            ("end_time >= %s", f.end_time_gte),
            ("end_time < %s", f.end_time_lt),
            ("result_id = %s", f.result_id or None),
            ("schedule_id = %s", f.schedule_id or None),
        ),
        (("task_id", f.task_ids),),
    )


def _error_where(f: ErrorFilter) -> tuple[str, list[Any]]:
    return where(
        (
            ("account_id = %s", f.account_id or None),
            ("error_code = %s", f.error_code),
            ("task_type = %s", f.task_type),
            ("status_code = %s", f.status_code),
            ("error_time >= %s", f.error_time_gte),
            ("error_time < %s", f.error_time_lt),
        ),
        (("task_id", f.task_ids), ("error_id", f.error_ids)),
    )


def owned(
    verb: str, table: str, key: str, value: Any, account_id: str, suffix: str = ""
) -> tuple[str, tuple[Any, ...]]:
    """`verb` ("select *", "delete") of the row of `table` whose `key` is `value`, limited to
    `account_id` when one is given (an empty one is an admin's call)."""
    return (
        f"{verb} from {table} where {key} = %s"
        f" and (%s::uuid is null or account_id = %s::uuid){suffix}",
        (value, account_id or None, account_id or None),
    )


async def get_owned(
    pool: Pool, table: str, key: str, value: Any, account_id: str, missing: errors.LunaError
) -> dict[str, Any]:
    row = await db.fetch_one(pool, *owned("select *", table, key, value, account_id))
    if row is None:
        raise missing
    return dict(row)


async def delete_owned(
    pool: Pool, table: str, key: str, value: Any, account_id: str, missing: errors.LunaError
) -> None:
    async with pool.connection() as conn:
        cur = await conn.execute(*owned("delete", table, key, value, account_id))
        if cur.rowcount == 0:
            raise missing


async def page_of(
    pool: Pool, table: str, where_sql: str, args: list[Any], order: str, page: int, size: int
) -> list[dict[str, Any]]:
    rows = await db.fetch_all(
        pool,
        f"select * from {table} where {where_sql} order by {order} limit %s offset %s",
        (*args, size, (page - 1) * size),
    )
    return [dict(r) for r in rows]


def _not_found(task_id: int) -> errors.LunaError:
    return errors.LunaError(errors.TASK_NOT_FOUND, f"Task with id '{task_id}' not found")


class TaskStore:
    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    # -- tasks ---------------------------------------------------------------------------
    async def create(
        self,
        account_id: str,
        task_type: int,
        description: str,
        content: dict[str, Any],
        schedule_id: int = 0,
        conn: Any = None,
    ) -> int:
        """Insert a validated task; with `conn`, inside the caller's transaction."""
        sql = (
            "insert into tasks_tasks (account_id, task_type, description, content,"
            " schedule_id) values (%s, %s, %s, %s, %s) returning task_id"
        )
        args = (account_id, task_type, description, Jsonb(content), schedule_id or None)
        if conn is not None:
            row = await (await conn.execute(sql, args)).fetchone()
        else:
            async with self.pool.connection() as own:
                row = await (await own.execute(sql, args)).fetchone()
        assert row is not None
        return int(row["task_id"])

    async def get(self, task_id: int, account_id: str = "") -> dict[str, Any]:
        return await get_owned(
            self.pool, "tasks_tasks", "task_id", task_id, account_id, _not_found(task_id)
        )

    async def list(self, f: TaskFilter, page: int, page_size: int) -> list[dict[str, Any]]:
        cond, args = _task_where(f)
        return await page_of(self.pool, "tasks_tasks", cond, args, "task_id desc", page, page_size)

    async def count(self, f: TaskFilter) -> int:
        cond, args = _task_where(f)
        return await db.count(self.pool, f"select count(*) from tasks_tasks where {cond}", args)

    async def cancel(self, task_id: int, account_id: str = "") -> None:
        async with self.pool.connection() as conn, conn.transaction():
            task = await self._locked(conn, task_id, account_id)
            if task["task_status"] in FINISHED:
                raise errors.LunaError(
                    errors.TASK_CANNOT_CANCEL,
                    f"Task '{task_id}' with status {task['task_status']} can not canceled",
                )
            await conn.execute(
                "update tasks_tasks set task_status = %s, end_time = now(),"
                " last_update_time = now() where task_id = %s",
                (CANCELLED, task_id),
            )
            await conn.execute(
                "update tasks_subtasks set subtask_status = %s, end_time = now()"
                " where task_id = %s and subtask_status in (%s, %s)",
                (SUB_CANCELLED, task_id, SUB_PENDING, SUB_IN_PROGRESS),
            )

    async def delete(self, task_id: int, account_id: str = "") -> None:
        await delete_owned(
            self.pool, "tasks_tasks", "task_id", task_id, account_id, _not_found(task_id)
        )

    async def status(self, task_id: int) -> int | None:
        row = await db.fetch_one(
            self.pool, "select task_status from tasks_tasks where task_id = %s", (task_id,)
        )
        return None if row is None else int(row["task_status"])

    async def _locked(self, conn: Any, task_id: int, account_id: str) -> dict[str, Any]:
        sql = owned("select *", "tasks_tasks", "task_id", task_id, account_id, " for update")
        row = await (await conn.execute(*sql)).fetchone()
        if row is None:
            raise _not_found(task_id)
        return dict(row)

    # -- results -------------------------------------------------------------------------
    async def result(self, task_id: int, account_id: str = "") -> tuple[str, bytes]:
        task = await self.get(task_id, account_id)
        if task["task_status"] == CANCELLED:
            raise errors.LunaError(
                errors.TASK_CANCELLED_RESULT,
                f"Impossible get a result of task {task_id} with status {CANCELLED}",
            )
        if task["result_id"] is None:
            if task["task_status"] in (FAILED, DONE):
                raise errors.LunaError(
                    errors.TASK_RESULT_NOT_FOUND, f"Result of the task '{task_id}' not found"
                )
            raise errors.LunaError(
                errors.TASK_NO_RESULT_YET, f"task '{task_id}' does not have result yet"
            )
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "select content_type, body from tasks_results where result_id = %s",
                (task["result_id"],),
            )
            row = await cur.fetchone()
        if row is None:
            raise errors.LunaError(
                errors.TASK_RESULT_NOT_FOUND, f"Result of the task '{task_id}' not found"
            )
        return str(row["content_type"]), bytes(row["body"])

    # -- subtasks ------------------------------------------------------------------------
    async def subtasks(self, task_id: int, account_id: str = "") -> list[dict[str, Any]]:
        await self.get(task_id, account_id)
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "select subtask_id, task_id, result_id, create_time, end_time, subtask_status,"
                " content from tasks_subtasks where task_id = %s order by part",
                (task_id,),
            )
            return [dict(r) for r in await cur.fetchall()]

    async def claim_subtask(self, subtask_id: int) -> dict[str, Any] | None:
        """Mark a subtask in progress and count the attempt; None when it must not run (its
        task is gone, cancelled or finished, or the subtask already finished)."""
        claimed = await self.claim_subtasks([subtask_id])
        return claimed[0] if claimed else None

    async def claim_subtasks(self, subtask_ids: list[int]) -> list[dict[str, Any]]:
        """`claim_subtask` for several parts in one transaction (a worker applying parts of
        one task together); the claimed ones, in the order asked."""
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "update tasks_subtasks s set subtask_status = %s, attempts = s.attempts + 1"
                " from tasks_tasks t where s.subtask_id = any(%s) and t.task_id = s.task_id"
                " and s.subtask_status in (%s, %s) and t.task_status in (%s, %s)"
                " returning s.subtask_id, s.task_id, s.part, s.content, s.attempts,"
                " t.task_type, t.account_id, t.content as task_content, t.parts_all",
                (
                    SUB_IN_PROGRESS,
                    subtask_ids,
                    SUB_PENDING,
                    SUB_IN_PROGRESS,
                    PENDING,
                    IN_PROGRESS,
                ),
            )
            rows = {int(r["subtask_id"]): dict(r) for r in await cur.fetchall()}
            for task_id in {r["task_id"] for r in rows.values()}:
                await conn.execute(
                    "update tasks_tasks set task_status = %s, last_update_time = now()"
                    " where task_id = %s and task_status = %s",
                    (IN_PROGRESS, task_id, PENDING),
                )
        return [rows[i] for i in subtask_ids if i in rows]

    async def part_items(self, subtask_id: int) -> dict[str, Any]:
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "select item, outcome from tasks_part_items where subtask_id = %s",
                (subtask_id,),
            )
            return {r["item"]: r["outcome"] for r in await cur.fetchall()}

    async def add_part_item(self, subtask_id: int, item: str, outcome: Any) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(
                "insert into tasks_part_items (subtask_id, item, outcome) values (%s, %s, %s)"
                " on conflict do nothing",
                (subtask_id, item, Jsonb(outcome)),
            )

    async def finish_subtask(
        self,
        subtask: dict[str, Any],
        status: int,
        result: Any,
        item_errors: list[ItemError],
    ) -> int | None:
        """Record a part's outcome once; returns the task's new status when this call was the
        one that finished the part (None when another delivery already did)."""
        return await self.finish_subtasks([(subtask, status, result, item_errors)])

    async def finish_subtasks(
        self, outcomes: list[tuple[dict[str, Any], int, Any, list[ItemError]]]
    ) -> int | None:
        """`finish_subtask` for parts of one task in one transaction (each still recorded only
        by the delivery that finds it in progress); the task's new status when this call
        finished at least one of them, else None."""
        finished = 0
        task_id = outcomes[0][0]["task_id"]
        async with self.pool.connection() as conn, conn.transaction():
            for subtask, status, result, item_errors in outcomes:
                assert subtask["task_id"] == task_id
                cur = await conn.execute(
                    "update tasks_subtasks set subtask_status = %s, result = %s,"
                    " result_id = %s, end_time = now()"
                    " where subtask_id = %s and subtask_status = %s",
                    (
                        status,
                        None if result is None else fast_json(result),
                        str(uuid.uuid4()) if status == SUB_DONE else None,
                        subtask["subtask_id"],
                        SUB_IN_PROGRESS,
                    ),
                )
                if cur.rowcount:
                    finished += 1
                    await self._insert_errors(conn, subtask, item_errors)
            if not finished:
                return None
            cur = await conn.execute(
                "update tasks_tasks set parts_done = parts_done + %s, last_update_time = now(),"
                " task_status = case when parts_done + %s >= parts_all and task_status = %s"
                " then %s else task_status end where task_id = %s returning task_status",
                (finished, finished, IN_PROGRESS, COLLECTING, task_id),
            )
            row = await cur.fetchone()
        return None if row is None else int(row["task_status"])

    async def _insert_errors(
        self, conn: Any, subtask: dict[str, Any], item_errors: list[ItemError]
    ) -> None:
        if not item_errors:
            return
        sid = subtask.get("subtask_id")
        async with conn.cursor() as cur:
            await cur.executemany(
                "insert into tasks_errors (task_id, subtask_id, account_id, task_type,"
                " error_code, status_code, description, detail, additional_info, dedupe_key)"
                " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " on conflict (dedupe_key) do nothing",
                [
                    (
                        subtask["task_id"],
                        sid,
                        subtask["account_id"],
                        subtask["task_type"],
                        e.code,
                        errors.spec(e.code).http_status,
                        errors.spec(e.code).desc,
                        e.detail,
                        e.additional_info,
                        f"{subtask['task_id']}:{sid or 0}:{subtask.get('attempt_key', '')}:{i}",
                    )
                    for i, e in enumerate(item_errors)
                ],
            )

    async def fail_task(self, task: dict[str, Any], err: ItemError) -> None:
        """A task that could not even be split: failed, with the reason as its error."""
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "update tasks_tasks set task_status = %s, end_time = now(),"
                " last_update_time = now() where task_id = %s and task_status in (%s, %s)",
                (FAILED, task["task_id"], PENDING, IN_PROGRESS),
            )
            if cur.rowcount:
                await self._insert_errors(
                    conn, {**task, "subtask_id": None, "attempt_key": "plan"}, [err]
                )

    # -- errors --------------------------------------------------------------------------
    async def list_errors(self, f: ErrorFilter, page: int, page_size: int) -> list[dict]:
        cond, args = _error_where(f)
        return await page_of(self.pool, "tasks_errors", cond, args, "error_id", page, page_size)

    async def count_errors(self, f: ErrorFilter) -> int:
        cond, args = _error_where(f)
        return await db.count(self.pool, f"select count(*) from tasks_errors where {cond}", args)

    async def get_error(self, error_id: int, account_id: str = "") -> dict[str, Any]:
        missing = errors.LunaError(
            errors.TASK_ERROR_NOT_FOUND, f"Task error with id '{error_id}' not found"
        )
        return await get_owned(self.pool, "tasks_errors", "error_id", error_id, account_id, missing)


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)
