"""Events-service worlds: one real PostgreSQL and one real NATS (JetStream) per session, from
the pip-installed binaries on random ports in temp dirs; every test gets its own migrated
database and the handlers/verifiers/events/statistics cores publishing on the real EVENTS
stream.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from nats.aio.client import Client as NATS
from psycopg_pool import AsyncConnectionPool

from services.common import db, nats_streams
from services.common.scoping import Scope
from services.events.app import jetstream_publisher
from services.events.events import Events
from services.events.handlers import Handlers
from services.events.statistics import Statistics
from services.events.verifiers import Verifiers
from services.launcher.embedded import EmbeddedNats, EmbeddedPostgres
from services.launcher.testing import running_nats, running_postgres, temp_database

MIGRATIONS = Path(__file__).resolve().parents[2] / "services" / "events" / "migrations"


@pytest.fixture(scope="session")
async def events_pg(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[EmbeddedPostgres]:
    async with running_postgres(tmp_path_factory.mktemp("events-pg")) as server:
        yield server


@pytest.fixture(scope="session")
async def events_nats(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[EmbeddedNats]:
    async with running_nats(tmp_path_factory.mktemp("events-nats")) as server:
        yield server


@pytest.fixture
async def nc(events_nats: EmbeddedNats) -> AsyncIterator[NATS]:
    client = await nats_streams.connect(events_nats.url, name="tests-events")
    await nats_streams.ensure_streams(client.jetstream())
    yield client
    await client.close()


@dataclass
class World:
    pool: AsyncConnectionPool
    nc: NATS
    handlers: Handlers
    verifiers: Verifiers
    events: Events
    stats: Statistics
    alice: Scope
    bob: Scope


@pytest.fixture
async def world(events_pg: EmbeddedPostgres, nc: NATS) -> AsyncIterator[World]:
    async with temp_database(events_pg.url, "events") as url:
        pool = await db.create_pool(url, max_size=5)
        try:
            await db.migrate(pool, "events", MIGRATIONS)
            handlers = Handlers(pool)
            events = Events(pool, handlers, jetstream_publisher(nc))
            yield World(
                pool,
                nc,
                handlers,
                Verifiers(pool),
                events,
                Statistics(pool),
                Scope(str(uuid.uuid4())),
                Scope(str(uuid.uuid4())),
            )
            await events.close()
        finally:
            await pool.close()
