"""The policies of LUNA 3's three handlers: their fields, defaults and validation."""

from __future__ import annotations

from typing import Any

from services.common import errors, ids

EXTRACTOR, VERIFY, IDENTIFY = 1, 2, 3
TYPE_NAMES = {EXTRACTOR: "extractor", VERIFY: "verify", IDENTIFY: "identify"}

_FLAGS = (
    "estimate_attributes",
    "estimate_emotions",
    "estimate_ethnicities",
    "estimate_quality",
    "estimate_head_pose",
    "extract_exif",
)
_ANGLES = ("yaw_threshold", "roll_threshold", "pitch_threshold")
_FRACTIONS = ("score_threshold", "identify_threshold", "verify_threshold")
# 180 degrees filters nothing; 0 similarity/score thresholds keep everything. LUNA 3 leaves
# the defaults to the installation; these make a fresh handler refuse nothing.
_COMMON: dict[str, Any] = {
    **dict.fromkeys(_FLAGS, 0),
    **dict.fromkeys(_ANGLES, 180),
    "score_threshold": 0.0,
}
# Our similarity puts the model's same-person threshold at 0.5 (services/matcher/README.md).
DEFAULT_VERIFY_THRESHOLD = 0.5
DEFAULTS: dict[int, dict[str, Any]] = {
    EXTRACTOR: dict(_COMMON),
    VERIFY: {**_COMMON, "verify_threshold": DEFAULT_VERIFY_THRESHOLD},
    IDENTIFY: {**_COMMON, "limit": 3, "identify_threshold": 0.0},
}
# Fields each type accepts beyond its defaults (list_id has no default: unset until patched).
_EXTRA = {EXTRACTOR: ("list_id",), VERIFY: (), IDENTIFY: ("list_id",)}


def defaults(handler_type: int) -> dict[str, Any]:
    return dict(DEFAULTS[handler_type])


def validate(handler_type: int, changes: Any) -> dict[str, Any]:
    """The policy changes of a PATCH, checked field by field (12022 on the first bad one)."""
    if not isinstance(changes, dict):
        raise errors.bad_json("", "object required")
    if not changes:
        raise errors.bad_json("", "at least 1 property required")
    allowed = set(DEFAULTS[handler_type]) | set(_EXTRA[handler_type])
    out: dict[str, Any] = {}
    for key, value in changes.items():
        if isinstance(value, float) and value.is_integer() and key not in _FRACTIONS:
            # google.protobuf.Struct carries every JSON number as a double.
            value = int(value)
        if key not in allowed:
            raise errors.bad_json(key, "additional property is not allowed")
        if key in _FLAGS:
            if type(value) is not int or value not in (0, 1):
                raise errors.bad_json(key, "must be 0 or 1")
        elif key in _ANGLES:
            if type(value) is not int or not 0 <= value <= 180:
                raise errors.bad_json(key, "integer from 0 to 180 required")
        elif key == "limit":
            if type(value) is not int or not 1 <= value <= 5:
                raise errors.bad_json(key, "integer from 1 to 5 required")
        elif key == "list_id":
            if not isinstance(value, str) or not ids.is_uuid(value):
                raise errors.bad_json(key, "uuid4 required")
        else:  # thresholds in [0, 1]
            if type(value) not in (int, float) or not 0 <= value <= 1:
                raise errors.bad_json(key, "number from 0 to 1 required")
            value = float(value)
        out[key] = value
    return out
