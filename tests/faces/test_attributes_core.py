"""Temporary attributes against a real PostgreSQL: create/get/delete, TTL expiry on read,
the periodic purge, and account isolation."""

from __future__ import annotations

import asyncio
import uuid

import numpy as np
import pytest

from services.common import errors
from services.faces.descriptors import BasicAttributes, checked

from .conftest import World


def sample_data() -> object:
    vec = np.random.default_rng(7).standard_normal(128).astype("<f4").tobytes()
    s1, s2 = str(uuid.uuid4()), str(uuid.uuid4())
    return checked([(vec, 200)], [s1], BasicAttributes(25, 0, 2), [s1, s2])


async def code_of(awaitable: object) -> int:
    with pytest.raises(errors.LunaError) as info:
        await awaitable  # type: ignore[misc]
    return info.value.code


async def test_create_get_samples_delete(world: World) -> None:
    data = sample_data()
    made = await world.attributes.create(world.a, data, ttl_s=0)  # type: ignore[arg-type]
    lifetime = (made.expire_time - made.create_time).total_seconds()
    assert 299 <= lifetime <= 301  # default TTL 300 s
    got = await world.attributes.get(world.a, made.attribute_id)
    assert got.data == data
    assert got.data.samples == [*data.descriptor_samples, data.basic_attributes_samples[1]]  # type: ignore[attr-defined]
    assert await code_of(
        world.attributes.get(world.a, made.attribute_id, descriptor_version=56)
    ) == (22018)
    many = await world.attributes.get_many(world.a, [str(uuid.uuid4()), made.attribute_id])
    assert [x.attribute_id for x in many] == [made.attribute_id]
    await world.attributes.delete(world.a, made.attribute_id)
    assert await code_of(world.attributes.get(world.a, made.attribute_id)) == 22011
    assert await code_of(world.attributes.delete(world.a, made.attribute_id)) == 22011


async def test_ttl_bounds(world: World) -> None:
    for ttl in (-1, 86401):
        assert await code_of(world.attributes.create(world.a, sample_data(), ttl_s=ttl)) == 12012  # type: ignore[arg-type]
    made = await world.attributes.create(world.a, sample_data(), ttl_s=86400)  # type: ignore[arg-type]
    assert (made.expire_time - made.create_time).total_seconds() == pytest.approx(86400, abs=1)


async def test_expired_attributes_are_gone_then_purged(world: World) -> None:
    short = await world.attributes.create(world.a, sample_data(), ttl_s=1)  # type: ignore[arg-type]
    long = await world.attributes.create(world.a, sample_data(), ttl_s=600)  # type: ignore[arg-type]
    assert (await world.attributes.get(world.a, short.attribute_id)).attribute_id
    await asyncio.sleep(1.2)
    assert await code_of(world.attributes.get(world.a, short.attribute_id)) == 22011
    assert await world.attributes.get_many(world.a, [short.attribute_id]) == []
    # An expired attribute cannot make a face either.
    assert await code_of(world.faces.create(world.a, attribute=short.attribute_id)) == 22011
    assert await world.attributes.purge_expired() == 1
    async with world.pool.connection() as conn:
        cur = await conn.execute("SELECT attribute_id::text AS id FROM temporary_attributes")
        assert [r["id"] for r in await cur.fetchall()] == [long.attribute_id]
        cur = await conn.execute("SELECT count(*) AS n FROM temporary_attribute_descriptors")
        assert (await cur.fetchone())["n"] == 1  # type: ignore[index]


async def test_accounts_never_touch_each_others_attributes(world: World) -> None:
    made = await world.attributes.create(world.a, sample_data())  # type: ignore[arg-type]
    assert await code_of(world.attributes.get(world.b, made.attribute_id)) == 22011
    assert await code_of(world.attributes.delete(world.b, made.attribute_id)) == 22011
    assert await world.attributes.get_many(world.b, [made.attribute_id]) == []
    assert (await world.attributes.get(world.admin_all, made.attribute_id)).account_id == (
        world.a.account_id
    )
    assert await code_of(world.attributes.delete(world.admin_all, made.attribute_id)) == 22011


async def test_unestimated_ethnicity_is_stored_as_unknown(world: World) -> None:
    """No ethnicity model: 0 means "not estimated" and stays 0, never becomes a class."""
    s1 = str(uuid.uuid4())
    data = checked([], [], BasicAttributes(40, 1, 0), [s1])
    made = await world.attributes.create(world.a, data, ttl_s=60)  # type: ignore[arg-type]
    got = await world.attributes.get(world.a, made.attribute_id)
    assert got.data.basic_attributes == BasicAttributes(40, 1, 0)
    with pytest.raises(errors.LunaError) as info:
        checked([], [], BasicAttributes(40, 1, 5), [])
    assert info.value.code == 12022
