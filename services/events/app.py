"""Wiring of the events service: database, NATS (EVENTS stream), servicers."""

from __future__ import annotations

from pathlib import Path

import grpc
from luna.common.v1 import info_pb2
from luna.events.v1 import (
    events_pb2,
    events_pb2_grpc,
    handlers_pb2,
    handlers_pb2_grpc,
    verifiers_pb2,
    verifiers_pb2_grpc,
)
from nats.aio.client import Client as NATS
from psycopg_pool import AsyncConnectionPool

from services.common import config, db, nats_streams
from services.common.grpc_server import ServiceApp
from services.common.version import VERSION
from services.events import pipeline_wiring
from services.events.events import Events, Publish
from services.events.grpc_service import EventsServicer, HandlersServicer, VerifiersServicer
from services.events.handlers import Handlers
from services.events.statistics import Statistics
from services.events.verifiers import Verifiers

MIGRATIONS = Path(__file__).with_name("migrations")


def jetstream_publisher(nc: NATS) -> Publish:
    js = nc.jetstream()

    async def publish(subject: str, payload: bytes, headers: dict[str, str]) -> None:
        # Nats-Msg-Id (the event id) makes a re-published event a duplicate the stream drops.
        # While NATS restarts, fail at once (the event is stored; only the notice is lost)
        # rather than wait out the ack timeout on every event.
        if not nc.is_connected:
            raise nats_streams.NatsUnavailable("not connected to NATS")
        await js.publish(subject, payload, timeout=nats_streams.PUBLISH_TIMEOUT_S, headers=headers)

    return publish


def make_app() -> ServiceApp:
    state: dict[str, object] = {}

    async def startup() -> None:
        pool: AsyncConnectionPool = await db.create_pool(config.database_url(), max_size=20)
        await db.migrate(pool, "events", MIGRATIONS)
        nc = await nats_streams.connect(config.nats_url(), name="events")
        await nats_streams.ensure_streams(nc.jetstream())
        handlers = Handlers(pool)
        state.update(
            pool=pool,
            nc=nc,
            handlers=handlers,
            verifiers=Verifiers(pool),
            events=Events(pool, handlers, jetstream_publisher(nc)),
            statistics=Statistics(pool),
        )
        state.update(pipeline_wiring.start(state))

    def register(server: grpc.aio.Server) -> None:
        handlers, verifiers, events, stats = (
            state["handlers"],
            state["verifiers"],
            state["events"],
            state["statistics"],
        )
        assert isinstance(handlers, Handlers) and isinstance(verifiers, Verifiers)
        assert isinstance(events, Events) and isinstance(stats, Statistics)
        info = info_pb2.ServiceInfo(name="events", version=VERSION)
        events_pb2_grpc.add_EventsServiceServicer_to_server(
            EventsServicer(events, stats, info), server
        )
        handlers_pb2_grpc.add_HandlersServiceServicer_to_server(HandlersServicer(handlers), server)
        verifiers_pb2_grpc.add_VerifiersServiceServicer_to_server(
            VerifiersServicer(verifiers), server
        )
        pipeline_wiring.register(state, server)

    async def shutdown() -> None:
        await pipeline_wiring.stop(state)
        events = state.get("events")
        if isinstance(events, Events):
            await events.close()  # buffered (wait_saving=0) writes land before we go
        nc = state.get("nc")
        if isinstance(nc, NATS):
            await nc.drain()
        pool = state.get("pool")
        if isinstance(pool, AsyncConnectionPool):
            await pool.close()

    return ServiceApp(
        name="events",
        service_names=[
            events_pb2.DESCRIPTOR.services_by_name["EventsService"].full_name,
            handlers_pb2.DESCRIPTOR.services_by_name["HandlersService"].full_name,
            verifiers_pb2.DESCRIPTOR.services_by_name["VerifiersService"].full_name,
            pipeline_wiring.SERVICE_NAME,
        ],
        register=register,
        startup=startup,
        shutdown=shutdown,
    )
