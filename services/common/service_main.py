"""What every service's app does around its own wiring: open its database (migrated) and NATS
at start, close what it opened in reverse order at stop, and describe itself as a ServiceApp.

    resources = service_main.Resources()

    async def startup() -> None:
        pool = await resources.database("tasks", MIGRATIONS)
        nc = await resources.nats("tasks")
        ...
        resources.on_close(engine.stop)

    return service_main.service_app("tasks", [tasks_pb2], register, startup, resources)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import grpc
from nats.aio.client import Client as NATS

from services.common import config, db, nats_streams
from services.common.grpc_server import ServiceApp, service_names


class Resources:
    """What a service opened at start; `close` undoes it last-opened first (what never opened
    is not closed)."""

    def __init__(self) -> None:
        self._closers: list[Callable[[], Awaitable[Any]]] = []

    def on_close(self, close: Callable[[], Awaitable[Any]]) -> None:
        self._closers.append(close)

    async def database(self, service: str, migrations: Path, max_size: int = 10) -> db.Pool:
        """The platform database with `service`'s migrations applied."""
        pool = await db.create_pool(config.database_url(), max_size=max_size)
        self.on_close(pool.close)
        await db.migrate(pool, service, migrations)
        return pool

    async def nats(self, name: str) -> NATS:
        """A NATS connection (drained at stop), the platform's streams ensured."""
        nc = await nats_streams.connect(config.nats_url(), name=name)
        self.on_close(nc.drain)
        await nats_streams.ensure_streams(nc.jetstream())
        return nc

    async def close(self) -> None:
        while self._closers:
            await self._closers.pop()()


def service_app(
    name: str,
    pb2_modules: Sequence[Any],
    register: Callable[[grpc.aio.Server], None],
    startup: Callable[[], Awaitable[None]],
    resources: Resources,
) -> ServiceApp:
    """The ServiceApp serving every gRPC service of `pb2_modules`, closing `resources` at stop."""
    return ServiceApp(
        name=name,
        service_names=service_names(*pb2_modules),
        register=register,
        startup=startup,
        shutdown=resources.close,
    )
