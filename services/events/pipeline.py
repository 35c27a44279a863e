"""Generate events: a handler's policies applied to images, samples or descriptors.

Order (ARCHITECTURE.md §3): load the handler -> validate everything that can refuse the
request (policies, event fields, lists to link, images via Detect) -> extract -> match ->
conditional tags -> storage (samples, source images, temporary attributes, faces with their
lists) -> SaveEvents (stores and publishes on EVENTS, which feeds the Sender).

Failure safety: nothing is written until every input has been decoded, detected and matched,
so a bad image, an unknown handler or invalid policies store nothing. The writes that follow
are recorded in an undo log; if a later write (another face, SaveEvents) fails, the earlier
ones (faces, attributes, blobs) are deleted before the error is raised. With
`wait_saving=0` SaveEvents answers before its commit, and a failed commit is only logged
(LUNA's documented behaviour), so that one case cannot be undone.

The estimator, matcher and faces services are reached through gRPC stubs only; the handlers
and events cores are this service's own and are called in-process.
"""

from __future__ import annotations

import logging
import math
import struct
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from google.protobuf import json_format
from luna.common.v1 import account_pb2
from luna.estimator.v1 import estimator_pb2 as epb
from luna.events.v1 import pipeline_pb2 as ppb
from luna.faces.v1 import attributes_pb2, blobs_pb2, faces_pb2, lists_pb2

from services.common import errors, ids, times
from services.common.scoping import Scope
from services.events import pipeline_render as render
from services.events.callbacks import CallbackSender, ws_notification_wanted
from services.events.event_schema import INPUT_EVENT_SCHEMA
from services.events.events import FACE, DescriptorIn, EventIn, Events
from services.events.handlers import DYNAMIC, LAMBDA, Handlers
from services.events.pipeline_filters import (
    ETHNICITY_NAMES,
    LIVENESS_NAMES,
    Facts,
    detect_needs,
    detect_reasons,
    holds,
)
from services.events.pipeline_match import Reference, match_events, match_faces
from services.events.policies import validate_handler_policies

log = logging.getLogger("luna.events.pipeline")

