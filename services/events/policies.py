"""LUNA handler and verifier policies: the JSON Schemas, validation with defaults, LUNA errors.

The schemas are written in the OpenAPI 3.0 subset (so the same dicts are published in the
gateway's OpenAPI document, which validates requests before they get here); the service still
validates everything itself because gRPC callers (tasks, the pipeline) bypass the gateway.
Field names and defaults follow LUNA PLATFORM 5 (API v6, Handlers service `Policies` schema):
detect/extract/match/storage/conditional_tags policies; storage has face_sample_policy
(store_sample on by default), body_sample_policy, image_origin_policy, attribute_policy,
face_policy (link_to_lists_policy), event_policy (wait_saving), notification_policy, callbacks.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError, best_match

from services.common import errors, luna_json
from services.common.ids import UUID_PATTERN

# A candidates' time filter is an RFC 3339 date-time or relative "now-<N><unit>" (LP 5.12).
TIME_OR_NOW_PATTERN = (
    r"^(now-\d+[smhdwMy]|\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:?\d{2})?)$"
)
MAX_POLICY_LIST = 100


def _flag(default: int) -> dict[str, Any]:
    return {"type": "integer", "enum": [0, 1], "default": default}


def closed_object(props: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props, "additionalProperties": False, **extra}


def _int_list(values: list[int]) -> dict[str, Any]:
    return {
        "type": "array",
        "items": {"type": "integer", "enum": values},
        "nullable": True,
        "default": None,
    }


def _str(max_len: int, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "maxLength": max_len, **extra}


UUID = {"type": "string", "pattern": UUID_PATTERN}
SIMILARITY = {"type": "number", "minimum": 0, "maximum": 1}
ANGLE = {"type": "integer", "minimum": 0, "maximum": 180, "nullable": True, "default": None}
UNIT_THRESHOLD = {"type": "number", "minimum": 0, "maximum": 1, "nullable": True, "default": None}
ETHNICITIES = ["african_american", "indian", "asian", "caucasian"]

# Conditions on a processed detection (storage policies, conditional tags).
COMPLEX_FILTER = closed_object(
    {
        "age__gte": {"type": "integer", "minimum": 0, "maximum": 200},
        "age__lt": {"type": "integer", "minimum": 0, "maximum": 200},
        "gender": {"type": "integer", "enum": [0, 1]},
        "ethnicities": {"type": "array", "items": {"type": "string", "enum": ETHNICITIES}},
        "liveness": {"type": "array", "items": {"type": "string", "enum": ["spoof", "real"]}},
        "deepfake": {"type": "array", "items": {"type": "string", "enum": ["fake", "real"]}},
        "match": {
            "type": "array",
            "maxItems": MAX_POLICY_LIST,
            "items": closed_object(
                {
                    "label": _str(36),
                    "similarity__gte": SIMILARITY,
                    "similarity__lt": SIMILARITY,
                },
                required=["label"],
            ),
        },
    }
)

LIVENESS_POLICY = closed_object(
    {
        "estimate_liveness": _flag(0),
        "quality_threshold": UNIT_THRESHOLD,
        "liveness_threshold": UNIT_THRESHOLD,
    }
)
DEEPFAKE_POLICY = closed_object(
    {
        "estimate_deepfake": _flag(0),
        "real_threshold": UNIT_THRESHOLD,
        "mode": {"type": "integer", "enum": [1, 2], "default": 1},
    }
)
FACE_QUALITY_POLICY = closed_object(
    {
        "estimate": _flag(0),
        "filter": _flag(0),
        # Per-check settings ({"estimate": 0|1, "threshold": ...}); LUNA adds checks often.
        "checks": {"type": "object", "additionalProperties": {"type": "object"}},
    }
)
BODY_ATTRIBUTES_POLICY = closed_object(
    {
        "estimate_basic_attributes": _flag(0),
        "estimate_upper_body": _flag(0),
        "estimate_lower_body": _flag(0),
        "estimate_accessories": _flag(0),
    }
)
# Face estimation switches shared by handlers and verifiers.
_FACE_DETECT_PROPS: dict[str, Any] = {
    "multiface_policy": {"type": "integer", "enum": [0, 1, 2], "default": 1},
    "detect_landmarks68": _flag(0),
    "estimate_head_pose": _flag(0),
    "estimate_gaze": _flag(0),
    "estimate_eyes_attributes": _flag(0),
    "estimate_mouth_attributes": _flag(0),
    "estimate_emotions": _flag(0),
    "estimate_mask": _flag(0),
    "estimate_quality": _flag(0),
    "estimate_glasses": _flag(0),
    "estimate_liveness": LIVENESS_POLICY,
    "estimate_deepfake": DEEPFAKE_POLICY,
    "face_quality": FACE_QUALITY_POLICY,
    "extract_exif": _flag(0),
    "yaw_threshold": ANGLE,
    "pitch_threshold": ANGLE,
    "roll_threshold": ANGLE,
    "mask_states": _int_list([1, 2, 3]),
    "liveness_states": _int_list([0, 1, 2]),
    "deepfake_states": _int_list([0, 1]),
}
DETECT_POLICY = closed_object(
    {
        "detect_face": _flag(1),
        "detect_body": _flag(0),
        **_FACE_DETECT_PROPS,
        "body_attributes": BODY_ATTRIBUTES_POLICY,
    }
)
EXTRACT_POLICY = closed_object(
    {
        "extract_face_descriptor": _flag(0),
        "extract_body_descriptor": _flag(0),
        "extract_basic_attributes": _flag(0),
        "fd_score_threshold": {"type": "number", "minimum": 0, "maximum": 1, "default": 0},
        # This platform's addition: the face descriptor's version (200 SFace, 201
        # MobileFaceNet); absent, the estimator's default. Matching follows the version.
        "descriptor_version": {"type": "integer", "enum": [200, 201]},
    }
)

TIME_FILTER = {"type": "string", "pattern": TIME_OR_NOW_PATTERN}
ID_LIST = {"type": "array", "items": UUID, "maxItems": 1000}
STR_LIST = {"type": "array", "items": _str(36), "maxItems": 1000}
INT_LIST = {"type": "array", "items": {"type": "integer"}, "maxItems": 100}
# Candidate filters per origin (LUNA `candidates`); checked per origin in `validate_policies`.
FACE_CANDIDATE_FILTERS: dict[str, Any] = {
    "account_id": UUID,
    "face_ids": ID_LIST,
    "external_ids": STR_LIST,
    "user_data": _str(128),
    "create_time__gte": TIME_FILTER,
    "create_time__lt": TIME_FILTER,
    "face_id__gte": UUID,
    "face_id__lt": UUID,
    "list_id": UUID,
}
EVENT_CANDIDATE_FILTERS: dict[str, Any] = {
    "account_id": UUID,
    "event_ids": ID_LIST,
    "event_id__gte": UUID,
    "event_id__lt": UUID,
    "handler_ids": ID_LIST,
    "external_ids": STR_LIST,
    "face_ids": ID_LIST,
    "user_data": _str(128),
    "create_time__gte": TIME_FILTER,
    "create_time__lt": TIME_FILTER,
    "end_time__gte": TIME_FILTER,
    "end_time__lt": TIME_FILTER,
    "sources": STR_LIST,
    "stream_ids": ID_LIST,
    "tags": STR_LIST,
    "track_ids": STR_LIST,
    "cities": STR_LIST,
    "areas": STR_LIST,
    "districts": STR_LIST,
    "streets": STR_LIST,
    "house_numbers": STR_LIST,
    "top_matching_candidates_label": _str(36),
    "top_similar_object_ids": STR_LIST,
    "top_similar_external_ids": STR_LIST,
    "top_similar_object_similarity__gte": SIMILARITY,
    "top_similar_object_similarity__lt": SIMILARITY,
    "age__gte": {"type": "integer", "minimum": 0},
    "age__lt": {"type": "integer", "minimum": 0},
    "gender": {"type": "integer", "enum": [0, 1]},
    "emotions": INT_LIST,
    "masks": INT_LIST,
    "ethnic_groups": INT_LIST,
    "liveness": INT_LIST,
    "deepfake": INT_LIST,
}
CANDIDATES = closed_object(
    {
        "origin": {"type": "string", "enum": ["faces", "events"]},
        **FACE_CANDIDATE_FILTERS,
        **EVENT_CANDIDATE_FILTERS,
    },
    required=["origin"],
)
MATCH_TARGETS = [
    "similarity",
    "face_id",
    "event_id",
    "external_id",
    "user_data",
    "create_time",
    "account_id",
    "lists",
    "handler_id",
    "source",
    "tags",
    "face",
]
MATCH_POLICY = {
    "type": "array",
    "maxItems": MAX_POLICY_LIST,
    "default": [],
    "items": closed_object(
        {
            "label": _str(36, default=""),
            "candidates": CANDIDATES,
            "limit": {"type": "integer", "minimum": 1, "maximum": 100, "default": 3},
            "targets": {"type": "array", "items": {"type": "string", "enum": MATCH_TARGETS}},
            "threshold": SIMILARITY,
        },
        required=["candidates"],
    ),
}
CONDITIONAL_TAGS_POLICY = {
    "type": "array",
    "maxItems": MAX_POLICY_LIST,
    "default": [],
    "items": closed_object(
        {"tag": _str(36, minLength=1), "filters": COMPLEX_FILTER}, required=["tag"]
    ),
}
CALLBACK = closed_object(
    {
        "type": {"type": "string", "enum": ["http", "luna-ws-notification"]},
        "enable": _flag(1),
        "url": _str(1024),
        "filters": COMPLEX_FILTER,
        "params": closed_object(
            {
                "timeout": {"type": "number", "minimum": 0, "default": 60},
                "content_type": {
                    "type": "string",
                    "enum": ["application/json", "application/msgpack"],
                    "default": "application/json",
                },
                "headers": {"type": "object", "additionalProperties": {"type": "string"}},
            }
        ),
        "authorization": closed_object(
            {
                "type": {"type": "string", "enum": ["basic"]},
                "login": _str(128),
                "password": _str(128),
            },
            required=["type", "login", "password"],
        ),
    },
    required=["type"],
)
STORAGE_POLICY = closed_object(
    {
        "face_sample_policy": closed_object({"store_sample": _flag(1), "filters": COMPLEX_FILTER}),
        "body_sample_policy": closed_object({"store_sample": _flag(1), "filters": COMPLEX_FILTER}),
        "image_origin_policy": closed_object(
            {
                "store_image": _flag(0),
                "use_external_references": _flag(0),
                "filters": COMPLEX_FILTER,
            }
        ),
        "attribute_policy": closed_object(
            {
                "store_attribute": _flag(0),
                "filters": COMPLEX_FILTER,
                "ttl": {"type": "integer", "minimum": 1, "maximum": 86400},
            }
        ),
        "face_policy": closed_object(
            {
                "store_face": _flag(0),
                "filters": COMPLEX_FILTER,
                "link_to_lists_policy": {
                    "type": "array",
                    "maxItems": MAX_POLICY_LIST,
                    "default": [],
                    "items": closed_object(
                        {"list_id": UUID, "filters": COMPLEX_FILTER}, required=["list_id"]
                    ),
                },
                "set_sample_as_avatar": _flag(1),
            }
        ),
        "event_policy": closed_object(
            {"store_event": _flag(1), "wait_saving": _flag(0), "filters": COMPLEX_FILTER}
        ),
        "notification_policy": closed_object(
            {"send_notification": _flag(1), "filters": COMPLEX_FILTER}
        ),
        "callbacks": {"type": "array", "maxItems": MAX_POLICY_LIST, "items": CALLBACK},
    }
)
# Every sub-policy object is defaulted even when absent, like LUNA's pydantic models do.
HANDLER_POLICIES = closed_object(
    {
        "detect_policy": {**DETECT_POLICY, "default": {}},
        "extract_policy": {**EXTRACT_POLICY, "default": {}},
        "match_policy": MATCH_POLICY,
        "storage_policy": {**STORAGE_POLICY, "default": {}},
        "conditional_tags_policy": CONDITIONAL_TAGS_POLICY,
    }
)
VERIFIER_DETECT_POLICY = closed_object({"detect_face": _flag(1), **_FACE_DETECT_PROPS})
VERIFIER_POLICIES = closed_object(
    {
        "verification_threshold": {**SIMILARITY, "default": 0.9},
        "detect_policy": {**VERIFIER_DETECT_POLICY, "default": {}},
        "extract_policy": {
            **closed_object(
                {
                    "extract_basic_attributes": _flag(0),
                    "fd_score_threshold": {
                        "type": "number",
                        "minimum": 0,
                        "maximum": 1,
                        "default": 0,
                    },
                }
            ),
            "default": {},
        },
        "storage_policy": {
            **closed_object(
                {
                    "face_sample_policy": {
                        **closed_object({"store_sample": _flag(0)}),
                        "default": {},
                    },
                    "attribute_policy": {
                        **closed_object({"store_attribute": _flag(0)}),
                        "default": {},
                    },
                }
            ),
            "default": {},
        },
    }
)

# Nested sub-objects that default to {} so their own defaults get filled in.
_DEFAULT_OBJECTS = (
    "estimate_liveness",
    "estimate_deepfake",
    "face_quality",
    "body_attributes",
    "face_sample_policy",
    "body_sample_policy",
    "image_origin_policy",
    "attribute_policy",
    "face_policy",
    "event_policy",
    "notification_policy",
)


# ---------------------------------------------------------------------------------------------
# OpenAPI 3.0 subset -> JSON Schema, validation with LUNA-phrased errors, defaults


def to_json_schema(node: Any) -> Any:
    """Translate `nullable` (the only OpenAPI-only keyword used above) into JSON Schema."""
    if isinstance(node, list):
        return [to_json_schema(n) for n in node]
    if not isinstance(node, Mapping):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "nullable":
            continue
        if key in ("properties",):
            out[key] = {k: to_json_schema(v) for k, v in value.items()}
        else:
            out[key] = to_json_schema(value)
    if node.get("nullable") is True and "type" in out:
        out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


def _message(error: ValidationError) -> tuple[list[Any], str]:
    """(path, message) phrased like LUNA's (pydantic) validation messages."""
    path = list(error.absolute_path)
    v, value, inst, schema = error.validator, error.validator_value, error.instance, error.schema
    if v == "additionalProperties" and isinstance(inst, dict):
        known = schema.get("properties", {})
        extra = next((k for k in inst if k not in known), None)
        return ([*path, extra] if extra else path), "extra fields not permitted"
    if v == "required" and isinstance(inst, dict):
        missing = next((r for r in value if r not in inst), "")
        return [*path, missing], "field required"
    if v == "type":
        return path, luna_json.type_message(value, inst)
    if v == "enum":
        return path, luna_json.enum_message(value)
    if v in ("maximum", "minimum", "maxLength", "minLength", "maxItems"):
        return path, str(luna_json.bound_message(v, value))
    if v == "pattern" and value == UUID_PATTERN:
        return path, "value is not a valid uuid"
    if v == "pattern":
        return path, f'string does not match regex "{value}"'
    return path, error.message


