"""FACES_CHANGES: what each write publishes, in commit order, with the right content; nothing
for a failed write; and nothing lost when NATS was unreachable at commit time."""

from __future__ import annotations

import time
import uuid
from typing import Any

import numpy as np
import pytest
from luna.faces.v1 import changes_pb2
from nats.js import errors as nats_js_errors

from services.common import errors, nats_streams
from services.faces.descriptors import checked
from services.faces.faces import Faces
from services.faces.outbox import Publisher

from .conftest import World, read_changes

K = changes_pb2.FaceChange.Kind


def raw(seed: int) -> bytes:
    return np.random.default_rng(seed).standard_normal(128).astype("<f4").tobytes()


async def test_face_lifecycle_messages(world: World) -> None:
    a = world.a.account_id
    lst = await world.lists.create(world.a)
    face = await world.faces.create(
        world.a, attribute=checked([(raw(1), 200)], [], None, []), list_ids=[lst.list_id]
    )
    bare = await world.faces.create(world.a)
    await world.faces.put_attribute(world.a, face.face_id, checked([(raw(2), 59)], [], None, []))
    await world.lists.detach(world.a, lst.list_id, [face.face_id])
    await world.lists.attach(world.a, lst.list_id, [face.face_id, bare.face_id])
    await world.faces.update(world.a, face.face_id, user_data="fields only")
    await world.faces.delete_attribute(world.a, face.face_id)
    await world.faces.delete(world.a, face.face_id)
    await world.lists.delete(world.a, lst.list_id)

    got = await read_changes(world.js, a)
    summary = [(c.kind, c.face_id, c.descriptor_version, bool(c.descriptor)) for c in got]
    f, b = face.face_id, bare.face_id
    assert summary == [
        (K.KIND_UPSERT_FACE, f, 200, True),  # created with a descriptor
        (K.KIND_UPSERT_FACE, b, 0, False),  # created without one
        (K.KIND_UPSERT_FACE, f, 200, False),  # attribute replaced: version 200 is gone...
        (K.KIND_UPSERT_FACE, f, 59, True),  # ...and version 59 is new
        (K.KIND_DETACH_MANY, "", 0, False),  # one message for the faces of one unlink
        (K.KIND_ATTACH_MANY, "", 0, False),  # ...and of one link
        (K.KIND_UPDATE_FACE, f, 0, False),  # user_data patched (drops cached records)
        (K.KIND_UPSERT_FACE, f, 0, False),  # attribute deleted
        (K.KIND_DELETE_FACE, f, 0, False),
        (K.KIND_DELETE_LIST, "", 0, False),
    ]
    assert all(c.account_id == a for c in got)
    assert len({c.change_id for c in got}) == len(got)
    assert list(got[0].list_ids) == [lst.list_id]
    vec = np.frombuffer(got[0].descriptor, dtype="<f4")
    assert abs(float(np.linalg.norm(vec)) - 1.0) < 1e-5
    assert np.allclose(
        vec, np.frombuffer(raw(1), "<f4") / np.linalg.norm(np.frombuffer(raw(1), "<f4"))
    )
    assert got[4].list_id == lst.list_id
    assert [(e.face_id, list(e.list_ids)) for e in got[4].linked] == [(f, [])]
    linked = [(e.face_id, e.descriptor_version, bool(e.descriptor)) for e in got[5].linked]
    assert linked == [(f, 59, True), (b, 0, False)]  # attach carries the newest descriptor
    assert got[5].list_id == lst.list_id
    assert all(list(e.list_ids) == [lst.list_id] for e in got[5].linked)
    assert list(got[8].list_ids) == [lst.list_id]  # the lists the deleted face was in
    assert got[9].list_id == lst.list_id
    assert [c.time.ToDatetime() for c in got] == sorted(c.time.ToDatetime() for c in got)


