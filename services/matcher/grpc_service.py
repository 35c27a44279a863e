"""MatcherService over gRPC: a thin adapter over `Matching` and `Sync`."""

from __future__ import annotations

import asyncio
import time

import grpc
from luna.common.v1 import info_pb2
from luna.matcher.v1 import matcher_pb2, matcher_pb2_grpc

from services.common.version import VERSION
from services.matcher.core.descriptors import check_version
from services.matcher.matching import Matching, VersionedMatching
from services.matcher.sync import Sync


class MatcherServicer(matcher_pb2_grpc.MatcherServiceServicer):
    def __init__(
        self,
        matching: Matching | VersionedMatching,
        sync: Sync,
        syncs: dict[int, Sync] | None = None,
    ) -> None:
        """`sync` is the default version's (index stats); `syncs` every version's."""
        self._matching = matching
        self._sync = sync
        self._syncs = syncs or {sync.version: sync}

    async def GetInfo(
        self, request: matcher_pb2.GetInfoRequest, context: grpc.aio.ServicerContext
    ) -> matcher_pb2.GetInfoResponse:
        return matcher_pb2.GetInfoResponse(
            info=info_pb2.ServiceInfo(name="matcher", version=VERSION)
        )

    async def MatchFaces(
        self, request: matcher_pb2.MatchFacesRequest, context: grpc.aio.ServicerContext
    ) -> matcher_pb2.MatchFacesResponse:
        return await self._matching.match_faces(request)

    async def MatchRaw(
        self, request: matcher_pb2.MatchRawRequest, context: grpc.aio.ServicerContext
    ) -> matcher_pb2.MatchRawResponse:
        # Small (references x candidates) products: a thread hop would cost more than it saves.
        return self._matching.match_raw(request)

    async def GetIndexStats(
        self, request: matcher_pb2.GetIndexStatsRequest, context: grpc.aio.ServicerContext
    ) -> matcher_pb2.GetIndexStatsResponse:
        sync = self._syncs.get(request.descriptor_version or self._sync.version)
        if sync is None:
            check_version(request.descriptor_version, self._sync.version)  # 31001
        assert sync is not None
        ix = sync.ix
        rows = await asyncio.to_thread(ix.stats)
        part = sync.partition  # a shard's (services/matcher/shard), else None
        return matcher_pb2.GetIndexStatsResponse(
            shard_map_version=part.map.version if part is not None else 0,
            shard_partition=part.signature if part is not None else "",
            faces=len(ix),
            descriptor_version=ix.version or 0,
            applied_seq=sync.applied_seq,
            snapshot_seq=sync.snapshot_seq,
            collections=[
                matcher_pb2.CollectionStats(
                    kind=str(r["kind"]),
                    account_id=str(r["account_id"]),
                    list_id=str(r["list_id"] or ""),
                    live=int(r["live"]),  # type: ignore[call-overload]
                    mode=str(r["mode"]),
                    delta=int(r["delta"]),  # type: ignore[call-overload]
                    deleted=int(r["deleted"]),  # type: ignore[call-overload]
                )
                for r in rows
            ],
        )

    async def RebuildIndex(
        self, request: matcher_pb2.RebuildIndexRequest, context: grpc.aio.ServicerContext
    ) -> matcher_pb2.RebuildIndexResponse:
        began = time.perf_counter()
        faces = 0
        for sync in self._syncs.values():
            faces += await sync.rebuild()
        return matcher_pb2.RebuildIndexResponse(faces=faces, seconds=time.perf_counter() - began)

    async def SaveSnapshot(
        self, request: matcher_pb2.SaveSnapshotRequest, context: grpc.aio.ServicerContext
    ) -> matcher_pb2.SaveSnapshotResponse:
        began = time.perf_counter()
        for sync in self._syncs.values():
            if sync is not self._sync:
                await sync.snapshot(force=True)
        path, seq = await self._sync.snapshot(force=True)
        return matcher_pb2.SaveSnapshotResponse(
            path=str(path or ""), stream_seq=seq, seconds=time.perf_counter() - began
        )
