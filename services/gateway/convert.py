"""Protobuf <-> LUNA JSON shapes shared by several route modules, one function per resource.

Route modules are siblings that import nothing from each other; what two of them render or
parse the same way lives here.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from luna.estimator.v1 import estimator_pb2 as epb
from luna.faces.v1 import accounts_pb2, attributes_pb2, faces_pb2, tokens_pb2

from services.common import errors, times
from services.common import permissions as perms
from services.common.shared_settings import DEFAULT_DESCRIPTOR_VERSION
from services.gateway.auth import ACCOUNT_TYPE_NAMES, VISIBILITY_NAMES

__all__ = [
    "ACCOUNT_TYPE_NAMES",
    "account",
    "attribute_data",
    "attribute_fields",
    "face_json",
    "permissions",
    "project",
    "token",
    "ts",
]

# The `error` of an image (or check) that succeeded.
SUCCESS = {"error_code": 0, "desc": "Success", "detail": "Success"}


def ts(value: Timestamp, present: bool = True) -> str | None:
    return times.timestamp_rfc3339(value) if present else None


def record_times(record: Any) -> dict[str, str | None]:
    """`create_time` and `last_update_time` of a stored record, as LUNA shows them."""
    return {"create_time": ts(record.create_time), "last_update_time": ts(record.last_update_time)}


def account(a: accounts_pb2.Account) -> dict[str, Any]:
    return {
        "account_id": a.account_id,
        "login": a.login,
        "account_type": ACCOUNT_TYPE_NAMES[a.account_type],
        "description": a.description,
        **record_times(a),
    }


def permissions(p: accounts_pb2.Permissions) -> dict[str, Any]:
    return perms.from_pb(p)


def token(t: tokens_pb2.Token) -> dict[str, Any]:
    return {
        "token_id": t.token_id,
        "account_id": t.account_id,
        "description": t.description,
        "expiration_time": ts(t.expiration_time, t.HasField("expiration_time")),
        "permissions": permissions(t.permissions),
        "visibility_area": VISIBILITY_NAMES[t.visibility_area],
        "token": t.token,
        **record_times(t),
    }


def project(item: dict[str, Any], targets: list[str] | None) -> dict[str, Any]:
    """Keep only `targets` (all fields when not given), in the order of `item`."""
    if not targets:
        return item
    wanted = set(targets)
    return {k: v for k, v in item.items() if k in wanted}


def face_json(face: faces_pb2.Face, targets: list[str] | None) -> dict[str, Any]:
    item = {
        "face_id": face.face_id,
        "account_id": face.account_id,
        "event_id": face.event_id or None,
        "user_data": face.user_data,
        "create_time": ts(face.create_time),
        "external_id": face.external_id,
        "avatar": face.avatar,
        "lists": list(face.list_ids),
    }
    return project(item, targets)


def decode_descriptor(value: str, path: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise errors.LunaError(
            errors.BAD_BASE64, f"Failed convert data from base64 to bytes ('{path}')"
        ) from None


def attribute_data(body: dict[str, Any]) -> attributes_pb2.AttributeData:
    """The wire AttributeData of a validated body with face_descriptors/basic_attributes."""
    data = attributes_pb2.AttributeData(
        descriptor_samples=body.get("face_descriptor_samples", []),
        basic_attributes_samples=body.get("basic_attributes_samples", []),
    )
    for i, item in enumerate(body.get("face_descriptors", [])):
        path = f"face_descriptors.{i}"
        if isinstance(item, str):
            raw, version = decode_descriptor(item, path), DEFAULT_DESCRIPTOR_VERSION.get_int()
        else:
            raw, version = decode_descriptor(item["descriptor"], path), item["version"]
        data.descriptors.append(attributes_pb2.Descriptor(descriptor=raw, version=version))
    basic = body.get("basic_attributes")
    if basic is not None:
        data.basic_attributes.CopyFrom(
            attributes_pb2.BasicAttributes(
                age=basic["age"], gender=basic["gender"], ethnicity=basic["ethnicity"]
            )
        )
    return data


def pick_descriptor(data: attributes_pb2.AttributeData) -> attributes_pb2.Descriptor | None:
    """The descriptor a response shows: the only one the service returned for a requested
    version, else the default version's, else the newest."""
    if not data.descriptors:
        return None
    default = DEFAULT_DESCRIPTOR_VERSION.get_int()
    for d in data.descriptors:
        if d.version == default:
            return d
    return max(data.descriptors, key=lambda d: d.version)


def basic_json(data: attributes_pb2.AttributeData) -> dict[str, int | None] | None:
    if not data.HasField("basic_attributes"):
        return None
    b = data.basic_attributes
    # 0: not estimated (no ethnicity model here), shown as null rather than a made-up class.
    return {"age": b.age, "gender": b.gender, "ethnicity": b.ethnicity or None}


def attribute_fields(data: attributes_pb2.AttributeData) -> dict[str, Any]:
    descriptor = pick_descriptor(data)
    return {
        "face_descriptor": (
            base64.b64encode(descriptor.descriptor).decode() if descriptor else None
        ),
        "face_descriptor_samples": list(data.descriptor_samples),
        "basic_attributes": basic_json(data),
        "basic_attributes_samples": list(data.basic_attributes_samples),
    }


# ---------------------------------------------------------------------------- estimations
def image_item(result: epb.ImageResult) -> dict[str, Any]:
    """The start of an image's entry in a per-image answer: its filename (when it had one)
    and, for an image the estimator refused, `status` 0 with the image's error."""
    item: dict[str, Any] = {"filename": result.filename} if result.filename else {}
    if result.WhichOneof("outcome") == "error":
        e = result.error
        item.update(
            status=0, error={"error_code": e.error_code, "desc": e.desc, "detail": e.detail}
        )
    return item
