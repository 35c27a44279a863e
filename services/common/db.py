"""PostgreSQL connection pool and versioned SQL migrations.

Migrations are files `NNNN_name.sql` in a service's `migrations/` directory, applied in order
at start, each in its own transaction, and recorded in `schema_migrations` with the file's
sha256, so an edited migration that already ran is caught instead of silently diverging.
Several replicas may start at once: an advisory lock per service serialises them.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from services.common import config, errors, ids
from services.common.scoping import Scope, readable

log = logging.getLogger("luna.db")

Pool = AsyncConnectionPool[AsyncConnection[DictRow]]

_MIGRATION_NAME = re.compile(r"^(\d{4})_([A-Za-z0-9_]+)\.sql$")
# Fixed key guarding the creation of schema_migrations itself: concurrent
# `create table if not exists` can still fail on the catalog's unique index.
_TABLE_LOCK_KEY = 0x4C554E41_00000000  # "LUNA" << 32

_CREATE_TABLE = """
create table if not exists schema_migrations (
    service    text        not null,
    version    int         not null,
    name       text        not null,
    sha256     text        not null,
    applied_at timestamptz not null default now(),
    primary key (service, version)
)
"""


class MigrationError(RuntimeError):
    """The database and the migration files disagree; the service must not start."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str
    sha256: str


# A connection returned to the pool less than this long ago is handed out unchecked: checking
# every checkout cost a database round trip per request (a third of a face read's time).
CHECK_IDLE_AFTER_S = 5.0


POOL_TIMEOUT = config.declare(
    "LUNA_DB_POOL_TIMEOUT_S",
    5.0,
    "How long a request waits for a PostgreSQL connection before it is answered with LUNA "
    "error 10017 (database unavailable, HTTP 503) (seconds).",
)
# After a failure that looked like an outage, every checkout is checked for this long: the
# pool's connections all broke together, and each unchecked one would fail one request.
CHECK_ALL_AFTER_OUTAGE_S = 30.0
_outage_seen_at = -1e9


def is_outage(exc: BaseException) -> bool:
    """True for errors that mean "the database is not reachable now", not "bad query":
    broken or refused connections, server shutdown/recovery (SQLSTATE 08, 57P0x), pool
    exhaustion while it cannot reconnect, the server out of connections (53)."""
    if isinstance(exc, PoolTimeout | psycopg.InterfaceError):
        return True
    if isinstance(exc, psycopg.OperationalError):
        state = getattr(exc, "sqlstate", None)
        return state is None or state.startswith(("08", "53", "57P"))
    return False


def outage_error(exc: BaseException) -> errors.LunaError:
    """The LUNA error for an outage, noting it so the pool checks connections again."""
    global _outage_seen_at
    _outage_seen_at = time.monotonic()
    log.warning("database unavailable: %s: %s", type(exc).__name__, exc)
    return errors.LunaError(errors.DATABASE_ERROR, f"Database unavailable: {type(exc).__name__}")


async def _check_if_idle(conn: AsyncConnection[Any]) -> None:
    now = time.monotonic()
    recent_outage = now - _outage_seen_at < CHECK_ALL_AFTER_OUTAGE_S
    if not recent_outage and now - conn.info_returned_at < CHECK_IDLE_AFTER_S:  # type: ignore[attr-defined]
        return
    await AsyncConnectionPool.check_connection(conn)


async def _mark_returned(conn: AsyncConnection[Any]) -> None:
    """Pool `configure` (a new connection) and `reset` (one handed back) hook."""
    conn.info_returned_at = time.monotonic()  # type: ignore[attr-defined]


async def create_pool(url: str, *, min_size: int = 1, max_size: int = 10) -> Pool:
    """An opened pool of dict-row connections; one that sat idle for a while is checked before
    being handed out, so a database restart costs a reconnect instead of an error in a request.
    Waiting for a connection is bounded (LUNA_DB_POOL_TIMEOUT_S): while the database is down
    requests fail fast with LUNA error 10017 instead of hanging."""
    pool: Pool = AsyncConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        timeout=POOL_TIMEOUT.get_float(),
        # Keep trying to refill for as long as it takes: the server comes back (supervised).
        reconnect_timeout=24 * 3600.0,
        kwargs={"row_factory": dict_row, "connect_timeout": 5},
        connection_class=AsyncConnection[DictRow],
        configure=_mark_returned,
        reset=_mark_returned,
        check=_check_if_idle,
        open=False,
    )
    await pool.open(wait=True, timeout=30.0)
    _opened[:] = [*open_pools(), pool]
    return pool


@asynccontextmanager
async def autocommit(pool: Pool) -> AsyncIterator[AsyncConnection[DictRow]]:
    """A pooled connection in autocommit mode, for a write that is one statement (data-
    modifying CTEs): the statement is its own transaction, so no BEGIN and no COMMIT travel,
    one command instead of three or more (each a wait on the event loop). Handed back in
    the pool's usual mode (the switch is local: no round trip)."""
    async with pool.connection() as conn:
        await conn.set_autocommit(True)
        try:
            yield conn
        finally:
            # Only an idle connection can switch (and only an idle one goes back into the
            # pool: a broken or busy one is closed by it), so a failure is never replaced
            # by the switch's own error.
            if conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
                await conn.set_autocommit(False)