async def test_a_large_link_is_a_few_bounded_messages(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.faces import outbox

    monkeypatch.setattr(outbox, "MAX_MANY_BYTES", 1024)
    lst = await world.lists.create(world.a)
    made = [await world.faces.create(world.a) for _ in range(40)]
    await world.lists.attach(world.a, lst.list_id, [f.face_id for f in made])
    got = (await read_changes(world.js, world.a.account_id))[40:]
    assert len(got) > 1 and all(c.kind == K.KIND_ATTACH_MANY for c in got)
    assert all(c.ByteSize() <= 1024 for c in got)
    assert len({c.change_id for c in got}) == len(got)
    assert [e.face_id for c in got for e in c.linked] == [f.face_id for f in made]


async def test_delete_list_with_faces_publishes_faces_then_list(world: World) -> None:
    lst = await world.lists.create(world.a)
    faces = [await world.faces.create(world.a, list_ids=[lst.list_id]) for _ in range(2)]
    await world.lists.delete(world.a, lst.list_id, with_faces=True)
    got = (await read_changes(world.js, world.a.account_id))[2:]
    assert [c.kind for c in got] == [K.KIND_DELETE_FACE, K.KIND_DELETE_FACE, K.KIND_DELETE_LIST]
    assert {c.face_id for c in got[:2]} == {f.face_id for f in faces}


async def test_failed_writes_publish_nothing(world: World) -> None:
    face = await world.faces.create(world.a)
    with pytest.raises(errors.LunaError):
        await world.faces.create(world.a, list_ids=[str(uuid.uuid4())])
    with pytest.raises(errors.LunaError):
        await world.faces.delete_many(world.a, [face.face_id, str(uuid.uuid4())])
    with pytest.raises(errors.LunaError):
        await world.faces.delete(world.b, face.face_id)
    assert [c.face_id for c in await read_changes(world.js, world.a.account_id)] == [face.face_id]
    assert await read_changes(world.js, world.b.account_id) == []


async def test_changes_survive_nats_being_unreachable(world: World) -> None:
    # A publisher without JetStream stands for NATS being down at commit time.
    offline = Faces(world.pool, Publisher(world.pool, None))
    made = [await offline.create(world.a) for _ in range(3)]
    assert await read_changes(world.js, world.a.account_id) == []
    async with world.pool.connection() as conn:
        cur = await conn.execute("SELECT count(*) AS n FROM faces_outbox")
        assert (await cur.fetchone())["n"] == 3  # type: ignore[index]
    # The next flush (a later write, or the periodic one) publishes them, in order, once.
    assert await world.publisher.flush() == 3
    assert await world.publisher.flush() == 0
    got = await read_changes(world.js, world.a.account_id)
    assert [c.face_id for c in got] == [f.face_id for f in made]


async def test_deleting_an_account_announces_its_faces_and_lists(world: World) -> None:
    from services.faces.accounts import Accounts

    lst = await world.lists.create(world.a)
    face = await world.faces.create(
        world.a, attribute=checked([(raw(3), 200)], [], None, []), list_ids=[lst.list_id]
    )
    other = await world.faces.create(world.b)
    await Accounts(world.pool, world.publisher).delete(world.a.account_id)
    got = (await read_changes(world.js, world.a.account_id))[1:]
    assert [(c.kind, c.face_id, c.attribute_id) for c in got] == [
        (K.KIND_DELETE_FACE, face.face_id, ""),
        (K.KIND_DELETE_LIST, "", ""),
        (K.KIND_ATTRIBUTE_DELETE, "", ""),  # every attribute of the account
    ]
    assert list(got[0].list_ids) == [lst.list_id] and got[1].list_id == lst.list_id
    assert await world.faces.get(world.b, other.face_id)  # the other account is untouched
    with pytest.raises(errors.LunaError):
        await world.faces.get(world.a, face.face_id)


async def test_attribute_create_is_a_notice_and_delete_a_change(world: World) -> None:
    """A created temporary attribute is announced (its descriptor, expiry) for the matcher's
    attribute cache; its delete goes through the outbox, on the stream when it returns."""
    from services.faces.attributes import Attributes

    attributes = Attributes(world.pool, world.publisher)
    data = checked([(raw(5), 200)], [], None, [])
    made = await attributes.create(world.a, data, ttl_s=60)
    await attributes.delete(world.a, made.attribute_id)
    got = await read_changes(world.js, world.a.account_id)
    assert [(c.kind, c.attribute_id) for c in got] == [
        (K.KIND_ATTRIBUTE_CREATE, made.attribute_id),
        (K.KIND_ATTRIBUTE_DELETE, made.attribute_id),
    ]
    assert got[0].descriptor == data.descriptors[200] and got[0].descriptor_version == 200
    assert got[0].expire_time.seconds == int(made.expire_time.timestamp())
    async with world.pool.connection() as conn:
        cur = await conn.execute("SELECT count(*) AS n FROM faces_outbox")
        assert (await cur.fetchone())["n"] == 0  # type: ignore[index]


async def test_links_into_one_list_overlap_and_carry_every_list(world: World) -> None:
    """Links into one list run side by side (the list is only KEY SHARE-locked); each change
    names every list of its faces afterwards, the new one last; `bulk` takes 10000 ids."""
    import asyncio

    first, second = await world.lists.create(world.a), await world.lists.create(world.a)
    made = [await world.faces.create(world.a, list_ids=[first.list_id]) for _ in range(6)]
    ids = [f.face_id for f in made]
    skip = len(await read_changes(world.js, world.a.account_id))
    await asyncio.gather(
        world.lists.attach(world.a, second.list_id, ids[:3]),
        world.lists.attach(world.a, second.list_id, ids[3:], bulk=True),
    )
    got = (await read_changes(world.js, world.a.account_id))[skip:]
    assert [c.kind for c in got] == [K.KIND_ATTACH_MANY] * 2
    entries = {e.face_id: list(e.list_ids) for c in got for e in c.linked}
    assert entries == {f: [first.list_id, second.list_id] for f in ids}
    with pytest.raises(errors.LunaError) as refused:
        await world.lists.attach(world.a, second.list_id, [str(uuid.uuid4()) for _ in range(1001)])
    assert refused.value.code == errors.BAD_JSON


async def test_a_write_waits_out_a_cluster_failover_but_never_a_lone_server(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first publishes fail as they do while a JetStream cluster elects a stream leader:
    with another node to turn to, the create answers only once its change is on the stream
    (read-your-writes for the match that follows); a lone server never makes it wait."""
    real = nats_streams.publish_many
    failures = {"left": 3}

    async def leaderless_for_a_while(js: Any, items: Any) -> Any:
        if failures["left"] > 0:
            failures["left"] -= 1
            raise nats_js_errors.ServiceUnavailableError()
        return await real(js, items)

    monkeypatch.setattr(nats_streams, "publish_many", leaderless_for_a_while)
    publisher = Publisher(world.pool, world.js, wait_s=5.0)
    faces = Faces(world.pool, publisher)

    monkeypatch.setattr(nats_streams, "has_other_servers", lambda js: True)
    face = await faces.create(world.a)
    assert failures["left"] == 0
    assert [c.face_id for c in await read_changes(world.js, world.a.account_id)] == [face.face_id]

    failures["left"] = 3
    monkeypatch.setattr(nats_streams, "has_other_servers", lambda js: False)
    started = time.monotonic()
    lone = await faces.create(world.b)
    assert time.monotonic() - started < 1.0 and failures["left"] == 2  # one try, no waiting
    assert await read_changes(world.js, world.b.account_id) == []
    failures["left"] = 0
    assert await publisher.flush() == 1  # the outbox kept it
    assert [c.face_id for c in await read_changes(world.js, world.b.account_id)] == [lone.face_id]