NOT_IMPLEMENTED = 12029
MULTIPLE_FACES = 11038
BAD_DESCRIPTOR_LENGTH = 12034
BAD_DESCRIPTOR_VERSION = 34001
MAX_INPUTS = 100
MULTIFACE = {
    0: epb.MULTIFACE_POLICY_SINGLE,
    1: epb.MULTIFACE_POLICY_ALL,
    2: epb.MULTIFACE_POLICY_BEST,
}
# detect_policy switch -> estimator estimation name.
DETECT_FLAGS = {
    "estimate_head_pose": "head_pose",
    "estimate_emotions": "emotions",
    "estimate_mask": "mask",
    "estimate_quality": "quality",
    "detect_landmarks68": "landmarks68",
    "estimate_gaze": "gaze",
    "estimate_eyes_attributes": "eyes_attributes",
    "estimate_mouth_attributes": "mouth_attributes",
    "estimate_glasses": "glasses",
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


def _meta_json(meta: ppb.EventMeta) -> dict[str, Any]:
    """Set EventMeta fields as LUNA event fields."""
    out: dict[str, Any] = {}
    for name in ("source", "external_id", "user_data", "track_id", "stream_id"):
        if meta.HasField(name):
            out[name] = getattr(meta, name)
    if meta.tags:
        out["tags"] = list(meta.tags)
    if meta.HasField("location"):
        loc = meta.location
        location: dict[str, Any] = {
            k: getattr(loc, k)
            for k in ("city", "area", "district", "street", "house_number")
            if getattr(loc, k)
        }
        if loc.HasField("longitude") and loc.HasField("latitude"):
            location["geo_position"] = {"longitude": loc.longitude, "latitude": loc.latitude}
        if location:
            out["location"] = location
    return out


def _unit_vector(values: list[float]) -> bytes:
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return struct.pack(f"<{len(values)}f", *(v / norm for v in values))


def _mean_descriptor(descs: list[bytes]) -> bytes:
    vecs = [struct.unpack(f"<{len(d) // 4}f", d) for d in descs]
    return _unit_vector([sum(col) / len(vecs) for col in zip(*vecs, strict=True)])


def _aggregate_estimation(values: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean of LUNA {predominant_x, estimations{...}} objects; predominant = the argmax."""
    keys = set().union(*(v.get("estimations", {}) for v in values))
    mean = {
        k: sum(v.get("estimations", {}).get(k, 0.0) for v in values) / len(values) for k in keys
    }
    out: dict[str, Any] = {"estimations": mean}
    for pkey in {k for v in values for k in v if k.startswith("predominant")}:
        out[pkey] = max(mean, key=lambda k: mean[k]) if mean else None
    if any("prediction" in v for v in values):
        out["prediction"] = Counter(v.get("prediction") for v in values).most_common(1)[0][0]
    return out


def _basic_mean(values: list[dict[str, Any]]) -> dict[str, Any]:
    age = sum(float(v.get("age", 0)) for v in values) / len(values)
    score = sum(float(v.get("gender_score", v.get("gender", 0))) for v in values) / len(values)
    return {"age": round(age), "gender": 1 if score >= 0.5 else 0, "gender_score": score}


class Pipeline:
    def __init__(
        self,
        clients: Clients,
        handlers: Handlers,
        events: Events,
        callbacks: CallbackSender | None = None,
    ) -> None:
        self._c = clients
        self._handlers = handlers
        self._events = events
        self._callbacks = callbacks or CallbackSender()

    # -- validation ------------------------------------------------------------------------
    async def _policies(self, req: ppb.GenerateEventsRequest) -> tuple[dict[str, Any], str]:
        handler = await self._handlers.get_own(req.scope.account_id, req.handler_id)
        if handler.handler_type == LAMBDA:
            raise errors.LunaError(NOT_IMPLEMENTED, "Lambda handlers are not implemented")
        if handler.handler_type == DYNAMIC:
            if not req.HasField("policies"):
                raise errors.LunaError(
                    errors.BAD_INPUT, "Dynamic handler requires policies with the request"
                )
            return validate_handler_policies(
                json_format.MessageToDict(req.policies)
            ), handler.handler_id
        if req.HasField("policies"):
            raise errors.LunaError(
                errors.BAD_INPUT, "Policies may be given only to a dynamic handler"
            )
        assert handler.policies is not None
        return handler.policies, handler.handler_id

    def _input_metas(self, req: ppb.GenerateEventsRequest) -> list[dict[str, Any]]:
        """Per input: the request's event fields overridden by the input's, schema-checked."""
        base = _meta_json(req.meta)
        out = []
        for i, item in enumerate(req.inputs):
            meta = {**base, **_meta_json(item.meta)}
            # The stored-event schema is the authority on these fields; checking now keeps a
            # bad track_id from failing SaveEvents after faces were created.
            INPUT_EVENT_SCHEMA.validate(meta, prefix="event" if len(req.inputs) == 1 else f"{i}")
            detect_time = (
                item.meta.detect_time
                if item.meta.HasField("detect_time")
                else (req.meta.detect_time if req.meta.HasField("detect_time") else None)
            )
            meta["_detect_time"] = times.from_timestamp(detect_time) if detect_time else None
            meta["_image_origin"] = (
                item.meta.image_origin
                if item.meta.HasField("image_origin")
                else (req.meta.image_origin if req.meta.HasField("image_origin") else None)
            )
            out.append(meta)
        return out

    async def _check_lists(self, scope: account_pb2.AccountScope, policies: dict[str, Any]) -> None:
        face_policy = policies["storage_policy"]["face_policy"]
        if not face_policy.get("store_face"):
            return
        for entry in face_policy.get("link_to_lists_policy", []):
            await self._c.lists.GetList(
                lists_pb2.GetListRequest(scope=scope, list_id=entry["list_id"])
            )

    # -- detect / extract -------------------------------------------------------------------
    def _estimations(self, policies: dict[str, Any]) -> tuple[set[str], set[str]]:
        """(estimations to run, estimations to show in the event)."""
        dp, xp = policies["detect_policy"], policies["extract_policy"]
        storage = policies["storage_policy"]
        shown = {name for flag, name in DETECT_FLAGS.items() if dp.get(flag)}
        if dp["estimate_liveness"].get("estimate_liveness"):
            shown.add("liveness")
        if dp["estimate_deepfake"].get("estimate_deepfake"):
            shown.add("deepfake")
        if xp.get("extract_basic_attributes"):
            shown.add("basic_attributes")
        run = shown | detect_needs(dp)
        # Matching and stored faces/attributes need the descriptor even when the handler
        # does not ask to show it (LUNA never shows descriptors in events).
        if (
            xp.get("extract_face_descriptor")
            or policies["match_policy"]
            or storage["face_policy"].get("store_face")
            or storage["attribute_policy"].get("store_attribute")
        ):
            run.add("face_descriptor")
        return run, shown

    async def _detect(
        self, req: ppb.GenerateEventsRequest, policies: dict[str, Any], run: set[str]
    ) -> dict[int, epb.ImageDetections]:
        images = [(i, item.image) for i, item in enumerate(req.inputs) if item.HasField("image")]
        if not images:
            return {}
        dp = policies["detect_policy"]
        if policies["extract_policy"].get("extract_body_descriptor") or dp.get("detect_body"):
            raise errors.LunaError(11044, "Body detection turned off on luna-api instance")
        reply = await self._c.estimator.Detect(
            epb.DetectRequest(
                images=[img for _, img in images],
                image_type=req.image_type,
                multiface_policy=MULTIFACE[dp["multiface_policy"]],
                detect_face=bool(dp.get("detect_face", 1)),
                estimations=sorted(run),
                ignore_exif=req.ignore_exif,
            )
        )
        out = {}
        for (index, _), result in zip(images, reply.results, strict=True):
            if result.WhichOneof("outcome") == "error":
                # One bad image refuses the whole request: nothing has been stored yet.
                raise errors.LunaError(result.error.error_code, result.error.detail)
            out[index] = result.detections
        return out

    async def _descriptor_version(self, req: ppb.GenerateEventsRequest) -> int:
        descs = [item.descriptor for item in req.inputs if item.HasField("descriptor")]
        if not descs:
            return 0
        version = (await self._c.estimator.GetFeatures(epb.GetFeaturesRequest())).descriptor_version
        for d in descs:
            if not d.descriptor or len(d.descriptor) % 4:
                raise errors.LunaError(
                    BAD_DESCRIPTOR_LENGTH, f"Descriptor has incorrect length {len(d.descriptor)}"
                )
            if d.version not in (0, version):
                raise errors.LunaError(
                    BAD_DESCRIPTOR_VERSION, f"Descriptor version {d.version} is not supported"
                )
        return version

    def _units(
        self,
        req: ppb.GenerateEventsRequest,
        policies: dict[str, Any],
        detections: dict[int, epb.ImageDetections],
        metas: list[dict[str, Any]],
        version: int,
    ) -> tuple[list[Unit], list[dict[str, Any]]]:
        dp = policies["detect_policy"]
        kept: list[Detected] = []
        filtered: list[dict[str, Any]] = []
        for index, dets in sorted(detections.items()):
            name = req.inputs[index].image.filename
            if req.aggregate_attributes and len(dets.faces) > 1:
                raise errors.LunaError(
                    MULTIPLE_FACES, f"Multiple faces found in image {name or index} detect"
                )
            for face in dets.faces:
                est = render.estimations(face)
                reasons = detect_reasons(dp, est)
                if reasons:
                    filtered.append(
                        {
                            "filename": name,
                            "object": {"detection": render.detection(face, est)},
                            "filter_reasons": reasons,
                        }
                    )
                else:
                    kept.append(Detected(index, face, est))
        descriptor_inputs = [i for i, item in enumerate(req.inputs) if item.HasField("descriptor")]
        units: list[Unit] = []
        if req.aggregate_attributes:
            if kept or descriptor_inputs:
                units.append(self._aggregate(req, kept, descriptor_inputs, metas, version))
        else:
            for det in kept:
                unit = Unit(ids.new_id(), [det.input_index], [det], metas[det.input_index])
                if det.face.HasField("descriptor"):
                    unit.descriptor = det.face.descriptor.data
                    unit.version = det.face.descriptor.version
                unit.basic = det.est.get("basic_attributes")
                units.append(unit)
            for i in descriptor_inputs:
                d = req.inputs[i].descriptor
                units.append(Unit(ids.new_id(), [i], [], metas[i], d.descriptor, version))
        for unit in units:
            unit.facts = _facts(unit)
        return units, filtered

    def _aggregate(
        self,
        req: ppb.GenerateEventsRequest,
        kept: list[Detected],
        descriptor_inputs: list[int],
        metas: list[dict[str, Any]],
        version: int,
    ) -> Unit:
        inputs = sorted({d.input_index for d in kept} | set(descriptor_inputs))
        # One event for the whole request: the first input's fields speak for it.
        unit = Unit(ids.new_id(), inputs, kept, metas[inputs[0]])
        descs = [d.face.descriptor.data for d in kept if d.face.HasField("descriptor")]
        descs += [req.inputs[i].descriptor.descriptor for i in descriptor_inputs]
        if descs:
            if len({len(d) for d in descs}) > 1:
                raise errors.LunaError(BAD_DESCRIPTOR_LENGTH, "Descriptors of different lengths")
            unit.descriptor = _mean_descriptor(descs)
            unit.version = next(
                (d.face.descriptor.version for d in kept if d.face.HasField("descriptor")),
                version,
            )
        basics = [d.est["basic_attributes"] for d in kept if "basic_attributes" in d.est]
        if basics:
            unit.basic = _basic_mean(basics)
        attrs: dict[str, Any] = {}
        for name in ("emotions", "mask", "liveness"):
            values = [d.est[name] for d in kept if name in d.est]
            if values:
                attrs[name] = _aggregate_estimation(values)
        if unit.basic:
            attrs["basic_attributes"] = unit.basic
        unit.aggregate = {"face": {"attributes": attrs}} if attrs else {}
        return unit

    # -- match and tags ---------------------------------------------------------------------
    async def _match(
        self, scope: account_pb2.AccountScope, policies: dict[str, Any], units: list[Unit]
    ) -> None:
        refs = [Reference(i, u.descriptor, u.version) for i, u in enumerate(units) if u.descriptor]
        for entry in policies["match_policy"]:
            if entry["candidates"]["origin"] == "faces":
                found = await match_faces(self._c.matcher, scope, entry, refs)
            else:
                found = await match_events(self._c.matcher, self._events, scope, entry, refs)
            for i, unit in enumerate(units):
                cands = found.get(i, []) if unit.descriptor else []
                unit.matches.append({"label": entry["label"], "candidates": cands})
                if cands:
                    unit.facts.top_similarity[entry["label"]] = cands[0]["similarity"]

    # -- the request ------------------------------------------------------------------------
    async def generate(self, req: ppb.GenerateEventsRequest) -> tuple[dict[str, Any], list[str]]:
        scope = account_pb2.AccountScope(account_id=req.scope.account_id)
        policies, handler_id = await self._policies(req)
        if not req.inputs:
            raise errors.LunaError(errors.NO_DATA, "Request does not contain data")
        if len(req.inputs) > MAX_INPUTS:
            raise errors.LunaError(errors.BAD_INPUT, f"At most {MAX_INPUTS} images per request")
        metas = self._input_metas(req)
        await self._check_lists(scope, policies)
        run, shown = self._estimations(policies)
        version = await self._descriptor_version(req)
        detections = await self._detect(req, policies, run)
        units, filtered = self._units(req, policies, detections, metas, version)
        await self._match(scope, policies, units)
        for unit in units:
            unit.tags = list(
                dict.fromkeys(
                    [*unit.meta.get("tags", [])]
                    + [
                        t["tag"]
                        for t in policies["conditional_tags_policy"]
                        if holds(t.get("filters"), unit.facts)
                    ]
                )
            )
        now = times.now()
        create_time = times.from_timestamp(req.event_time) if req.HasField("event_time") else now
        end_time = (
            times.from_timestamp(req.event_end_time)
            if req.HasField("event_end_time")
            else create_time
        )
        undo = Undo()
        try:
            events = await self._store(
                req, scope, policies, handler_id, units, shown, create_time, end_time, now, undo
            )
        except BaseException:
            await undo.run()
            raise
        images = []
        for item in req.inputs:
            if item.HasField("image"):
                images.append(
                    {"filename": item.image.filename, "status": 1, "error": render.SUCCESS}
                )
        result = {
            "images": images,
            "events": events,
            "filtered_detections": {"face_detections": filtered, "body_detections": []},
        }
        return result, [e["event_id"] for e in events]

    async def _store(
        self,
        req: ppb.GenerateEventsRequest,
        scope: account_pb2.AccountScope,
        policies: dict[str, Any],
        handler_id: str,
        units: list[Unit],
        shown: set[str],
        create_time: datetime,
        end_time: datetime,
        now: datetime,
        undo: Undo,
    ) -> list[dict[str, Any]]:
        sp = policies["storage_policy"]
        account = scope.account_id
        # face samples, one PutBlobs for the whole request
        sample_policy = sp["face_sample_policy"]
        to_store = [
            (u, d)
            for u in units
            if sample_policy.get("store_sample") and holds(sample_policy.get("filters"), u.facts)
            for d in u.faces
        ]
        sample_ids: dict[int, str] = {}
        if to_store:
            reply = await self._c.blobs.PutBlobs(
                blobs_pb2.PutBlobsRequest(
                    scope=scope,
                    blobs=[
                        blobs_pb2.BlobInput(
                            kind=blobs_pb2.BLOB_KIND_FACE_SAMPLE,
                            content_type=d.face.sample_content_type or "image/png",
                            data=d.face.sample,
                        )
                        for _, d in to_store
                    ],
                )
            )
            for (_, d), blob_id in zip(to_store, reply.blob_ids, strict=True):
                sample_ids[id(d)] = blob_id
                undo.add(
                    "sample",
                    _deleter(self._c.blobs, scope, blobs_pb2.BLOB_KIND_FACE_SAMPLE, blob_id),
                )
        # source images, once per input image some stored event refers to
        origin_policy = sp["image_origin_policy"]
        origins: dict[int, str] = {}
        for unit in units:
            if not origin_policy.get("store_image") or not holds(
                origin_policy.get("filters"), unit.facts
            ):
                continue
            for i in unit.inputs:
                if i in origins or not req.inputs[i].HasField("image"):
                    continue
                external = unit.meta.get("_image_origin") if i == unit.inputs[0] else None
                if origin_policy.get("use_external_references") and external:
                    origins[i] = external
                    continue
                data, ctype = render.raw_image(req.inputs[i].image)
                reply = await self._c.blobs.PutBlobs(
                    blobs_pb2.PutBlobsRequest(
                        scope=scope,
                        blobs=[
                            blobs_pb2.BlobInput(
                                kind=blobs_pb2.BLOB_KIND_IMAGE, content_type=ctype, data=data
                            )
                        ],
                    )
                )
                image_id = reply.blob_ids[0]
                undo.add(
                    "image", _deleter(self._c.blobs, scope, blobs_pb2.BLOB_KIND_IMAGE, image_id)
                )
                origins[i] = f"/6/images/{image_id}"
        out = []
        to_save: list[EventIn] = []
        event_policy = sp["event_policy"]
        notification_policy = sp.get("notification_policy") or {}
        callbacks = sp.get("callbacks") or []
        delivered: list[tuple[dict[str, Any], Facts]] = []
        for unit in units:
            samples = [sample_ids[id(d)] for d in unit.faces if id(d) in sample_ids]
            event = self._event_json(unit, shown, sample_ids, origins, create_time, end_time, now)
            data = _attribute_data(unit, samples)
            ap = sp["attribute_policy"]
            if (
                ap.get("store_attribute")
                and data is not None
                and holds(ap.get("filters"), unit.facts)
            ):
                reply = await self._c.attributes.CreateAttribute(
                    attributes_pb2.CreateAttributeRequest(
                        scope=scope, data=data, ttl_seconds=ap.get("ttl") or 0
                    )
                )
                aid = reply.attribute.attribute_id
                undo.add("attribute", _attr_deleter(self._c.attributes, scope, aid))
                event.setdefault("face_attributes", {}).update(
                    attribute_id=aid, url=f"/6/attributes/{aid}"
                )
            fp = sp["face_policy"]
            store_event = bool(event_policy.get("store_event")) and holds(
                event_policy.get("filters"), unit.facts
            )
            if fp.get("store_face") and holds(fp.get("filters"), unit.facts):
                lists = [
                    e["list_id"]
                    for e in fp.get("link_to_lists_policy", [])
                    if holds(e.get("filters"), unit.facts)
                ]
                avatar = (
                    f"/6/samples/faces/{samples[0]}"
                    if samples and fp.get("set_sample_as_avatar")
                    else ""
                )
                request = faces_pb2.CreateFaceRequest(
                    scope=scope,
                    event_id=unit.event_id if store_event else "",
                    event_pending=store_event,  # saved below, after the face
                    user_data=unit.meta.get("user_data", ""),
                    external_id=unit.meta.get("external_id", ""),
                    avatar=avatar,
                    list_ids=lists,
                )
                if data is not None:
                    request.attribute.data.CopyFrom(data)
                face = (await self._c.faces.CreateFace(request)).face
                undo.add("face", _face_deleter(self._c.faces, scope, face.face_id))
                event["face"] = {
                    "face_id": face.face_id,
                    "url": f"/6/faces/{face.face_id}",
                    "lists": list(face.list_ids),
                }
            # LUNA notifies the Sender of events it does not store too, and may stay silent
            # about stored ones (notification_policy with its filters).
            notify = (
                bool(notification_policy.get("send_notification", 1))
                and holds(notification_policy.get("filters"), unit.facts)
            ) or ws_notification_wanted(callbacks, unit.facts)
            if store_event or notify:
                descriptors = (
                    (DescriptorIn(FACE, unit.descriptor, unit.version),) if unit.descriptor else ()
                )
                to_save.append(
                    EventIn(
                        event=event,
                        event_id=unit.event_id,
                        descriptors=descriptors,
                        store=store_event,
                        notify=notify,
                    )
                )
            out.append(
                {
                    "event_id": unit.event_id,
                    "url": f"/6/events/{unit.event_id}",
                    "handler_id": handler_id,
                    "account_id": account,
                    **event,
                }
            )
            delivered.append((out[-1], unit.facts))
        if to_save:
            # The last write: SaveEvents also publishes each event on EVENTS (the Sender's feed).
            await self._events.save(
                Scope(account),
                handler_id,
                to_save,
                wait_saving=bool(event_policy.get("wait_saving")),
                request_id=req.request_id,
            )
        self._callbacks.send(callbacks, delivered)
        return out

    def _event_json(
        self,
        unit: Unit,
        shown: set[str],
        sample_ids: dict[int, str],
        origins: dict[int, str],
        create_time: datetime,
        end_time: datetime,
        now: datetime,
    ) -> dict[str, Any]:
        """The event as SaveEvents takes it (the save-event schema)."""
        meta = unit.meta
        event: dict[str, Any] = {
            k: meta[k]
            for k in ("source", "external_id", "user_data", "track_id", "stream_id", "location")
            if k in meta
        }
        event["tags"] = unit.tags
        detections = []
        for d in unit.faces:
            sample: dict[str, Any] = {
                "detection": render.detection(
                    d.face, {k: v for k, v in d.est.items() if k in shown}
                )
            }
            if id(d) in sample_ids:
                sid = sample_ids[id(d)]
                sample.update(sample_id=sid, url=f"/6/samples/faces/{sid}")
            det: dict[str, Any] = {
                "samples": {"face": sample},
                "detect_time": times.to_rfc3339(meta.get("_detect_time") or now),
            }
            if d.input_index in origins:
                det["image_origin"] = origins[d.input_index]
            detections.append(det)
        event["detections"] = detections
        event["matches"] = unit.matches
        if unit.basic is not None and "basic_attributes" in shown:
            event["face_attributes"] = {"basic_attributes": unit.basic}
        if unit.aggregate:
            event["aggregate_estimations"] = unit.aggregate
        event["create_time"] = times.to_rfc3339(create_time)
        event["end_time"] = times.to_rfc3339(end_time)
        return event


def _facts(unit: Unit) -> Facts:
    facts = Facts()
    if unit.basic:
        facts.age = unit.basic.get("age")
        facts.gender = unit.basic.get("gender")
        eth = unit.basic.get("ethnicity")
        facts.ethnicity = ETHNICITY_NAMES.get(eth) if isinstance(eth, int) else eth
    liveness = (unit.aggregate or {}).get("face", {}).get("attributes", {}).get("liveness")
    if liveness is None and unit.faces:
        liveness = unit.faces[0].est.get("liveness")
    if liveness is not None:
        facts.liveness = LIVENESS_NAMES.get(liveness.get("prediction"))
    return facts


def _attribute_data(unit: Unit, samples: list[str]) -> attributes_pb2.AttributeData | None:
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


def _deleter(
    blobs: Any, scope: account_pb2.AccountScope, kind: int, blob_id: str
) -> Callable[[], Awaitable[Any]]:
    return lambda: blobs.DeleteBlob(
        blobs_pb2.DeleteBlobRequest(scope=scope, kind=kind, blob_id=blob_id)
    )


def _attr_deleter(
    attrs: Any, scope: account_pb2.AccountScope, aid: str
) -> Callable[[], Awaitable[Any]]:
    return lambda: attrs.DeleteAttribute(
        attributes_pb2.DeleteAttributeRequest(scope=scope, attribute_id=aid)
    )


def _face_deleter(
    faces: Any, scope: account_pb2.AccountScope, fid: str
) -> Callable[[], Awaitable[Any]]:
    return lambda: faces.DeleteFace(faces_pb2.DeleteFaceRequest(scope=scope, face_id=fid))
