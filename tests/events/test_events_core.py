"""Events and statistics cores against real PostgreSQL + NATS JetStream: all-or-nothing saves,
publication on EVENTS in order, every GET /6/events filter, statistics against hand-computed
values, descriptors, and account isolation."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from nats.js.api import ConsumerConfig, DeliverPolicy

from services.common.errors import LunaError
from services.common.scoping import Scope
from services.events.events import (
    BODY,
    FACE,
    DescriptorIn,
    EventFilter,
    EventIn,
    MetaFilter,
    Nullable,
    subject_for,
)
from services.events.handlers import HandlerFields
from services.events.statistics import Filter, Target

from .conftest import World

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)


def ev(i: int, **over: Any) -> dict[str, Any]:
    face_id = str(uuid.uuid4())
    base: dict[str, Any] = {
        "source": f"cam{i % 2}",
        "external_id": f"ext{i}",
        "user_data": f"Visitor {i}",
        "track_id": f"track_{i}",
        "tags": ["vip"] if i % 2 == 0 else ["staff", "vip"] if i == 1 else [],
        "location": {
            "city": "Moscow" if i < 3 else "Paris",
            "street": f"street{i}",
            "geo_position": {"longitude": 37.6 + i, "latitude": 55.7},
        },
        "face": {"face_id": face_id, "lists": []},
        "face_attributes": {
            "basic_attributes": {
                "age": 20 + 10 * i,
                "gender": i % 2,
                "ethnicity": {"predominant_ethnicity": "asian"},
            }
        },
        "detections": [
            {
                "samples": {
                    "face": {
                        "sample_id": str(uuid.uuid4()),
                        "detection": {
                            "rect": {"x": 1, "y": 2, "width": 3, "height": 4},
                            "attributes": {
                                "emotions": {"predominant_emotion": "happiness"},
                                "mask": {"predominant_mask": "missing"},
                                "liveness": {"prediction": "real"},
                            },
                        },
                    }
                },
                "detect_time": (T0 + timedelta(hours=i)).isoformat(),
            }
        ],
        "matches": [
            {
                "label": "staff" if i % 2 else "guests",
                "candidates": [
                    {
                        "face": {
                            "face_id": f"{i:08d}-0000-4000-8000-000000000000",
                            "external_id": f"top{i}",
                        },
                        "similarity": round(0.5 + i / 10, 2),
                    }
                ],
            }
        ],
        "create_time": (T0 + timedelta(hours=i)).isoformat(),
        "meta": {"score": i * 1.5, "person": {"name": f"n{i}"}},
    }
    base.update(over)
    return base


async def _static_handler(world: World, scope: Scope) -> str:
    return (await world.handlers.create(scope, HandlerFields())).handler_id


async def _dynamic_handler(world: World, scope: Scope) -> str:
    return (await world.handlers.create(scope, HandlerFields(handler_type=1))).handler_id


async def _seed(world: World) -> tuple[str, list[str]]:
    hid = await _static_handler(world, world.alice)
    ids = await world.events.save(world.alice, hid, [EventIn(ev(i)) for i in range(5)])
    return hid, ids


async def test_save_stores_publishes_in_order_and_dedupes(world: World) -> None:
    hid = await _static_handler(world, world.alice)
    js = world.nc.jetstream()
    subject = subject_for(world.alice.account_id, hid)
    sub = await js.subscribe(
        subject, config=ConsumerConfig(deliver_policy=DeliverPolicy.NEW), ordered_consumer=True
    )
    chosen = [str(uuid.uuid4()) for _ in range(3)]
    inputs = [EventIn(ev(i), event_id=chosen[i]) for i in range(3)]
    ids = await world.events.save(world.alice, hid, inputs, request_id="1,req")
    assert ids == chosen
    got = []
    for _ in ids:
        msg = await sub.next_msg(timeout=5)
        got.append(msg)
    assert [m.headers["Nats-Msg-Id"] for m in got] == ids
    assert [orjson.loads(m.data)["event_id"] for m in got] == ids
    assert got[0].headers["Luna-Request-Id"] == "1,req"
    # A retried save (same ids) stores nothing twice and the stream drops the duplicates.
    await world.events.save(world.alice, hid, inputs)
    with pytest.raises(Exception):  # noqa: B017 - nats raises its own TimeoutError
        await sub.next_msg(timeout=1)
    await sub.unsubscribe()
    assert await world.events.count(world.alice, EventFilter(no_default_window=True)) == 3
    e = await world.events.get(world.alice, ids[1])
    d = e.data
    assert d["handler_id"] == hid and d["account_id"] == world.alice.account_id
    assert d["gender"] == 1 and d["age"] == 30 and d["emotion"] == 4 and d["mask"] == 1
    assert d["liveness"] == 1 and d["ethnic_group"] == 3
    assert d["top_match"]["similarity"] == 0.6 and d["top_match"]["label"] == "staff"
    assert d["face_detections"][0]["detection"]["rect"]["width"] == 3
    assert d["location"]["geo_position"] == {"longitude": 38.6, "latitude": 55.7}
    assert (
        d["create_time"]
        == (T0 + timedelta(hours=1)).isoformat().replace("+00:00", "Z")[:19] + ".000000Z"
    )
    only = await world.events.get(world.alice, ids[1], ["event_id", "tags"])
    assert only.data == {"event_id": ids[1], "tags": ["staff", "vip"]}


async def test_notify_only_and_silent_events(world: World) -> None:
    """storage_policy: an event may be published without being stored, or stored silently."""
    hid = await _static_handler(world, world.alice)
    js = world.nc.jetstream()
    sub = await js.subscribe(
        subject_for(world.alice.account_id, hid),
        config=ConsumerConfig(deliver_policy=DeliverPolicy.NEW),
        ordered_consumer=True,
    )
    chosen = [str(uuid.uuid4()) for _ in range(3)]
    inputs = [
        EventIn(ev(0), event_id=chosen[0], store=False),
        EventIn(ev(1), event_id=chosen[1], notify=False),
        EventIn(ev(2), event_id=chosen[2]),
    ]
    await world.events.save(world.alice, hid, inputs)
    published = [(await sub.next_msg(timeout=5)).headers["Nats-Msg-Id"] for _ in range(2)]
    assert published == [chosen[0], chosen[2]]
    with pytest.raises(Exception):  # noqa: B017 - nats raises its own TimeoutError
        await sub.next_msg(timeout=0.5)
    await sub.unsubscribe()
    stored = await world.events.list(world.alice, EventFilter(no_default_window=True))
    assert sorted(e.event_id for e in stored) == sorted(chosen[1:])
    with pytest.raises(LunaError) as err:
        await world.events.get(world.alice, chosen[0])
    assert err.value.code == 23001


async def test_invalid_event_refuses_whole_batch(world: World) -> None:
    hid = await _static_handler(world, world.alice)
    bad = [EventIn(ev(0)), EventIn(ev(1, track_id="bad id!"))]
    with pytest.raises(LunaError) as err:
        await world.events.save(world.alice, hid, bad)
    assert err.value.code == 12022 and "events.1.track_id" in err.value.detail
    for over in ({"extra": 1}, {"tags": ["x" * 37]}, {"create_time": "2024-13-40T00:00:00Z"}):
        with pytest.raises(LunaError) as err:
            await world.events.save(world.alice, hid, [EventIn(ev(0, **over))])
        assert err.value.code == 12022
    assert await world.events.count(world.alice, EventFilter(no_default_window=True)) == 0
    # Unknown / foreign handler; client-built events need a dynamic handler.
    with pytest.raises(LunaError) as err:
        await world.events.save(world.alice, str(uuid.uuid4()), [EventIn(ev(0))])
    assert err.value.code == 34000
    with pytest.raises(LunaError) as err:
        await world.events.save(world.bob, hid, [EventIn(ev(0))])
    assert err.value.code == 34000
    with pytest.raises(LunaError) as err:
        await world.events.save(world.alice, hid, [EventIn(ev(0))], from_client=True)
    assert err.value.code == 34007 and err.value.http_status == 403
    dyn = await _dynamic_handler(world, world.alice)
    [eid] = await world.events.save(world.alice, dyn, [EventIn({})], from_client=True)
    assert (await world.events.get(world.alice, eid)).data["user_data"] == ""


async def test_wait_saving_false_stores_after_answer(world: World) -> None:
    hid = await _dynamic_handler(world, world.alice)
    [eid] = await world.events.save(
        world.alice, hid, [EventIn(ev(0))], wait_saving=False, from_client=True
    )
    await world.events.close()
    assert (await world.events.get(world.alice, eid)).event_id == eid


async def _ids(world: World, scope: Scope, **kw: Any) -> set[str]:
    found = await world.events.list(scope, EventFilter(**kw), page_size=100)
    assert len(found) == await world.events.count(scope, EventFilter(**kw))
    return {e.event_id for e in found}


async def test_every_filter(world: World) -> None:
    hid, ids = await _seed(world)
    other_hid = await _static_handler(world, world.alice)
    [lone] = await world.events.save(
        world.alice, other_hid, [EventIn({"user_data": "nobody", "create_time": T0.isoformat()})]
    )
    every = {*ids, lone}
    e = await world.events.list(world.alice, EventFilter(event_ids=(ids[0],)))
    face0 = e[0].data["face_id"]
    assert await _ids(world, world.alice) == every  # default window: last month
    old = (T0 - timedelta(days=60)).isoformat()
    [ancient] = await world.events.save(world.alice, hid, [EventIn(ev(0, create_time=old))])
    assert ancient not in await _ids(world, world.alice)
    assert ancient in await _ids(world, world.alice, event_ids=(ancient,))
    cases: list[tuple[dict[str, Any], set[str]]] = [
        ({"handler_ids": (other_hid,)}, {lone}),
        ({"face_ids": (face0,)}, {ids[0]}),
        ({"external_ids": ("ext1", "ext3")}, {ids[1], ids[3]}),
        ({"create_time_gte": T0 + timedelta(hours=3)}, {ids[3], ids[4]}),
        ({"create_time_lt": T0 + timedelta(hours=1)}, {ids[0], lone, ancient}),
        ({"end_time_gte": T0 + timedelta(hours=4)}, {ids[4]}),
        ({"sources": Nullable(("cam1",))}, {ids[1], ids[3]}),
        ({"sources": Nullable(("cam0",), True)}, {ids[0], ids[2], ids[4], lone}),
        ({"cities": Nullable(("Paris",))}, {ids[3], ids[4]}),
        ({"streets": Nullable(("street2",))}, {ids[2]}),
        ({"track_ids": Nullable(("track_4",))}, {ids[4]}),
        ({"user_data": "VISITOR"}, set(ids)),
        ({"tags": ("vip", "staff")}, {ids[1]}),
        ({"tags": ("vip",)}, {ids[0], ids[1], ids[2], ids[4]}),
        ({"top_matching_candidates_label": "staff"}, {ids[1], ids[3]}),
        ({"top_similar_object_ids": ("00000002-0000-4000-8000-000000000000",)}, {ids[2]}),
        ({"top_similar_external_ids": ("top3",)}, {ids[3]}),
        ({"top_similar_object_similarity_gte": 0.7}, {ids[2], ids[3], ids[4]}),
        ({"top_similar_object_similarity_lt": 0.6}, {ids[0]}),
        ({"age_gte": 40, "age_lt": 60}, {ids[2], ids[3]}),
        ({"gender": Nullable((1,))}, {ids[1], ids[3]}),
        ({"gender": Nullable((), True)}, {lone}),
        ({"emotions": Nullable((4,))}, set(ids)),
        ({"masks": Nullable((2,), True)}, {lone}),
        ({"ethnic_groups": Nullable((3,))}, set(ids)),
        ({"liveness": Nullable((0,))}, set()),
        ({"origin_longitude": 39.6, "origin_latitude": 55.7}, {ids[2]}),
        (
            {"origin_longitude": 39.6, "origin_latitude": 55.7, "longitude_delta": 1.0},
            {ids[1], ids[2], ids[3]},
        ),
        ({"geo_null": True}, {lone}),
        ({"meta": (MetaFilter("score", "gte", "numeric", ("3",)),)}, {ids[2], ids[3], ids[4]}),
        ({"meta": (MetaFilter("person.name", "eq", "string", ("n1",)),)}, {ids[1]}),
        ({"meta": (MetaFilter("person.name", "in", "string", ("n1", "n4")),)}, {ids[1], ids[4]}),
        ({"meta": (MetaFilter("person.name", "like", "string", ("n",)),)}, set(ids)),
        ({"meta": (MetaFilter("score", "eq", "string", (), True),)}, {lone}),
        ({"meta": (MetaFilter("score", "lt", "integer", ("3",)),)}, {ids[0], ids[1]}),
        ({"event_id_gte": sorted(ids)[2]}, {i for i in every | {ancient} if i >= sorted(ids)[2]}),
    ]
    for kw, expected in cases:
        assert await _ids(world, world.alice, **kw) == expected, kw
    with pytest.raises(LunaError) as err:
        await world.events.list(world.alice, EventFilter(meta=(MetaFilter("a b"),)))
    assert err.value.code == 12012
    # Orders and pages.
    desc = await world.events.list(world.alice, EventFilter(), page_size=3)
    assert [x.event_id for x in desc] == [ids[4], ids[3], ids[2]]
    asc = await world.events.list(world.alice, EventFilter(), page=2, page_size=2, order="asc")
    assert [x.event_id for x in asc] == [ids[1], ids[2]]
    by_id = await world.events.list(
        world.alice,
        EventFilter(event_id_gte="00000000-0000-0000-0000-000000000000"),
        order="asc",
        page_size=100,
    )
    assert [x.event_id for x in by_id] == sorted(every | {ancient})


async def test_accounts_are_isolated(world: World) -> None:
    _, ids = await _seed(world)
    assert await _ids(world, world.bob) == set()
    with pytest.raises(LunaError) as err:
        await world.events.get(world.bob, ids[0])
    assert err.value.code == 23001 and err.value.http_status == 404
    admin = Scope(str(uuid.uuid4()), see_all=True)
    assert await _ids(world, admin) == set(ids)
    assert await _ids(world, Scope(admin.account_id, True, world.bob.account_id)) == set()
    _, rows = await world.stats.compute(world.bob, [Target("event_id", "count")], [])
    assert rows == [[0]]


async def test_statistics(world: World) -> None:
    await _seed(world)
    ages = [20, 30, 40, 50, 60]
    fields, rows = await world.stats.compute(
        world.alice,
        [
            Target("event_id", "count"),
            Target("age", "min"),
            Target("age", "max"),
            Target("age", "avg"),
            Target("top_similar_object_similarity", "max"),
        ],
        [],
    )
    assert fields == [
        "count_event_id",
        "min_age",
        "max_age",
        "avg_age",
        "max_top_similar_object_similarity",
    ]
    assert rows == [[5, 20, 60, sum(ages) / 5, 0.9]]
    fields, rows = await world.stats.compute(
        world.alice, [Target("gender", "group_by"), Target("age", "avg")], []
    )
    assert fields == ["gender", "avg_age"]
    assert rows == [[0, 40.0], [1, 40.0]]
    fields, rows = await world.stats.compute(
        world.alice,
        [Target("source", "group_by"), Target("event_id", "count")],
        [Filter("age", "gte", 30), Filter("city", "in", ["Moscow"])],
    )
    assert rows == [["cam0", 1], ["cam1", 1]]
    _, rows = await world.stats.compute(
        world.alice, [Target("event_id", "count")], [Filter("tags", "like", "st%")]
    )
    assert rows == [[1]]
    _, rows = await world.stats.compute(
        world.alice, [Target("event_id", "count")], [Filter("source", "eq", None)]
    )
    assert rows == [[0]]
    _, rows = await world.stats.compute(
        world.alice,
        [Target("event_id", "count")],
        [
            Filter(
                "geo_position",
                "covered",
                {"origin_longitude": 38.6, "origin_latitude": 55.7, "longitude_delta": 1.0},
            )
        ],
    )
    assert rows == [[3]]
    _, rows = await world.stats.compute(
        world.alice, [Target("meta.score", "max"), Target("meta.score", "count")], []
    )
    assert rows == [[6.0, 5]]
    fields, rows = await world.stats.compute(
        world.alice,
        [Target("event_id", "count")],
        [],
        period_start=T0 + timedelta(hours=1),
        period_end=T0 + timedelta(hours=4),
        group_by="hourOfDay",
    )
    assert fields == ["hourOfDay", "count_event_id"]
    expected: dict[int, int] = {}
    for i in (1, 2, 3):
        hour = (T0 + timedelta(hours=i)).hour
        expected[hour] = expected.get(hour, 0) + 1
    assert rows == [[h, n] for h, n in sorted(expected.items())]
    fields, rows = await world.stats.compute(
        world.alice, [Target("event_id", "count")], [], group_by="1d"
    )
    days: dict[str, int] = {}
    for i in range(5):
        day = (T0 + timedelta(hours=i)).strftime("%Y-%m-%dT00:00:00.000000Z")
        days[day] = days.get(day, 0) + 1
    assert rows == [[d, n] for d, n in sorted(days.items())]
    for targets, filters in (
        ([Target("gender", "group_by")], []),
        ([Target("source", "avg")], []),
        ([Target("nope", "count")], []),
        ([Target("event_id", "count")], [Filter("tags", "eq", "x")]),
        ([Target("event_id", "count")], [Filter("age", "in", [])]),
    ):
        with pytest.raises(LunaError) as err:
            await world.stats.compute(world.alice, targets, filters)
        assert err.value.code == 12031, (targets, filters)


async def test_descriptors(world: World) -> None:
    hid = await _static_handler(world, world.alice)
    face = b"\x01" * 16
    ids = await world.events.save(
        world.alice,
        hid,
        [
            EventIn(ev(0), descriptors=(DescriptorIn(FACE, face, 59), DescriptorIn(BODY, b"b", 8))),
            EventIn(ev(1), descriptors=(DescriptorIn(FACE, b"\x02" * 16, 59),)),
            EventIn(ev(2)),
        ],
    )
    got = await world.events.descriptors(world.alice, kind=FACE, version=59)
    assert sorted(got) == sorted([(ids[0], face, 59), (ids[1], b"\x02" * 16, 59)])
    assert await world.events.descriptors(world.alice, kind=FACE, version=60) == []
    assert await world.events.descriptors(world.bob, kind=FACE, version=59) == []
    one = await world.events.descriptors(world.alice, kind=BODY, version=8, event_ids=[ids[0]])
    assert one == [(ids[0], b"b", 8)]
    first = sorted(ids[:2])[0]
    rest = await world.events.descriptors(world.alice, kind=FACE, version=59, event_id_gt=first)
    assert [r[0] for r in rest] == [sorted(ids[:2])[1]]
    await asyncio.sleep(0)
