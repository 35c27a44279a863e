"""Wiring of the faces service: database, NATS, servicers."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import grpc
from luna.common.v1 import info_pb2
from psycopg_pool import AsyncConnectionPool

from services.common import config, db, grpc_client, nats_streams, subjects
from services.common.grpc_server import ServiceApp, service_names
from services.common.version import VERSION
from services.faces import background, event_refs, grpc_service, jwt_tokens, outbox
from services.faces.accounts import Accounts
from services.faces.attributes import Attributes
from services.faces.blobs import Blobs
from services.faces.faces import Faces
from services.faces.lists import Lists
from services.faces.tokens import Tokens

MIGRATIONS = Path(__file__).with_name("migrations")
log = logging.getLogger("luna.faces")
ADMIN_PASSWORD = config.declare(
    "LUNA_ADMIN_PASSWORD",
    "",
    "Password of the operator's admin account, created at first start when set "
    "(API clients cannot create admin accounts).",
)
ADMIN_LOGIN = config.declare(
    "LUNA_ADMIN_LOGIN", "root@visionlabs.ai", "Login of the admin account."
)
PUBLISH_WAIT = config.declare(
    "LUNA_FACES_PUBLISH_WAIT_S",
    5.0,
    "How long a face write waits for its FACES_CHANGES publish while a NATS cluster elects a "
    "stream leader or the client moves to another node, so a match after the answer sees it "
    "(seconds; a single NATS server never makes a write wait: its changes wait in the outbox).",
)


class FacesRuntime:
    """What the faces process holds while it serves; built in `start`, released in `stop`."""

    async def start(self) -> None:
        self.pool: AsyncConnectionPool = await db.create_pool(config.database_url(), max_size=20)
        await db.migrate(self.pool, "faces", MIGRATIONS)
        self.nc = await nats_streams.connect(config.nats_url(), name="faces")
        await nats_streams.ensure_streams(self.nc.jetstream())
        # Faces, lists and accounts write their changes through the FACES_CHANGES outbox.
        publisher = outbox.Publisher(self.pool, self.nc.jetstream(), PUBLISH_WAIT.get_float())
        # What was committed while NATS was away goes out as soon as it is back.
        nats_streams.on_reconnect(self.nc, publisher.flush_quietly)
        self.accounts = Accounts(self.pool, publisher)
        if ADMIN_PASSWORD.get():
            await self.accounts.ensure_admin(ADMIN_LOGIN.get(), ADMIN_PASSWORD.get())
        self.tokens = Tokens(self.pool, jwt_tokens.load_secret())
        self.events_channel = grpc_client.channel("events")
        self.faces = Faces(self.pool, publisher, event_refs.lookup(self.events_channel))
        self.lists = Lists(self.pool, publisher)
        self.attributes = Attributes(self.pool, publisher)
        self.blobs = Blobs(self.pool)
        self.background = background.start(publisher, self.attributes)

    async def auth_changed(self, account_id: str, token_id: str) -> None:
        payload = json.dumps({"account_id": account_id, "token_id": token_id}).encode()
        # The change is answered only once NATS holds the message, so a client that goes on
        # to another gateway finds the old credential dropped there too. While NATS is away
        # gateways trust no cache (auth.Authenticator.follow), so a lost message costs nothing.
        try:
            await self.nc.publish(subjects.AUTH_CHANGED, payload)
            await self.nc.flush(timeout=2)
        except Exception as exc:  # the change is committed: failing the request would lie
            log.warning("auth change not confirmed by NATS: %s", exc)

    def register(self, server: grpc.aio.Server) -> None:
        info = info_pb2.ServiceInfo(name="faces", version=VERSION)
        grpc_service.register(server, self, info, self.auth_changed)

    async def stop(self) -> None:
        await self.background.stop()
        await self.events_channel.close()
        await self.nc.drain()
        await self.pool.close()


def make_app() -> ServiceApp:
    runtime = FacesRuntime()
    return ServiceApp(
        name="faces",
        service_names=service_names(*grpc_service.SERVICES),
        register=runtime.register,
        startup=runtime.start,
        shutdown=runtime.stop,
    )
