"""gc planning and parts without the other services: the id ranges cover every planned event
once, and the empty part of a task that selected nothing deletes nothing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from services.tasks.kinds import Deps
from services.tasks.types import gc


class _Events:
    """StreamEventIds over a fixed id list (with the stride the events service applies);
    every other call is a test failure."""

    def __init__(self, ids: list[str]) -> None:
        self.ids = sorted(ids)

    def StreamEventIds(self, request: Any) -> AsyncIterator[Any]:
        stride = request.stride or 1
        picked = [i for n, i in enumerate(self.ids) if n % stride == 0 or n == len(self.ids) - 1]

        async def gen() -> AsyncIterator[Any]:
            if picked:
                yield type("Batch", (), {"event_ids": picked})()

        return gen()

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"gc called EventsService.{name}")


def _task(filters: dict[str, Any]) -> dict[str, Any]:
    return {
        "account_id": uuid.uuid4(),
        "create_time": datetime.now(UTC),
        "content": {"target": "events", "filters": filters},
    }


@pytest.mark.parametrize("n", [1, 2, 9999, 10000, 10001, 20000, 25001])
async def test_ranges_cover_each_event_once(n: int) -> None:
    ids = sorted(str(uuid.uuid4()) for _ in range(n))
    parts = await gc.GC().plan(Deps(events=_Events(ids)), _task({}))
    covered = [i for p in parts for i in ids if p["event_id__gte"] <= i < p["event_id__lt"]]
    assert covered == ids
    # At most one more event than a part holds, and no part of a single trailing event.
    sizes = [sum(p["event_id__gte"] <= i < p["event_id__lt"] for i in ids) for p in parts]
    assert max(sizes) <= gc.EVENTS_PART_SIZE + 1 and (n == 1 or min(sizes) > 1)


async def test_the_empty_part_of_an_empty_task_deletes_nothing() -> None:
    task = _task({"handler_id": str(uuid.uuid4())})
    deps = Deps(events=_Events([]), faces=_Events([]))
    assert await gc.GC().plan(deps, task) == []
    # The engine plans such a task as one empty part; running it calls no service.
    for target in ("events", "face_descriptors", "event_descriptors"):
        subtask = {
            "content": {},
            "account_id": task["account_id"],
            "task_id": 1,
            "subtask_id": 1,
            "task_content": {"target": target, "filters": {}},
        }
        outcome = await gc.GC().run(deps, subtask)
        assert outcome.result == [] and outcome.errors == []


async def test_ranges_run_together_keep_their_own_outcomes() -> None:
    """Ranges a worker deletes together: each answers its own items, and a range the events
    service refuses is that range's error, not its neighbours'."""
    from luna.events.v1 import events_pb2

    from services.common import errors

    class Events:
        async def DeleteEventsWhere(self, request: Any) -> Any:
            if request.filter.event_id_gte == "bad":
                raise errors.LunaError(errors.BAD_INPUT, "refused")
            item = (
                f'[{{"event_id":"{request.filter.event_id_gte}","samples":[],"image_origins":[]}}]'
            )
            return events_pb2.DeleteEventsWhereResponse(events_json=item.encode())

    def part(lo: str) -> dict[str, Any]:
        return {
            "content": {"event_id__gte": lo, "event_id__lt": "z"},
            "account_id": uuid.uuid4(),
            "task_id": 1,
            "subtask_id": lo,
            "task_content": {"target": "events", "filters": {}},
        }

    done = await gc.GC().run_many(Deps(events=Events()), [part("a"), part("bad"), part("c")])
    assert isinstance(done[1], errors.LunaError) and done[1].detail == "refused"
    assert [d.result.text for d in (done[0], done[2])] == [  # type: ignore[union-attr]
        b'[{"event_id":"a","samples":[],"image_origins":[]}]',
        b'[{"event_id":"c","samples":[],"image_origins":[]}]',
    ]
