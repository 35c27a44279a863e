"""The matcher proxy's gRPC adapter: MatcherService over the routing library
(services/matcher/shard/router.py), for gRPC clients other than the gateway."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import grpc
from luna.matcher.v1 import matcher_pb2, matcher_pb2_grpc

from services.common.grpc_server import ServiceApp, service_names
from services.matcher.grpc_service import MatcherServicer
from services.matcher.shard import settings as shard_settings
from services.matcher.shard.router import Router, Shards


class RawMatch:
    """A MatchFaces request as it arrived: its bytes, forwarded unchanged to a lone target
    shard (whose reply bytes come back unchanged too), and the message parsed for routing."""

    __slots__ = ("data", "message")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.message = matcher_pb2.MatchFacesRequest.FromString(data)


def _reply_bytes(reply: bytes | matcher_pb2.MatchFacesResponse) -> bytes:
    return reply if isinstance(reply, bytes) else reply.SerializeToString()


def _timeout(context: Any) -> float | None:
    return context.time_remaining() if context is not None else None


class ProxyServicer(matcher_pb2_grpc.MatcherServiceServicer):
    """MatcherService over the Router (services/matcher/shard/router.py)."""

    def __init__(self, shards: Shards, attempts: int = 3) -> None:
        self.router = Router(shards, attempts)

    @property
    def shards(self) -> Shards:
        return self.router.shards

    # Callers see the matcher the proxy stands for.
    GetInfo = MatcherServicer.GetInfo

    async def MatchFaces(
        self, request: matcher_pb2.MatchFacesRequest, context: grpc.aio.ServicerContext
    ) -> matcher_pb2.MatchFacesResponse:
        return await self.router.MatchFaces(request, timeout=_timeout(context))

    async def match_faces_raw(
        self, request: RawMatch, context: grpc.aio.ServicerContext
    ) -> bytes | matcher_pb2.MatchFacesResponse:
        """MatchFaces as served (see `add_to_server`): a match on one shard is passed through
        without being encoded again, its reply without being decoded."""
        return await self.router.match_faces(request.message, request.data, _timeout(context))

    async def MatchRaw(
        self, request: matcher_pb2.MatchRawRequest, context: grpc.aio.ServicerContext
    ) -> matcher_pb2.MatchRawResponse:
        return await self.router.match_raw(request, _timeout(context))

    async def GetIndexStats(
        self, request: matcher_pb2.GetIndexStatsRequest, context: grpc.aio.ServicerContext
    ) -> matcher_pb2.GetIndexStatsResponse:
        return await self.router.index_stats(_timeout(context))

    async def RebuildIndex(
        self, request: matcher_pb2.RebuildIndexRequest, context: grpc.aio.ServicerContext
    ) -> matcher_pb2.RebuildIndexResponse:
        """One replica of each shard (the one its channel picks)."""
        began = time.perf_counter()
        replies = await self.router.everywhere("RebuildIndex", request, _timeout(context))
        return matcher_pb2.RebuildIndexResponse(
            faces=sum(r.faces for r in replies), seconds=time.perf_counter() - began
        )

    async def SaveSnapshot(
        self, request: matcher_pb2.SaveSnapshotRequest, context: grpc.aio.ServicerContext
    ) -> matcher_pb2.SaveSnapshotResponse:
        """One replica of each shard; the paths joined by ';', the lowest sequence."""
        began = time.perf_counter()
        replies = await self.router.everywhere("SaveSnapshot", request, _timeout(context))
        return matcher_pb2.SaveSnapshotResponse(
            path=";".join(r.path for r in replies),
            stream_seq=min(r.stream_seq for r in replies),
            seconds=time.perf_counter() - began,
        )


def add_to_server(servicer: ProxyServicer, server: grpc.aio.Server) -> None:
    """The MatcherService, its MatchFaces taking and giving bytes where it can (a handler
    registered first wins the method)."""
    handler = grpc.method_handlers_generic_handler(
        "luna.matcher.v1.MatcherService",
        {
            "MatchFaces": grpc.unary_unary_rpc_method_handler(
                servicer.match_faces_raw,
                request_deserializer=RawMatch,
                response_serializer=_reply_bytes,
            )
        },
    )
    server.add_generic_rpc_handlers((handler,))
    matcher_pb2_grpc.add_MatcherServiceServicer_to_server(servicer, server)


def make_app() -> ServiceApp:
    state: dict[str, Any] = {}

    async def startup() -> None:
        state["shards"] = Shards.from_settings()
        state["shards"].follow()

    def register(server: grpc.aio.Server) -> None:
        servicer = ProxyServicer(state["shards"], shard_settings.PROXY_ATTEMPTS.get_int())
        add_to_server(servicer, server)

    async def shutdown() -> None:
        if "shards" in state:
            await state["shards"].close()

    return ServiceApp(
        name="matcher-proxy",
        service_names=service_names(matcher_pb2),
        register=register,
        startup=startup,
        shutdown=shutdown,
    )


__all__: Sequence[str] = ("ProxyServicer", "Shards", "add_to_server", "make_app")
