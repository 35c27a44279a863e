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

from typing import Any

from google.protobuf import json_format
from luna.common.v1 import account_pb2
from luna.estimator.v1 import estimator_pb2 as epb
from luna.events.v1 import pipeline_pb2 as ppb
from luna.faces.v1 import lists_pb2

from services.common import errors, times
from services.events.event_schema import INPUT_EVENT_SCHEMA
from services.events.events import Events
from services.events.handlers import DYNAMIC, LAMBDA, Handlers
from services.events.pipeline import render, store
from services.events.pipeline.callbacks import CallbackSender
from services.events.pipeline.filters import detect_needs, holds
from services.events.pipeline.match import Reference, match_events, match_faces
from services.events.pipeline.shared import (
    MULTIFACE,
    Call,
    Clients,
    Undo,
    Unit,
    Writes,
    check_descriptor,
    detect,
)
from services.events.pipeline.units import build_units, split_detections
from services.events.policies import validate_handler_policies

MAX_INPUTS = 100
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


def _either(item: Any, request: Any, name: str) -> Any:
    """An EventMeta field of the input, else of the request, else None."""
    if item.HasField(name):
        return getattr(item, name)
    return getattr(request, name) if request.HasField(name) else None


def estimations_for(policies: dict[str, Any]) -> tuple[set[str], set[str]]:
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


def call_of(
    req: ppb.GenerateEventsRequest, policies: dict[str, Any], handler_id: str, shown: set[str]
) -> Call:
    """The request as storage reads it; its events' times are fixed here."""
    now = times.now()
    create = times.from_timestamp(req.event_time) if req.HasField("event_time") else now
    end = times.from_timestamp(req.event_end_time) if req.HasField("event_end_time") else create
    return Call(req, policies, handler_id, shown, create, end, now)


def tag(units: list[Unit], policies: dict[str, Any]) -> None:
    """conditional_tags_policy: each unit's tags after the request's, once each."""
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


def answer(
    req: ppb.GenerateEventsRequest, events: list[dict[str, Any]], filtered: list[dict[str, Any]]
) -> dict[str, Any]:
    """The GenerateEvents result as LUNA's generate-events answer."""
    images = [
        {"filename": item.image.filename, "status": 1, "error": render.SUCCESS}
        for item in req.inputs
        if item.HasField("image")
    ]
    return {
        "images": images,
        "events": events,
        "filtered_detections": {"face_detections": filtered, "body_detections": []},
    }


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
            raise errors.LunaError(errors.NOT_IMPLEMENTED, "Lambda handlers are not implemented")
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
        base = render.meta_json(req.meta)
        out = []
        for i, item in enumerate(req.inputs):
            meta = {**base, **render.meta_json(item.meta)}
            # The stored-event schema is the authority on these fields; checking now keeps a
            # bad track_id from failing SaveEvents after faces were created.
            INPUT_EVENT_SCHEMA.validate(meta, prefix="event" if len(req.inputs) == 1 else f"{i}")
            detect_time = _either(item.meta, req.meta, "detect_time")
            meta["_detect_time"] = times.from_timestamp(detect_time) if detect_time else None
            meta["_image_origin"] = _either(item.meta, req.meta, "image_origin")
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
    async def _detect(
        self, req: ppb.GenerateEventsRequest, policies: dict[str, Any], run: set[str]
    ) -> dict[int, epb.ImageDetections]:
        images = [(i, item.image) for i, item in enumerate(req.inputs) if item.HasField("image")]
        if not images:
            return {}
        dp = policies["detect_policy"]
        if policies["extract_policy"].get("extract_body_descriptor") or dp.get("detect_body"):
            raise errors.LunaError(
                errors.FEATURE_DISABLED, "Body detection turned off on luna-api instance"
            )
        return await detect(
            self._c.estimator,
            images,
            image_type=req.image_type,
            multiface_policy=MULTIFACE[dp["multiface_policy"]],
            detect_face=bool(dp.get("detect_face", 1)),
            estimations=sorted(run),
            ignore_exif=req.ignore_exif,
            descriptor_version=policies["extract_policy"].get("descriptor_version", 0),
        )

    async def _descriptor_version(self, req: ppb.GenerateEventsRequest) -> int:
        descs = [item.descriptor for item in req.inputs if item.HasField("descriptor")]
        if not descs:
            return 0
        version = (await self._c.estimator.GetFeatures(epb.GetFeaturesRequest())).descriptor_version
        for d in descs:
            check_descriptor(d.descriptor)
            if d.version not in (0, version):
                raise errors.LunaError(
                    errors.UNSUPPORTED_DESCRIPTOR_VERSION,
                    f"Descriptor version {d.version} is not supported",
                )
        return version

    # -- match ------------------------------------------------------------------------------
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
        run, shown = estimations_for(policies)
        version = await self._descriptor_version(req)
        detections = await self._detect(req, policies, run)
        kept, filtered = split_detections(req, policies["detect_policy"], detections)
        units = build_units(req, kept, metas, version)
        await self._match(scope, policies, units)
        tag(units, policies)
        call = call_of(req, policies, handler_id, shown)
        outcomes = await self._store(Writes(self._c, scope, Undo()), call, units)
        events = [o.answer for o in outcomes]
        return answer(req, events, filtered), [e["event_id"] for e in events]

    async def _store(self, writes: Writes, call: Call, units: list[Unit]) -> list[store.Outcome]:
        """Every write of the request; all undone when one fails."""
        try:
            outcomes = await store.store_units(writes, call, units)
            await store.save_events(self._events, call, outcomes)
            self._callbacks.send(
                call.storage.get("callbacks") or [], [(o.answer, o.facts) for o in outcomes]
            )
        except BaseException:
            await writes.undo.run()
            raise
        return outcomes
