"""LUNA JSON vocabulary that the gateway and the events pipeline (or the tasks service) both speak.

One copy of each piece that turns protobuf into LUNA's JSON (estimations; a box's rect is
`services.common.boxes`'), LUNA's JSON request pieces into protobuf (face candidate filters)
and LUNA's (pydantic) validation messages, so the REST answers and the events the pipeline
stores cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from google.protobuf import json_format
from luna.estimator.v1 import estimator_pb2 as epb
from luna.faces.v1 import faces_pb2
from luna.matcher.v1 import matcher_pb2 as mpb

from services.common import times

# Base64 image content types LUNA accepts -> the binary type of the decoded bytes.
BASE64_TYPES = {
    "image/x-jpeg-base64": "image/jpeg",
    "image/x-png-base64": "image/png",
    "image/x-bmp-base64": "image/bmp",
    "image/x-tiff-base64": "image/tiff",
    "image/x-portable-pixmap-base64": "image/x-portable-pixmap",
}
# Struct carries numbers as doubles; these estimation fields are integers in LUNA's JSON.
INT_FIELDS = frozenset({"age", "gender", "prediction"})


# -- protobuf -> LUNA JSON ---------------------------------------------------------------------

# The page of LUNA's documentation on an error code; a task error links to its code's page.
ERROR_DOC_URL = "https://docs.visionlabs.ai/info/luna/troubleshooting/errors-description/code-{}"


def task_error(
    *,
    error_id: int,
    task_id: int,
    subtask_id: int | None,
    error_code: int,
    description: str,
    detail: str,
    additional_info: str | None,
    error_time: datetime | None,
) -> dict[str, Any]:
    """A task error as LUNA renders it (Tasks API §4.3): in GET /tasks/errors and in the errors
    of a task's result."""
    return {
        "error_id": error_id,
        "task_id": task_id,
        "subtask_id": subtask_id,
        "error_code": error_code,
        "description": description,
        "detail": detail,
        "additional_info": additional_info,
        "error_time": times.to_rfc3339(error_time),
        "link": ERROR_DOC_URL.format(error_code),
    }


def ints(value: Any) -> Any:
    """`value` with the INT_FIELDS of every nested object back to integers."""
    if isinstance(value, dict):
        return {
            k: int(v) if k in INT_FIELDS and isinstance(v, float) else ints(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [ints(v) for v in value]
    return value


def estimations(face: epb.Face) -> dict[str, Any]:
    """A detected face's estimations as LUNA JSON."""
    return ints(json_format.MessageToDict(face.estimations))


def dig(obj: Any, *path: str) -> Any:
    """obj[path[0]][path[1]]...; None where a step is missing or not an object."""
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


# -- LUNA JSON -> protobuf ---------------------------------------------------------------------


def face_candidates(
    filters: dict[str, Any],
    *,
    limit: int,
    threshold: float,
    when: Callable[[str], datetime] = times.parse_rfc3339,
) -> mpb.FaceCandidates:
    """LUNA face candidate filters (/6/matcher/faces `candidates.filters`, a match policy's
    `candidates`) as MatcherService candidates; `when` reads a create_time bound."""
    out = mpb.FaceCandidates(
        list_id=filters.get("list_id", ""),
        face_ids=filters.get("face_ids", []),
        external_ids=filters.get("external_ids", []),
        event_id=filters.get("event_id", ""),
        face_id_gte=filters.get("face_id__gte", ""),
        face_id_lt=filters.get("face_id__lt", ""),
        limit=limit,
        threshold=threshold,
    )
    if "user_data" in filters:
        out.user_data = filters["user_data"]
    for key, field in (
        ("create_time__gte", "create_time_gte"),
        ("create_time__lt", "create_time_lt"),
    ):
        if key in filters:
            getattr(out, field).CopyFrom(times.to_timestamp(when(filters[key])))
    return out


def face_filter(filters: Mapping[str, Any]) -> faces_pb2.FaceFilter:
    """LUNA face filters (GET /6/faces query, a task's `filters` for faces) as the faces
    service's FaceFilter; a key the caller's schema does not allow is simply absent."""
    out = faces_pb2.FaceFilter(
        face_ids=filters.get("face_ids", []),
        external_ids=filters.get("external_ids", []),
        list_id=filters.get("list_id", ""),
        event_id=filters.get("event_id", ""),
        face_id_gte=filters.get("face_id__gte", ""),
        face_id_lt=filters.get("face_id__lt", ""),
    )
    if "user_data" in filters:
        out.user_data = filters["user_data"]
    times.copy_times(filters, out, times.CREATE_TIMES)
    return out


# -- validation messages (LUNA answers 12022 in pydantic's words) -------------------------------

_TYPE_MESSAGES = {
    "integer": "value is not a valid integer",
    "number": "value is not a valid float",
    "string": "str type expected",
    "boolean": "value could not be parsed to a boolean",
    "object": "value is not a valid dict",
    "array": "value is not a valid list",
}
_BOUND_MESSAGES = {
    "maxLength": "ensure this value has at most {} characters",
    "minLength": "ensure this value has at least {} characters",
    "maxItems": "ensure this value has at most {} items",
    "minItems": "ensure this value has at least {} items",
    "maxProperties": "ensure this value has at most {} items",
    "minProperties": "ensure this value has at least {} items",
    "maximum": "ensure this value is less than or equal to {}",
    "minimum": "ensure this value is greater than or equal to {}",
    "exclusiveMaximum": "ensure this value is less than {}",
    "exclusiveMinimum": "ensure this value is greater than {}",
    "multipleOf": "ensure this value is a multiple of {}",
}


def type_message(expected: Any, instance: Any) -> str:
    """A JSON Schema `type` failure (`expected` one type or a list) in pydantic's words."""
    if instance is None:
        return "none is not an allowed value"
    types = expected if isinstance(expected, list) else [expected]
    first = next((t for t in types if t != "null"), "null")
    return _TYPE_MESSAGES.get(first, f"value is not a valid {first}")


def bound_message(validator: str, limit: Any) -> str | None:
    """A size or range keyword's failure in pydantic's words; None for other keywords."""
    template = _BOUND_MESSAGES.get(validator)
    return template.format(limit) if template is not None else None


def shown(value: Any) -> str:
    """A permitted value as pydantic lists it: strings quoted."""
    if isinstance(value, str):
        return f"'{value}'"
    if value is None:
        return "None"
    return str(value)


def enum_message(values: list[Any]) -> str:
    return "value is not a valid enumeration member; permitted: " + ", ".join(
        shown(x) for x in values
    )
