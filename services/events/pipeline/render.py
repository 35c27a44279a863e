"""Protobuf -> LUNA JSON pieces the pipeline puts into events and answers.

Kept apart from generate.py so the flow reads as policy steps, not as field copying; the
pieces the gateway renders too are `services.common.luna_json`'s and `boxes`'.
"""

from __future__ import annotations

import base64
from typing import Any

from luna.estimator.v1 import estimator_pb2 as epb
from luna.events.v1 import pipeline_pb2 as ppb
from luna.faces.v1 import faces_pb2

from services.common import boxes, luna_json, times
from services.events.pipeline.shared import Call, Stored, Unit

# The event fields a request's EventMeta may set, in LUNA's order.
META_FIELDS = ("source", "external_id", "user_data", "track_id", "stream_id")

SUCCESS = {"error_code": 0, "desc": "Success", "detail": "Success"}
# Estimations LUNA shows under detections > samples > face > detection > attributes.
DETECTION_ATTRIBUTES = ("head_pose", "emotions", "mask", "quality", "liveness")


def detection(face: epb.Face, est: dict[str, Any]) -> dict[str, Any]:
    """LUNA `detection` of a face sample: rect, score, detection-time attributes."""
    out: dict[str, Any] = {
        "rect": boxes.rect(face.box),
        "rect_score": round(float(face.score), 5),
    }
    if "landmarks68" in est:
        out["landmarks68"] = est["landmarks68"]
    attrs = {k: est[k] for k in DETECTION_ATTRIBUTES if k in est}
    if attrs:
        out["attributes"] = attrs
    return out


def face_json(face: faces_pb2.Face) -> dict[str, Any]:
    """A matched face as LUNA shows it in match candidates."""
    return {
        "face_id": face.face_id,
        "account_id": face.account_id,
        "event_id": face.event_id or None,
        "user_data": face.user_data,
        "external_id": face.external_id,
        "avatar": face.avatar,
        "create_time": times.to_rfc3339(times.from_timestamp(face.create_time)),
        "lists": list(face.list_ids),
    }


def raw_image(image: epb.Image) -> tuple[bytes, str]:
    """(bytes, binary MIME type) of an input image, base64 variants decoded, for storing."""
    ctype = image.content_type
    if ctype in luna_json.BASE64_TYPES:
        return base64.b64decode(image.data), luna_json.BASE64_TYPES[ctype]
    return image.data, ctype or "image/jpeg"


def meta_json(meta: ppb.EventMeta) -> dict[str, Any]:
    """Set EventMeta fields as LUNA event fields."""
    out: dict[str, Any] = {}
    for name in META_FIELDS:
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


def event_json(unit: Unit, call: Call, stored: Stored) -> dict[str, Any]:
    """The event as SaveEvents takes it (the save-event schema)."""
    shown = call.shown
    meta = unit.meta
    event: dict[str, Any] = {k: meta[k] for k in (*META_FIELDS, "location") if k in meta}
    event["tags"] = unit.tags
    detect_time = times.to_rfc3339(meta.get("_detect_time") or call.now)
    detections = []
    for d in unit.faces:
        sample: dict[str, Any] = {
            "detection": detection(d.face, {k: v for k, v in d.est.items() if k in shown})
        }
        if id(d) in stored.samples:
            sid = stored.samples[id(d)]
            sample.update(sample_id=sid, url=f"/6/samples/faces/{sid}")
        det: dict[str, Any] = {"samples": {"face": sample}, "detect_time": detect_time}
        if d.input_index in stored.origins:
            det["image_origin"] = stored.origins[d.input_index]
        detections.append(det)
    event["detections"] = detections
    event["matches"] = unit.matches
    if unit.basic is not None and "basic_attributes" in shown:
        event["face_attributes"] = {"basic_attributes": unit.basic}
    if unit.aggregate:
        event["aggregate_estimations"] = unit.aggregate
    event["create_time"] = times.to_rfc3339(call.create_time)
    event["end_time"] = times.to_rfc3339(call.end_time)
    return event