def bad_json(path: list[Any], message: str) -> errors.LunaError:
    return errors.bad_json(".".join(str(p) for p in path), message)


def _fill_defaults(schema: Mapping[str, Any], instance: Any) -> None:
    if isinstance(instance, dict):
        for name, sub in schema.get("properties", {}).items():
            if name not in instance:
                if "default" in sub:
                    instance[name] = copy.deepcopy(sub["default"])
                elif name in _DEFAULT_OBJECTS and sub.get("type") == "object":
                    instance[name] = {}
            if name in instance:
                _fill_defaults(sub, instance[name])
    elif isinstance(instance, list) and isinstance(schema.get("items"), Mapping):
        for item in instance:
            _fill_defaults(schema["items"], item)


class PolicySchema:
    """One compiled policies schema (handler or verifier)."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = to_json_schema(schema)
        Draft202012Validator.check_schema(self.schema)
        self._validator = Draft202012Validator(self.schema, format_checker=FormatChecker())

    def validate(self, policies: Any, prefix: str = "policies") -> dict[str, Any]:
        """A validated deep copy of `policies` with every default filled in; 12022 otherwise."""
        found = list(self._validator.iter_errors(policies))
        if found:
            error = best_match(found)
            assert error is not None
            path, message = _message(error)
            raise bad_json([prefix, *path], message)
        out = copy.deepcopy(policies)
        _fill_defaults(self.schema, out)
        return out


HANDLER_SCHEMA = PolicySchema(HANDLER_POLICIES)
VERIFIER_SCHEMA = PolicySchema(VERIFIER_POLICIES)
_ORIGIN_FILTERS = {"faces": FACE_CANDIDATE_FILTERS, "events": EVENT_CANDIDATE_FILTERS}


def validate_handler_policies(policies: Any) -> dict[str, Any]:
    """Handler policies per the schema plus LUNA's cross-field rules."""
    out = HANDLER_SCHEMA.validate(policies)
    labels: set[str] = set()
    for i, match in enumerate(out["match_policy"]):
        candidates = match["candidates"]
        allowed = _ORIGIN_FILTERS[candidates["origin"]]
        for key in candidates:
            if key != "origin" and key not in allowed:
                raise bad_json(
                    ["policies", "match_policy", i, "candidates", key],
                    "extra fields not permitted",
                )
        if match["label"] in labels:
            raise bad_json(
                ["policies", "match_policy", i, "label"], "match policy labels must be unique"
            )
        labels.add(match["label"])
    for i, callback in enumerate(out["storage_policy"].get("callbacks", [])):
        if callback["type"] == "http" and not callback.get("url"):
            raise bad_json(["policies", "storage_policy", "callbacks", i, "url"], "field required")
    _check_time_filters(out)
    return out


