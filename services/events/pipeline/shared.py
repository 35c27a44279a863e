"""What generate and verify share: the stubs they call, the undo log of their writes, what
becomes one event, and the two calls both make first (Detect, the descriptor length check).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from luna.common.v1 import account_pb2
from luna.estimator.v1 import estimator_pb2 as epb
from luna.events.v1 import pipeline_pb2 as ppb
from luna.faces.v1 import attributes_pb2, blobs_pb2, faces_pb2

from services.common import descriptors, errors
from services.events.pipeline.filters import Facts

log = logging.getLogger("luna.events.pipeline")

MULTIFACE = {
    0: epb.MULTIFACE_POLICY_SINGLE,
    1: epb.MULTIFACE_POLICY_ALL,
    2: epb.MULTIFACE_POLICY_BEST,
}


@dataclass
class Clients:
    """gRPC stubs (services.common.grpc_client.stub) or fakes with the same coroutines."""

    estimator: Any
    matcher: Any
    faces: Any
    lists: Any
    attributes: Any
    blobs: Any


@dataclass
class Detected:
    input_index: int
    face: epb.Face
    est: dict[str, Any]


@dataclass
class Unit:
    """What becomes one event."""

    event_id: str
    inputs: list[int]
    faces: list[Detected]
    meta: dict[str, Any]
    descriptor: bytes | None = None
    version: int = 0
    basic: dict[str, Any] | None = None
    aggregate: dict[str, Any] | None = None
    matches: list[dict[str, Any]] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    facts: Facts = field(default_factory=Facts)


@dataclass(frozen=True)
class Call:
    """One validated GenerateEvents request: what storage and rendering read besides units."""

    req: ppb.GenerateEventsRequest
    policies: dict[str, Any]
    handler_id: str
    shown: set[str]  # estimations the events show
    create_time: datetime  # of the request's events
    end_time: datetime
    now: datetime  # when the request was served

    @property
    def storage(self) -> dict[str, Any]:
        return self.policies["storage_policy"]


@dataclass(frozen=True)
class Stored:
    """Blobs the storage policies wrote for a request: face sample ids by id() of the
    Detected, source image references by input index."""

    samples: dict[int, str]
    origins: dict[int, str]


class Undo:
    """Writes done so far, deleted in reverse order when a later step fails."""

    def __init__(self) -> None:
        self._steps: list[tuple[str, Callable[[], Awaitable[Any]]]] = []

    def add(self, what: str, step: Callable[[], Awaitable[Any]]) -> None:
        self._steps.append((what, step))

    async def run(self) -> None:
        for what, step in reversed(self._steps):
            try:
                await step()
            except Exception:  # keep undoing the rest; the original error is what matters
                log.exception("undo of %s failed", what)
        self._steps.clear()


@dataclass
class Writes:
    """What every storage step travels with: the stubs it writes through, the account it
    writes for, and the undo log each write registers its deletion in."""

    clients: Clients
    scope: account_pb2.AccountScope
    undo: Undo

    def created_blob(self, what: str, kind: int, blob_id: str) -> None:
        blobs, scope = self.clients.blobs, self.scope
        self.undo.add(
            what,
            lambda: blobs.DeleteBlob(
                blobs_pb2.DeleteBlobRequest(scope=scope, kind=kind, blob_id=blob_id)
            ),
        )

    def created_attribute(self, attribute_id: str) -> None:
        attributes, scope = self.clients.attributes, self.scope
        self.undo.add(
            "attribute",
            lambda: attributes.DeleteAttribute(
                attributes_pb2.DeleteAttributeRequest(scope=scope, attribute_id=attribute_id)
            ),
        )

    def created_face(self, face_id: str) -> None:
        faces, scope = self.clients.faces, self.scope
        self.undo.add(
            "face",
            lambda: faces.DeleteFace(faces_pb2.DeleteFaceRequest(scope=scope, face_id=face_id)),
        )


async def detect(
    estimator: Any, images: list[tuple[int, epb.Image]], **request: Any
) -> dict[int, epb.ImageDetections]:
    """Detect on (input index, image) pairs -> input index -> detections; one image the
    estimator refuses refuses the whole request (nothing has been stored yet)."""
    reply = await estimator.Detect(epb.DetectRequest(images=[img for _, img in images], **request))
    out = {}
    for (index, _), result in zip(images, reply.results, strict=True):
        if result.WhichOneof("outcome") == "error":
            raise errors.LunaError(result.error.error_code, result.error.detail)
        out[index] = result.detections
    return out


def check_descriptor(raw: bytes) -> None:
    """A descriptor sent with a request: 12034 when its length cannot be one."""
    try:
        descriptors.check_length(raw)
    except descriptors.InvalidDescriptor as exc:
        raise errors.LunaError(errors.BAD_DESCRIPTOR_LENGTH, str(exc)) from None
