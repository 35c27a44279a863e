"""Statistics grouped by calendar months and years (`1M`, `2M`, `1y`) against hand-counted
buckets. These once failed in SQL building (a bare `%` beside psycopg placeholders)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.common.errors import LunaError
from services.events.events import EventIn
from services.events.handlers import HandlerFields
from services.events.statistics import Target

from .conftest import World

TIMES = [
    datetime(2025, 1, 15, 10, tzinfo=UTC),
    datetime(2025, 2, 10, 23, 59, tzinfo=UTC),
    datetime(2025, 2, 20, tzinfo=UTC),
    datetime(2025, 12, 31, 23, tzinfo=UTC),
    datetime(2026, 3, 1, tzinfo=UTC),
]


def _bucket(year: int, month: int) -> str:
    return f"{year:04d}-{month:02d}-01T00:00:00.000000Z"


@pytest.mark.parametrize(
    ("group_by", "expected"),
    [
        ("1M", [(_bucket(2025, 1), 1), (_bucket(2025, 2), 2), (_bucket(2025, 12), 1),
                (_bucket(2026, 3), 1)]),
        ("2M", [(_bucket(2025, 1), 3), (_bucket(2025, 11), 1), (_bucket(2026, 3), 1)]),
        ("1y", [(_bucket(2025, 1), 4), (_bucket(2026, 1), 1)]),
    ],
)  # fmt: skip
async def test_month_and_year_buckets(
    world: World, group_by: str, expected: list[tuple[str, int]]
) -> None:
    handler_id = (await world.handlers.create(world.alice, HandlerFields())).handler_id
    events = [EventIn({"create_time": t.isoformat(), "source": "cam"}) for t in TIMES]
    await world.events.save(world.alice, handler_id, events)
    # Another account's events never count.
    other = (await world.handlers.create(world.bob, HandlerFields())).handler_id
    await world.events.save(world.bob, other, [EventIn({"create_time": TIMES[0].isoformat()})])
    fields, rows = await world.stats.compute(
        world.alice, [Target("event_id", "count")], [], group_by=group_by
    )
    assert fields == [group_by, "count_event_id"]
    assert [tuple(r) for r in rows] == expected


async def test_zero_months_is_refused(world: World) -> None:
    with pytest.raises(LunaError) as err:
        await world.stats.compute(world.alice, [Target("event_id", "count")], [], group_by="0M")
    assert err.value.code == 12031
