"""Bulk reads and deletes for planners and task parts (the tasks service): the ids a filter
selects as one streamed keyset scan, and one DELETE per filter with an idempotency receipt."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from psycopg_pool import AsyncConnectionPool

from services.common import errors
from services.common.scoping import Scope
from services.events.events import EventFilter, event_where

# Receipts older than this are dropped by later deletes (a part is redelivered within minutes).
RECEIPT_DAYS = 7


async def stream_ids(
    pool: AsyncConnectionPool, scope: Scope, flt: EventFilter, batch_size: int, stride: int = 1
) -> AsyncIterator[list[str]]:
    """Every id `flt` selects, ascending, `batch_size` at a time, from one server-side cursor;
    with `stride` > 1 only the first of every `stride` ids and the last one."""
    batch_size = batch_size or 10000
    if not 1 <= batch_size <= 10000:
        raise errors.LunaError(errors.BAD_QUERY_PARAM, "Bad query parameters 'batch_size'")
    where, params = event_where(scope, replace(flt, no_default_window=True))
    sql = f"SELECT e.event_id::text AS event_id FROM events e WHERE {where} ORDER BY e.event_id"
    if stride > 1:
        sql = (
            "SELECT event_id FROM (SELECT e.event_id::text AS event_id,"
            " row_number() OVER w AS n, lead(e.event_id) OVER w IS NULL AS last"
            f" FROM events e WHERE {where} WINDOW w AS (ORDER BY e.event_id)) s"
            " WHERE (n - 1) %% %s = 0 OR last ORDER BY event_id"
        )
        params = [*params, stride]
    async with (
        pool.connection() as conn,
        conn.transaction(),
        conn.cursor(name="event_ids") as cur,
    ):
        await cur.execute(sql, params)
        while rows := await cur.fetchmany(batch_size):
            yield [r["event_id"] for r in rows]


# What each deleted event referenced, computed by PostgreSQL (no event document leaves it).
_REFS = (
    "jsonb_build_object('event_id', e.event_id::text,"
    " 'face', jsonb_path_query_array(e.data,"
    " '$.face_detections[*].sample_id ? (@ != null && @ != \"\")'),"
    " 'body', jsonb_path_query_array(e.data,"
    " '$.body_detections[*].sample_id ? (@ != null && @ != \"\")'),"
    " 'origins', jsonb_path_query_array(e.data,"
    " '$.face_detections[*].image_origin ? (@ != null && @ != \"\")')"
    " || jsonb_path_query_array(e.data,"
    " '$.body_detections[*].image_origin ? (@ != null && @ != \"\")')) AS refs"
)


async def delete_where(
    pool: AsyncConnectionPool, scope: Scope, flt: EventFilter, receipt: str
) -> str:
    """Delete the events of scope.account_id that `flt` selects, in one statement; what each
    referenced, in id order, as a JSON array of {event_id, face, body, origins} (sample ids;
    image origins, possibly repeated). A `receipt` seen before answers what its first call
    removed and deletes nothing; a new one is stored by the same statement. The JSON stays
    text end to end: a part of 10000 events is decoded once, by the caller."""
    if not scope.account_id:
        raise errors.LunaError(errors.BAD_INPUT, "Deleting events needs an account")
    where, params = event_where(scope, replace(flt, no_default_window=True))
    delete = (
        f"DELETE FROM events e WHERE {where} AND e.account_id = %s RETURNING e.event_id, {_REFS}"
    )
    params = [*params, scope.account_id]
    answer = "coalesce(jsonb_agg(refs ORDER BY event_id), '[]')"
    async with pool.connection() as conn, conn.transaction():
        if not receipt:
            cur = await conn.execute(
                f"WITH gone AS ({delete}) SELECT {answer}::text AS events FROM gone", params
            )
            row = await cur.fetchone()
            return str(row["events"]) if row else "[]"
        stored = await _receipt(conn, receipt, scope.account_id)
        if stored is None:
            cur = await conn.execute(
                f"WITH gone AS ({delete})"
                " INSERT INTO events_delete_receipts (receipt, account_id, events)"
                f" SELECT %s, %s, {answer} FROM gone"
                " ON CONFLICT DO NOTHING RETURNING events::text AS events",
                (*params, receipt, scope.account_id),
            )
            row = await cur.fetchone()
            # None: a concurrent call with the receipt committed first; it holds the answer.
            stored = str(row["events"]) if row else await _receipt(conn, receipt, scope.account_id)
            await conn.execute(
                "DELETE FROM events_delete_receipts"
                f" WHERE create_time < now() - interval '{RECEIPT_DAYS} days'"
            )
    return stored or "[]"


async def _receipt(conn: Any, receipt: str, account_id: str) -> str | None:
    cur = await conn.execute(
        "SELECT events::text AS events FROM events_delete_receipts"
        " WHERE receipt = %s AND account_id = %s",
        (receipt, account_id),
    )
    row = await cur.fetchone()
    return None if row is None else str(row["events"])
