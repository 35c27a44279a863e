"""The routing layer as a library (LUNA's matcher proxy logic): channels to every shard that
follow the shard map, and a Router that sends a match to the shards holding its candidates,
fans out in parallel, keeps read-your-writes (the first shard reads the changes stream's
position, the others are held to it: `routing.requests_for`), retries on another replica and
merges the top k exactly (`routing`).

Two places run it: the gateway, in-process, when it is given the shard map (no hop between
it and the shards: the documented default of a sharded deployment), and the matcher proxy
(`services.matcher.proxy`), a MatcherService for every other gRPC client. It holds no matcher
state and imports nothing of the matcher's own (index, follower), so a client process can
run it: the one package of the matcher that another service imports (docs/DECISIONS.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from luna.matcher.v1 import matcher_pb2, matcher_pb2_grpc

from services.common import errors, grpc_client, logs
from services.common.grpc_server import REQUEST_ID_KEY
from services.common.stopping import cancel_and_wait
from services.matcher.shard import routing
from services.matcher.shard import settings as shard_settings
from services.matcher.shard.partition import ShardMap, ShardMapError

log = logging.getLogger("luna.matcher.router")
# A shard replica that comes back is found within a second: gRPC's default reconnect backoff
# grows to 120 s, long enough to keep a restarted single replica unused for minutes.
SHARD_CHANNEL_OPTIONS = [
    *grpc_client.GRPC_OPTIONS,
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]
MATCH_FACES = "/luna.matcher.v1.MatcherService/MatchFaces"
_parse_reply = matcher_pb2.MatchFacesResponse.FromString


class Shards:
    """The current shard map and one channel per shard address (kept across map versions
    while the address stays)."""

    def __init__(self, shard_map: ShardMap, path: Path | None = None) -> None:
        self.path = path
        self.map = shard_map
        self._stubs: dict[str, Any] = {}
        self._raw_match: dict[str, Any] = {}  # MatchFaces, bytes in and out
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._follow: asyncio.Task[None] | None = None
        self._connect(shard_map)

    @classmethod
    def from_settings(cls) -> Shards:
        """The map of LUNA_MATCHER_SHARD_MAP, else of LUNA_MATCHER_SHARD_ADDRESSES."""
        shard_map = shard_settings.current_map()
        if not [s for s in shard_map.shards if s.address]:
            raise errors.LunaError(
                errors.INTERNAL,
                "matcher routing needs LUNA_MATCHER_SHARD_MAP or LUNA_MATCHER_SHARD_ADDRESSES",
            )
        return cls(shard_map, shard_settings.map_path())

    def _connect(self, shard_map: ShardMap) -> None:
        for shard in shard_map.shards:
            if not shard.address:
                raise ShardMapError(f"shard {shard.id} has no address")
            if shard.address not in self._channels:
                channel = grpc.aio.insecure_channel(shard.address, options=SHARD_CHANNEL_OPTIONS)
                self._channels[shard.address] = channel
                self._stubs[shard.address] = matcher_pb2_grpc.MatcherServiceStub(channel)
                self._raw_match[shard.address] = channel.unary_unary(MATCH_FACES)

    def _address(self, shard_id: int, shard_map: ShardMap | None) -> str:
        shard = (shard_map or self.map).shard(shard_id)
        assert shard is not None
        return shard.address

    def stub(self, shard_id: int, shard_map: ShardMap | None = None) -> Any:
        return self._stubs[self._address(shard_id, shard_map)]

    def raw_match(self, shard_id: int, shard_map: ShardMap | None = None) -> Any:
        return self._raw_match[self._address(shard_id, shard_map)]

    def channel(self, shard_id: int, shard_map: ShardMap | None = None) -> grpc.aio.Channel:
        return self._channels[self._address(shard_id, shard_map)]

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

    def follow(self) -> None:
        """Follow the map file's new versions (every LUNA_MATCHER_SHARD_MAP_POLL s) until
        `close`."""
        if self.path is not None and self._follow is None:
            self._follow = asyncio.create_task(self.watch(shard_settings.MAP_POLL.get_float()))

    async def close(self) -> None:
        await cancel_and_wait(self._follow)
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


class Router:
    """Routes MatcherService calls over the shards. Its upper-case methods answer as a
    MatcherService stub does (LunaError on failure), so the gateway uses it in the stub's
    place; the proxy's servicer answers through the lower-case ones."""

    def __init__(self, shards: Shards, attempts: int = 3) -> None:
        self.shards = shards
        self.attempts = attempts
        self._raw_turn = 0

    def _call(
        self, method: Any, shard: int, request: Any, timeout: float | None, shard_map: ShardMap
    ) -> Awaitable[Any]:
        ready = self.shards.channel(shard, shard_map).channel_ready
        return call(method, request, self.attempts, timeout, ready)

    async def _gather(self, calls: list[Awaitable[Any]]) -> list[Any]:
        results = await asyncio.gather(*calls, return_exceptions=True)
        for r in results:  # the first shard's error, in shard order (deterministic)
            if isinstance(r, BaseException):
                raise r
        return list(results)

    async def fan_out(
        self, name: str, requests: dict[int, Any], timeout: float | None, shard_map: ShardMap
    ) -> list[Any]:
        """`name` on each shard of `requests` (shard -> its request), in parallel."""
        return await self._gather(
            [
                self._call(getattr(self.shards.stub(s, shard_map), name), s, r, timeout, shard_map)
                for s, r in requests.items()
            ]
        )

    async def everywhere(self, name: str, request: Any, timeout: float | None = None) -> list[Any]:
        shard_map = self.shards.map
        ids = sorted(s.id for s in shard_map.routed())
        return await self.fan_out(name, dict.fromkeys(ids, request), timeout, shard_map)

    async def _match_bytes(
        self, requests: dict[int, matcher_pb2.MatchFacesRequest], timeout: float | None,
        shard_map: ShardMap,
    ) -> list[matcher_pb2.MatchFacesResponse]:  # fmt: skip
        """MatchFaces on several shards, each distinct request encoded once (a fan-out sends
        the same message to every shard) and sent as bytes."""
        encoded: dict[int, bytes] = {}
        calls = []
        for s, r in requests.items():
            data = encoded.get(id(r))
            if data is None:
                data = encoded[id(r)] = r.SerializeToString()
            calls.append(self._call(self.shards.raw_match(s, shard_map), s, data, timeout,
                                    shard_map))  # fmt: skip
        return [_parse_reply(b) for b in await self._gather(calls)]

    async def match_faces(
        self,
        request: matcher_pb2.MatchFacesRequest,
        data: bytes | None = None,
        timeout: float | None = None,
    ) -> bytes | matcher_pb2.MatchFacesResponse:
        """A match; `data`: the request's bytes as they arrived, if at hand. A match on one
        shard returns the shard's reply as bytes (not decoded: the proxy passes it on)."""
        shard_map = self.shards.map  # one map for the whole request
        ids = routing.targets(shard_map, request)
        if len(ids) == 1:
            # One shard: the request as it came (that shard reads the stream's position
            # itself, overlapped with its search, as a lone matcher), its reply as it goes.
            method = self.shards.raw_match(ids[0], shard_map)
            body = request.SerializeToString() if data is None else data
            return await self._call(method, ids[0], body, timeout, shard_map)  # type: ignore[no-any-return]
        requests = routing.requests_for(request, ids)
        replies = await self._match_bytes(requests, timeout, shard_map)
        target = replies[0].stream_position  # what the first shard read and answered at
        # A change still on its way to another shard: it waits for it, then matches again.
        again: dict[int, matcher_pb2.MatchFacesRequest] = {}
        for i, s in enumerate(ids[1:], 1):
            if target and replies[i].applied_seq < target:
                again[s] = matcher_pb2.MatchFacesRequest()
                again[s].CopyFrom(requests[s])
                again[s].min_applied_seq = target
        if again:
            fresh = await self._match_bytes(again, timeout, shard_map)
            for s, reply in zip(again, fresh, strict=True):
                replies[ids.index(s)] = reply
        return routing.merge(request, replies)

    async def match_raw(
        self, request: matcher_pb2.MatchRawRequest, timeout: float | None = None
    ) -> matcher_pb2.MatchRawResponse:
        """Holds no state: any shard computes it (turn by turn)."""
        shard_map = self.shards.map
        ids = sorted(s.id for s in shard_map.routed())
        self._raw_turn += 1
        shard = ids[self._raw_turn % len(ids)]
        (reply,) = await self.fan_out("MatchRaw", {shard: request}, timeout, shard_map)
        return reply  # type: ignore[no-any-return]

    async def index_stats(self, timeout: float | None = None) -> matcher_pb2.GetIndexStatsResponse:
        replies = await self.everywhere(
            "GetIndexStats", matcher_pb2.GetIndexStatsRequest(), timeout
        )
        return routing.merge_stats(replies)

    # --- the MatcherService stub's face, for the gateway -----------------------------------
    async def MatchFaces(
        self, request: matcher_pb2.MatchFacesRequest, *, timeout: float | None = None,
        **_: Any,
    ) -> matcher_pb2.MatchFacesResponse:  # fmt: skip
        reply = await self.match_faces(request, None, timeout)
        return _parse_reply(reply) if isinstance(reply, bytes) else reply

    async def MatchRaw(
        self, request: matcher_pb2.MatchRawRequest, *, timeout: float | None = None, **_: Any
    ) -> matcher_pb2.MatchRawResponse:
        return await self.match_raw(request, timeout)

    async def GetIndexStats(
        self, request: matcher_pb2.GetIndexStatsRequest, *, timeout: float | None = None,
        **_: Any,
    ) -> matcher_pb2.GetIndexStatsResponse:  # fmt: skip
        return await self.index_stats(timeout)

    async def GetInfo(
        self, request: matcher_pb2.GetInfoRequest, *, timeout: float | None = None, **_: Any
    ) -> matcher_pb2.GetInfoResponse:
        """The first routed shard's (every shard runs the same build)."""
        shard_map = self.shards.map
        first = min(s.id for s in shard_map.routed())
        (reply,) = await self.fan_out("GetInfo", {first: request}, timeout, shard_map)
        return reply  # type: ignore[no-any-return]


class ShardsHealth:
    """grpc.health's Check over every routed shard: SERVING when each shard answers
    SERVING (a shard's channel reaches one of its replicas), else the first shard's
    failure, as a HealthStub would raise or answer it."""

    def __init__(self, shards: Shards) -> None:
        self.shards = shards

    async def Check(
        self, request: health_pb2.HealthCheckRequest, **kwargs: Any
    ) -> health_pb2.HealthCheckResponse:
        shard_map = self.shards.map
        ids = sorted(s.id for s in shard_map.routed())
        replies = await asyncio.gather(
            *(
                health_pb2_grpc.HealthStub(self.shards.channel(s, shard_map)).Check(
                    request, **kwargs
                )
                for s in ids
            )
        )
        for reply in replies:
            if reply.status != health_pb2.HealthCheckResponse.SERVING:
                return reply  # type: ignore[no-any-return]
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)
