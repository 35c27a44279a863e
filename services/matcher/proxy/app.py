"""The matcher proxy's gRPC adapter: shard channels, the map reload, MatcherService."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import grpc
from luna.matcher.v1 import matcher_pb2, matcher_pb2_grpc
from nats.js import JetStreamContext

from services.common import config, errors, grpc_client, logs, nats_streams
from services.common.grpc_server import REQUEST_ID_KEY, ServiceApp, service_names
from services.matcher import settings as matcher_settings
from services.matcher import sync
from services.matcher.grpc_service import MatcherServicer
from services.matcher.shard import routing
from services.matcher.shard import settings as shard_settings
from services.matcher.shard.partition import ShardMap, ShardMapError

log = logging.getLogger("luna.matcher.proxy")
# A shard replica that comes back is found within a second: gRPC's default reconnect backoff
# grows to 120 s, long enough to keep a restarted single replica unused for minutes.
SHARD_CHANNEL_OPTIONS = [
    *grpc_client.GRPC_OPTIONS,
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


MATCH_FACES = "/luna.matcher.v1.MatcherService/MatchFaces"


class RawMatch:
    """A MatchFaces request as it arrived: its bytes, forwarded unchanged to a lone target
    shard (whose reply bytes come back unchanged too), and the message parsed for routing."""

    __slots__ = ("data", "message")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.message = matcher_pb2.MatchFacesRequest.FromString(data)


def _reply_bytes(reply: bytes | matcher_pb2.MatchFacesResponse) -> bytes:
    return reply if isinstance(reply, bytes) else reply.SerializeToString()


class Shards:
    """The current shard map and one channel per shard address (kept across map versions
    while the address stays)."""

    def __init__(self, shard_map: ShardMap, path: Path | None = None) -> None:
        self.path = path
        self.map = shard_map
        self._stubs: dict[str, Any] = {}
        self._raw_match: dict[str, Any] = {}  # MatchFaces, bytes in and out
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._connect(shard_map)

    def _connect(self, shard_map: ShardMap) -> None:
        for shard in shard_map.shards:
            if not shard.address:
                raise ShardMapError(f"shard {shard.id} has no address")
            if shard.address not in self._channels:
                channel = grpc.aio.insecure_channel(shard.address, options=SHARD_CHANNEL_OPTIONS)
                self._channels[shard.address] = channel
                self._stubs[shard.address] = matcher_pb2_grpc.MatcherServiceStub(channel)
                self._raw_match[shard.address] = channel.unary_unary(MATCH_FACES)

    def stub(self, shard_id: int, shard_map: ShardMap | None = None) -> Any:
        shard = (shard_map or self.map).shard(shard_id)
        assert shard is not None
        return self._stubs[shard.address]

    def raw_match(self, shard_id: int, shard_map: ShardMap | None = None) -> Any:
        shard = (shard_map or self.map).shard(shard_id)
        assert shard is not None
        return self._raw_match[shard.address]

    def channel(self, shard_id: int, shard_map: ShardMap | None = None) -> grpc.aio.Channel:
        shard = (shard_map or self.map).shard(shard_id)
        assert shard is not None
        return self._channels[shard.address]

    def reload(self) -> bool:
        """Switch to the map file's version when it is newer; True when switched."""
        if self.path is None:
            return False
        try:
            new = ShardMap.load(self.path)
        except ShardMapError as exc:
            log.warning("shard map unreadable, keeping version %d: %s", self.map.version, exc)
            return False
        if new.version <= self.map.version:
            return False
        try:
            self._connect(new)
        except ShardMapError as exc:
            log.warning(
                "shard map v%d refused, keeping v%d: %s", new.version, self.map.version, exc
            )
            return False
        old, self.map = self.map, new
        log.info("shard map v%d -> v%d: routed %s", old.version, new.version,
                 [s.id for s in new.routed()])  # fmt: skip
        return True

    async def watch(self, poll: float) -> None:
        while True:
            await asyncio.sleep(poll)
            self.reload()

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()


