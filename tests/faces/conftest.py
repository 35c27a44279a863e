"""Faces-service worlds: one real PostgreSQL and one real NATS (JetStream) per session, each
from the pip-installed binaries on a random port in a temp dir; every test gets its own
migrated database, two accounts, and the faces/lists/attributes cores wired to a publisher
on the real FACES_CHANGES stream.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import nats.errors
import psycopg
import pytest
from luna.faces.v1 import changes_pb2
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool

from services.common import db, nats_streams
from services.common.scoping import Scope
from services.faces.attributes import Attributes
from services.faces.faces import Faces
from services.faces.lists import Lists
from services.faces.outbox import Publisher, subject_for
from services.launcher.embedded import EmbeddedNats, EmbeddedPostgres
from services.launcher.testing import (
    _with_database,
    running_nats,
    running_postgres,
    temp_database,
)

MIGRATIONS = Path(__file__).resolve().parents[2] / "services" / "faces" / "migrations"


@pytest.fixture(scope="session")
async def faces_pg(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[EmbeddedPostgres]:
    async with running_postgres(tmp_path_factory.mktemp("faces-pg")) as server:
        yield server


@pytest.fixture(scope="session")
async def faces_nats(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[EmbeddedNats]:
    async with running_nats(tmp_path_factory.mktemp("faces-nats")) as server:
        yield server


@pytest.fixture
async def nc(faces_nats: EmbeddedNats) -> AsyncIterator[NATS]:
    client = await nats_streams.connect(faces_nats.url, name="tests-faces")
    await nats_streams.ensure_streams(client.jetstream())
    yield client
    await client.close()


@pytest.fixture
def js(nc: NATS) -> JetStreamContext:
    return nc.jetstream()


@pytest.fixture(scope="session")
async def faces_template(faces_pg: EmbeddedPostgres) -> AsyncIterator[str]:
    """Name of a database migrated once per session; each test copies it (much faster than
    migrating a fresh database every time)."""
    async with temp_database(faces_pg.url, prefix="faces_template") as url:
        pool = await db.create_pool(url, max_size=2)
        await db.migrate(pool, "faces", MIGRATIONS)
        await pool.close()
        yield url.rsplit("/", 1)[-1] if "://" in url else conninfo_to_dict(url)["dbname"]


@pytest.fixture
async def pool(
    faces_pg: EmbeddedPostgres, faces_template: str
) -> AsyncIterator[AsyncConnectionPool]:
    name = f"faces_{uuid.uuid4().hex[:12]}"
    async with await psycopg.AsyncConnection.connect(faces_pg.url, autocommit=True) as conn:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{faces_template}"'.encode())
    try:
        pool = await db.create_pool(_with_database(faces_pg.url, name), max_size=8)
        yield pool
        await pool.close()
    finally:
        async with await psycopg.AsyncConnection.connect(faces_pg.url, autocommit=True) as conn:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


@dataclass
class World:
    pool: AsyncConnectionPool
    js: JetStreamContext
    publisher: Publisher
    faces: Faces
    lists: Lists
    attributes: Attributes
    a: Scope  # a user account
    b: Scope  # another user account
    admin_all: Scope  # an advanced user reading every account's data


@pytest.fixture
async def world(pool: AsyncConnectionPool, js: JetStreamContext) -> World:
    # Accounts straight in SQL: hashing real passwords would only slow every test down.
    made = [str(uuid.uuid4()) for _ in range(3)]
    async with pool.connection() as conn:
        for account_id, kind in zip(made, ("user", "user", "advanced_user"), strict=True):
            await conn.execute(
                "INSERT INTO accounts (account_id, login, password_hash, account_type)"
                " VALUES (%s, %s, 'x', %s)",
                (account_id, f"{account_id}@example.com", kind),
            )
    publisher = Publisher(pool, js)
    return World(
        pool=pool,
        js=js,
        publisher=publisher,
        faces=Faces(pool, publisher),
        lists=Lists(pool, publisher),
        attributes=Attributes(pool),
        a=Scope(made[0]),
        b=Scope(made[1]),
        admin_all=Scope(made[2], see_all=True),
    )


async def read_changes(js: JetStreamContext, account_id: str) -> list[changes_pb2.FaceChange]:
    """Every FACES_CHANGES message of one account, in stream order; also checks each
    message's Nats-Msg-Id is its change_id."""
    sub = await js.subscribe(subject_for(account_id), ordered_consumer=True)
    out: list[changes_pb2.FaceChange] = []
    try:
        while True:
            msg = await sub.next_msg(timeout=0.5)
            change = changes_pb2.FaceChange.FromString(msg.data)
            assert msg.headers is not None
            assert msg.headers["Nats-Msg-Id"] == change.change_id
            out.append(change)
    except nats.errors.TimeoutError:
        pass
    finally:
        await sub.unsubscribe()
    return out
