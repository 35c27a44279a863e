"""The gateway's gRPC stubs to every service, made once per process. Given the matcher's
shard map, the gateway routes matches to the shards itself (services/matcher/shard/router.py)
instead of calling a matcher proxy: one hop less on every match."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc_health.v1 import health_pb2_grpc
from luna.backport3.v1 import backport3_pb2_grpc
from luna.estimator.v1 import estimator_pb2_grpc
from luna.events.v1 import events_pb2_grpc, handlers_pb2_grpc, pipeline_pb2_grpc, verifiers_pb2_grpc
from luna.faces.v1 import (
    accounts_pb2_grpc,
    attributes_pb2_grpc,
    blobs_pb2_grpc,
    faces_pb2_grpc,
    lists_pb2_grpc,
    tokens_pb2_grpc,
)
from luna.matcher.v1 import matcher_pb2_grpc
from luna.tasks.v1 import tasks_pb2_grpc

from services.common import config, grpc_client
from services.matcher.shard import settings as shard_settings
from services.matcher.shard.router import Router, Shards, ShardsHealth

SERVICES = tuple(config.SERVICE_PORTS)
log = logging.getLogger("luna.gateway")
ROUTE_MATCHES = config.declare(
    "LUNA_GATEWAY_ROUTE_MATCHES",
    True,
    "With a matcher shard map (LUNA_MATCHER_SHARD_MAP or LUNA_MATCHER_SHARD_ADDRESSES) the "
    "gateway sends matches to the shards itself, fanning out and merging as the matcher "
    "proxy does; 0: it calls LUNA_MATCHER_ADDRESS (a proxy) like the other services.",
)


def routes_matches() -> bool:
    sharded = bool(shard_settings.SHARD_MAP.get() or shard_settings.SHARD_ADDRESSES.get())
    return sharded and ROUTE_MATCHES.get_bool()


@dataclass
class Clients:
    """Stubs for every service; `open()` must run inside the serving event loop, because
    grpc.aio channels bind to the loop they are created on."""

    channels: dict[str, grpc.aio.Channel] = field(default_factory=dict)
    # Set when the gateway routes matches itself (see `routes_matches`).
    matcher_router: Router | None = None

    def open(self) -> None:
        for service in SERVICES:
            self.channels[service] = grpc_client.channel(service)
        faces = self.channels["faces"]
        stub = grpc_client.stub
        self.accounts = stub(accounts_pb2_grpc.AccountsServiceStub, faces)
        self.tokens = stub(tokens_pb2_grpc.TokensServiceStub, faces)
        self.faces = stub(faces_pb2_grpc.FacesServiceStub, faces)
        self.lists = stub(lists_pb2_grpc.ListsServiceStub, faces)
        self.attributes = stub(attributes_pb2_grpc.AttributesServiceStub, faces)
        self.blobs = stub(blobs_pb2_grpc.BlobsServiceStub, faces)
        self.estimator = stub(estimator_pb2_grpc.EstimatorServiceStub, self.channels["estimator"])
        self.matcher = stub(matcher_pb2_grpc.MatcherServiceStub, self.channels["matcher"])
        self.events = stub(events_pb2_grpc.EventsServiceStub, self.channels["events"])
        self.handlers = stub(handlers_pb2_grpc.HandlersServiceStub, self.channels["events"])
        self.verifiers = stub(verifiers_pb2_grpc.VerifiersServiceStub, self.channels["events"])
        self.pipeline = stub(pipeline_pb2_grpc.PipelineServiceStub, self.channels["events"])
        self.tasks = stub(tasks_pb2_grpc.TasksServiceStub, self.channels["tasks"])
        self.backport3 = stub(backport3_pb2_grpc.Backport3ServiceStub, self.channels["backport3"])
        # Health checks use the raw stubs: a failing check is an answer, not a LunaError.
        self.health: dict[str, Any] = {
            s: health_pb2_grpc.HealthStub(ch) for s, ch in self.channels.items()
        }
        if routes_matches():
            shards = Shards.from_settings()
            self.matcher_router = Router(shards, shard_settings.PROXY_ATTEMPTS.get_int())
            self.matcher = self.matcher_router
            self.health["matcher"] = ShardsHealth(shards)
            log.info("matches routed to the matcher shards here: map v%d, %s",
                     shards.map.version, [s.address for s in shards.map.routed()])  # fmt: skip
            shards.follow()

    async def close(self) -> None:
        if self.matcher_router is not None:
            await self.matcher_router.shards.close()
        for ch in self.channels.values():
            await ch.close()
