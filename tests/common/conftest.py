"""Servers for tests/common: one NATS and one PostgreSQL for the whole session, each started
from the pip-installed binaries in a temp dir on a random port (services.launcher.testing).

Tests that restart a server or need a clean data dir start their own with `tmp_path`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TypeVar

import pytest
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from services.common.nats_streams import connect
from services.launcher.embedded import EmbeddedNats, EmbeddedPostgres
from services.launcher.testing import running_nats, running_postgres, temp_database

S = TypeVar("S", EmbeddedNats, EmbeddedPostgres)


@pytest.fixture(scope="session")
async def nats_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[EmbeddedNats]:
    async with running_nats(tmp_path_factory.mktemp("nats")) as server:
        yield server


@pytest.fixture(scope="session")
async def pg_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[EmbeddedPostgres]:
    async with running_postgres(tmp_path_factory.mktemp("pg")) as server:
        yield server


@pytest.fixture
async def fresh_db(pg_server: EmbeddedPostgres) -> AsyncIterator[str]:
    """URL of an empty database of its own for one test."""
    async with temp_database(pg_server.url) as url:
        yield url


@pytest.fixture
async def nc(nats_server: EmbeddedNats) -> AsyncIterator[NATS]:
    client = await connect(nats_server.url, name="tests-common")
    yield client
    await client.close()


@pytest.fixture
def js(nc: NATS) -> JetStreamContext:
    return nc.jetstream()


@pytest.fixture
async def stop_after() -> AsyncIterator[Callable[[S], S]]:
    """`stop_after(server)` registers a server to stop at teardown, so a failing assertion
    never leaves a process behind (stop() is a no-op on a stopped server)."""
    servers: list[EmbeddedNats | EmbeddedPostgres] = []

    def register(server: S) -> S:
        servers.append(server)
        return server

    yield register
    for server in reversed(servers):
        await server.stop()
