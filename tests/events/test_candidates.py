"""Event candidates (SelectEventCandidates, the pipeline's event match policies) against real
PostgreSQL, and the gRPC adapter reading every EventFilter field from the proto."""

from __future__ import annotations

import dataclasses
import struct
from datetime import timedelta

import pytest
from luna.events.v1 import events_pb2

from services.common import errors, times
from services.events.candidates import (
    MAX_EVENT_CANDIDATES,
    resolve_time,
    select_event_candidates,
    select_requested,
)
from services.events.events import FACE, DescriptorIn, EventFilter, EventIn, Nullable
from services.events.grpc_service import event_filter
from services.events.handlers import HandlerFields

from .conftest import World


def vec(*values: float) -> bytes:
    return struct.pack(f"<{len(values)}f", *values)


async def _seed(world: World) -> tuple[str, list[str]]:
    hid = (await world.handlers.create(world.alice, HandlerFields())).handler_id
    # Event 3 has no descriptor and is the oldest: never among the newest `limit`.
    older = times.to_rfc3339(times.now() - timedelta(hours=1))
    events = [
        EventIn(
            {"source": f"cam{i % 2}", "tags": ["vip"] if i < 2 else []}
            | ({"create_time": older} if i == 3 else {}),
            descriptors=(DescriptorIn(FACE, vec(1.0, float(i)), 59),) if i != 3 else (),
        )
        for i in range(4)
    ]
    return hid, await world.events.save(world.alice, hid, events)


async def test_select_newest_with_descriptors(world: World) -> None:
    hid, ids = await _seed(world)
    found = await select_event_candidates(
        world.events, world.alice, {"handler_ids": [hid]}, kind=FACE, version=59
    )
    # event 3 has no descriptor; the rest come newest first with the match-result shape
    assert {c.event_id for c in found} == set(ids[:3])
    assert found[0].event["handler_id"] == hid and found[0].version == 59
    assert set(found[0].event) >= {"event_id", "account_id", "tags", "create_time", "face_id"}
    only = await select_event_candidates(
        world.events, world.alice, {"sources": ["cam0"], "tags": ["vip"]}, kind=FACE, version=59
    )
    assert [c.event_id for c in only] == [ids[0]]
    assert await select_event_candidates(world.events, world.bob, {}, kind=FACE, version=59) == []


async def test_select_requested_checks_filters_and_limit(world: World) -> None:
    await _seed(world)
    found = await select_requested(world.events, world.alice, {}, kind=FACE, version=59, limit=0)
    assert len(found) == 3
    one = await select_requested(world.events, world.alice, {}, kind=FACE, version=59, limit=1)
    assert len(one) == 1
    with pytest.raises(errors.LunaError) as err:
        await select_requested(
            world.events, world.alice, {}, kind=FACE, version=59, limit=MAX_EVENT_CANDIDATES + 1
        )
    assert err.value.code == errors.BAD_INPUT
    with pytest.raises(errors.LunaError) as err:
        await select_requested(
            world.events, world.alice, {"colour": "red"}, kind=FACE, version=59, limit=0
        )
    assert err.value.code == errors.BAD_JSON and "filters.colour" in err.value.detail


def test_resolve_time() -> None:
    now = times.now()
    assert resolve_time("now-2h", now) == now - timedelta(hours=2)
    assert resolve_time("now-1M", now) == now - timedelta(days=30)
    assert resolve_time("2024-05-01T10:00:00Z").year == 2024
    with pytest.raises(errors.LunaError):
        resolve_time("yesterday")


def test_adapter_reads_every_event_filter_field() -> None:
    """event_filter reads each EventFilter field from the proto field of the same name."""
    proto_fields = set(events_pb2.EventFilter.DESCRIPTOR.fields_by_name)
    assert {f.name for f in dataclasses.fields(EventFilter)} <= proto_fields
    pb = events_pb2.EventFilter(
        event_ids=["a"], event_id_gte="b", user_data="u", age_gte=3, geo_null=True
    )
    pb.sources.values.extend(["cam"])
    pb.gender.with_null = True
    pb.create_time_gte.FromSeconds(1_700_000_000)
    pb.meta.add(path="x", values=["1"])
    flt = event_filter(pb)
    assert flt.event_ids == ("a",) and flt.event_id_gte == "b" and flt.user_data == "u"
    assert flt.age_gte == 3 and flt.age_lt is None and flt.geo_null
    assert flt.sources == Nullable(("cam",)) and flt.gender == Nullable((), True)
    assert flt.masks == Nullable() and flt.create_time_gte == times.from_timestamp(
        pb.create_time_gte
    )
    assert flt.meta[0].operator == "eq" and flt.meta[0].type == "string"
