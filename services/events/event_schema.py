"""The LUNA save-event body (`POST /6/handlers/{handler_id}/events/raw`) as a JSON Schema in
the OpenAPI 3.0 subset: published in the gateway's OpenAPI document and checked again here for
gRPC callers. Nested parts (detections, face, matches, attributes) are LUNA objects whose
inner layout varies with the estimations enabled, so only their outer shape is pinned.
"""

from __future__ import annotations

from typing import Any

from services.events.policies import UUID, PolicySchema, closed_object

TRACK_ID_PATTERN = r"^[a-zA-Z0-9_\-]{1,36}$"
META_MAX_BYTES = 2 * 1024 * 1024

_LOCATION_STR = {"type": "string", "maxLength": 36}
LOCATION = closed_object(
    {
        "city": _LOCATION_STR,
        "area": _LOCATION_STR,
        "district": _LOCATION_STR,
        "street": _LOCATION_STR,
        "house_number": _LOCATION_STR,
        "geo_position": {
            "type": "object",
            "properties": {
                "longitude": {"type": "number", "minimum": -180, "maximum": 180},
                "latitude": {"type": "number", "minimum": -90, "maximum": 90},
            },
            "required": ["longitude", "latitude"],
            "additionalProperties": False,
        },
    }
)
_SAMPLE = {
    "type": "object",
    "properties": {
        "sample_id": UUID,
        "url": {"type": "string", "maxLength": 1024},
        "detection": {"type": "object"},
    },
    "additionalProperties": True,
}
# "required" before "additionalProperties": the order jsonschema reports (and LUNA answers)
# a body with both faults.
DETECTION = {
    "type": "object",
    "properties": {
        "samples": closed_object({"face": _SAMPLE, "body": _SAMPLE}),
        "detect_time": {"type": "string", "format": "date-time"},
        "image_origin": {"type": "string", "maxLength": 1024},
        "detect_ts": {"type": "number"},
    },
    "required": ["samples"],
    "additionalProperties": False,
}
FACE = {
    "type": "object",
    "properties": {
        "face_id": UUID,
        "url": {"type": "string", "maxLength": 1024},
        "lists": {"type": "array", "items": UUID},
    },
    "required": ["face_id"],
    "additionalProperties": True,
}
MATCH = {
    "type": "object",
    "properties": {
        "label": {"type": "string", "maxLength": 36},
        "candidates": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"similarity": {"type": "number", "minimum": 0, "maximum": 1}},
                "required": ["similarity"],
                "additionalProperties": True,
            },
        },
    },
    "required": ["label", "candidates"],
    "additionalProperties": False,
}
INPUT_EVENT: dict[str, Any] = closed_object(
    {
        "detections": {"type": "array", "maxItems": 100, "items": DETECTION},
        "source": {"type": "string", "maxLength": 128},
        "stream_id": UUID,
        "location": LOCATION,
        "external_id": {"type": "string", "maxLength": 36},
        "user_data": {"type": "string", "maxLength": 128},
        "track_id": {"type": "string", "pattern": TRACK_ID_PATTERN},
        "face": FACE,
        "matches": {"type": "array", "maxItems": 30, "items": MATCH, "nullable": True},
        "face_attributes": {"type": "object", "nullable": True},
        "body_attributes": {"type": "object", "nullable": True},
        "aggregate_estimations": {"type": "object"},
        "tags": {
            "type": "array",
            "maxItems": 1000,
            "items": {"type": "string", "maxLength": 36},
        },
        "create_time": {"type": "string", "format": "date-time"},
        "end_time": {"type": "string", "format": "date-time"},
        "meta": {"type": "object"},
    }
)
INPUT_EVENT_SCHEMA = PolicySchema(INPUT_EVENT)
