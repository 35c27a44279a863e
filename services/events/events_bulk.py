"""Bulk reads and deletes for planners and task parts (the tasks service): the ids a filter
selects as one streamed keyset scan, and one DELETE per filter with an idempotency receipt."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from services.common import errors
from services.common.scoping import Scope
from services.events.events import EventFilter, event_where

# Receipts older than this are dropped by later deletes (a part is redelivered within minutes).
RECEIPT_DAYS = 7


def references(event_id: str, data: dict[str, Any] | None) -> dict[str, Any]:
    """The samples and image origins an event's detections referenced."""
    refs: dict[str, Any] = {"event_id": event_id, "face": [], "body": [], "origins": []}
    for kind in ("face", "body"):
        for det in (data or {}).get(f"{kind}_detections") or ():
            if det.get("sample_id"):
                refs[kind].append(det["sample_id"])
            origin = det.get("image_origin")
            if origin and origin not in refs["origins"]:
                refs["origins"].append(origin)
    return refs


async def stream_ids(
    pool: AsyncConnectionPool, scope: Scope, flt: EventFilter, batch_size: int
) -> AsyncIterator[list[str]]:
    """Every id `flt` selects, ascending, `batch_size` at a time, from one server-side cursor."""
    batch_size = batch_size or 10000
    if not 1 <= batch_size <= 10000:
        raise errors.LunaError(errors.BAD_QUERY_PARAM, "Bad query parameters 'batch_size'")
    where, params = event_where(scope, replace(flt, no_default_window=True))
    async with (
        pool.connection() as conn,
        conn.transaction(),
        conn.cursor(name="event_ids") as cur,
    ):
        await cur.execute(
            f"SELECT e.event_id::text AS event_id FROM events e WHERE {where} ORDER BY e.event_id",
            params,
        )
        while rows := await cur.fetchmany(batch_size):
            yield [r["event_id"] for r in rows]


async def delete_where(
    pool: AsyncConnectionPool, scope: Scope, flt: EventFilter, receipt: str
) -> list[dict[str, Any]]:
    """Delete the events of scope.account_id that `flt` selects; what each referenced. A
    `receipt` seen before answers what its first call removed and deletes nothing."""
    if not scope.account_id:
        raise errors.LunaError(errors.BAD_INPUT, "Deleting events needs an account")
    where, params = event_where(scope, replace(flt, no_default_window=True))
    async with pool.connection() as conn, conn.transaction():
        if receipt:
            stored = await _receipt(conn, receipt, scope.account_id)
            if stored is not None:
                return stored
        cur = await conn.execute(
            f"DELETE FROM events e WHERE {where} AND e.account_id = %s"
            " RETURNING e.event_id::text AS event_id, e.data",
            (*params, scope.account_id),
        )
        removed = [references(r["event_id"], r["data"]) for r in await cur.fetchall()]
        removed.sort(key=lambda r: r["event_id"])
        if receipt:
            cur = await conn.execute(
                "INSERT INTO events_delete_receipts (receipt, account_id, events)"
                " VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                (receipt, scope.account_id, Jsonb(removed)),
            )
            if cur.rowcount == 0:  # a concurrent call with the receipt committed first
                stored = await _receipt(conn, receipt, scope.account_id)
                return stored or []
            await conn.execute(
                "DELETE FROM events_delete_receipts"
                f" WHERE create_time < now() - interval '{RECEIPT_DAYS} days'"
            )
    return removed


async def _receipt(conn: Any, receipt: str, account_id: str) -> list[dict[str, Any]] | None:
    cur = await conn.execute(
        "SELECT events FROM events_delete_receipts WHERE receipt = %s AND account_id = %s",
        (receipt, account_id),
    )
    row = await cur.fetchone()
    return None if row is None else list(row["events"])
