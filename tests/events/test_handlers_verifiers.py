"""Handlers and verifiers cores against a real PostgreSQL: CRUD, policy validation with
defaults, refusals that store nothing, and account isolation."""

from __future__ import annotations

import uuid

import pytest

from services.common.errors import LunaError
from services.common.scoping import Scope
from services.events.handlers import HandlerFields, HandlerFilter

from .conftest import World


async def _count_rows(world: World, table: str) -> int:
    async with world.pool.connection() as conn:
        cur = await conn.execute(f"SELECT count(*) AS n FROM {table}")
        row = await cur.fetchone()
    assert row is not None
    return int(row["n"])


async def test_static_handler_gets_every_default(world: World) -> None:
    h = await world.handlers.create(
        world.alice,
        HandlerFields(
            description="entrance",
            policies={
                "detect_policy": {"estimate_mask": 1},
                "match_policy": [{"candidates": {"origin": "faces", "list_id": str(uuid.uuid4())}}],
                "storage_policy": {
                    "face_policy": {
                        "store_face": 1,
                        "link_to_lists_policy": [{"list_id": str(uuid.uuid4())}],
                    }
                },
            },
        ),
    )
    assert h.handler_type == 0 and h.account_id == world.alice.account_id
    p = h.policies
    assert p is not None
    assert p["detect_policy"]["estimate_mask"] == 1
    assert p["detect_policy"]["detect_face"] == 1 and p["detect_policy"]["multiface_policy"] == 1
    assert p["match_policy"][0]["limit"] == 3 and p["match_policy"][0]["label"] == ""
    # LUNA's warning: face samples are stored by default.
    assert p["storage_policy"]["face_sample_policy"]["store_sample"] == 1
    assert p["storage_policy"]["event_policy"] == {"store_event": 1, "wait_saving": 0}
    assert p["storage_policy"]["face_policy"]["set_sample_as_avatar"] == 1
    assert p["storage_policy"]["attribute_policy"]["store_attribute"] == 0
    assert p["conditional_tags_policy"] == []
    got = await world.handlers.get(world.alice, h.handler_id)
    assert got.policies == p and got.description == "entrance"


@pytest.mark.parametrize(
    ("policies", "path"),
    [
        ({"detect_policy": {"multiface_policy": 3}}, "policies.detect_policy.multiface_policy"),
        ({"unknown_policy": {}}, "policies.unknown_policy"),
        ({"detect_policy": {"estimate_mask": 1, "bogus": 1}}, "policies.detect_policy.bogus"),
        ({"match_policy": [{"label": "x"}]}, "policies.match_policy.0.candidates"),
        (
            {"match_policy": [{"candidates": {"origin": "faces", "handler_ids": []}}]},
            "policies.match_policy.0.candidates.handler_ids",
        ),
        (
            {
                "match_policy": [
                    {"label": "a", "candidates": {"origin": "faces"}},
                    {"label": "a", "candidates": {"origin": "events"}},
                ]
            },
            "policies.match_policy.1.label",
        ),
        (
            {"storage_policy": {"face_policy": {"link_to_lists_policy": [{"list_id": "nope"}]}}},
            "policies.storage_policy.face_policy.link_to_lists_policy.0.list_id",
        ),
        (
            {"storage_policy": {"callbacks": [{"type": "http"}]}},
            "policies.storage_policy.callbacks.0.url",
        ),
        (
            {
                "match_policy": [
                    {"candidates": {"origin": "faces", "create_time__gte": "yesterday"}}
                ]
            },
            "policies.match_policy.0.candidates.create_time__gte",
        ),
        ({"detect_policy": {"yaw_threshold": 181}}, "policies.detect_policy.yaw_threshold"),
    ],
)
async def test_invalid_policies_are_refused_and_nothing_stored(
    world: World, policies: dict, path: str
) -> None:
    with pytest.raises(LunaError) as err:
        await world.handlers.create(world.alice, HandlerFields(policies=policies))
    assert err.value.code == 12022 and err.value.http_status == 400
    assert f"Path: '{path}'" in err.value.detail
    assert await _count_rows(world, "handlers") == 0


async def test_relative_time_filter_is_accepted(world: World) -> None:
    h = await world.handlers.create(
        world.alice,
        HandlerFields(
            policies={
                "match_policy": [{"candidates": {"origin": "events", "create_time__gte": "now-3h"}}]
            }
        ),
    )
    assert h.policies is not None
    assert h.policies["match_policy"][0]["candidates"]["create_time__gte"] == "now-3h"


async def test_dynamic_handler_and_type_rules(world: World) -> None:
    h = await world.handlers.create(world.alice, HandlerFields(handler_type=1))
    assert h.handler_type == 1 and h.policies is None
    ignored = await world.handlers.create(
        world.alice, HandlerFields(handler_type=1, policies={"detect_policy": {}})
    )
    assert ignored.policies is None
    with pytest.raises(LunaError) as err:
        await world.handlers.create(world.alice, HandlerFields(handler_type=2))
    assert err.value.code == 12029
    with pytest.raises(LunaError) as err:
        await world.handlers.create(world.alice, HandlerFields(description="x" * 129))
    assert err.value.code == 12022
    assert await _count_rows(world, "handlers") == 2


