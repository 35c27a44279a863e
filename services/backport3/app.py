"""Wiring of the backport3 service: its database tables and its gRPC servicer."""

from __future__ import annotations

from pathlib import Path

import grpc
from luna.backport3.v1 import backport3_pb2, backport3_pb2_grpc
from luna.faces.v1 import faces_pb2_grpc
from psycopg_pool import AsyncConnectionPool

from services.backport3 import settings
from services.backport3.collector import Collector
from services.backport3.grpc_service import Backport3Servicer
from services.backport3.store import Store
from services.common import config, db, grpc_client
from services.common.grpc_server import ServiceApp

MIGRATIONS = Path(__file__).with_name("migrations")


class Backport3Runtime:
    async def start(self) -> None:
        self.pool: AsyncConnectionPool = await db.create_pool(config.database_url(), max_size=10)
        await db.migrate(self.pool, "backport3", MIGRATIONS)
        self.store = Store(self.pool)
        self.faces_channel = grpc_client.channel("faces")
        faces = grpc_client.stub(faces_pb2_grpc.FacesServiceStub, self.faces_channel)
        self.collector = Collector(self.store, faces, settings.GC_INTERVAL.get_float())
        self.collector.start()

    def register(self, server: grpc.aio.Server) -> None:
        backport3_pb2_grpc.add_Backport3ServiceServicer_to_server(
            Backport3Servicer(self.store), server
        )

    async def stop(self) -> None:
        await self.collector.stop()
        await self.faces_channel.close()
        await self.pool.close()


def make_app() -> ServiceApp:
    runtime = Backport3Runtime()
    return ServiceApp(
        name="backport3",
        service_names=[s.full_name for s in backport3_pb2.DESCRIPTOR.services_by_name.values()],
        register=runtime.register,
        startup=runtime.start,
        shutdown=runtime.stop,
    )
