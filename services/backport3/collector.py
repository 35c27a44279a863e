"""LUNA 3's descriptor garbage collection: descriptors made or detached through /4 that are
attached to neither a person nor a list are deleted (as LUNA 5 faces, through the faces
service) once their TTL has run out."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from luna.common.v1 import account_pb2
from luna.faces.v1 import faces_pb2

from services.backport3.store import Store
from services.common import errors
from services.common.stopping import cancel_and_wait

log = logging.getLogger("luna.backport3.collector")
BATCH = 500


class Collector:
    def __init__(self, store: Store, faces: Any, interval_s: float) -> None:
        self.store, self.faces, self.interval_s = store, faces, interval_s
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> int:
        """Delete what has expired; returns how many faces were deleted."""
        deleted = 0
        for row in await self.store.expired_descriptors(BATCH):
            face_id = row["descriptor_id"]
            scope = account_pb2.AccountScope(account_id=row["account_id"])
            try:
                reply = await self.faces.GetFace(
                    faces_pb2.GetFaceRequest(scope=scope, face_id=face_id, with_lists=True)
                )
            except errors.LunaError as err:
                if err.code != errors.FACE_NOT_FOUND:
                    raise
                await self.store.untrack_descriptor(face_id)  # deleted some other way
                continue
            if reply.face.list_ids:
                # Kept by its lists; detaching it through /4 starts its TTL again.
                await self.store.untrack_descriptor(face_id)
                continue
            if not await self.store.claim_expired(face_id):
                continue  # attached to a person (or re-armed) meanwhile
            with contextlib.suppress(errors.LunaError):
                await self.faces.DeleteFace(
                    faces_pb2.DeleteFaceRequest(scope=scope, face_id=face_id)
                )
                deleted += 1
        return deleted

    def start(self) -> None:
        if self.interval_s > 0:
            self._task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                n = await self.run_once()
                if n:
                    log.info("collected %d expired descriptors", n)
            except Exception:  # the next round retries; one failure must not stop collection
                log.exception("descriptor collection failed")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
