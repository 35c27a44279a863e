"""The ingestion path under concurrency: creates that arrive together share one transaction
(services/faces/coalesce.py) and still answer, store and publish exactly what one create
alone does; a refused create in a batch gets its own error and leaves the others whole."""

from __future__ import annotations

import asyncio
import uuid

import numpy as np
import pytest
from luna.faces.v1 import changes_pb2

from services.common import errors
from services.common.scoping import Scope
from services.faces.descriptors import BasicAttributes, checked
from services.faces.faces import FaceFilter

from .conftest import World, read_changes

K = changes_pb2.FaceChange.Kind


def raw(seed: int) -> bytes:
    return np.random.default_rng(seed).standard_normal(128).astype("<f4").tobytes()


async def code_of(awaitable: object) -> int:
    with pytest.raises(errors.LunaError) as info:
        await awaitable  # type: ignore[misc]
    return info.value.code


async def test_concurrent_creates_from_temporary_attributes(world: World) -> None:
    """Attributes and faces made 12 at a time: every face has its attribute's data and its
    lists in request order, and FACES_CHANGES has one upsert per face with its record."""
    w, a = world, world.a
    one, two = (await w.lists.create(a)).list_id, (await w.lists.create(a)).list_id
    samples = [str(uuid.uuid4()) for _ in range(12)]
    attrs = await asyncio.gather(
        *(
            w.attributes.create(
                a, checked([(raw(i), 200), (raw(100 + i), 59)], [samples[i]],
                           BasicAttributes(20 + i, i % 2, 0), []),
            )
            for i in range(12)
        )
    )  # fmt: skip
    for i, attr in enumerate(attrs):  # what each create answered is what a read finds
        got = await w.attributes.get(a, attr.attribute_id)
        assert got.data == attr.data and got.data.basic_attributes.age == 20 + i
        assert got.data.descriptor_samples == (samples[i],)
    order = [[one, two] if i % 2 else [two, one] for i in range(12)]
    faces = await asyncio.gather(
        *(
            w.faces.create(a, attribute=attr.attribute_id, list_ids=order[i], user_data=f"u{i}")
            for i, attr in enumerate(attrs)
        )
    )
    assert len({f.face_id for f in faces}) == 12
    # Made in the same loop turn, they went as one batch: one transaction, one now().
    assert len({f.create_time for f in faces}) == 1
    for i, face in enumerate(faces):
        assert face.user_data == f"u{i}" and face.has_attribute
        assert list(face.list_ids) == order[i]
        assert list((await w.faces.get(a, face.face_id)).list_ids) == order[i]
        stored = await w.faces.get_attribute(a, face.face_id)
        assert stored.data.descriptors == attrs[i].data.descriptors
        assert stored.data.basic_attributes == attrs[i].data.basic_attributes
        assert stored.data.descriptor_samples == (samples[i],)
    got = await read_changes(w.js, a.account_id)
    upserts = [c for c in got if c.kind == K.KIND_UPSERT_FACE]
    assert len(upserts) == 24  # two descriptor versions per face
    by_face = {f.face_id: i for i, f in enumerate(faces)}
    for c in upserts:
        i = by_face[c.face_id]
        assert c.descriptor == attrs[i].data.descriptors[c.descriptor_version]
        assert list(c.list_ids) == order[i] and c.face.user_data == f"u{i}"
        assert c.face.has_attribute and list(c.face.list_ids) == order[i]
        assert c.face.create_time.ToDatetime() == faces[i].create_time.replace(tzinfo=None)
    async with w.pool.connection() as conn:
        left = await (await conn.execute("SELECT count(*) AS n FROM faces_outbox")).fetchone()
    assert left is not None and left["n"] == 0  # published before the creates answered


