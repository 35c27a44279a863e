"""Wiring of the matcher service: NATS, the faces and events stubs, the initial load, the servicer.

`startup` finishes the initial load and stream replay before the server binds, so gRPC
health only reports SERVING (and `luna up` only proceeds) once matches see every face.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import grpc
from luna.events.v1 import events_pb2_grpc
from luna.faces.v1 import attributes_pb2_grpc, faces_pb2_grpc
from luna.matcher.v1 import matcher_pb2, matcher_pb2_grpc
from nats.aio.client import Client as NATS

from services.common import config, grpc_client, nats_streams
from services.common.grpc_server import ServiceApp, service_names
from services.common.stopping import cancel_and_wait
from services.matcher import metrics as matcher_metrics
from services.matcher import settings
from services.matcher.attribute_cache import AttributeCache
from services.matcher.face_records import FaceRecords
from services.matcher.grpc_service import MatcherServicer
from services.matcher.matching import Matching, VersionedMatching
from services.matcher.shard.member import ShardMember
from services.matcher.sync import Sync

# Request timeout of the follower's consumer creation after a reconnect (see Sync.resume_js).
RESUME_TIMEOUT_S = 1.0

log = logging.getLogger("luna.matcher")


@dataclass
class MatcherState:
    nc: NATS | None = None
    channel: grpc.aio.Channel | None = None
    events_channel: grpc.aio.Channel | None = None
    sync: Sync | None = None  # the default version's
    syncs: dict[int, Sync] = field(default_factory=dict)
    matching: VersionedMatching | None = None
    member: ShardMember | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(
        self, nats_url: str, faces_address: str | None = None, events_address: str | None = None
    ) -> None:
        self.nc = await nats_streams.connect(nats_url, name="matcher")
        js = self.nc.jetstream()
        await self._ensure_streams(js)
        self.channel = grpc_client.channel("faces", faces_address)
        faces = grpc_client.stub(faces_pb2_grpc.FacesServiceStub, self.channel)
        attributes = grpc_client.stub(attributes_pb2_grpc.AttributesServiceStub, self.channel)
        # Only event references and candidates use it; it connects lazily, so the matcher
        # starts (and serves face matching) while the events service is still starting.
        self.events_channel = grpc_client.channel("events", events_address)
        events = grpc_client.stub(events_pb2_grpc.EventsServiceStub, self.events_channel)
        default = settings.DESCRIPTOR_VERSION.get_int()
        root = settings.snapshot_dir()
        records_capacity = settings.RECORD_CACHE.get_int()
        records = FaceRecords(records_capacity)
        by_version: dict[int, Matching] = {}
        self.member = ShardMember.from_settings()  # None unless LUNA_MATCHER_SHARD is set
        # One Sync (index, stream follower, snapshots) per descriptor version.
        for version in settings.descriptor_versions():
            sync = Sync(
                js,
                faces,
                snapshot_root=settings.version_snapshot_dir(root, version, default),
                version=version,
                config=settings.core_config(),
                records=records if version == default else FaceRecords(records_capacity),
                attributes=AttributeCache(settings.ATTRIBUTE_CACHE.get_int()),
                resume_js=self.nc.jetstream(timeout=RESUME_TIMEOUT_S),
            )
            self.syncs[version] = sync
            if self.member is not None:
                self.member.attach(sync)  # this shard's partition and snapshot directory
            await sync.start(retry_for=settings.START_TIMEOUT.get_float())
            nats_streams.on_reconnect(self.nc, sync.resume_follow)
            by_version[version] = Matching(
                sync,
                faces,
                attributes,
                events,
                consistency_wait=settings.CONSISTENCY_WAIT.get_float(),
                filter_max_faces=settings.FILTER_MAX_FACES.get_int(),
            )
            self.tasks.append(
                asyncio.create_task(
                    sync.run_snapshots(
                        settings.SNAPSHOT_INTERVAL.get_float(), settings.SNAPSHOT_CHANGES.get_int()
                    )
                )
            )
        if self.member is not None:
            self.tasks.append(asyncio.create_task(self.member.watch()))
        self.sync = self.syncs[default]
        self.matching = VersionedMatching(by_version, default)

    async def _ensure_streams(self, js: Any) -> None:
        """A JetStream cluster busy electing leaders (many processes starting at once, as in
        `luna up --cluster`) may time out a request: keep trying within the start timeout."""
        deadline = time.monotonic() + settings.START_TIMEOUT.get_float()
        while True:
            try:
                await nats_streams.ensure_streams(js)
                return
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise
                log.info("JetStream did not answer the stream set-up yet; retrying")
                await asyncio.sleep(0.5)

    async def stop(self, snapshot: bool = True) -> None:
        for task in self.tasks:
            await cancel_and_wait(task)
        for sync in self.syncs.values():
            await sync._stop_follow()
            if snapshot:
                try:
                    await sync.snapshot()
                except Exception:
                    log.exception("snapshot of version %d at shutdown failed", sync.version)
            await sync.close()
        for channel in (self.channel, self.events_channel):
            if channel is not None:
                await channel.close()
        if self.nc is not None:
            await self.nc.close()

    def servicer(self) -> MatcherServicer:
        assert self.matching is not None and self.sync is not None
        return MatcherServicer(self.matching, self.sync, self.syncs)


def make_app() -> ServiceApp:
    state = MatcherState()

    async def startup() -> None:
        await state.start(config.nats_url())
        matcher_metrics.register(lambda: state.sync)

    def register(server: grpc.aio.Server) -> None:
        matcher_pb2_grpc.add_MatcherServiceServicer_to_server(state.servicer(), server)

    return ServiceApp(
        name="matcher",
        service_names=service_names(matcher_pb2),
        register=register,
        startup=startup,
        shutdown=state.stop,
    )
