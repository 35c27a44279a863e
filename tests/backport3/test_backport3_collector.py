"""LUNA 3's descriptor garbage collection on a real PostgreSQL, with the faces service faked:
only expired descriptors attached to neither a person nor a list are deleted."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from luna.faces.v1 import faces_pb2

from services.backport3.collector import Collector
from services.backport3.store import Store
from services.common import errors


class FakeFaces:
    """GetFace/DeleteFace of the faces service over a dict face_id -> list ids."""

    def __init__(self, faces: dict[str, list[str]]) -> None:
        self.faces = faces
        self.deleted: list[str] = []

    async def GetFace(self, request: Any) -> Any:
        if request.face_id not in self.faces:
            raise errors.LunaError(22002, "not found")
        face = faces_pb2.Face(face_id=request.face_id, list_ids=self.faces[request.face_id])
        return faces_pb2.GetFaceResponse(face=face)

    async def DeleteFace(self, request: Any) -> Any:
        self.faces.pop(request.face_id)
        self.deleted.append(request.face_id)
        return faces_pb2.DeleteFaceResponse()


def new() -> str:
    return str(uuid.uuid4())


async def test_only_unattached_expired_descriptors_go(store: Store) -> None:
    acc = new()
    loose, listed, held, fresh, gone = new(), new(), new(), new(), new()
    faces = FakeFaces({loose: [], listed: [new()], held: [], fresh: []})
    person = await store.create_person(acc, "", "")
    await store.track_descriptors(acc, [loose, listed, held, gone], 0.05)
    await store.track_descriptors(acc, [fresh], 3600)
    await store.link_descriptor(acc, person["person_id"], held, True)  # attached: untracked
    await asyncio.sleep(0.1)
    collector = Collector(store, faces, interval_s=0)
    assert await collector.run_once() == 1
    assert faces.deleted == [loose]
    assert set(faces.faces) == {listed, held, fresh}
    # Nothing expired is left tracked; a second round deletes nothing.
    assert await store.expired_descriptors(100) == []
    assert await collector.run_once() == 0
    # Detaching re-arms the TTL; a person's descriptor is never tracked while attached.
    await store.track_descriptors(acc, [held], 0.05)
    assert await store.expired_descriptors(100) == []
    await store.link_descriptor(acc, person["person_id"], held, False)
    await store.track_descriptors(acc, [held], 0.05)
    await asyncio.sleep(0.1)
    assert await collector.run_once() == 1 and faces.deleted == [loose, held]


async def test_ttl_zero_tracks_nothing(store: Store) -> None:
    await store.track_descriptors(new(), [new()], 0)
    assert await store.expired_descriptors(10) == []
