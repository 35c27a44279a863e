"""Client channels spread calls over every address a name resolves to (round_robin), and the
container health-check command tells SERVING from anything else."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from services.common import grpc_client, healthcheck
from services.launcher.embedded import pick_free_port

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def _health_server(address: str, status: int) -> grpc.aio.Server:
    server = grpc.aio.server()
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    await servicer.set("probe", status)
    assert server.add_insecure_port(address) != 0
    await server.start()
    return server


@pytest.fixture
async def two_servers() -> AsyncIterator[int]:
    """The same port on 127.0.0.1 (answers SERVING) and 127.0.0.2 (NOT_SERVING)."""
    port = pick_free_port()
    servers = [
        await _health_server(f"127.0.0.1:{port}", SERVING),
        await _health_server(f"127.0.0.2:{port}", NOT_SERVING),
    ]
    yield port
    for server in servers:
        await server.stop(None)


async def test_calls_are_spread_over_every_resolved_address(two_servers: int) -> None:
    port = two_servers
    # What DNS answers for a headless Service with two ready pods.
    target = f"ipv4:127.0.0.1:{port},127.0.0.2:{port}"
    async with grpc_client.channel("faces", target) as channel:
        await channel.channel_ready()
        stub = health_pb2_grpc.HealthStub(channel)
        seen = [
            (await stub.Check(health_pb2.HealthCheckRequest(service="probe"), timeout=5)).status
            for _ in range(40)
        ]
    assert set(seen) == {SERVING, NOT_SERVING}
    assert min(seen.count(SERVING), seen.count(NOT_SERVING)) >= 10


async def test_healthcheck_command_reports_the_serving_status(two_servers: int) -> None:
    port = two_servers
    assert await healthcheck.check(f"127.0.0.1:{port}", "probe") == "SERVING"
    assert await healthcheck.check(f"127.0.0.2:{port}", "probe") == "NOT_SERVING"
    dead = pick_free_port()
    assert await healthcheck.check(f"127.0.0.1:{dead}", timeout=0.5) == "UNAVAILABLE"
