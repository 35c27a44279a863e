"""Backport 3 store worlds: one real PostgreSQL per session (pip-installed binary, random
port, temp dir); every test gets its own migrated database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.backport3.store import Store
from services.common import db
from services.launcher.embedded import EmbeddedPostgres
from services.launcher.testing import running_postgres, temp_database

MIGRATIONS = Path(__file__).resolve().parents[2] / "services" / "backport3" / "migrations"


@pytest.fixture(scope="session")
async def bp3_pg(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[EmbeddedPostgres]:
    async with running_postgres(tmp_path_factory.mktemp("bp3-pg")) as server:
        yield server


@pytest.fixture
async def store(bp3_pg: EmbeddedPostgres) -> AsyncIterator[Store]:
    async with temp_database(bp3_pg.url, "bp3") as url:
        pool = await db.create_pool(url, max_size=4)
        try:
            assert await db.migrate(pool, "backport3", MIGRATIONS) == [1, 2]
            yield Store(pool)
        finally:
            await pool.close()
