"""Tasks-engine worlds: one real PostgreSQL and one real NATS per session (pip-installed
binaries, random ports, temp dirs); each test gets its own migrated database and its own
TASKS_WORK stream state."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from nats.aio.client import Client as NATS

from services.common import db, nats_streams
from services.common.db import Pool
from services.launcher.embedded import EmbeddedNats, EmbeddedPostgres
from services.launcher.testing import running_nats, running_postgres, temp_database

MIGRATIONS = Path(__file__).resolve().parents[2] / "services" / "tasks" / "migrations"


@pytest.fixture(scope="session")
async def tasks_pg(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[EmbeddedPostgres]:
    async with running_postgres(tmp_path_factory.mktemp("tasks-pg")) as server:
        yield server


@pytest.fixture(scope="session")
async def tasks_nats(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[EmbeddedNats]:
    async with running_nats(tmp_path_factory.mktemp("tasks-nats")) as server:
        yield server


@pytest.fixture
async def pool(tasks_pg: EmbeddedPostgres) -> AsyncIterator[Pool]:
    async with temp_database(tasks_pg.url, "tasks") as url:
        p = await db.create_pool(url, max_size=8)
        await db.migrate(p, "tasks", MIGRATIONS)
        yield p
        await p.close()


@pytest.fixture
async def nc(tasks_nats: EmbeddedNats) -> AsyncIterator[NATS]:
    client = await nats_streams.connect(tasks_nats.url, name="tests-tasks")
    js = client.jetstream()
    await nats_streams.ensure_streams(js)
    await js.purge_stream("TASKS_WORK")
    yield client
    try:
        await js.delete_consumer("TASKS_WORK", "tasks-workers")
    except Exception:
        pass
    await client.close()
