"""storage_policy: one function per policy, in the order LUNA applies them.

face samples (one PutBlobs for the request) -> source images (once per input image a stored
event refers to) -> per event: attribute -> face (with its lists) -> event and notification
(what SaveEvents gets). Every write registers its deletion in the undo log (`Writes`), so a
later failure leaves nothing behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from luna.estimator.v1 import estimator_pb2 as epb
from luna.faces.v1 import attributes_pb2, blobs_pb2, faces_pb2

from services.common.scoping import Scope
from services.events.events import FACE, DescriptorIn, EventIn, Events
from services.events.pipeline import render
from services.events.pipeline.callbacks import ws_notification_wanted
from services.events.pipeline.filters import Facts, holds
from services.events.pipeline.shared import Call, Stored, Unit, Writes


@dataclass
class Outcome:
    """What storage made of one unit."""

    answer: dict[str, Any]  # the event as the GenerateEvents answer (and callbacks) show it
    facts: Facts
    save: EventIn | None  # None: neither stored nor notified


def enabled(policy: dict[str, Any], switch: str, facts: Facts) -> bool:
    """A storage policy's switch is on and its filters hold for the event."""
    return bool(policy.get(switch)) and holds(policy.get("filters"), facts)


# -- the request's blobs -------------------------------------------------------------------------


async def put_samples(writes: Writes, faces: list[epb.Face]) -> list[str]:
    """Face samples in one PutBlobs; their ids in order (verification stores samples too)."""
    reply = await writes.clients.blobs.PutBlobs(
        blobs_pb2.PutBlobsRequest(
            scope=writes.scope,
            blobs=[
                blobs_pb2.BlobInput(
                    kind=blobs_pb2.BLOB_KIND_FACE_SAMPLE,
                    content_type=face.sample_content_type or "image/png",
                    data=face.sample,
                )
                for face in faces
            ],
        )
    )
    for blob_id in reply.blob_ids:
        writes.created_blob("sample", blobs_pb2.BLOB_KIND_FACE_SAMPLE, blob_id)
    return list(reply.blob_ids)


async def store_samples(writes: Writes, call: Call, units: list[Unit]) -> dict[int, str]:
    """face_sample_policy: sample id by id() of each stored Detected."""
    policy = call.storage["face_sample_policy"]
    chosen = [d for u in units if enabled(policy, "store_sample", u.facts) for d in u.faces]
    if not chosen:
        return {}
    blob_ids = await put_samples(writes, [d.face for d in chosen])
    return {id(d): blob_id for d, blob_id in zip(chosen, blob_ids, strict=True)}


async def put_image(writes: Writes, image: epb.Image) -> str:
    """A source image stored as a blob; its LUNA reference."""
    data, ctype = render.raw_image(image)
    reply = await writes.clients.blobs.PutBlobs(
        blobs_pb2.PutBlobsRequest(
            scope=writes.scope,
            blobs=[
                blobs_pb2.BlobInput(kind=blobs_pb2.BLOB_KIND_IMAGE, content_type=ctype, data=data)
            ],
        )
    )
    image_id = reply.blob_ids[0]
    writes.created_blob("image", blobs_pb2.BLOB_KIND_IMAGE, image_id)
    return f"/6/images/{image_id}"


async def store_origins(writes: Writes, call: Call, units: list[Unit]) -> dict[int, str]:
    """image_origin_policy: input index -> the image reference its events show."""
    policy = call.storage["image_origin_policy"]
    origins: dict[int, str] = {}
    for unit in units:
        if not enabled(policy, "store_image", unit.facts):
            continue
        for i in unit.inputs:
            if i in origins or not call.req.inputs[i].HasField("image"):
                continue
            external = unit.meta.get("_image_origin") if i == unit.inputs[0] else None
            if policy.get("use_external_references") and external:
                origins[i] = external
            else:
                origins[i] = await put_image(writes, call.req.inputs[i].image)
    return origins


# -- per event -----------------------------------------------------------------------------------


def attribute_data(unit: Unit, samples: list[str]) -> attributes_pb2.AttributeData | None:
    """What a temporary attribute or a face keeps of a unit (None: nothing to keep)."""
    if unit.descriptor is None and not unit.basic:
        return None
    data = attributes_pb2.AttributeData()
    if unit.descriptor is not None:
        data.descriptors.append(
            attributes_pb2.Descriptor(descriptor=unit.descriptor, version=unit.version)
        )
        data.descriptor_samples.extend(samples)
    if unit.basic:
        data.basic_attributes.CopyFrom(
            attributes_pb2.BasicAttributes(
                age=int(unit.basic.get("age", 0)), gender=int(unit.basic.get("gender", 0))
            )
        )
        data.basic_attributes_samples.extend(samples)
    return data


