"""Wiring of the backport3 service: its database tables and its gRPC servicer."""

from __future__ import annotations

from pathlib import Path

import grpc
from luna.backport3.v1 import backport3_pb2, backport3_pb2_grpc
from luna.faces.v1 import faces_pb2_grpc

from services.backport3 import settings
from services.backport3.collector import Collector
from services.backport3.grpc_service import Backport3Servicer
from services.backport3.store import Store
from services.common import grpc_client, service_main
from services.common.grpc_server import ServiceApp

MIGRATIONS = Path(__file__).with_name("migrations")


def make_app() -> ServiceApp:
    resources = service_main.Resources()
    state: dict[str, Store] = {}

    async def startup() -> None:
        store = state["store"] = Store(await resources.database("backport3", MIGRATIONS))
        faces_channel = grpc_client.channel("faces")
        resources.on_close(faces_channel.close)
        faces = grpc_client.stub(faces_pb2_grpc.FacesServiceStub, faces_channel)
        collector = Collector(store, faces, settings.GC_INTERVAL.get_float())
        collector.start()
        resources.on_close(collector.stop)

    def register(server: grpc.aio.Server) -> None:
        servicer = Backport3Servicer(state["store"], settings.DESCRIPTOR_TTL.get_float())
        backport3_pb2_grpc.add_Backport3ServiceServicer_to_server(servicer, server)

    return service_main.service_app("backport3", [backport3_pb2], register, startup, resources)