def _check_time_filters(policies: dict[str, Any]) -> None:
    for i, match in enumerate(policies["match_policy"]):
        _check_candidate_times(match["candidates"], ["policies", "match_policy", i, "candidates"])


def _check_candidate_times(candidates: dict[str, Any], path: list[Any]) -> None:
    # A date-time that matches the pattern can still be impossible (month 13).
    from datetime import datetime

    for key, value in candidates.items():
        if key.endswith(("time__gte", "time__lt")) and not value.startswith("now-"):
            try:
                datetime.fromisoformat(re.sub(r"[Zz]$", "+00:00", value))
            except ValueError:
                raise bad_json([*path, key], "invalid datetime format") from None


EVENT_CANDIDATES_SCHEMA = PolicySchema(closed_object(EVENT_CANDIDATE_FILTERS))


def validate_event_candidate_filters(filters: Any, path: list[Any]) -> dict[str, Any]:
    """LUNA candidate_event filters (/6/matcher/faces), as match_policy's event candidates."""
    out = EVENT_CANDIDATES_SCHEMA.validate(filters, prefix=".".join(map(str, path)))
    _check_candidate_times(out, path)
    return out


def validate_verifier_policies(policies: Any) -> dict[str, Any]:
    return VERIFIER_SCHEMA.validate(policies)
