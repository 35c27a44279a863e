"""Embedded NATS and PostgreSQL: random ports, restarts on the same data, leftovers, root."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import pwd
import shutil
import socket
import tempfile
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import psutil
import psycopg
from nats.js.api import StreamConfig

from services.common.nats_streams import connect
from services.launcher.embedded import (
    RESERVED_PORTS,
    EmbeddedNats,
    EmbeddedPostgres,
    postgres_identity,
    recorded_port,
)

StopAfter = Callable[[Any], Any]
SYSTEM_PORTS = {4222, 5432}  # this machine's own NATS and PostgreSQL


async def _select(url: str, sql: str) -> list[tuple]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute(sql.encode())
        return await cur.fetchall()


async def test_nats_on_random_loopback_port_answers_jetstream(nats_server: EmbeddedNats) -> None:
    assert nats_server.port not in SYSTEM_PORTS | RESERVED_PORTS
    assert nats_server.url == f"nats://127.0.0.1:{nats_server.port}"
    assert recorded_port(nats_server.data_dir, "nats") == nats_server.port
    nc = await connect(nats_server.url)
    try:
        js = nc.jetstream()
        await js.add_stream(StreamConfig(name="SMOKE", subjects=["smoke.>"]))
        ack = await js.publish("smoke.x", b"hello")
        assert ack.stream == "SMOKE" and ack.seq == 1
        await js.delete_stream("SMOKE")
    finally:
        await nc.close()
    assert (nats_server.store_dir / "jetstream").is_dir()
    # Loopback only: nothing listens on another address at that port.
    conns = psutil.Process(nats_server.pid).net_connections(kind="inet")
    listening = {c.laddr for c in conns if c.status == psutil.CONN_LISTEN}
    assert listening == {("127.0.0.1", nats_server.port)}, listening
    # Own session: a Ctrl-C in the supervisor's terminal does not reach the server directly.
    assert os.getsid(nats_server.pid) == nats_server.pid != os.getsid(0)


async def test_postgres_on_random_loopback_port_answers(pg_server: EmbeddedPostgres) -> None:
    assert pg_server.port not in SYSTEM_PORTS | RESERVED_PORTS
    assert pg_server.url == f"postgresql://luna@127.0.0.1:{pg_server.port}/luna"
    rows = await _select(
        pg_server.url,
        "select 1, current_database(), current_setting('listen_addresses'),"
        " current_setting('shared_buffers'), current_setting('max_connections'),"
        " current_setting('fsync'), current_setting('unix_socket_directories')",
    )
    one, db, listen, shared, maxconn, fsync, sockdir = rows[0]
    assert (one, db, listen) == (1, "luna", "127.0.0.1")
    assert (shared, maxconn, fsync) == ("128MB", "200", "on")
    assert Path(sockdir) == pg_server.pgdata
    assert recorded_port(pg_server.data_dir, "postgres") == pg_server.port
    assert os.getsid(pg_server.pid) == pg_server.pid != os.getsid(0)


async def test_postgres_restart_finds_data_and_port(tmp_path: Path, stop_after: StopAfter) -> None:
    first = stop_after(EmbeddedPostgres(tmp_path))
    url = await first.start()
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute("create table kept (v text)")
        await conn.execute("insert into kept values ('before restart')")
    pid = first.pid
    await first.stop()
    assert await first.wait_exit() == 0 and not psutil.pid_exists(pid)
    assert "database system is shut down" in (tmp_path / "postgres.log").read_text()
    assert not (first.pgdata / "postmaster.pid").exists()

    second = stop_after(EmbeddedPostgres(tmp_path))
    assert await second.start() == url  # same port, so the same URL
    try:
        assert not second.adopted and second.pid != pid
        assert await _select(url, "select v from kept") == [("before restart",)]
    finally:
        await second.stop()


async def test_nats_restart_finds_stream_and_port(tmp_path: Path, stop_after: StopAfter) -> None:
    first = stop_after(EmbeddedNats(tmp_path))
    url = await first.start()
    nc = await connect(url)
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name="KEEP", subjects=["keep.>"]))
    await js.publish("keep.a", b"1")
    await nc.close()
    await first.stop()
    assert await first.wait_exit() == 0

    second = stop_after(EmbeddedNats(tmp_path))
    assert await second.start() == url
    try:
        nc = await connect(url)
        info = await nc.jetstream().stream_info("KEEP")
        await nc.close()
        assert info.state.messages == 1
    finally:
        await second.stop()


async def test_taken_recorded_port_is_replaced_and_recorded(
    tmp_path: Path, stop_after: StopAfter
) -> None:
    server = stop_after(EmbeddedNats(tmp_path))
    await server.start()
    old = server.port
    await server.stop()
    with socket.socket() as squatter:  # someone else took our port meanwhile
        squatter.bind(("127.0.0.1", old))
        squatter.listen()
        again = stop_after(EmbeddedNats(tmp_path))
        await again.start()
        try:
            assert again.port != old
            assert json.loads((tmp_path / "ports.json").read_text())["nats"] == again.port
        finally:
            await again.stop()


async def test_postgres_left_running_by_a_crash_is_reused(
    tmp_path: Path, stop_after: StopAfter
) -> None:
    orphan = stop_after(EmbeddedPostgres(tmp_path))
    await orphan.start()  # never stopped by its owner: the supervisor "crashed"
    try:
        successor = stop_after(EmbeddedPostgres(tmp_path))
        assert await successor.start() == orphan.url
        assert successor.adopted and successor.pid == orphan.pid
        await successor.stop()
        assert not successor.is_running()
        assert await asyncio.wait_for(orphan.wait_exit(), 10) == 0
    finally:
        await orphan.stop()


async def test_nats_left_running_by_a_crash_is_reused(
    tmp_path: Path, stop_after: StopAfter
) -> None:
    orphan = stop_after(EmbeddedNats(tmp_path))
    await orphan.start()
    try:
        successor = stop_after(EmbeddedNats(tmp_path))
        assert await successor.start() == orphan.url
        assert successor.adopted and successor.pid == orphan.pid
        await successor.stop()
        assert await asyncio.wait_for(orphan.wait_exit(), 10) == 0
    finally:
        await orphan.stop()


async def test_stale_postmaster_pid_of_another_program_is_cleared(
    tmp_path: Path, stop_after: StopAfter
) -> None:
    server = stop_after(EmbeddedPostgres(tmp_path))
    await server.start()
    pidfile = server.pgdata / "postmaster.pid"
    lines = pidfile.read_text().splitlines()
    await server.stop()
    # After a reboot the old pid may belong to anything; postgres alone would refuse to start.
    bystander = await asyncio.create_subprocess_exec("sleep", "60")
    try:
        lines[0] = str(bystander.pid)
        pidfile.write_text("\n".join(lines) + "\n")
        again = stop_after(EmbeddedPostgres(tmp_path))
        await again.start()
        try:
            assert not again.adopted and again.pid != bystander.pid
            assert await _select(again.url, "select 1") == [(1,)]
        finally:
            await again.stop()
        # An unrelated process must survive (NoSuchProcess here would fail the test too).
        assert bystander.returncode is None
        assert psutil.Process(bystander.pid).status() != psutil.STATUS_ZOMBIE
    finally:
        bystander.kill()
        await bystander.wait()


async def test_postgres_never_runs_as_root(pg_server: EmbeddedPostgres) -> None:
    proc = psutil.Process(pg_server.pid)
    owner = pg_server.pgdata.stat()
    assert (owner.st_mode & 0o777) == 0o700
    if os.geteuid() == 0:
        # Root path: initdb and postgres ran as the unprivileged system user, who owns the
        # cluster while logs and ports.json stay ours.
        assert proc.uids().real != 0 and proc.uids().effective != 0
        assert pwd.getpwuid(proc.uids().effective).pw_name == "luna_postgres"
        assert owner.st_uid == proc.uids().effective
        assert (pg_server.data_dir / "postgres.log").stat().st_uid == 0
    else:
        assert proc.uids().effective == os.geteuid() == owner.st_uid


def test_root_keeps_the_owner_of_an_existing_cluster(tmp_path: Path) -> None:
    pgdata = tmp_path / "pgdata"
    pgdata.mkdir()
    (pgdata / "PG_VERSION").write_text("18\n")
    nobody = pwd.getpwnam("nobody")
    if os.geteuid() == 0:
        os.chown(pgdata, nobody.pw_uid, nobody.pw_gid)
        ident = postgres_identity(pgdata)
        assert ident is not None and (ident.uid, ident.gid) == (nobody.pw_uid, nobody.pw_gid)
    else:
        assert postgres_identity(pgdata) is None  # a normal user runs postgres itself


def _as_user(uid: int, gid: int, data: Path, conn: Connection) -> None:
    """Runs in a forked child: drop to uid/gid, start/stop PostgreSQL, report what it saw.

    Forked rather than exec'd so it works even where the interpreter is unreadable to other
    users (a Python under /root/.pyenv); everything needed is already imported.
    """
    try:
        if os.geteuid() == 0:
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)

        async def main() -> tuple[int, int, int, int | None]:
            server = EmbeddedPostgres(data)
            url = await server.start()
            (one,) = (await _select(url, "select 1"))[0]
            server_uid = psutil.Process(server.pid).uids().effective
            await server.stop()
            return one, server_uid, os.geteuid(), server.port

        conn.send(asyncio.run(main()))
    except BaseException as exc:
        conn.send(repr(exc))
    finally:
        conn.close()


async def test_postgres_starts_as_a_normal_user() -> None:
    """The non-root path, exercised even when the suite runs as root (as `nobody`)."""
    data = Path(tempfile.mkdtemp(prefix="luna-user-"))
    uid, gid = os.geteuid(), os.getegid()
    if uid == 0:
        nobody = pwd.getpwnam("nobody")
        uid, gid = nobody.pw_uid, nobody.pw_gid
        os.chown(data, uid, gid)
    ctx = multiprocessing.get_context("fork")
    parent_end, child_end = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_as_user, args=(uid, gid, data / "platform", child_end))

    def run_child() -> object:
        # Forked from a worker thread, which has no running event loop to inherit.
        child.start()
        child_end.close()
        try:
            return parent_end.recv() if parent_end.poll(60) else "timeout"
        finally:
            child.join(10)

    try:
        result = await asyncio.to_thread(run_child)
        assert isinstance(result, tuple), result
        one, server_uid, my_uid, port = result
        assert one == 1 and server_uid == my_uid == uid != 0
        assert port not in SYSTEM_PORTS
        assert (data / "platform" / "pgdata").stat().st_uid == uid
    finally:
        shutil.rmtree(data, ignore_errors=True)
