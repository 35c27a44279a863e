"""Pool and migrations against a real PostgreSQL (each test in a database of its own)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import psycopg
import pytest

from services.common.db import MigrationError, autocommit, create_pool, is_outage, migrate

M1 = "create table items (id int primary key);\ncreate table log (step text);\n"
M2 = "insert into log values ('two');\nalter table items add column name text not null;\n"
M3 = "insert into log values ('three');\ncreate index items_name on items (name);\n"


def _write(dir_: Path, files: dict[str, str]) -> Path:
    dir_.mkdir(exist_ok=True)
    for name, sql in files.items():
        (dir_ / name).write_text(sql)
    return dir_


async def test_pool_gives_dict_rows(fresh_db: str) -> None:
    pool = await create_pool(fresh_db, max_size=2)
    try:
        async with pool.connection() as conn:
            cur = await conn.execute("select 1 as one, current_database() as db")
            row = await cur.fetchone()
        assert row == {"one": 1, "db": fresh_db.rsplit("/", 1)[1]}
    finally:
        await pool.close()


async def test_migrations_apply_once_in_order(fresh_db: str, tmp_path: Path) -> None:
    # Files created out of order on disk: the version, not the listing order, decides.
    migrations = _write(tmp_path / "m", {"0003_index.sql": M3, "0002_name.sql": M2})
    _write(migrations, {"0001_init.sql": M1})
    pool = await create_pool(fresh_db)
    try:
        assert await migrate(pool, "faces", migrations) == [1, 2, 3]
        assert await migrate(pool, "faces", migrations) == []
        async with pool.connection() as conn:
            cur = await conn.execute("select step from log")
            assert [r["step"] for r in await cur.fetchall()] == ["two", "three"]
            cur = await conn.execute(
                "select version, name, length(sha256) as n, applied_at is not null as t"
                " from schema_migrations where service = 'faces' order by version"
            )
            assert await cur.fetchall() == [
                {"version": 1, "name": "init", "n": 64, "t": True},
                {"version": 2, "name": "name", "n": 64, "t": True},
                {"version": 3, "name": "index", "n": 64, "t": True},
            ]
        # Another service's history is separate, even with the same version numbers.
        other = _write(tmp_path / "o", {"0001_init.sql": "create table other_t (x int);"})
        assert await migrate(pool, "events", other) == [1]
    finally:
        await pool.close()


async def test_concurrent_migrate_applies_each_once(fresh_db: str, tmp_path: Path) -> None:
    slow = "select pg_sleep(0.3);\n" + M1  # keeps the first migrator inside the lock
    migrations = _write(tmp_path / "m", {"0001_init.sql": slow, "0002_name.sql": M2})
    pools = [await create_pool(fresh_db, max_size=1) for _ in range(3)]
    try:
        # Several replicas starting at once, each with its own connection.
        results = await asyncio.gather(*(migrate(p, "faces", migrations) for p in pools))
        assert sorted(v for r in results for v in r) == [1, 2]
        async with pools[0].connection() as conn:
            cur = await conn.execute("select count(*) as n from log")
            assert (await cur.fetchone()) == {"n": 1}  # M2 ran exactly once
    finally:
        for p in pools:
            await p.close()


async def test_concurrent_first_migrations_create_the_table_once(
    fresh_db: str, tmp_path: Path
) -> None:
    dirs = [
        _write(tmp_path / f"s{i}", {"0001_a.sql": f"create table t{i} (x int);"}) for i in range(4)
    ]
    pools = [await create_pool(fresh_db, max_size=1) for _ in dirs]
    try:
        results = await asyncio.gather(
            *(migrate(p, f"svc{i}", d) for i, (p, d) in enumerate(zip(pools, dirs, strict=True)))
        )
        assert results == [[1]] * 4
    finally:
        for p in pools:
            await p.close()


async def test_changed_applied_migration_refuses_to_start(fresh_db: str, tmp_path: Path) -> None:
    migrations = _write(tmp_path / "m", {"0001_init.sql": M1, "0002_name.sql": M2})
    pool = await create_pool(fresh_db)
    try:
        await migrate(pool, "faces", migrations)
        (migrations / "0001_init.sql").write_text(M1 + "-- edited\n")
        _write(migrations, {"0003_index.sql": M3})
        with pytest.raises(MigrationError, match=r"0001_init\.sql changed"):
            await migrate(pool, "faces", migrations)
        async with pool.connection() as conn:  # and nothing after it was applied
            cur = await conn.execute("select max(version) as v from schema_migrations")
            assert (await cur.fetchone()) == {"v": 2}
    finally:
        await pool.close()


async def test_failed_migration_leaves_nothing(fresh_db: str, tmp_path: Path) -> None:
    bad = "create table half (x int);\nselect * from no_such_table;\n"
    migrations = _write(tmp_path / "m", {"0001_init.sql": M1, "0002_bad.sql": bad})
    pool = await create_pool(fresh_db)
    try:
        with pytest.raises(psycopg.errors.UndefinedTable):
            await migrate(pool, "faces", migrations)
        async with pool.connection() as conn:
            cur = await conn.execute(
                "select (select array_agg(version) from schema_migrations) as v,"
                " to_regclass('half') is null as rolled_back"
            )
            assert (await cur.fetchone()) == {"v": [1], "rolled_back": True}
    finally:
        await pool.close()


async def test_out_of_order_and_misnamed_files_refuse(fresh_db: str, tmp_path: Path) -> None:
    migrations = _write(tmp_path / "m", {"0002_name.sql": "create table items (name text);"})
    pool = await create_pool(fresh_db)
    try:
        await migrate(pool, "faces", migrations)
        _write(migrations, {"0001_init.sql": M1})  # added below what already ran
        with pytest.raises(MigrationError, match="older than the newest applied"):
            await migrate(pool, "faces", migrations)
        misnamed = _write(tmp_path / "x", {"1_init.sql": M1})
        with pytest.raises(MigrationError, match=r"NNNN_name\.sql"):
            await migrate(pool, "tasks", misnamed)
    finally:
        await pool.close()


async def test_autocommit_connections_go_back_to_the_pool_as_they_came(fresh_db: str) -> None:
    """db.autocommit: one statement is its own transaction; the connection goes back in the
    pool's mode; a connection lost meanwhile raises its own (outage) error, not the mode
    switch's, and the pool goes on with a fresh one."""
    pool = await create_pool(fresh_db, max_size=1)
    try:
        async with autocommit(pool) as conn:
            await conn.execute("CREATE TABLE t (x int)")
            await conn.execute("INSERT INTO t VALUES (1)")
            assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        async with pool.connection() as conn:
            assert not conn.autocommit
            row = await (await conn.execute("SELECT count(*) AS n FROM t")).fetchone()
            assert row == {"n": 1}
        with pytest.raises(psycopg.OperationalError) as info:
            async with autocommit(pool) as conn:
                await conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        assert is_outage(info.value)
        async with autocommit(pool) as conn:
            await conn.execute("INSERT INTO t VALUES (2)")
        async with pool.connection() as conn:
            assert not conn.autocommit
    finally:
        await pool.close()
