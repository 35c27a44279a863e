"""Wiring of the events service: database, NATS (EVENTS stream), servicers."""

from __future__ import annotations

from pathlib import Path

import grpc
from nats.aio.client import Client as NATS

from services.common import nats_streams, service_main
from services.common.grpc_server import ServiceApp
from services.events import grpc_service
from services.events.events import Events, Publish
from services.events.handlers import Handlers
from services.events.pipeline import wiring as pipeline_wiring
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
    resources = service_main.Resources()
    state: dict[str, object] = {}

    async def startup() -> None:
        pool = await resources.database("events", MIGRATIONS, max_size=20)
        nc = await resources.nats("events")
        handlers = Handlers(pool)
        events = Events(pool, handlers, jetstream_publisher(nc))
        resources.on_close(events.close)  # buffered (wait_saving=0) writes land before we go
        state.update(
            handlers=handlers,
            verifiers=Verifiers(pool),
            events=events,
            statistics=Statistics(pool),
        )
        state.update(pipeline_wiring.start(state))
        resources.on_close(lambda: pipeline_wiring.stop(state))

    def register(server: grpc.aio.Server) -> None:
        handlers, verifiers, events, stats = (
            state["handlers"],
            state["verifiers"],
            state["events"],
            state["statistics"],
        )
        assert isinstance(handlers, Handlers) and isinstance(verifiers, Verifiers)
        assert isinstance(events, Events) and isinstance(stats, Statistics)
        grpc_service.add_servicers(server, events, stats, handlers, verifiers)
        pipeline_wiring.register(state, server)

    return service_main.service_app(
        "events", [*grpc_service.SERVICES, pipeline_wiring.SERVICE], register, startup, resources
    )
