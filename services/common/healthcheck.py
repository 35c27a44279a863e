"""`python -m services.common.healthcheck HOST:PORT`: exit 0 when the gRPC server there
answers grpc.health.v1 SERVING, 1 otherwise.

For container health checks where no native gRPC probe exists (docker-compose); Kubernetes
uses its built-in `grpc:` probes instead.

A service that owns PostgreSQL also answers the health service name `DATABASE`, checked
when asked (`ServiceApp.probes`): SERVING when its pool reaches the database, else the call
fails with LUNA's 10017 in the error trailer. The gateway's `/healthcheck` asks that rather
than opening the database itself.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common import errors

# The grpc.health.v1 service name under which a service reports its database.
DATABASE = "luna.database"
DATABASE_PROBE_TIMEOUT_S = 1.5


async def probe_database(pool: Any, timeout: float = DATABASE_PROBE_TIMEOUT_S) -> None:
    """`SELECT 1` over the service's pool within `timeout`; LUNA's 10017 when it fails."""
    try:
        async with asyncio.timeout(timeout):
            async with pool.connection() as conn:
                await conn.execute("SELECT 1")
    except TimeoutError:
        detail = f"TimeoutError: no answer within {timeout} s"
        raise errors.LunaError(errors.DATABASE_ERROR, detail) from None
    except Exception as exc:
        raise errors.LunaError(errors.DATABASE_ERROR, f"{type(exc).__name__}: {exc}") from None


async def check(address: str, service: str = "", timeout: float = 2.0) -> str:
    """The serving status name, or the gRPC error code's name when the call fails."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            request = health_pb2.HealthCheckRequest(service=service)
            reply = await stub.Check(request, timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            return exc.code().name
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("address", help="host:port of the gRPC server")
    parser.add_argument("--service", default="", help="service name (default: the whole server)")
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds (default 2)")
    args = parser.parse_args(argv)
    status = asyncio.run(check(args.address, args.service, args.timeout))
    print(f"{args.address}: {status}")
    return 0 if status == "SERVING" else 1


if __name__ == "__main__":
    sys.exit(main())
