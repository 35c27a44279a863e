"""The fast (jsonschema_rs) body/query validator never accepts what the jsonschema one rejects.

A differential test over every schema of the gateway's OpenAPI document: a seeded generator walks
each schema and produces samples that mostly follow it, with mutations at every level (wrong
types, bounds off by one, uuids in upper case or with a trailing newline, date-times with and
without zones or out of range, non-ASCII digits, extra and missing fields, duplicated items,
1.0 for 1, booleans for integers, huge integers). For each sample: fast valid => slow valid. The
slow validator's verdict is the one the client gets, so this is the property that keeps every
error unchanged.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
import yaml

from services.gateway.validation import FastValidator, RequestValidator
from tests.gateway.test_validation import SPEC_PATH

UUID = "8b8b5937-2e9c-4e8b-a7a7-5caf86621b5a"
ODD_STRINGS = [
    "",
    "x",
    UUID,
    UUID.upper(),
    UUID + "\n",
    "{" + UUID + "}",
    UUID.replace("-", ""),
    "2024-02-29T12:00:00Z",
    "2024-02-29 12:00:00",
    "2024-02-29T12:00:00.123+03:00",
    "2024-02-30T12:00:00Z",
    "2023-13-01T00:00:00",
    "2024-01-01T25:00:00Z",
    "2024-01-01T00:00:00+0300",
    "2024-01-01T00:00:00z",
    "2024-01-01T00:00:00Z\n",
    "now-5m",
    "now-5q",
    "١٢٣",
    "123",
    "1,2,3",
    "1,,2",
    "null",
    "meta.a.b",
    "meta.",
    "user@example.com",
    "User@Example.COM",
    "ab",
    "a" * 129,
    "a" * 36,
    "a\nb",
    "http://x/y",
    ":: not a uri \\",
    "1600000000," + UUID,
    "\u00e9\u00e9\u00e9",
]
ODD_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    -1,
    1.0,
    0.5,
    -0.0,
    2**31 - 1,
    2**31,
    -(2**31),
    -(2**31) - 1,
    2**63 - 1,
    2**64 - 1,
    1e300,
    [],
    {},
    [1, 1.0],
    [0, False],
    ["a", "a"],
    *ODD_STRINGS,
]


def _types(schema: dict[str, Any]) -> list[str]:
    t = schema.get("type")
    if isinstance(t, list):
        return t
    if isinstance(t, str):
        return [t]
    if "properties" in schema or "required" in schema:
        return ["object"]
    if "items" in schema:
        return ["array"]
    return []


def _number(schema: dict[str, Any], rng: random.Random, integer: bool) -> Any:
    lo = schema.get("minimum", schema.get("exclusiveMinimum", -1000))
    hi = schema.get("maximum", schema.get("exclusiveMaximum", 1000))
    lo, hi = max(lo, -(2**40)), min(hi, 2**40)
    choice = rng.random()
    if choice < 0.15:
        return rng.choice([lo, hi, lo - 1, hi + 1])
    if integer:
        value = rng.randint(int(lo), int(hi)) if lo <= hi else int(lo)
        return float(value) if rng.random() < 0.1 else value
    return rng.uniform(lo, hi) if lo <= hi else lo


def _string(schema: dict[str, Any], rng: random.Random) -> str:
    if rng.random() < 0.5:
        return rng.choice(ODD_STRINGS)
    fmt, pattern = schema.get("format"), schema.get("pattern", "")
    if fmt == "uuid" or "a-f0-9]{8}" in pattern:
        return UUID if "[0-9]{10}," not in pattern else "1600000000," + UUID
    if fmt == "date-time" or "now-" in pattern:
        return "2024-05-01T10:20:30.5+02:00"
    lo, hi = schema.get("minLength", 0), min(schema.get("maxLength", 20), 300)
    n = rng.randint(lo, max(lo, hi))
    return "".join(rng.choice("abcxyz_09") for _ in range(n))


def sample(schema: Any, rng: random.Random, depth: int = 0) -> Any:
    """One value that mostly follows `schema`, mutated now and then."""
    if not isinstance(schema, dict) or depth > 8 or rng.random() < 0.08:
        return rng.choice(ODD_VALUES)
    for key in ("oneOf", "anyOf"):
        if key in schema:
            rest = {k: v for k, v in schema.items() if k != key}
            return sample({**rest, **rng.choice(schema[key])}, rng, depth)
    if "allOf" in schema:
        merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
        for sub in schema["allOf"]:
            for k, v in sub.items():
                if k == "properties":
                    merged["properties"] = {**merged.get("properties", {}), **v}
                elif k == "required":
                    merged["required"] = [*merged.get("required", []), *v]
                else:
                    merged[k] = v
        return sample(merged, rng, depth)
    if "enum" in schema:
        return rng.choice(schema["enum"])
    if "const" in schema:
        return schema["const"]
    types = _types(schema)
    t = rng.choice(types) if types else rng.choice(["string", "integer", "object", "null"])
    if t == "null":
        return None
    if t == "boolean":
        return rng.random() < 0.5
    if t in ("integer", "number"):
        return _number(schema, rng, t == "integer")
    if t == "string":
        return _string(schema, rng)
    if t == "array":
        lo, hi = schema.get("minItems", 0), min(schema.get("maxItems", 4), 6)
        items = [
            sample(schema.get("items", {}), rng, depth + 1)
            for _ in range(rng.randint(lo, max(lo, hi)))
        ]
        if items and rng.random() < 0.1:
            items.append(items[0])
        return items
    if t == "object":
        props = schema.get("properties", {})
        required = set(schema.get("required", []))
        out = {}
        for name, sub in props.items():
            if (name in required and rng.random() > 0.03) or rng.random() < 0.5:
                out[name] = sample(sub, rng, depth + 1)
        if rng.random() < 0.05:
            out["unexpected_field"] = 1
        return out
    return rng.choice(ODD_VALUES)


@pytest.fixture(scope="module")
def validator() -> RequestValidator:
    return RequestValidator(yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8")))


def _check(fast: FastValidator, slow: Any, instance: Any, where: str) -> tuple[bool, bool]:
    f = fast.is_valid(instance)
    s = slow.is_valid(instance)
    assert s or not f, f"{where}: jsonschema_rs accepts what jsonschema rejects: {instance!r}"
    return f, s


def test_fast_never_accepts_what_slow_rejects(validator: RequestValidator) -> None:
    rng = random.Random(14)
    both_valid = slow_valid = samples = 0
    for op_id in sorted(validator.operation_ids):
        op = validator._op(op_id)
        if op.body_validator is not None:
            assert op.body_fast is not None
            for _ in range(150):
                f, s = _check(op.body_fast, op.body_validator, sample(op.body_schema, rng), op_id)
                both_valid += f and s
                slow_valid += s
                samples += 1
        for p in op.query:
            for _ in range(20):
                _check(p.fast, p.validator, sample(p.validator.schema, rng), f"{op_id} ?{p.name}")
    # The samples exercise both verdicts, and the fast path takes nearly every valid body.
    assert 0.05 * samples < slow_valid < 0.95 * samples
    assert both_valid >= 0.9 * slow_valid


@pytest.mark.parametrize(
    "schema, instance",
    [
        ({"type": "string", "format": "uuid"}, UUID.upper()),
        ({"type": "string", "format": "date-time"}, "2024-02-30T12:00:00Z"),
        ({"type": "string", "format": "date-time"}, "2024-01-01T00:00:00+0300x"),
        ({"type": "integer", "maximum": 2**31 - 1}, 2**63),
        ({"type": "integer"}, True),
        ({"type": "array", "uniqueItems": True}, [1, 1.0]),
        ({"enum": [1]}, True),
    ],
)
def test_fast_rejects_what_slow_rejects(schema: dict[str, Any], instance: Any) -> None:
    assert not FastValidator(schema).is_valid(instance)


@pytest.mark.parametrize(
    "schema, instance",
    [
        ({"type": "string", "format": "uri-reference"}, ":: not a uri \\"),
        ({"type": "string", "format": "binary"}, "\u00e9"),
        ({"type": "string", "format": "date-time"}, "2024-01-01 00:00:00"),
        ({"type": "string", "format": "uuid"}, UUID),
        ({"type": "integer"}, 1.0),
    ],
)
def test_fast_accepts_what_slow_accepts(schema: dict[str, Any], instance: Any) -> None:
    """Formats the slow validator does not check are not checked by the fast one either."""
    assert FastValidator(schema).is_valid(instance)


def test_match_body_takes_the_fast_path(validator: RequestValidator) -> None:
    op = validator._op("matchFaces")
    body = {
        "references": [{"type": "raw_descriptor", "descriptor": "AAAA"}],
        "candidates": [{"filters": {"list_id": UUID}, "limit": 3}],
    }
    assert op.body_fast is not None and op.body_fast.is_valid(body)
