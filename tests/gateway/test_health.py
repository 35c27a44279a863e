"""The gateway's `/healthcheck` learns the database's state from the services that own it
(grpc.health.v1, service name `healthcheck.DATABASE`), never by opening PostgreSQL itself."""

from __future__ import annotations

import ast
import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common import errors, healthcheck
from services.common.embedded import pick_free_port
from services.common.grpc_server import ErrorInterceptor, ProbingHealthServicer
from services.gateway import about

GATEWAY = Path(__file__).resolve().parents[2] / "services" / "gateway"


async def _fine() -> None:
    return None


async def _down() -> None:
    raise errors.LunaError(errors.DATABASE_ERROR, "OperationalError: connection refused")


async def _server(probe: Callable[[], Any]) -> tuple[grpc.aio.Server, str]:
    server = grpc.aio.server(interceptors=[ErrorInterceptor()])
    servicer = ProbingHealthServicer({healthcheck.DATABASE: probe})
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    address = f"127.0.0.1:{pick_free_port()}"
    assert server.add_insecure_port(address) != 0
    await server.start()
    return server, address


@pytest.fixture
async def owners() -> AsyncIterator[Callable[..., Any]]:
    """Build a Clients stand-in whose database owners answer with the given probes (None: that
    service is not running)."""
    servers: list[grpc.aio.Server] = []
    channels: list[grpc.aio.Channel] = []

    async def make(**probes: Callable[[], Any] | None) -> Any:
        health = {}
        for service in about.DATABASE_OWNERS:
            probe = probes.get(service, _fine)
            if probe is None:
                address = f"127.0.0.1:{pick_free_port()}"  # nothing listens there
            else:
                server, address = await _server(probe)
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
    err = await about.check_database(await owners(events=_down))
    assert err is not None
    assert err.code == errors.DATABASE_ERROR
    assert "connection refused" in err.detail


async def test_an_owner_that_is_down_is_not_a_database_failure(owners: Any) -> None:
    assert await about.check_database(await owners(faces=None, tasks=None)) is None


async def test_no_owner_answering_leaves_the_database_unknown(owners: Any) -> None:
    err = await about.check_database(await owners(faces=None, events=None, tasks=None))
    assert err is not None and err.code == errors.DATABASE_ERROR


async def test_the_probe_is_not_run_while_the_server_is_not_serving() -> None:
    ran: list[bool] = []

    async def probe() -> None:
        ran.append(True)

    servicer = ProbingHealthServicer({healthcheck.DATABASE: probe})
    await servicer.enter_graceful_shutdown()
    reply = await servicer.Check(health_pb2.HealthCheckRequest(service=healthcheck.DATABASE), None)
    assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING and not ran


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


async def test_the_database_probe_reports_a_hung_or_broken_pool_as_10017() -> None:
    class Pool:
        def __init__(self, fail: BaseException | None) -> None:
            self.fail = fail

        def connection(self) -> Any:
            pool = self

            class Connection:
                async def __aenter__(self) -> Any:
                    if pool.fail is None:
                        await asyncio.sleep(10)  # never hands a connection out
                    raise pool.fail  # type: ignore[misc]

                async def __aexit__(self, *exc: object) -> None:
                    return None

            return Connection()

    with pytest.raises(errors.LunaError) as hung:
        await healthcheck.probe_database(Pool(None), timeout=0.05)
    assert hung.value.code == errors.DATABASE_ERROR and "within 0.05 s" in hung.value.detail
    with pytest.raises(errors.LunaError) as broken:
        await healthcheck.probe_database(Pool(OSError("connection refused")), timeout=1)
    assert broken.value.detail == "OSError: connection refused"