async def test_a_refused_create_among_concurrent_ones(world: World) -> None:
    """In one burst: good creates, one naming a missing attribute, one another account's
    attribute, one another account's list. Each refused one gets its own error; the good
    ones are created; nothing of the refused ones is left."""
    w, a, b = world, world.a, world.b
    mine = (await w.lists.create(a)).list_id
    theirs = (await w.lists.create(b)).list_id
    good = [await w.attributes.create(a, checked([(raw(i), 200)], [], None, [])) for i in range(6)]
    foreign = await w.attributes.create(b, checked([(raw(50), 200)], [], None, []))
    before = await w.faces.count(a, FaceFilter())
    ghost = str(uuid.uuid4())
    calls = [
        *(w.faces.create(a, attribute=x.attribute_id, list_ids=[mine]) for x in good[:3]),
        w.faces.create(a, attribute=ghost, list_ids=[mine]),
        w.faces.create(a, attribute=foreign.attribute_id, list_ids=[mine]),
        w.faces.create(a, attribute=good[3].attribute_id, list_ids=[mine, theirs]),
        *(w.faces.create(a, attribute=x.attribute_id, list_ids=[mine]) for x in good[4:]),
        w.faces.create(a, list_ids=[mine]),  # no attribute at all
    ]
    got = await asyncio.gather(*calls, return_exceptions=True)
    codes = [g.code if isinstance(g, errors.LunaError) else None for g in got]
    assert codes == [None, None, None, 22011, 22011, 22005, None, None, None]
    assert ghost in got[3].detail and theirs in got[5].detail  # type: ignore[union-attr]
    made = [g for g in got if not isinstance(g, BaseException)]
    assert [f.has_attribute for f in made] == [True] * 5 + [False]
    assert await w.faces.count(a, FaceFilter()) == before + 6
    assert await w.faces.count(a, FaceFilter(list_id=mine)) == 6
    # The attribute of the refused create is still there to use.
    again = await w.faces.create(a, attribute=good[3].attribute_id, list_ids=[mine])
    assert again.has_attribute
    upserts = [c for c in await read_changes(w.js, a.account_id) if c.kind == K.KIND_UPSERT_FACE]
    assert sorted(c.face_id for c in upserts) == sorted([*(f.face_id for f in made), again.face_id])


async def test_concurrent_creates_with_data_and_an_existing_face_id(world: World) -> None:
    """Attribute data given directly (the events pipeline's way) goes through the same
    batches; a face id that exists already is refused alone with 22001."""
    w, a = world, world.a
    taken = await w.faces.create(a)
    data = [checked([(raw(i), 200)], [], BasicAttributes(40, 0, 2), []) for i in range(4)]
    got = await asyncio.gather(
        *(w.faces.create(a, attribute=d, external_id=f"e{i}") for i, d in enumerate(data)),
        w.faces.create(a, face_id=taken.face_id),
        return_exceptions=True,
    )
    assert isinstance(got[4], errors.LunaError) and got[4].code == 22001
    for i, face in enumerate(got[:4]):
        assert not isinstance(face, BaseException) and face.external_id == f"e{i}"
        stored = await w.faces.get_attribute(a, face.face_id)
        assert stored.data.descriptors == data[i].descriptors
        assert stored.data.basic_attributes == BasicAttributes(40, 0, 2)
    assert await code_of(w.faces.create(a, attribute="not-a-uuid")) == 22011


async def test_a_refused_attribute_among_concurrent_ones(world: World) -> None:
    """Attribute creates in one burst go as one statement: descriptors of two versions, basic
    attributes alone, and one of an account that does not exist. That one gets 'account not
    found'; the others are stored whole, and nothing of the refused one is."""
    w, a = world, world.a
    gone = Scope(str(uuid.uuid4()))
    data = [
        checked([(raw(1), 200), (raw(2), 59)], [], None, []),
        checked([], [], BasicAttributes(33, 1, 0), []),
        checked([(raw(3), 200)], [], None, []),
    ]
    got = await asyncio.gather(
        w.attributes.create(a, data[0]),
        w.attributes.create(gone, data[2]),
        w.attributes.create(a, data[1]),
        return_exceptions=True,
    )
    assert isinstance(got[1], errors.LunaError) and got[1].code == errors.ACCOUNT_NOT_FOUND
    for made, sent in ((got[0], data[0]), (got[2], data[1])):
        assert not isinstance(made, BaseException)
        assert (await w.attributes.get(a, made.attribute_id)).data == sent
    async with w.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT count(*) AS n FROM temporary_attribute_descriptors d"
            " JOIN temporary_attributes t USING (attribute_id)"
        )
        row = await cur.fetchone()
        orphans = await conn.execute(
            "SELECT count(*) AS n FROM temporary_attributes WHERE account_id = %s",
            (gone.account_id,),
        )
        assert row is not None and row["n"] == 2  # the first attribute's two versions
        assert (await orphans.fetchone())["n"] == 0  # type: ignore[index]
