"""Property-based fuzzing of every Backport 3 operation (the LUNA 3 API, /4) with schemathesis,
on its own listener.

The operations are those the platform serves (`GET /4/docs/spec`); that document names them
only, so this file describes their inputs as the Backport 3 catalogue documents them (query
parameters with their types, JSON bodies with their fields, image bodies) and lets
schemathesis send conforming and violating requests, with valid Basic credentials and, for
half the runs, real objects of the fuzzing account as path ids. Every answer must be below 500
(or the catalogue's 500s for an image without faces: 4003, 36005) and every error
a LUNA body. The budget and seed come from FUZZ_EXAMPLES / FUZZ_SEED, as in test_fuzz.py;
`pytest -m fuzz` runs both.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
import schemathesis
import yaml
from e2e.test_backport3_rest import ASTRONAUT, Client
from e2e.test_fuzz import EXAMPLES, Fuzzer, Report
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from services.common import errors

pytestmark = [pytest.mark.e2e, pytest.mark.fuzz, pytest.mark.slow]

FLAG = {"type": "integer", "enum": [0, 1]}
UUID = {"type": "string", "format": "uuid"}
UUIDS = {"type": "string", "pattern": r"^[0-9a-f-]{36}(,[0-9a-f-]{36}){0,3}$"}
PARAMS: dict[str, dict[str, Any]] = {
    **{
        name: FLAG
        for name in (
            "estimate_attributes",
            "estimate_emotions",
            "estimate_ethnicities",
            "estimate_quality",
            "warped_image",
            "extract_descriptor",
            "estimate_head_pose",
            "extract_exif",
            "no_cache",
            "aggregate",
            "include_luna_services",
        )
    },
    "score_threshold": {"type": "number", "minimum": 0, "maximum": 1},
    **{
        n: {"type": "number", "minimum": 0, "maximum": 180}
        for n in ("pitch__lt", "yaw__lt", "roll__lt")
    },
    **{n: {"type": "number", "minimum": 0, "maximum": 100} for n in ("age__gt", "age__lt")},
    **{
        n: {"type": "number", "minimum": 0, "maximum": 1}
        for n in ("glasses__gt", "glasses__lt", "similarity__gt")
    },
    "page": {"type": "integer", "minimum": 1},
    "page_size": {"type": "integer", "minimum": 1, "maximum": 1000},
    "limit": {"type": "integer", "minimum": 1, "maximum": 5},
    **{n: UUID for n in ("descriptor_id", "person_id", "list_id", "list")},
    **{n: UUIDS for n in ("descriptor_ids", "person_ids")},
    "do": {"type": "string", "enum": ["attach", "detach"]},
    "type": {"type": "string", "enum": ["persons", "descriptors"]},
    "event_type": {"type": "string", "enum": ["match", "extract"]},
    "gender": {"type": "string", "enum": ["male", "female"]},
    "observe": {"type": "string"},
    "user_data": {"type": "string", "maxLength": 128},
    "external_id": {"type": "string", "maxLength": 36},
}
EXTRACTION = (
    "estimate_attributes",
    "estimate_emotions",
    "estimate_ethnicities",
    "estimate_quality",
    "score_threshold",
    "warped_image",
    "estimate_head_pose",
    "pitch__lt",
    "yaw__lt",
    "roll__lt",
    "extract_exif",
    "no_cache",
)
WS = (
    "event_type",
    "observe",
    "gender",
    "age__gt",
    "age__lt",
    "glasses__gt",
    "glasses__lt",
    "similarity__gt",
    "list",
)
PAGE = ("page", "page_size")
# (method, path) -> (query parameters, required ones)
QUERY: dict[tuple[str, str], tuple[tuple[str, ...], tuple[str, ...]]] = {
    ("GET", "/4/account/tokens"): (PAGE, ()),
    ("POST", "/4/storage/descriptors"): ((*EXTRACTION, "extract_descriptor"), ()),
    ("GET", "/4/storage/descriptors"): (PAGE, ()),
    ("PATCH", "/4/storage/descriptors/{descriptor_id}/linked_lists"): (
        ("list_id", "do"),
        ("list_id", "do"),
    ),
    ("GET", "/4/storage/persons"): (("user_data", "external_id", *PAGE), ()),
    ("PATCH", "/4/storage/persons/{person_id}/linked_descriptors"): (
        ("descriptor_id", "do"),
        ("descriptor_id", "do"),
    ),
    ("PATCH", "/4/storage/persons/{person_id}/linked_lists"): (
        ("list_id", "do"),
        ("list_id", "do"),
    ),
    ("POST", "/4/storage/lists"): (("type",), ()),
    ("GET", "/4/storage/lists"): (PAGE, ()),
    ("GET", "/4/storage/lists/{list_id}"): (PAGE, ()),
    ("POST", "/4/matching/verify"): (
        ("descriptor_id", "person_id"),
        ("descriptor_id", "person_id"),
    ),
    ("POST", "/4/matching/identify"): (
        ("person_id", "descriptor_id", "list_id", "person_ids", "limit"),
        (),
    ),
    ("POST", "/4/matching/match"): (
        ("person_id", "descriptor_id", "list_id", "descriptor_ids", "limit"),
        (),
    ),
    ("POST", "/4/matching/search"): (
        ("list_id", "descriptor_ids", "person_ids", "limit", *EXTRACTION),
        (),
    ),
    ("POST", "/4/liveness"): (("aggregate",), ()),
    ("POST", "/4/handlers/extractor"): (
        ("user_data", "external_id", "warped_image", "no_cache"),
        (),
    ),
    ("POST", "/4/handlers/verify"): (("person_id", "warped_image", "no_cache"), ("person_id",)),
    ("POST", "/4/handlers/identify"): (("warped_image", "no_cache"), ()),
    ("POST", "/4/handlers/verify/raw"): (("no_cache",), ()),
    ("GET", "/4/ws"): (WS, ()),
    ("GET", "/api/subscribe"): (WS, ()),
    ("GET", "/4/healthcheck"): (("include_luna_services",), ()),
    ("GET", "/healthcheck"): (("include_luna_services",), ()),
}


def _obj(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


TEXT = {"type": "string", "maxLength": 128}
RAW_ENTITY = _obj(
    {"id": UUID, "type": {"type": "string", "enum": ["descriptor"]}, "data": {"type": "string"}},
    ("id", "type", "data"),
)
POLICIES = _obj(
    {
        "list_id": UUID,
        "limit": {"type": "integer", "minimum": 1, "maximum": 5},
        "score_threshold": {"type": "number", "minimum": 0, "maximum": 1},
        "verify_threshold": {"type": "number", "minimum": 0, "maximum": 1},
        "identify_threshold": {"type": "number", "minimum": 0, "maximum": 1},
        "estimate_attributes": FLAG,
        "estimate_quality": FLAG,
    }
)
# (method, path) -> JSON body schema
JSON_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/4/accounts"): _obj(
        {
            "organization_name": TEXT,
            "email": {"type": "string", "format": "email"},
            "password": {"type": "string", "minLength": 8, "maxLength": 32},
        },
        ("organization_name", "email", "password"),
    ),
    ("POST", "/4/account/tokens"): _obj({"token_data": TEXT}, ("token_data",)),
    ("DELETE", "/4/account/tokens"): _obj(
        {"tokens": {"type": "array", "items": UUID, "minItems": 1}}, ("tokens",)
    ),
    ("PATCH", "/4/account/tokens/{token_id}"): _obj({"token_data": TEXT}, ("token_data",)),
    ("POST", "/4/storage/persons"): _obj(
        {"user_data": TEXT, "external_id": {"type": "string", "maxLength": 36}}
    ),
    ("PATCH", "/4/storage/persons/{person_id}"): _obj(
        {"user_data": TEXT, "external_id": {"type": "string", "maxLength": 36}}
    ),
    ("POST", "/4/storage/lists"): _obj({"list_data": TEXT}),
    ("DELETE", "/4/storage/lists"): _obj(
        {"lists": {"type": "array", "items": UUID, "minItems": 1}}, ("lists",)
    ),
    ("PATCH", "/4/storage/lists/{list_id}"): _obj({"list_data": TEXT}, ("list_data",)),
    ("PATCH", "/4/storage/linker"): _obj(
        {
            "list_id": UUID,
            "action": {"type": "string", "enum": ["attach", "detach"]},
            "persons": {"type": "array", "items": UUID},
            "descriptors": {"type": "array", "items": UUID},
        },
    ),
    ("PATCH", "/4/handlers/extractor"): POLICIES,
    ("PATCH", "/4/handlers/verify"): POLICIES,
    ("PATCH", "/4/handlers/identify"): POLICIES,
    ("POST", "/4/handlers/verify/raw"): _obj(
        {
            "references": {"type": "array", "items": RAW_ENTITY, "minItems": 1},
            "candidates": {"type": "array", "items": RAW_ENTITY, "minItems": 1},
        },
        ("references", "candidates"),
    ),
}
IMAGE_BODIES = {
    ("POST", "/4/storage/descriptors"),
    ("POST", "/4/matching/search"),
    ("POST", "/4/liveness"),
    ("POST", "/4/handlers/extractor"),
    ("POST", "/4/handlers/verify"),
    ("POST", "/4/handlers/identify"),
}
# The catalogue's 500s for an image without faces: 4003 (descriptors, search, identify
# handler) and 36005 "No faces found." (extractor and verify handlers).
NO_FACES_500 = {
    ("POST", "/4/storage/descriptors"): errors.NO_FACES_FOUND,
    ("POST", "/4/matching/search"): errors.NO_FACES_FOUND,
    ("POST", "/4/handlers/identify"): errors.NO_FACES_FOUND,
    ("POST", "/4/handlers/extractor"): errors.WS_DISABLED,
    ("POST", "/4/handlers/verify"): errors.WS_DISABLED,
}


def operation(method: str, path: str, operation_id: str) -> dict[str, Any]:
    """One operation of the fuzzing document."""
    names, required = QUERY.get((method, path), ((), ()))
    params = [
        {"name": n, "in": "query", "required": n in required, "schema": PARAMS[n]} for n in names
    ]
    params += [
        {"name": seg[1:-1], "in": "path", "required": True, "schema": UUID}
        for seg in path.split("/")
        if seg.startswith("{")
    ]
    op: dict[str, Any] = {
        "operationId": operation_id,
        "parameters": params,
        "responses": {"default": {"description": "any"}},
    }
    if (method, path) in JSON_BODIES:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": JSON_BODIES[(method, path)]}},
        }
    elif (method, path) in IMAGE_BODIES:
        op["requestBody"] = {
            "required": True,
            "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}},
        }
    return op


def document(served: dict[str, Any]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for path, methods in served["paths"].items():
        for method, op in methods.items():
            paths.setdefault(path, {})[method] = operation(method.upper(), path, op["operationId"])
    return {
        "openapi": "3.0.0",
        "info": {"title": "Backport 3 fuzz", "version": "4"},
        "paths": paths,
    }


class Backport3Fuzzer(Fuzzer):
    """test_fuzz's fuzzer; the catalogue's 500s for an image without faces are no failure."""

    def fuzz(self, operation: Any, mode: GenerationMode, real_ids: bool) -> None:
        try:
            super().fuzz(operation, mode, real_ids)
        except Unsatisfiable:
            # An operation without parameters or body has no input to violate.
            assert mode == GenerationMode.NEGATIVE, operation.path

    def _send(self, case: Any, label: str) -> None:
        before = len(self.report.failures)
        super()._send(case, label)
        key = (case.method.upper(), case.operation.path)
        if len(self.report.failures) > before and key in NO_FACES_500:
            failure = self.report.failures[-1]
            if f'server error 500: {{"error_code":{NO_FACES_500[key]},' in failure:
                self.report.failures.pop()


async def _objects(a: Client) -> dict[str, str]:
    """One real object of each kind the paths name, owned by the fuzzing account."""
    made = await a.image("/4/storage/descriptors", ASTRONAUT)
    descriptor = made["faces"][0]["id"]
    person = await a.call("POST", "/4/storage/persons", 201, json={"user_data": "fuzz"})
    lst = await a.call("POST", "/4/storage/lists", 201, json={"list_data": "fuzz"})
    token = await a.call(
        "POST", "/4/account/tokens", 201, json={"token_data": "fuzz"}, headers=a.basic
    )
    return {
        "descriptor_id": descriptor,
        "portrait_id": descriptor,
        "person_id": person["person_id"],
        "list_id": lst["list_id"],
        "token_id": token["token"],
    }


async def test_fuzz_every_backport3_operation(platform: Any, http: aiohttp.ClientSession) -> None:
    bp3_url = platform.runtime["backport3_url"]
    a = await Client(http, bp3_url).register()
    ids = await _objects(a)
    async with http.get(bp3_url + "/4/docs/spec", headers={"Accept": "application/x-yaml"}) as r:
        assert r.status == 200
        served = yaml.safe_load(await r.text())
    doc = document(served)
    schema = schemathesis.openapi.from_dict(doc)
    fuzzer = Backport3Fuzzer(bp3_url, a.basic, ids)
    report: Report = await asyncio.to_thread(fuzzer.run_all, schema)
    print(report.summary())
    assert report.operations >= 50 and report.examples >= report.operations * EXAMPLES
    assert not report.failures, report.summary() + "\n" + "\n".join(report.failures[:40])
    # The listener still serves the fuzzing account afterwards.
    assert (await a.call("GET", "/4/account", 200, headers=a.basic))["email"] == a.email
