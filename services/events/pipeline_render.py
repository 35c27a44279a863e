"""Protobuf -> LUNA JSON pieces the pipeline puts into events and answers.

Kept apart from pipeline.py so the flow reads as policy steps, not as field copying.
"""

from __future__ import annotations

import base64
from typing import Any

from google.protobuf import json_format
from luna.estimator.v1 import estimator_pb2 as epb
from luna.faces.v1 import faces_pb2

from services.common import times

SUCCESS = {"error_code": 0, "desc": "Success", "detail": "Success"}
# Struct carries numbers as doubles; these estimation fields are integers in LUNA's JSON.
INT_FIELDS = frozenset({"age", "gender", "prediction"})
# Estimations LUNA shows under detections > samples > face > detection > attributes.
DETECTION_ATTRIBUTES = ("head_pose", "emotions", "mask", "quality", "liveness")
BASE64_TYPES = {
    "image/x-jpeg-base64": "image/jpeg",
    "image/x-png-base64": "image/png",
    "image/x-bmp-base64": "image/bmp",
    "image/x-tiff-base64": "image/tiff",
    "image/x-portable-pixmap-base64": "image/x-portable-pixmap",
}


def ints(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: int(v) if k in INT_FIELDS and isinstance(v, float) else ints(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [ints(v) for v in value]
    return value


def estimations(face: epb.Face) -> dict[str, Any]:
    return ints(json_format.MessageToDict(face.estimations))


def rect(box: epb.Box) -> dict[str, int]:
    return {
        "x": round(box.x),
        "y": round(box.y),
        "width": round(box.width),
        "height": round(box.height),
    }


def detection(face: epb.Face, est: dict[str, Any]) -> dict[str, Any]:
    """LUNA `detection` of a face sample: rect, score, detection-time attributes."""
    out: dict[str, Any] = {"rect": rect(face.box), "rect_score": round(float(face.score), 5)}
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
        "external_id": face.external_id or None,
        "avatar": face.avatar,
        "create_time": times.to_rfc3339(times.from_timestamp(face.create_time)),
        "lists": list(face.list_ids),
    }


def raw_image(image: epb.Image) -> tuple[bytes, str]:
    """(bytes, binary MIME type) of an input image, base64 variants decoded, for storing."""
    ctype = image.content_type
    if ctype in BASE64_TYPES:
        return base64.b64decode(image.data), BASE64_TYPES[ctype]
    return image.data, ctype or "image/jpeg"