async def call(
    method: Callable[..., Any],
    request: Any,
    attempts: int,
    timeout: float | None = None,
    ready: Callable[[], Awaitable[None]] | None = None,
) -> Any:
    """One shard call: the request id travels; UNAVAILABLE (no replica answered, or the
    one picked died) is tried again once the channel is ready again (`ready`, at most a
    second per try: round_robin moves to another replica, or the replica is back); a shard's
    LUNA error is raised as the shard raised it."""
    metadata = ((REQUEST_ID_KEY, logs.request_id.get()),)
    for attempt in range(1, attempts + 1):
        try:
            return await method(request, metadata=metadata, timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNAVAILABLE and attempt < attempts:
                if ready is None:
                    await asyncio.sleep(0.05 * attempt)
                else:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(ready(), 1.0)
                continue
            raise grpc_client.luna_error_from_rpc(exc) from None
    raise AssertionError("unreachable")


class ProxyServicer(matcher_pb2_grpc.MatcherServiceServicer):
    def __init__(
        self,
        shards: Shards,
        attempts: int = 3,
        js: JetStreamContext | None = None,
        consistency_wait: float = 0.0,
    ) -> None:
        """`js`: the proxy reads the changes stream's position once per fanned-out match
        (read-your-writes for every shard) instead of each shard reading it; None: each
        shard reads it itself, as a lone matcher does."""
        self.shards = shards
        self.attempts = attempts
        self.js = js
        self.consistency_wait = consistency_wait
        self._raw_turn = 0

    def _call(
        self, method: Any, shard: int, request: Any, context: Any, shard_map: ShardMap
    ) -> Any:
        timeout = context.time_remaining() if context is not None else None
        return call(
            method,
            request,
            self.attempts,
            timeout,
            self.shards.channel(shard, shard_map).channel_ready,
        )

    async def _fan_out(
        self, name: str, requests: dict[int, Any], context: Any, shard_map: ShardMap
    ) -> list[Any]:
        timeout = context.time_remaining() if context is not None else None
        calls = [
            call(
                getattr(self.shards.stub(s, shard_map), name),
                r,
                self.attempts,
                timeout,
                self.shards.channel(s, shard_map).channel_ready,
            )
            for s, r in requests.items()
        ]
        results = await asyncio.gather(*calls, return_exceptions=True)
        for r in results:  # the first shard's error, in shard order (deterministic)
            if isinstance(r, BaseException):
                raise r
        return list(results)

    async def _everywhere(self, name: str, request: Any, context: Any) -> list[Any]:
        shard_map = self.shards.map
        ids = sorted(s.id for s in shard_map.routed())
        return await self._fan_out(name, dict.fromkeys(ids, request), context, shard_map)

    # Callers see the matcher the proxy stands for.
    GetInfo = MatcherServicer.GetInfo

    async def MatchFaces(
        self, request: matcher_pb2.MatchFacesRequest, context: grpc.aio.ServicerContext
    ) -> matcher_pb2.MatchFacesResponse:
        reply = await self.match_faces(request, None, context)
        if isinstance(reply, bytes):
            return matcher_pb2.MatchFacesResponse.FromString(reply)
        return reply

    async def match_faces_raw(
        self, request: RawMatch, context: grpc.aio.ServicerContext
    ) -> bytes | matcher_pb2.MatchFacesResponse:
        """MatchFaces as served (see `add_to_server`): a match on one shard is passed through
        without being encoded again, its reply without being decoded."""
        return await self.match_faces(request.message, request.data, context)

    async def match_faces(
        self, request: matcher_pb2.MatchFacesRequest, data: bytes | None, context: Any
    ) -> bytes | matcher_pb2.MatchFacesResponse:
        shard_map = self.shards.map  # one map for the whole request
        ids = routing.targets(shard_map, request)
        if len(ids) == 1 and data is not None:
            # One shard: the request as it came (that shard reads the stream's position
            # itself, overlapped with its search, as a lone matcher), its reply as it goes.
            method = self.shards.raw_match(ids[0], shard_map)
            return await self._call(method, ids[0], data, context, shard_map)  # type: ignore[no-any-return]
        wait = self.consistency_wait
        position = None
        if len(ids) > 1 and self.js is not None and wait > 0:
            # One shard: it reads the position itself, overlapped with its search, as a
            # lone matcher. Several: read once here, overlapped with the shards' searches.
            position = sync.read_position(self.js, wait)
        if position is None:
            replies = await self._fan_out(
                "MatchFaces", routing.requests_for(request, ids), context, shard_map
            )
            return routing.merge(request, replies)
        try:
            request.min_applied_seq = 0  # answer now, say from which applied sequence
            requests = routing.requests_for(request, ids)
            replies = await self._fan_out("MatchFaces", requests, context, shard_map)
            target = await position
        except BaseException:
            if not position.cancel() and not position.cancelled():
                position.exception()  # nobody reads it: the match failed
            raise
        if target:
            # A change still on its way to these shards: they wait for it, then match again.
            again: dict[int, matcher_pb2.MatchFacesRequest] = {}
            for i, s in enumerate(ids):
                if replies[i].applied_seq < target:
                    again[s] = matcher_pb2.MatchFacesRequest()
                    again[s].CopyFrom(requests[s])
                    again[s].min_applied_seq = target
            if again:
                fresh = await self._fan_out("MatchFaces", again, context, shard_map)
                for s, reply in zip(again, fresh, strict=True):
                    replies[ids.index(s)] = reply
        return routing.merge(request, replies)

    async def MatchRaw(
        self, request: matcher_pb2.MatchRawRequest, context: grpc.aio.ServicerContext
    ) -> matcher_pb2.MatchRawResponse:
        """Holds no state: any shard computes it (turn by turn)."""
        shard_map = self.shards.map
        ids = sorted(s.id for s in shard_map.routed())
        self._raw_turn += 1
        shard = ids[self._raw_turn % len(ids)]
        (reply,) = await self._fan_out("MatchRaw", {shard: request}, context, shard_map)
        return reply  # type: ignore[no-any-return]

    async def GetIndexStats(
        self, request: matcher_pb2.GetIndexStatsRequest, context: grpc.aio.ServicerContext
    ) -> matcher_pb2.GetIndexStatsResponse:
        return routing.merge_stats(await self._everywhere("GetIndexStats", request, context))

    async def RebuildIndex(
        self, request: matcher_pb2.RebuildIndexRequest, context: grpc.aio.ServicerContext
    ) -> matcher_pb2.RebuildIndexResponse:
        """One replica of each shard (the one its channel picks)."""
        began = time.perf_counter()
        replies = await self._everywhere("RebuildIndex", request, context)
        return matcher_pb2.RebuildIndexResponse(
            faces=sum(r.faces for r in replies), seconds=time.perf_counter() - began
        )

    async def SaveSnapshot(
        self, request: matcher_pb2.SaveSnapshotRequest, context: grpc.aio.ServicerContext
    ) -> matcher_pb2.SaveSnapshotResponse:
        """One replica of each shard; the paths joined by ';', the lowest sequence."""
        began = time.perf_counter()
        replies = await self._everywhere("SaveSnapshot", request, context)
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


def shards_from_settings() -> Shards:
    path = shard_settings.map_path()
    shard_map = shard_settings.current_map()
    if not [s for s in shard_map.shards if s.address]:
        raise errors.LunaError(
            errors.INTERNAL,
            "the matcher proxy needs LUNA_MATCHER_SHARD_MAP or LUNA_MATCHER_SHARD_ADDRESSES",
        )
    return Shards(shard_map, path)


def make_app() -> ServiceApp:
    state: dict[str, Any] = {}

    async def startup() -> None:
        shards = shards_from_settings()
        state["shards"] = shards
        state["watch"] = asyncio.create_task(shards.watch(shard_settings.MAP_POLL.get_float()))
        if matcher_settings.CONSISTENCY_WAIT.get_float() > 0:
            state["connect"] = asyncio.create_task(connect_nats())

    async def connect_nats() -> None:
        """In the background: until NATS is reached the proxy serves as before it had a
        connection (every shard reads the stream's position itself), so NATS is never a
        condition of the proxy's start."""
        while True:
            try:
                nc = await nats_streams.connect(config.nats_url(), name="matcher-proxy")
                break
            except Exception as exc:
                log.warning("NATS not reached (%s); shards read the stream position", exc)
                await asyncio.sleep(1.0)
        state["nc"] = nc
        state["js"] = nc.jetstream()
        if "servicer" in state:
            state["servicer"].js = state["js"]

    def register(server: grpc.aio.Server) -> None:
        servicer = ProxyServicer(
            state["shards"],
            shard_settings.PROXY_ATTEMPTS.get_int(),
            state.get("js"),
            matcher_settings.CONSISTENCY_WAIT.get_float(),
        )
        state["servicer"] = servicer
        add_to_server(servicer, server)

    async def shutdown() -> None:
        for name in ("watch", "connect"):
            task = state.get(name)
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if "shards" in state:
            await state["shards"].close()
        if "nc" in state:
            await state["nc"].close()

    return ServiceApp(
        name="matcher-proxy",
        service_names=service_names(matcher_pb2),
        register=register,
        startup=startup,
        shutdown=shutdown,
    )


__all__: Sequence[str] = ("ProxyServicer", "Shards", "add_to_server", "make_app")
