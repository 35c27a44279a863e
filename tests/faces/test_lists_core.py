"""Lists core against a real PostgreSQL: CRUD, filters, attach/detach, with_faces cascade,
cross-account refusal."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from services.common import errors
from services.faces.faces import FaceFilter
from services.faces.lists import ListFilter

from .conftest import World


async def code_of(awaitable: object) -> int:
    with pytest.raises(errors.LunaError) as info:
        await awaitable  # type: ignore[misc]
    return info.value.code


async def test_crud_filters_and_counts(world: World) -> None:
    a = world.a
    made = []
    for name in ("Staff", "staff-night", "guests", "VIP_guests"):
        made.append(await world.lists.create(a, user_data=name))
        await asyncio.sleep(0.002)
    await world.lists.create(world.b, user_data="staff of b")
    got = await world.lists.get(a, made[0].list_id)
    assert got.user_data == "Staff" and got.account_id == a.account_id
    cases = {
        ListFilter(): {0, 1, 2, 3},
        ListFilter(user_data="staff"): {0, 1},
        ListFilter(user_data="_"): {3},  # literal underscore, not a wildcard
        ListFilter(user_data_eq="guests"): {2},
        ListFilter(list_ids=(made[1].list_id, made[3].list_id)): {1, 3},
        ListFilter(create_time_gte=made[2].create_time): {2, 3},
        ListFilter(create_time_lt=made[2].create_time): {0, 1},
        ListFilter(last_update_time_gte=made[3].last_update_time): {3},
        ListFilter(last_update_time_lt=made[1].last_update_time): {0},
    }
    for flt, want in cases.items():
        found = {x.list_id for x in await world.lists.list(a, flt, page_size=100)}
        assert found == {made[i].list_id for i in want}, flt
        assert await world.lists.count(a, flt) == len(want), flt
    newest_first = [x.list_id for x in reversed(made)]
    assert [x.list_id for x in await world.lists.list(a, ListFilter(), page_size=3)] == (
        newest_first[:3]
    )
    assert [x.list_id for x in await world.lists.list(a, ListFilter(), page=2, page_size=3)] == (
        newest_first[3:]
    )
    by_id = sorted(x.list_id for x in made)
    page = await world.lists.list(a, ListFilter(list_id_gte=by_id[1]), page_size=100)
    assert [x.list_id for x in page] == by_id[1:]
    page = await world.lists.list(a, ListFilter(list_id_lt=by_id[1]), page_size=100)
    assert [x.list_id for x in page] == by_id[:1]
    updated = await world.lists.update(a, made[0].list_id, user_data="renamed")
    assert updated.user_data == "renamed" and updated.last_update_time > got.last_update_time
    assert await code_of(world.lists.update(a, made[0].list_id, user_data="x" * 129)) == 12022
    await world.lists.delete(a, made[0].list_id)
    assert await code_of(world.lists.get(a, made[0].list_id)) == 22003
    assert await world.lists.count(world.admin_all, ListFilter(user_data="staff")) == 2


async def test_attach_detach(world: World) -> None:
    a = world.a
    lst = await world.lists.create(a)
    faces = [await world.faces.create(a) for _ in range(3)]
    ids = [f.face_id for f in faces]
    assert await world.lists.attach(a, lst.list_id, ids[:2]) == ids[:2]
    # Attaching again changes nothing and is not an error.
    assert await world.lists.attach(a, lst.list_id, ids) == ids[2:]
    assert await world.faces.count(a, FaceFilter(list_id=lst.list_id)) == 3
    assert (await world.faces.get(a, ids[0])).list_ids == (lst.list_id,)
    assert await world.lists.detach(a, lst.list_id, [ids[0]]) == [ids[0]]
    assert await world.lists.detach(a, lst.list_id, [ids[0]]) == []
    assert await world.faces.count(a, FaceFilter(list_id=lst.list_id)) == 2
    # A missing face fails the whole request: nothing is attached.
    other = await world.lists.create(a)
    ghost = str(uuid.uuid4())
    with pytest.raises(errors.LunaError) as info:
        await world.lists.attach(a, other.list_id, [ids[0], ghost])
    assert info.value.code == 22004 and ghost in info.value.detail
    assert await world.faces.count(a, FaceFilter(list_id=other.list_id)) == 0
    assert await code_of(world.lists.attach(a, str(uuid.uuid4()), ids)) == 22003
    # The unlink was recorded with its own key for incremental readers.
    async with world.pool.connection() as conn:
        cur = await conn.execute("SELECT count(*) AS n FROM list_face_unlinks")
        assert (await cur.fetchone())["n"] == 1  # type: ignore[index]


async def test_delete_list_keeps_or_takes_faces(world: World) -> None:
    a = world.a
    keep = await world.lists.create(a)
    take = await world.lists.create(a)
    kept = await world.faces.create(a, list_ids=[keep.list_id])
    taken = [await world.faces.create(a, list_ids=[take.list_id, keep.list_id]) for _ in range(2)]
    outside = await world.faces.create(a)
    assert await world.lists.delete(a, take.list_id, with_faces=True) == 2
    remaining = {f.face_id for f in await world.faces.list(a, FaceFilter(), page_size=100)}
    assert remaining == {kept.face_id, outside.face_id}
    assert await world.lists.delete(a, keep.list_id) == 0
    assert (await world.faces.get(a, kept.face_id)).list_ids == ()
    del taken


async def test_delete_lists_is_all_or_nothing(world: World) -> None:
    a = world.a
    lists = [await world.lists.create(a) for _ in range(2)]
    ids = [x.list_id for x in lists]
    ghost = str(uuid.uuid4())
    with pytest.raises(errors.LunaError) as info:
        await world.lists.delete_many(a, [*ids, ghost])
    assert info.value.code == 22005 and ghost in info.value.detail
    assert await world.lists.count(a, ListFilter()) == 2
    await world.lists.delete_many(a, ids)
    assert await world.lists.count(a, ListFilter()) == 0


async def test_accounts_never_touch_each_others_lists(world: World) -> None:
    a, b = world.a, world.b
    list_a = await world.lists.create(a, user_data="a")
    list_b = await world.lists.create(b, user_data="b")
    face_a = await world.faces.create(a)
    face_b = await world.faces.create(b)
    assert await code_of(world.lists.get(b, list_a.list_id)) == 22003
    assert await code_of(world.lists.update(b, list_a.list_id, user_data="x")) == 22003
    assert await code_of(world.lists.delete(b, list_a.list_id)) == 22003
    assert await code_of(world.lists.delete_many(b, [list_a.list_id])) == 22005
    # A's face into B's list, B's face into A's list, and both ways for detach: not found.
    assert await code_of(world.lists.attach(b, list_b.list_id, [face_a.face_id])) == 22004
    assert await code_of(world.lists.attach(a, list_a.list_id, [face_b.face_id])) == 22004
    assert await code_of(world.lists.attach(a, list_b.list_id, [face_a.face_id])) == 22003
    assert await code_of(world.lists.detach(b, list_a.list_id, [face_a.face_id])) == 22003
    assert await code_of(world.faces.create(a, list_ids=[list_b.list_id])) == 22005
    assert await world.faces.count(world.admin_all, FaceFilter(list_id=list_b.list_id)) == 0
    assert (await world.lists.get(world.admin_all, list_a.list_id)).user_data == "a"
    assert await code_of(world.lists.delete(world.admin_all, list_a.list_id)) == 22003