async def store_attribute(
    writes: Writes, policy: dict[str, Any], unit: Unit, data: attributes_pb2.AttributeData | None
) -> dict[str, Any] | None:
    """attribute_policy: the event's `face_attributes` reference, None when not stored."""
    if data is None or not enabled(policy, "store_attribute", unit.facts):
        return None
    reply = await writes.clients.attributes.CreateAttribute(
        attributes_pb2.CreateAttributeRequest(
            scope=writes.scope, data=data, ttl_seconds=policy.get("ttl") or 0
        )
    )
    aid = reply.attribute.attribute_id
    writes.created_attribute(aid)
    return {"attribute_id": aid, "url": f"/6/attributes/{aid}"}


@dataclass(frozen=True)
class FaceInput:
    """What a face is created from: the unit's attribute data and samples, and whether the
    event it names is stored (then saved after the face, so the face waits for it)."""

    data: attributes_pb2.AttributeData | None
    samples: list[str]
    event_stored: bool


async def store_face(
    writes: Writes, policy: dict[str, Any], unit: Unit, given: FaceInput
) -> dict[str, Any] | None:
    """face_policy (with link_to_lists_policy): the event's `face`, None when not stored."""
    if not enabled(policy, "store_face", unit.facts):
        return None
    lists = [
        e["list_id"]
        for e in policy.get("link_to_lists_policy", [])
        if holds(e.get("filters"), unit.facts)
    ]
    avatar = (
        f"/6/samples/faces/{given.samples[0]}"
        if given.samples and policy.get("set_sample_as_avatar")
        else ""
    )
    request = faces_pb2.CreateFaceRequest(
        scope=writes.scope,
        event_id=unit.event_id if given.event_stored else "",
        event_pending=given.event_stored,  # saved after the face
        user_data=unit.meta.get("user_data", ""),
        external_id=unit.meta.get("external_id", ""),
        avatar=avatar,
        list_ids=lists,
    )
    if given.data is not None:
        request.attribute.data.CopyFrom(given.data)
    face = (await writes.clients.faces.CreateFace(request)).face
    writes.created_face(face.face_id)
    return {
        "face_id": face.face_id,
        "url": f"/6/faces/{face.face_id}",
        "lists": list(face.list_ids),
    }


def notification_wanted(storage: dict[str, Any], facts: Facts) -> bool:
    """notification_policy or a `luna-ws-notification` callback: whether the Sender gets the
    event. LUNA notifies of events it does not store too, and may stay silent about stored
    ones."""
    policy = storage.get("notification_policy") or {}
    return (
        bool(policy.get("send_notification", 1)) and holds(policy.get("filters"), facts)
    ) or ws_notification_wanted(storage.get("callbacks") or [], facts)


async def store_unit(writes: Writes, call: Call, unit: Unit, stored: Stored) -> Outcome:
    """Attribute, face, then what SaveEvents gets, for one event."""
    sp = call.storage
    samples = [stored.samples[id(d)] for d in unit.faces if id(d) in stored.samples]
    event = render.event_json(unit, call, stored)
    data = attribute_data(unit, samples)
    attribute = await store_attribute(writes, sp["attribute_policy"], unit, data)
    if attribute is not None:
        event.setdefault("face_attributes", {}).update(attribute)
    store_event = enabled(sp["event_policy"], "store_event", unit.facts)
    face = await store_face(writes, sp["face_policy"], unit, FaceInput(data, samples, store_event))
    if face is not None:
        event["face"] = face
    notify = notification_wanted(sp, unit.facts)
    save = None
    if store_event or notify:
        descs = (DescriptorIn(FACE, unit.descriptor, unit.version),) if unit.descriptor else ()
        save = EventIn(event, unit.event_id, descs, store=store_event, notify=notify)
    answer = {
        "event_id": unit.event_id,
        "url": f"/6/events/{unit.event_id}",
        "handler_id": call.handler_id,
        "account_id": writes.scope.account_id,
        **event,
    }
    return Outcome(answer, unit.facts, save)


async def store_units(writes: Writes, call: Call, units: list[Unit]) -> list[Outcome]:
    """Every storage policy but the events', in LUNA's order."""
    samples = await store_samples(writes, call, units)
    stored = Stored(samples, await store_origins(writes, call, units))
    return [await store_unit(writes, call, unit, stored) for unit in units]


async def save_events(events: Events, call: Call, outcomes: list[Outcome]) -> None:
    """event_policy: the last write. SaveEvents also publishes each event on EVENTS (the
    Sender's feed)."""
    to_save = [o.save for o in outcomes if o.save is not None]
    if to_save:
        await events.save(
            Scope(call.req.scope.account_id),
            call.handler_id,
            to_save,
            wait_saving=bool(call.storage["event_policy"].get("wait_saving")),
            request_id=call.req.request_id,
        )
