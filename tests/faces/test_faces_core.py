"""Faces core against a real PostgreSQL: CRUD, every filter, pagination and counts, face
attributes, cross-account refusal and all-or-nothing writes."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import numpy as np
import pytest

from services.common import errors, times
from services.common.scoping import Scope
from services.faces.descriptors import AttributeData, BasicAttributes, checked
from services.faces.faces import FaceFilter

from .conftest import World


def vector(seed: int, dim: int = 128) -> bytes:
    return np.random.default_rng(seed).standard_normal(dim).astype("<f4").tobytes()


def data(seed: int = 1, version: int = 200, with_basic: bool = True) -> AttributeData:
    return checked(
        [(vector(seed), version)],
        [str(uuid.uuid4())],
        BasicAttributes(30, 1, 3) if with_basic else None,
        [],
    )


async def code_of(awaitable: object) -> int:
    with pytest.raises(errors.LunaError) as info:
        await awaitable  # type: ignore[misc]
    return info.value.code


async def test_create_get_patch_delete(world: World) -> None:
    face = await world.faces.create(
        world.a, user_data="alice", external_id="ext-1", avatar="/a.png", attribute=data()
    )
    assert face.account_id == world.a.account_id and face.has_attribute
    got = await world.faces.get(world.a, face.face_id)
    assert (got.user_data, got.external_id, got.avatar, got.event_id) == (
        "alice",
        "ext-1",
        "/a.png",
        "",
    )
    event_id = str(uuid.uuid4())
    patched = await world.faces.update(world.a, face.face_id, user_data="bob", event_id=event_id)
    assert (patched.user_data, patched.event_id, patched.external_id) == ("bob", event_id, "ext-1")
    assert patched.last_update_time > got.last_update_time
    cleared = await world.faces.update(world.a, face.face_id, event_id="")
    assert cleared.event_id == ""
    await world.faces.delete(world.a, face.face_id)
    assert await code_of(world.faces.get(world.a, face.face_id)) == 22002
    assert await code_of(world.faces.delete(world.a, face.face_id)) == 22002
    # Deleting the face removed its attribute rows too.
    async with world.pool.connection() as conn:
        cur = await conn.execute("SELECT count(*) AS n FROM face_descriptors")
        assert (await cur.fetchone())["n"] == 0  # type: ignore[index]


async def test_limits_are_refused_before_writing(world: World) -> None:
    for kwargs in (
        {"user_data": "x" * 129},
        {"external_id": "x" * 37},
        {"avatar": "x" * 257},
        {"event_id": "not-a-uuid"},
        {"list_ids": ["nope"]},
    ):
        assert await code_of(world.faces.create(world.a, **kwargs)) == 12022
    assert await world.faces.count(world.a, FaceFilter()) == 0


async def test_filters_pagination_and_counts(world: World) -> None:
    a = world.a
    lst = await world.lists.create(a, user_data="L")
    event = str(uuid.uuid4())
    made = []
    for i in range(7):
        made.append(
            await world.faces.create(
                a,
                user_data=f"user {i} {'VIP' if i % 2 else 'std'}",
                external_id=f"ext-{i % 3}",
                event_id=event if i < 2 else "",
                list_ids=[lst.list_id] if i >= 4 else [],
            )
        )
        await asyncio.sleep(0.002)  # distinct create times
    await world.faces.create(world.b, user_data="user VIP of b")

    async def ids_of(flt: FaceFilter, **kw: int) -> list[str]:
        return [f.face_id for f in await world.faces.list(a, flt, **kw)]

    # Default order: newest first; pages do not overlap.
    newest_first = [f.face_id for f in reversed(made)]
    assert await ids_of(FaceFilter(), page_size=3) == newest_first[:3]
    assert await ids_of(FaceFilter(), page=2, page_size=3) == newest_first[3:6]
    assert await ids_of(FaceFilter(), page=3, page_size=3) == newest_first[6:]
    assert await world.faces.count(a, FaceFilter()) == 7
    cases = {
        FaceFilter(face_ids=(made[0].face_id, made[3].face_id)): {0, 3},
        FaceFilter(external_ids=("ext-0", "ext-2")): {0, 2, 3, 5, 6},
        FaceFilter(user_data="vip"): {1, 3, 5},  # case-insensitive substring
        FaceFilter(user_data="%"): set(),  # wildcards are literals
        FaceFilter(list_id=lst.list_id): {4, 5, 6},
        FaceFilter(event_id=event): {0, 1},
        FaceFilter(create_time_gte=made[2].create_time): {2, 3, 4, 5, 6},
        FaceFilter(create_time_lt=made[2].create_time): {0, 1},
        FaceFilter(user_data="vip", list_id=lst.list_id): {5},
    }
    for flt, want in cases.items():
        expected = {made[i].face_id for i in want}
        assert set(await ids_of(flt, page_size=100)) == expected, flt
        assert await world.faces.count(a, flt) == len(expected), flt
    # face_id bounds switch the order to face_id ascending.
    by_id = sorted(f.face_id for f in made)
    assert await ids_of(FaceFilter(face_id_gte=by_id[2]), page_size=100) == by_id[2:]
    assert await ids_of(FaceFilter(face_id_lt=by_id[2]), page_size=100) == by_id[:2]
    # Lists come with faces, and an advanced user sees both accounts unless filtered.
    listed = await world.faces.list(a, FaceFilter(list_id=lst.list_id))
    assert all(f.list_ids == (lst.list_id,) for f in listed)
    assert await world.faces.count(world.admin_all, FaceFilter(user_data="vip")) == 4
    only_b = Scope(world.admin_all.account_id, True, world.b.account_id)
    assert await world.faces.count(only_b, FaceFilter()) == 1
    assert await code_of(world.faces.list(a, FaceFilter(), page_size=1001)) == 12012
    assert await code_of(world.faces.list(a, FaceFilter(), page=-1)) == 12012


async def test_time_filters_use_commit_times(world: World) -> None:
    before = times.now() - timedelta(seconds=1)
    await world.faces.create(world.a)
    assert await world.faces.count(world.a, FaceFilter(create_time_gte=before)) == 1
    assert await world.faces.count(world.a, FaceFilter(create_time_lt=before)) == 0


async def test_face_attributes_put_get_delete_and_versions(world: World) -> None:
    a = world.a
    face = await world.faces.create(a)
    assert not face.has_attribute
    assert await code_of(world.faces.get_attribute(a, face.face_id)) == 11032
    assert await world.faces.count_attributes(a) == 0
    two_versions = checked(
        [(vector(1), 200), (vector(2, 512), 59)], [], BasicAttributes(40, 0, 4), []
    )
    await world.faces.put_attribute(a, face.face_id, two_versions)
    got = await world.faces.get_attribute(a, face.face_id)
    assert set(got.data.descriptors) == {59, 200}
    assert got.data.basic_attributes == BasicAttributes(40, 0, 4)
    stored = np.frombuffer(got.data.descriptors[200], dtype="<f4")
    assert abs(float(np.linalg.norm(stored)) - 1.0) < 1e-5  # L2-normalised
    only = await world.faces.get_attribute(a, face.face_id, descriptor_version=59)
    assert set(only.data.descriptors) == {59}
    assert await code_of(world.faces.get_attribute(a, face.face_id, descriptor_version=56)) == 22018
    assert await world.faces.count_attributes(a) == 1
    # From a temporary attribute of the same account.
    temp = await world.attributes.create(a, data(seed=3), ttl_s=60)
    await world.faces.put_attribute(a, face.face_id, temp.attribute_id)
    assert set((await world.faces.get_attribute(a, face.face_id)).data.descriptors) == {200}
    missing = str(uuid.uuid4())
    assert await code_of(world.faces.put_attribute(a, face.face_id, missing)) == 22010
    await world.faces.delete_attribute(a, face.face_id)
    assert await code_of(world.faces.get_attribute(a, face.face_id)) == 11032
    assert await code_of(world.faces.delete_attribute(a, face.face_id)) == 11032
    assert (await world.faces.get(a, face.face_id)).has_attribute is False


async def test_create_from_temporary_attribute(world: World) -> None:
    temp = await world.attributes.create(world.a, data(seed=5), ttl_s=60)
    face = await world.faces.create(world.a, attribute=temp.attribute_id)
    got = await world.faces.get_attribute(world.a, face.face_id)
    assert got.data.descriptors == temp.data.descriptors
    assert got.data.descriptor_samples == temp.data.descriptor_samples
    # Another account's attribute id is "not found", and nothing is written.
    assert await code_of(world.faces.create(world.b, attribute=temp.attribute_id)) == 22011
    assert await world.faces.count(world.b, FaceFilter()) == 0


async def test_accounts_never_touch_each_others_faces(world: World) -> None:
    face = await world.faces.create(world.a, user_data="mine", attribute=data())
    b = world.b
    assert await code_of(world.faces.get(b, face.face_id)) == 22002
    assert await code_of(world.faces.update(b, face.face_id, user_data="x")) == 22002
    assert await code_of(world.faces.delete(b, face.face_id)) == 22002
    assert await code_of(world.faces.get_attribute(b, face.face_id)) == 22002
    assert await code_of(world.faces.put_attribute(b, face.face_id, data())) == 22002
    assert await code_of(world.faces.delete_attribute(b, face.face_id)) == 22002
    assert await code_of(world.faces.delete_many(b, [face.face_id])) == 22004
    assert await world.faces.count(b, FaceFilter(face_ids=(face.face_id,))) == 0
    # see_all reads but never writes another account's face.
    assert (await world.faces.get(world.admin_all, face.face_id)).user_data == "mine"
    assert await code_of(world.faces.delete(world.admin_all, face.face_id)) == 22002
    assert (await world.faces.get(world.a, face.face_id)).user_data == "mine"


async def test_bulk_delete_is_all_or_nothing(world: World) -> None:
    faces = [await world.faces.create(world.a) for _ in range(3)]
    ghost = str(uuid.uuid4())
    wanted = [f.face_id for f in faces[:2]] + [ghost]
    with pytest.raises(errors.LunaError) as info:
        await world.faces.delete_many(world.a, wanted)
    assert info.value.code == 22004 and ghost in info.value.detail
    assert await world.faces.count(world.a, FaceFilter()) == 3
    deleted = await world.faces.delete_many(world.a, wanted, ignore_missing=True)
    assert deleted == wanted[:2]
    assert await world.faces.count(world.a, FaceFilter()) == 1


async def test_create_with_a_missing_list_writes_nothing(world: World) -> None:
    lst = await world.lists.create(world.a)
    other = await world.lists.create(world.b)
    for lists in ([lst.list_id, str(uuid.uuid4())], [lst.list_id, other.list_id]):
        with pytest.raises(errors.LunaError) as info:
            await world.faces.create(world.a, attribute=data(), list_ids=lists)
        assert info.value.code == 22005 and lists[1] in info.value.detail
    assert await world.faces.count(world.a, FaceFilter()) == 0
    async with world.pool.connection() as conn:
        for table in ("face_attributes", "list_faces", "faces_outbox"):
            cur = await conn.execute(f"SELECT count(*) AS n FROM {table}")
            assert (await cur.fetchone())["n"] == 0, table  # type: ignore[index]


async def test_concurrent_creates_into_one_list_all_succeed(world: World) -> None:
    # Regression: shared list locks followed by the last_update_time update deadlocked.
    lst = await world.lists.create(world.a)
    made = await asyncio.gather(
        *(
            world.faces.create(world.a, attribute=data(seed), list_ids=[lst.list_id])
            for seed in range(32)
        )
    )
    assert len({f.face_id for f in made}) == 32
    assert await world.faces.count(world.a, FaceFilter(list_id=lst.list_id)) == 32


async def test_bad_descriptors_are_refused(world: World) -> None:
    for raw in (b"", b"abc", np.zeros(8, "<f4").tobytes(), np.full(8, np.nan, "<f4").tobytes()):
        with pytest.raises(errors.LunaError) as info:
            checked([(raw, 200)], [], None, [])
        assert info.value.code in (12031, 12034)
    with pytest.raises(errors.LunaError):
        checked([(vector(1), 200), (vector(2), 200)], [], None, [])
    with pytest.raises(errors.LunaError):
        checked([], [], None, [])


async def test_stream_descriptors_batches_and_filters(world: World) -> None:
    lst = await world.lists.create(world.a)
    in_list = [
        await world.faces.create(world.a, attribute=data(i), list_ids=[lst.list_id])
        for i in range(5)
    ]
    await world.faces.create(world.a, attribute=data(9))  # not in the list
    await world.faces.create(world.a)  # no descriptor: never streamed
    await world.faces.create(world.b, attribute=data(10))
    batches = [
        b
        async for b in world.faces.stream_descriptors(
            Scope(world.a.account_id, True), list_ids=[lst.list_id], batch_size=2
        )
    ]
    assert [len(b) for b in batches] == [2, 2, 1]
    items = [d for b in batches for d in b]
    assert [d.face_id for d in items] == sorted(f.face_id for f in in_list)
    assert all(d.list_ids == (lst.list_id,) and d.version == 200 for d in items)
    every = [d async for b in world.faces.stream_descriptors(world.admin_all) for d in b]
    assert len(every) == 7
    own = [d async for b in world.faces.stream_descriptors(world.b) for d in b]
    assert {d.account_id for d in own} == {world.b.account_id}
    none = [
        d async for b in world.faces.stream_descriptors(world.a, descriptor_version=56) for d in b
    ]
    assert none == []
