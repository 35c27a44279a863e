"""The REST edge: builds the aiohttp application from the route tables."""

from __future__ import annotations

import logging
from pathlib import Path

import nats
import uvloop
from aiohttp import web

from services.common import config, logs, nats_streams, subjects
from services.gateway import about, backport3, middleware, routing, sender_api, tasks_api
from services.gateway import metrics as http_metrics
from services.gateway.auth import Authenticator
from services.gateway.clients import Clients
from services.gateway.events_follower import refollow_on_reconnect
from services.gateway.routes import accounts, system
from services.gateway.routes import attributes as attributes_routes
from services.gateway.routes import blobs as blobs_routes
from services.gateway.routes import checks as checks_routes
from services.gateway.routes import docs as docs_routes
from services.gateway.routes import estimator as estimator_routes
from services.gateway.routes import events as events_routes
from services.gateway.routes import extractor as extractor_routes
from services.gateway.routes import faces as faces_routes
from services.gateway.routes import generate as generate_routes
from services.gateway.routes import handlers as handlers_routes
from services.gateway.routes import lists as lists_routes
from services.gateway.routes import matcher as matcher_routes
from services.gateway.routes import sender as sender_routes
from services.gateway.routes import tasks as tasks_routes
from services.gateway.routes import verifiers as verifiers_routes
from services.gateway.sender import Hub
from services.gateway.validation import RequestValidator

SPEC_PATH = Path(__file__).with_name("openapi") / "luna-platform-v6.yaml"
ROUTE_TABLES = (
    system.table,
    accounts.table,
    faces_routes.table,
    lists_routes.table,
    attributes_routes.table,
    estimator_routes.table,
    blobs_routes.table,
    handlers_routes.table,
    events_routes.table,
    verifiers_routes.table,
    generate_routes.table,
    matcher_routes.table,
    sender_routes.table,
    extractor_routes.table,
    docs_routes.table,
    checks_routes.table,
    tasks_routes.table,
)
log = logging.getLogger("luna.gateway")


MAX_BODY = config.declare(
    "LUNA_MAX_BODY_BYTES", 32 * 1024 * 1024, "Largest request body the gateway accepts."
)


def build_app(clients: Clients | None = None) -> web.Application:
    app = web.Application(
        middlewares=[middleware.luna_middleware], client_max_size=MAX_BODY.get_int()
    )
    spec, spec_yaml = about.load_spec(SPEC_PATH)
    app["spec"], app["spec_yaml"] = spec, spec_yaml
    validator = RequestValidator(spec)
    clients = clients or Clients()
    authenticator = Authenticator(clients)
    app["clients"], app["authenticator"] = clients, authenticator
    app["sender_hub"] = Hub()
    app["validator"] = validator

    routing.add_routes(app, ROUTE_TABLES, authenticator, validator)
    backport3.install(app)

    async def on_startup(app: web.Application) -> None:
        clients.open()
        if config.nats_url():
            nc = await nats_streams.connect(config.nats_url(), name="gateway")

            async def invalidate(msg: nats.aio.msg.Msg) -> None:
                authenticator.invalidate(msg.data)

            await nc.subscribe(subjects.AUTH_CHANGED, cb=invalidate)
            authenticator.follow(nc)
            app["nats"] = nc
            refollow_on_reconnect(app["sender_hub"], nc)
            await nats_streams.ensure_streams(nc.jetstream())
            await app["sender_hub"].follow(nc.jetstream())
        await tasks_api.start(app)

    async def on_cleanup(app: web.Application) -> None:
        await tasks_api.stop(app)
        nc = app.get("nats")
        if nc is not None:
            await nc.drain()
        await clients.close()

    app.on_startup.append(on_startup)
    app.on_startup.append(backport3.start_listener)
    app.on_cleanup.append(backport3.stop_listener)
    app.on_cleanup.append(on_cleanup)
    http_metrics.install(app)
    http_metrics.track_events_follower(app)
    sender_api.attach(app)
    return app


def main() -> None:
    logs.setup("gateway")
    host, port = config.gateway_host(), config.gateway_port()
    # uvloop roughly halves aiohttp's per-request overhead; grpc.aio runs on it as well.
    uvloop.install()
    middleware.install_protocol_errors()
    web.run_app(build_app(), host=host, port=port, access_log=None, print=None)
