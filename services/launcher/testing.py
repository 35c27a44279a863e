"""Test helpers: real NATS and PostgreSQL from the pip-installed binaries, in temp dirs, on
random ports. Never a preinstalled server, never a fixed port.

Meant to back pytest fixtures anywhere in the repo, e.g. in the top-level conftest::

    @pytest.fixture(scope="session")
    async def nats_url(tmp_path_factory):
        async with running_nats(tmp_path_factory.mktemp("nats")) as server:
            yield server.url

`temp_database` gives one test its own empty database on a shared server.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from services.launcher.embedded import EmbeddedNats, EmbeddedPostgres

S = TypeVar("S", EmbeddedNats, EmbeddedPostgres)


@contextlib.asynccontextmanager
async def _running(server: S) -> AsyncIterator[S]:
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def running_nats(data_dir: Path) -> contextlib.AbstractAsyncContextManager[EmbeddedNats]:
    """A nats-server with JetStream in `data_dir`, stopped on exit."""
    return _running(EmbeddedNats(data_dir))


def running_postgres(data_dir: Path) -> contextlib.AbstractAsyncContextManager[EmbeddedPostgres]:
    """A PostgreSQL in `data_dir` with database `luna`, stopped on exit."""
    return _running(EmbeddedPostgres(data_dir))


def _with_database(url: str, dbname: str) -> str:
    """`url` pointing at `dbname`, in the same form (URI or key=value) as given."""
    if "://" in url:
        return urlsplit(url)._replace(path=f"/{dbname}").geturl()
    params = conninfo_to_dict(url)
    params["dbname"] = dbname
    return make_conninfo("", **params)


@contextlib.asynccontextmanager
async def temp_database(database_url: str, prefix: str = "test") -> AsyncIterator[str]:
    """A fresh database on the server of `database_url`, dropped afterwards; yields its URL.

    Lets tests that share one session-wide server stay independent of each other.
    """
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute(f'create database "{name}"'.encode())
    try:
        yield _with_database(database_url, name)
    finally:
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            await conn.execute(f'drop database if exists "{name}" with (force)'.encode())
