"""The gateway's `/healthcheck` learns the database's state from the services that own it
(grpc.health.v1, service name `healthcheck.DATABASE`), never by opening PostgreSQL itself."""

from __future__ import annotations

import ast
import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common import errors, healthcheck
from services.common.grpc_server import DatabaseHealthServicer, ErrorInterceptor
from services.gateway import about

GATEWAY = Path(__file__).resolve().parents[2] / "services" / "gateway"


class Pool:
    """A stand-in for a psycopg pool: hands out a connection, fails with `fail`, or (`hang`)
    never hands one out."""

    def __init__(self, fail: BaseException | None = None, hang: bool = False) -> None:
        self.fail, self.hang, self.executed = fail, hang, 0

    def connection(self) -> Any:
        pool = self

        class Connection:
            async def __aenter__(self) -> Any:
                if pool.hang:
                    await asyncio.sleep(10)
                if pool.fail is not None:
                    raise pool.fail
                return self

            async def __aexit__(self, *exc: object) -> None:
                return None

            async def execute(self, sql: str) -> None:
                pool.executed += 1

        return Connection()


def _unused_address() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


async def _server(pools: list[Pool]) -> tuple[grpc.aio.Server, str]:
    server = grpc.aio.server(interceptors=[ErrorInterceptor()])
    health_pb2_grpc.add_HealthServicer_to_server(DatabaseHealthServicer(lambda: pools), server)
    port = server.add_insecure_port("127.0.0.1:0")
    assert port != 0
    await server.start()
    return server, f"127.0.0.1:{port}"


@pytest.fixture
async def owners() -> AsyncIterator[Callable[..., Any]]:
    """A Clients stand-in whose database owners hold the given pools (None: that service is
    not running)."""
    servers: list[grpc.aio.Server] = []
    channels: list[grpc.aio.Channel] = []

    async def make(**pools: Pool | None) -> Any:
        health = {}
        for service in about.DATABASE_OWNERS:
            pool = pools.get(service, Pool())
            if pool is None:
                address = _unused_address()
            else:
                server, address = await _server([pool])
                servers.append(server)
            channel = grpc.aio.insecure_channel(address)
            channels.append(channel)
            health[service] = health_pb2_grpc.HealthStub(channel)
        return SimpleNamespace(health=health)

    yield make
    for channel in channels:
        await channel.close()
    for server in servers:
        await server.stop(None)


async def test_database_is_fine_when_every_owner_reaches_it(owners: Any) -> None:
    assert await about.check_database(await owners()) is None


async def test_an_owner_that_cannot_reach_it_reports_10017_with_its_reason(owners: Any) -> None:
    err = await about.check_database(await owners(events=Pool(OSError("connection refused"))))
    assert err is not None
    assert err.code == errors.DATABASE_ERROR
    assert err.detail == "OSError: connection refused"


async def test_an_owner_that_is_down_is_not_a_database_failure(owners: Any) -> None:
    assert await about.check_database(await owners(faces=None, tasks=None)) is None


async def test_no_owner_answering_leaves_the_database_unknown(owners: Any) -> None:
    err = await about.check_database(await owners(faces=None, events=None, tasks=None))
    assert err is not None and err.code == errors.DATABASE_ERROR


async def test_a_process_without_pools_does_not_know_the_name() -> None:
    aborted: list[grpc.StatusCode] = []

    async def abort(code: grpc.StatusCode, *args: Any) -> None:
        aborted.append(code)
        raise RuntimeError("aborted")

    servicer = DatabaseHealthServicer(lambda: [])
    request = health_pb2.HealthCheckRequest(service=healthcheck.DATABASE)
    with pytest.raises(RuntimeError):
        await servicer.Check(request, SimpleNamespace(abort=abort))
    assert aborted == [grpc.StatusCode.NOT_FOUND]


async def test_the_probe_is_not_run_while_the_server_is_not_serving() -> None:
    pool = Pool()
    servicer = DatabaseHealthServicer(lambda: [pool])
    await servicer.enter_graceful_shutdown()
    reply = await servicer.Check(health_pb2.HealthCheckRequest(service=healthcheck.DATABASE), None)
    assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING and pool.executed == 0


async def test_the_database_probe_reports_a_hung_or_broken_pool_as_10017() -> None:
    with pytest.raises(errors.LunaError) as hung:
        await healthcheck.probe_database(Pool(hang=True), timeout=0.05)
    assert hung.value.code == errors.DATABASE_ERROR and "within 0.05 s" in hung.value.detail
    with pytest.raises(errors.LunaError) as broken:
        await healthcheck.probe_database(Pool(OSError("connection refused")), timeout=1)
    assert broken.value.detail == "OSError: connection refused"
    fine = Pool()
    await healthcheck.probe_database(fine)
    assert fine.executed == 1


def test_the_gateway_never_opens_postgresql() -> None:
    for path in GATEWAY.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            assert not any(n.split(".")[0] in ("psycopg", "psycopg_pool") for n in names), path
