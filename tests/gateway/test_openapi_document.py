"""The gateway's OpenAPI document is a valid OpenAPI 3.0 document with LUNA's conventions."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from openapi_spec_validator import validate

SPEC_PATH = (
    Path(__file__).resolve().parents[2]
    / "services"
    / "gateway"
    / "openapi"
    / "luna-platform-v6.yaml"
)
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
UUID_RE = "^[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}$"

# Operations LUNA lists without any authorization (besides every OPTIONS operation).
PUBLIC_OPERATIONS = {
    "getVersion",
    "getHealth",
    "getSpec",
    "getDevManual",
    "getConfig",
    "getFeatures",
    "getPlugins",
    "createAccount",
    "verifyCredentials",
}


@pytest.fixture(scope="module")
def spec() -> dict:
    return yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))


def _operations(spec: dict):
    for path, item in spec["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def _deref(spec: dict, node: dict) -> dict:
    while isinstance(node, dict) and "$ref" in node:
        target: object = spec
        for part in node["$ref"][2:].split("/"):
            target = target[part]  # type: ignore[index]
        node = target  # type: ignore[assignment]
    return node


def test_document_is_valid_openapi_3(spec: dict) -> None:
    assert spec["openapi"].startswith("3.0.")
    validate(spec)


def test_operation_ids_are_unique(spec: dict) -> None:
    ids = [op["operationId"] for _, _, op in _operations(spec)]
    assert len(ids) == len(set(ids))


def test_every_operation_has_a_luna_request_id_header(spec: dict) -> None:
    for path, method, op in _operations(spec):
        params = [_deref(spec, p) for p in op.get("parameters", [])]
        rid = [p for p in params if p["in"] == "header" and p["name"] == "Luna-Request-Id"]
        assert rid, f"{method.upper()} {path}"
        assert _deref(spec, rid[0]["schema"])["pattern"].startswith("^[0-9]{10},")


def test_every_non_public_v6_operation_requires_security(spec: dict) -> None:
    schemes = set(spec["components"]["securitySchemes"])
    assert schemes == {"BasicAuth", "BearerAuth", "LunaAccountIdAuth"}
    for path, method, op in _operations(spec):
        if (
            not path.startswith("/6/")
            or method == "options"
            or op["operationId"] in PUBLIC_OPERATIONS
        ):
            continue
        security = op.get("security", spec.get("security"))
        assert security, f"{method.upper()} {path} has no security requirement"
        for requirement in security:
            assert set(requirement) <= schemes


def test_public_operations_need_no_security(spec: dict) -> None:
    ops = {op["operationId"]: op for _, _, op in _operations(spec)}
    for op_id in PUBLIC_OPERATIONS:
        assert ops[op_id]["security"] == [], op_id


def test_required_paths_are_present(spec: dict) -> None:
    expected = {
        ("/6/version", "get"),
        ("/6/healthcheck", "get"),
        ("/healthcheck", "get"),
        ("/6/docs/spec", "get"),
        ("/6/config", "get"),
        ("/6/features", "get"),
        ("/6/accounts", "post"),
        ("/6/account", "get"),
        ("/6/account", "patch"),
        ("/6/tokens", "post"),
        ("/6/tokens", "get"),
        ("/6/tokens/{token_id}", "get"),
        ("/6/tokens/{token_id}", "put"),
        ("/6/tokens/{token_id}", "delete"),
        ("/6/credentials/verifier", "post"),
    }
    present = {(path, method) for path, method, _ in _operations(spec)}
    assert expected <= present, expected - present


def test_account_uses_basic_or_account_header_only(spec: dict) -> None:
    for method in ("get", "patch"):
        security = spec["paths"]["/6/account"][method]["security"]
        assert {name for req in security for name in req} == {"BasicAuth", "LunaAccountIdAuth"}


def test_uuid_patterns_are_complete(spec: dict) -> None:
    assert spec["components"]["schemas"]["uuid"]["pattern"] == UUID_RE
    text = SPEC_PATH.read_text(encoding="utf-8")
    assert "..." not in text.replace("'...'", "")


def test_token_permissions_object(spec: dict) -> None:
    perms = spec["components"]["schemas"]["permissions"]
    assert perms["additionalProperties"] is False
    props = perms["properties"]
    for key in (
        "face",
        "list",
        "event",
        "attribute",
        "handler",
        "verifier",
        "task",
        "image",
        "object",
    ):
        assert set(_deref(spec, props[key])["items"]["enum"]) <= {
            "creation",
            "view",
            "modification",
            "deletion",
        }
    assert set(props["face"]["items"]["enum"]) == {"creation", "view", "modification", "deletion"}
    emit = _deref(spec, props["emit_events"])
    assert set(emit["properties"]) == {"allowed", "white_list", "black_list"}


def test_request_bodies_reject_unknown_fields(spec: dict) -> None:
    for op_id_path, method in (
        ("/6/accounts", "post"),
        ("/6/tokens", "post"),
        ("/6/account", "patch"),
    ):
        body = spec["paths"][op_id_path][method]["requestBody"]["content"]["application/json"]
        assert _deref(spec, body["schema"])["additionalProperties"] is False
