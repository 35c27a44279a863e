"""Bulk reads and deletes for planners and task parts (the tasks service): the ids a filter
selects as one streamed keyset scan, and one DELETE per filter with an idempotency receipt."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
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
        raise errors.bad_query("batch_size")
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


_KEPT = '? (@ != null && @ != "")'
# What each deleted event referenced, computed by PostgreSQL (no event document leaves it).
_REFS = (
    f"jsonb_path_query_array(e.data, '$.face_detections[*].sample_id {_KEPT}') AS face,"
    f" jsonb_path_query_array(e.data, '$.body_detections[*].sample_id {_KEPT}') AS body,"
    f" jsonb_path_query_array(e.data, '$.face_detections[*].image_origin {_KEPT}')"
    f" || jsonb_path_query_array(e.data, '$.body_detections[*].image_origin {_KEPT}')"
    " AS origins"
)
# An event's origins each once, in order (one origin, the usual case, needs no work).
_ONCE = (
    "CASE WHEN jsonb_array_length(origins) < 2 THEN origins ELSE (SELECT jsonb_agg(o ORDER BY n)"
    " FROM (SELECT o, min(n) AS n FROM jsonb_array_elements(origins) WITH ORDINALITY AS x(o, n)"
    " GROUP BY o) u) END"
)
# The gc result's items as compact JSON text (json_agg would put a newline between items and
# jsonb would reorder their keys), and the body samples among their samples.
_ANSWER = (
    '(\'[\' || coalesce(string_agg(format(\'{"event_id":"%%s","samples":%%s,'
    f"\"image_origins\":%%s}}', event_id, face || body, {_ONCE}), ',' ORDER BY event_id), '')"
    " || ']')::json AS events,"
    " coalesce((SELECT json_agg(s) FROM gone g, jsonb_array_elements(g.body) s), '[]')"
    " AS body_samples"
)


@dataclass(frozen=True)
class Removed:
    """What a delete removed: the gc items as JSON text, and the body samples among them."""

    events_json: str
    body_samples: list[str]


def _removed(row: Any) -> Removed:
    return Removed(str(row["events"]), list(row["body_samples"] or ()))


def answered_delete(where: str) -> str:
    """The statement that deletes the events `where` (over `events e`) selects and answers the
    gc result's items and body samples (`Removed`'s two columns, as JSON)."""
    return (
        f"WITH gone AS (DELETE FROM events e WHERE {where} RETURNING e.event_id, {_REFS})"
        f" SELECT events::text AS events, body_samples FROM (SELECT {_ANSWER} FROM gone) a"
    )


async def delete_where(
    pool: AsyncConnectionPool, scope: Scope, flt: EventFilter, receipt: str
) -> Removed:
    """Delete the events of scope.account_id that `flt` selects, in one statement; what each
    referenced, in id order, as a JSON array of {event_id, samples, image_origins} (face then
    body sample ids; origins each once). A `receipt` seen before answers what its first call
    removed and deletes nothing; a new one is stored by the same statement. The JSON stays
    text end to end: a caller may store a part of 10000 events without decoding it."""
    if not scope.account_id:
        raise errors.LunaError(errors.BAD_INPUT, "Deleting events needs an account")
    where, params = event_where(scope, replace(flt, no_default_window=True))
    delete = (
        f"DELETE FROM events e WHERE {where} AND e.account_id = %s RETURNING e.event_id, {_REFS}"
    )
    params = [*params, scope.account_id]
    async with pool.connection() as conn, conn.transaction():
        if not receipt:
            cur = await conn.execute(answered_delete(f"{where} AND e.account_id = %s"), params)
            return _removed(await cur.fetchone())
        stored = await _receipt(conn, receipt, scope.account_id)
        if stored is None:
            cur = await conn.execute(
                f"WITH gone AS ({delete})"
                " INSERT INTO events_delete_receipts (receipt, account_id, events, body_samples)"
                f" SELECT %s, %s, events, body_samples FROM (SELECT {_ANSWER} FROM gone) a"
                " ON CONFLICT DO NOTHING RETURNING events::text AS events, body_samples",
                (*params, receipt, scope.account_id),
            )
            row = await cur.fetchone()
            # None: a concurrent call with the receipt committed first; it holds the answer.
            stored = _removed(row) if row else await _receipt(conn, receipt, scope.account_id)
            await conn.execute(
                "DELETE FROM events_delete_receipts"
                f" WHERE create_time < now() - interval '{RECEIPT_DAYS} days'"
            )
    return stored or Removed("[]", [])


async def _receipt(conn: Any, receipt: str, account_id: str) -> Removed | None:
    cur = await conn.execute(
        "SELECT events::text AS events, body_samples FROM events_delete_receipts"
        " WHERE receipt = %s AND account_id = %s",
        (receipt, account_id),
    )
    row = await cur.fetchone()
    return None if row is None else _removed(row)
