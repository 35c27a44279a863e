"""The events service's bulk paths the gc task stands on (services/events/events_bulk.py),
against real PostgreSQL: ids as one streamed scan, and a filtered delete whose receipt makes a
repeated call (a redelivered part) answer what the first one removed, deleting nothing more."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from psycopg.types.json import Jsonb

from services.common import db
from services.common.db import Pool
from services.common.scoping import Scope
from services.events import events_bulk
from services.events.events import EventFilter
from services.launcher.embedded import EmbeddedPostgres
from services.launcher.testing import temp_database

EVENTS_MIGRATIONS = Path(__file__).resolve().parents[2] / "services" / "events" / "migrations"
ACCOUNT, OTHER = str(uuid.uuid4()), str(uuid.uuid4())
HANDLER = str(uuid.uuid4())


@pytest.fixture
async def events_pool(tasks_pg: EmbeddedPostgres) -> AsyncIterator[Pool]:
    async with temp_database(tasks_pg.url, "events") as url:
        p = await db.create_pool(url, max_size=8)
        await db.migrate(p, "events", EVENTS_MIGRATIONS)
        yield p
        await p.close()


async def _events(pool: Pool, account: str, n: int, data: dict | None = None) -> list[str]:
    ids = sorted(str(uuid.uuid4()) for _ in range(n))
    async with pool.connection() as conn, conn.cursor() as cur:
        await cur.executemany(
            "insert into events (event_id, account_id, handler_id, create_time, end_time, data)"
            " values (%s, %s, %s, now(), now(), %s)",
            [(i, account, HANDLER, Jsonb(data or {})) for i in ids],
        )
    return ids


async def test_stream_ids_is_every_match_ascending(events_pool: Pool) -> None:
    mine = await _events(events_pool, ACCOUNT, 25)
    await _events(events_pool, OTHER, 5)
    batches = [
        b
        async for b in events_bulk.stream_ids(
            events_pool, Scope(ACCOUNT), EventFilter(handler_ids=(HANDLER,)), 10
        )
    ]
    assert [len(b) for b in batches] == [10, 10, 5]
    assert [i for b in batches for i in b] == mine


async def test_delete_where_receipt_answers_again_and_deletes_nothing(events_pool: Pool) -> None:
    data = {
        "face_detections": [
            {"sample_id": "s1", "image_origin": "/6/images/a"},
            {"sample_id": None, "image_origin": "/6/images/a"},
        ],
        "body_detections": [{"sample_id": "b1", "image_origin": "http://x/y.jpg"}],
    }
    ids = await _events(events_pool, ACCOUNT, 6, data)
    foreign = await _events(events_pool, OTHER, 2)
    scope = Scope(ACCOUNT)
    part = EventFilter(event_id_gte=ids[1], event_id_lt=ids[4])
    removed = await events_bulk.delete_where(events_pool, scope, part, "tasks:1:1")
    first = orjson.loads(removed.events_json)
    assert [r["event_id"] for r in first] == ids[1:4]
    # The gc result's item: face then body samples, each origin once, in their order.
    assert first[0] == {
        "event_id": ids[1],
        "samples": ["s1", "b1"],
        "image_origins": ["/6/images/a", "http://x/y.jpg"],
    }
    assert list(first[0]) == ["event_id", "samples", "image_origins"]
    assert removed.body_samples == ["b1", "b1", "b1"]
    # The redelivered part: the same answer, although its events are gone.
    again = await events_bulk.delete_where(events_pool, scope, part, "tasks:1:1")
    assert orjson.loads(again.events_json) == first
    assert again.body_samples == removed.body_samples
    # Without a receipt the range is simply empty now; another account is never touched.
    assert await events_bulk.delete_where(events_pool, scope, part, "") == events_bulk.Removed(
        "[]", []
    )
    everything = EventFilter()
    rest = await events_bulk.delete_where(events_pool, scope, everything, "tasks:1:2")
    assert [r["event_id"] for r in orjson.loads(rest.events_json)] == [ids[0], ids[4], ids[5]]
    left = await db.fetch_all(events_pool, "select event_id::text as id from events", ())
    assert sorted(r["id"] for r in left) == foreign


async def test_concurrent_deliveries_of_one_receipt_agree(events_pool: Pool) -> None:
    ids = await _events(events_pool, ACCOUNT, 300)
    scope, flt = Scope(ACCOUNT), EventFilter(handler_ids=(HANDLER,))
    a, b = await asyncio.gather(
        events_bulk.delete_where(events_pool, scope, flt, "tasks:7:3"),
        events_bulk.delete_where(events_pool, scope, flt, "tasks:7:3"),
    )
    assert [r["event_id"] for r in orjson.loads(a.events_json)] == ids
    assert orjson.loads(a.events_json) == orjson.loads(b.events_json)


async def test_stream_ids_with_a_stride_gives_part_bounds(events_pool: Pool) -> None:
    ids = await _events(events_pool, ACCOUNT, 25)
    scope, flt = Scope(ACCOUNT), EventFilter()

    async def bounds(stride: int) -> list[str]:
        return [
            i async for b in events_bulk.stream_ids(events_pool, scope, flt, 2, stride) for i in b
        ]

    assert await bounds(10) == [ids[0], ids[10], ids[20], ids[24]]
    assert await bounds(5) == [ids[0], ids[5], ids[10], ids[15], ids[20], ids[24]]
    assert await bounds(25) == [ids[0], ids[24]]
    assert await bounds(24) == [ids[0], ids[24]]
    assert await bounds(1) == ids