async def test_list_count_replace_delete_and_isolation(world: World) -> None:
    a1 = await world.handlers.create(world.alice, HandlerFields(description="Front door"))
    a2 = await world.handlers.create(
        world.alice, HandlerFields(description="back door", handler_type=1)
    )
    b1 = await world.handlers.create(world.bob, HandlerFields(description="front gate"))
    listed = await world.handlers.list(world.alice, HandlerFilter())
    assert [h.handler_id for h in listed] == [a2.handler_id, a1.handler_id]
    assert await world.handlers.count(world.alice, HandlerFilter(description="DOOR")) == 2
    assert await world.handlers.count(world.alice, HandlerFilter(handler_type=1)) == 1
    assert await world.handlers.count(world.alice, HandlerFilter(description="front")) == 1
    page2 = await world.handlers.list(world.alice, HandlerFilter(), page=2, page_size=1)
    assert [h.handler_id for h in page2] == [a1.handler_id]
    # Bob cannot see, replace or delete Alice's handler.
    for call in (
        world.handlers.get(world.bob, a1.handler_id),
        world.handlers.replace(world.bob, a1.handler_id, HandlerFields()),
        world.handlers.delete(world.bob, a1.handler_id),
    ):
        with pytest.raises(LunaError) as err:
            await call
        assert err.value.code == 34000 and err.value.http_status == 404
    # An admin-like scope with see_all reads both, filtered by account when asked.
    admin = Scope(str(uuid.uuid4()), see_all=True)
    assert await world.handlers.count(admin, HandlerFilter()) == 3
    only_bob = Scope(admin.account_id, True, world.bob.account_id)
    assert [h.handler_id for h in await world.handlers.list(only_bob, HandlerFilter())] == [
        b1.handler_id
    ]
    replaced = await world.handlers.replace(
        world.alice,
        a2.handler_id,
        HandlerFields(
            description="now static", policies={"extract_policy": {"extract_basic_attributes": 1}}
        ),
    )
    assert replaced.handler_type == 0 and replaced.description == "now static"
    assert replaced.policies is not None
    assert replaced.policies["extract_policy"]["extract_basic_attributes"] == 1
    assert replaced.last_update_time >= replaced.create_time
    # A refused replace leaves the handler as it was.
    with pytest.raises(LunaError):
        await world.handlers.replace(
            world.alice, a2.handler_id, HandlerFields(policies={"extract_policy": {"x": 1}})
        )
    assert (await world.handlers.get(world.alice, a2.handler_id)).description == "now static"
    await world.handlers.delete(world.alice, a2.handler_id)
    with pytest.raises(LunaError) as err:
        await world.handlers.get(world.alice, a2.handler_id)
    assert err.value.code == 34000
    with pytest.raises(LunaError) as err:
        await world.handlers.get(world.alice, "not-a-uuid")
    assert err.value.code == 34000


async def test_verifiers_crud_versions_and_isolation(world: World) -> None:
    v = await world.verifiers.create(
        world.alice,
        description="strict",
        policies={"verification_threshold": 0.7, "detect_policy": {"estimate_mask": 1}},
    )
    assert v.version == 1 and v.policies["verification_threshold"] == 0.7
    assert v.policies["storage_policy"] == {
        "face_sample_policy": {"store_sample": 0},
        "attribute_policy": {"store_attribute": 0},
    }
    assert v.policies["extract_policy"]["extract_basic_attributes"] == 0
    default = await world.verifiers.create(world.alice)
    assert default.policies["verification_threshold"] == 0.9
    with pytest.raises(LunaError) as err:
        await world.verifiers.create(world.alice, policies={"verification_threshold": 2})
    assert err.value.code == 12022 and "verification_threshold" in err.value.detail
    with pytest.raises(LunaError) as err:
        await world.verifiers.create(world.alice, policies={"match_policy": []})
    assert err.value.code == 12022
    assert await _count_rows(world, "verifiers") == 2
    assert await world.verifiers.count(world.alice, description="STRI") == 1
    listed = await world.verifiers.list(world.alice)
    assert [x.verifier_id for x in listed] == [default.verifier_id, v.verifier_id]
    r = await world.verifiers.replace(world.alice, v.verifier_id, description="lenient")
    assert r.version == 2 and r.policies["verification_threshold"] == 0.9
    with pytest.raises(LunaError) as err:
        await world.verifiers.get(world.bob, v.verifier_id)
    assert err.value.code == 34004 and err.value.http_status == 404
    with pytest.raises(LunaError):
        await world.verifiers.delete(world.bob, v.verifier_id)
    await world.verifiers.delete(world.alice, v.verifier_id)
    with pytest.raises(LunaError) as err:
        await world.verifiers.get(world.alice, v.verifier_id)
    assert err.value.code == 34004