# The pools this process opened: what its gRPC health reports as its database's state.
_opened: list[Pool] = []


def open_pools() -> list[Pool]:
    """The pools this process opened and has not closed."""
    return [pool for pool in _opened if not pool.closed]


async def fetch_one(pool: Pool, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
    """One row of a read (rows are dicts), or None."""
    async with pool.connection() as conn:
        cur = await conn.execute(sql, params)
        return await cur.fetchone()


async def fetch_readable(
    pool: Pool,
    scope: Scope,
    select: str,
    id_column: str,
    row_id: str,
    missing: errors.LunaError,
    account_column: str = "account_id",
) -> dict[str, Any]:
    """The row `select` (a SELECT ... FROM ...) reads whose `id_column` is `row_id`, if `scope`
    may read it; `missing` is raised when there is none (or `row_id` is not a UUID)."""
    if not ids.is_uuid(row_id):
        raise missing
    where, params = readable(scope, account_column)
    row = await fetch_one(pool, f"{select} WHERE {id_column} = %s AND {where}", (row_id, *params))
    if row is None:
        raise missing
    return row


async def fetch_all(pool: Pool, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    async with pool.connection() as conn:
        cur = await conn.execute(sql, params)
        return await cur.fetchall()


async def count(pool: Pool, sql: str, params: Sequence[Any] = ()) -> int:
    """The single integer a `SELECT count(*) ...` answers."""
    row = await fetch_one(pool, sql, params)
    assert row is not None
    return int(next(iter(row.values())))


def load_migrations(migrations_dir: Path) -> list[Migration]:
    """Migration files sorted by version; a misnamed or duplicated one is an error, not skipped."""
    found: dict[int, Migration] = {}
    for path in sorted(Path(migrations_dir).glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if match is None:
            raise MigrationError(f"{path}: migration files are named NNNN_name.sql")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"{path}: version {version} appears twice")
        raw = path.read_bytes()
        found[version] = Migration(
            version, match.group(2), raw.decode("utf-8"), hashlib.sha256(raw).hexdigest()
        )
    return [found[v] for v in sorted(found)]


def _service_lock_key(service: str) -> int:
    # A signed 64-bit key derived from the service name (pg advisory locks take bigint).
    digest = hashlib.sha256(f"luna.migrations:{service}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _check_history(service: str, applied: dict[int, dict], files: list[Migration]) -> None:
    by_version = {m.version: m for m in files}
    for version, row in sorted(applied.items()):
        m = by_version.get(version)
        if m is None:
            # Newer code already migrated this database (rolling upgrade): tolerate it.
            log.warning("%s: applied migration %04d has no file here", service, version)
        elif m.sha256 != row["sha256"]:
            raise MigrationError(
                f"{service}: migration {version:04d}_{m.name}.sql changed after it was applied "
                f"(sha256 {row['sha256'][:12]} in the database, {m.sha256[:12]} on disk); "
                "add a new migration instead of editing an applied one"
            )
    newest = max(applied, default=0)
    late = [m for m in files if m.version not in applied and m.version < newest]
    if late:
        raise MigrationError(
            f"{service}: migration {late[0].version:04d}_{late[0].name}.sql is older than the "
            f"newest applied one ({newest:04d}); migrations must be added in order"
        )


async def migrate(pool: Pool, service: str, migrations_dir: Path) -> list[int]:
    """Apply the pending migrations of `service`; returns the versions this call applied.

    Each migration runs in its own transaction together with its record, under a per-service
    transaction-level advisory lock, so concurrent starts apply each migration exactly once
    and a failed migration leaves nothing behind. (So no `create index concurrently` here.)
    """
    files = load_migrations(migrations_dir)
    applied_now: list[int] = []
    async with pool.connection() as conn:
        async with conn.transaction():
            await conn.execute("select pg_advisory_xact_lock(%s)", (_TABLE_LOCK_KEY,))
            await conn.execute(_CREATE_TABLE)
        while True:
            async with conn.transaction():
                key = _service_lock_key(service)
                await conn.execute("select pg_advisory_xact_lock(%s)", (key,))
                cur = await conn.execute(
                    "select version, name, sha256 from schema_migrations where service = %s",
                    (service,),
                )
                applied = {row["version"]: row for row in await cur.fetchall()}
                _check_history(service, applied, files)
                pending = [m for m in files if m.version not in applied]
                if not pending:
                    break
                m = pending[0]
                # No parameters: psycopg sends it with the simple protocol, so a file may hold
                # several statements.
                await conn.execute(m.sql.encode())
                await conn.execute(
                    "insert into schema_migrations (service, version, name, sha256)"
                    " values (%s, %s, %s, %s)",
                    (service, m.version, m.name, m.sha256),
                )
            applied_now.append(m.version)
            log.info("%s: applied migration %04d_%s", service, m.version, m.name)
    return applied_now
