"""RequestValidator against the gateway's OpenAPI document: LUNA error codes and detail texts."""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.common.errors import LunaError
from services.gateway.validation import RequestValidator

SPEC_PATH = (
    Path(__file__).resolve().parents[2]
    / "services"
    / "gateway"
    / "openapi"
    / "luna-platform-v6.yaml"
)
ACCOUNT = {"login": "user@example.com", "password": "secret", "account_type": "user"}
UUID = "8b8b5937-2e9c-4e8b-a7a7-5caf86621b5a"


@pytest.fixture(scope="module")
def validator() -> RequestValidator:
    return RequestValidator(yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8")))


def body_error(validator: RequestValidator, op_id: str, body: Any) -> LunaError:
    with pytest.raises(LunaError) as info:
        validator.validate_body(op_id, body)
    return info.value


def json_detail(path: str, message: str) -> str:
    return f"Failed to validate input json. Path: '{path}', message: '{message}'"


def test_valid_body_gets_defaults(validator: RequestValidator) -> None:
    body = validator.validate_body("createAccount", dict(ACCOUNT))
    assert body == {**ACCOUNT, "description": ""}


def _skeleton(schema: Any, depth: int = 0) -> Any:
    """An instance holding every property of `schema` that has no default (each in turn a
    skeleton), so that defaults deep down are reached, and none that has one."""
    if not isinstance(schema, dict) or depth > 12:
        return None
    if "properties" in schema or "allOf" in schema:
        out: dict[str, Any] = {}
        for sub in [schema, *schema.get("allOf", [])]:
            for name, prop in sub.get("properties", {}).items():
                if isinstance(prop, dict) and "default" not in prop:
                    out[name] = _skeleton(prop, depth + 1)
        return out
    if isinstance(schema.get("items"), dict):
        return [_skeleton(schema["items"], depth + 1)]
    return None


def test_defaults_applied_from_the_pruned_schema_are_the_full_schemas(
    validator: RequestValidator,
) -> None:
    """Each operation applies defaults from a schema pruned to the paths leading to them;
    on any instance that must fill in exactly what the whole schema would."""
    from services.gateway.validation import _apply_defaults

    with_defaults = 0
    for op_id in sorted(validator.operation_ids):
        schema = validator.body_schema(op_id)
        if schema is None:
            continue
        pruned = validator._op(op_id).body_defaults
        for instance in ({}, [{}], _skeleton(schema)):
            full, fast = copy.deepcopy(instance), copy.deepcopy(instance)
            _apply_defaults(schema, full)
            if pruned is not None:
                _apply_defaults(pruned, fast)
            assert fast == full, op_id
            with_defaults += full != instance
    assert with_defaults > 10  # the comparison did reach defaults


def test_unknown_field(validator: RequestValidator) -> None:
    err = body_error(validator, "patchAccount", {"description": "x", "extra_field": 1})
    assert (err.code, err.http_status, err.desc) == (12022, 400, "Bad/incomplete input data")
    assert err.detail == json_detail("extra_field", "extra fields not permitted")
    assert err.as_json() == {
        "error_code": 12022,
        "desc": "Bad/incomplete input data",
        "detail": json_detail("extra_field", "extra fields not permitted"),
    }


def test_missing_field(validator: RequestValidator) -> None:
    err = body_error(
        validator, "createAccount", {"login": "user@example.com", "account_type": "user"}
    )
    assert err.detail == json_detail("password", "field required")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("password", 123, "str type expected"),
        ("password", None, "none is not an allowed value"),
        ("description", "x" * 129, "ensure this value has at most 128 characters"),
        ("password", "ab", "ensure this value has at least 3 characters"),
        (
            "account_type",
            "admin",
            "value is not a valid enumeration member; permitted: 'advanced_user', 'user'",
        ),
        (
            "login",
            "User@example.com",
            'string does not match regex "^[a-z0-9_\\-\\.]+@[a-z]+\\.[a-z]{2,}$"',
        ),
    ],
)
def test_bad_account_fields(
    validator: RequestValidator, field: str, value: Any, message: str
) -> None:
    err = body_error(validator, "createAccount", {**ACCOUNT, field: value})
    assert err.code == 12022
    assert err.detail == json_detail(field, message)


def test_body_not_an_object(validator: RequestValidator) -> None:
    err = body_error(validator, "createAccount", [ACCOUNT])
    assert err.detail == json_detail("", "value is not a valid dict")


def test_empty_patch_is_rejected(validator: RequestValidator) -> None:
    err = body_error(validator, "patchAccount", {})
    assert err.code == 12022
    assert err.detail == json_detail("", "ensure this value has at least 1 items")


def test_token_permissions_nested_paths(validator: RequestValidator) -> None:
    err = body_error(validator, "createToken", {"permissions": {"face": ["view", "fly"]}})
    assert err.detail == json_detail(
        "permissions.face.1",
        "value is not a valid enumeration member; permitted: "
        "'creation', 'view', 'modification', 'deletion'",
    )
    err = body_error(validator, "createToken", {"permissions": {"faces": ["view"]}})
    assert err.detail == json_detail("permissions.faces", "extra fields not permitted")
    err = body_error(validator, "createToken", {"permissions": {"face": ["view", "view"]}})
    assert err.detail == json_detail("permissions.face", "the list has duplicated items")
    err = body_error(validator, "createToken", {"permissions": {"emit_events": {"allowed": 2}}})
    assert err.detail == json_detail(
        "permissions.emit_events.allowed",
        "value is not a valid enumeration member; permitted: 0, 1",
    )


def test_bad_uuid(validator: RequestValidator) -> None:
    for bad in ("not-a-uuid", UUID.upper(), UUID + "0"):
        err = body_error(
            validator, "createToken", {"permissions": {"emit_events": {"white_list": [bad]}}}
        )
        assert err.detail == json_detail(
            "permissions.emit_events.white_list.0", "value is not a valid uuid"
        )


def test_nullable_and_datetime(validator: RequestValidator) -> None:
    body = validator.validate_body("createToken", {"permissions": {}, "expiration_time": None})
    assert body == {
        "permissions": {},
        "expiration_time": None,
        "description": "",
        "visibility_area": "all",
    }
    validator.validate_body(
        "createToken", {"permissions": {}, "expiration_time": "2030-01-01T00:00:00Z"}
    )
    validator.validate_body(
        "createToken", {"permissions": {}, "expiration_time": "2021-08-11T14:57:18.416928+03:00"}
    )
    err = body_error(validator, "createToken", {"permissions": {}, "expiration_time": "tomorrow"})
    assert err.detail == json_detail("expiration_time", "invalid datetime format")
    err = body_error(validator, "createToken", {"permissions": {}, "visibility_area": "some"})
    assert err.detail == json_detail(
        "visibility_area", "value is not a valid enumeration member; permitted: 'account', 'all'"
    )


def test_wrong_integer_type(validator: RequestValidator) -> None:
    err = body_error(validator, "createToken", {"permissions": {"emit_events": {"allowed": "1"}}})
    assert err.detail == json_detail(
        "permissions.emit_events.allowed", "value is not a valid integer"
    )


def test_credentials_one_of(validator: RequestValidator) -> None:
    validator.validate_body(
        "verifyCredentials", {"login": "user@example.com", "password": "secret"}
    )
    validator.validate_body("verifyCredentials", {"account_id": UUID})
    err = body_error(validator, "verifyCredentials", {"login": "user@example.com"})
    assert err.code == 12022


def test_empty_and_unparseable_bodies(validator: RequestValidator) -> None:
    for raw in (b"", b"  ", None):
        with pytest.raises(LunaError) as info:
            validator.parse_json_body("createAccount", raw)
        assert (info.value.code, info.value.detail) == (12030, "Request does not contain data")
    with pytest.raises(LunaError) as info:
        validator.validate_body("createAccount", None)
    assert info.value.code == 12030
    with pytest.raises(LunaError) as info:
        validator.parse_json_body("createAccount", b'{"login": ')
    assert (info.value.code, info.value.detail) == (12002, "Request does not contain json")
    assert (
        validator.parse_json_body(
            "createAccount", b'{"login": "a@b.cd", "password": "xxx", "account_type": "user"}'
        )["description"]
        == ""
    )


def test_content_types(validator: RequestValidator) -> None:
    assert validator.validate_content_type("createAccount", "application/json; charset=utf-8") == (
        "application/json"
    )
    with pytest.raises(LunaError) as info:
        validator.validate_content_type("createAccount", "text/plain")
    assert info.value.code == 12023
    assert info.value.detail == "Content type is unacceptable allowed types: 'application/json'"
    with pytest.raises(LunaError) as info:
        validator.validate_content_type("createAccount", None)
    assert (info.value.code, info.value.http_status) == (12024, 415)


def test_query_defaults(validator: RequestValidator) -> None:
    assert validator.validate_query("getTokens", {}) == {"page": 1, "page_size": 10}
    assert validator.validate_query("getHealth", {}) == {"include_luna_services": 0}


def test_query_conversion(validator: RequestValidator) -> None:
    got = validator.validate_query(
        "getTokens",
        {
            "page": "3",
            "page_size": "1000",
            "account_id": UUID,
            "create_time__gte": "2020-01-01T00:00:00Z",
            "unknown": "ignored",
        },
    )
    assert got == {
        "page": 3,
        "page_size": 1000,
        "account_id": UUID,
        "create_time__gte": "2020-01-01T00:00:00Z",
    }
    assert validator.validate_query("getHealth", {"include_luna_services": "1"}) == {
        "include_luna_services": 1
    }


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("page_size", "0"),
        ("page_size", "1001"),
        ("page_size", "ten"),
        ("page_size", "1.5"),
        ("page", "0"),
        ("page", ""),
        ("account_id", "123"),
        ("create_time__lt", "yesterday"),
    ],
)
def test_bad_query_values(validator: RequestValidator, name: str, value: str) -> None:
    with pytest.raises(LunaError) as info:
        validator.validate_query("getTokens", {name: value})
    assert (info.value.code, info.value.http_status) == (12012, 400)
    assert info.value.detail == f"Bad query parameters '{name}'"


def test_bad_enum_query_value(validator: RequestValidator) -> None:
    with pytest.raises(LunaError) as info:
        validator.validate_query("getHealth", {"include_luna_services": "2"})
    assert info.value.detail == "Bad query parameters 'include_luna_services'"


def test_required_and_one_of_query_parameters() -> None:
    spec = {
        "openapi": "3.0.3",
        "info": {"title": "t", "version": "1"},
        "paths": {
            "/x": {
                "get": {
                    "operationId": "getX",
                    "x-luna-require-one-of": [["face_id", "event_id"]],
                    "parameters": [
                        {
                            "name": "list_id",
                            "in": "query",
                            "required": True,
                            "schema": {"type": "string", "format": "uuid"},
                        },
                        {
                            "name": "ids",
                            "in": "query",
                            "schema": {
                                "type": "array",
                                "items": {"type": "integer"},
                                "maxItems": 2,
                            },
                        },
                        {"name": "face_id", "in": "query", "schema": {"type": "string"}},
                        {"name": "event_id", "in": "query", "schema": {"type": "string"}},
                    ],
                    "responses": {"200": {"description": "ok"}},
                }
            }
        },
    }
    v = RequestValidator(spec)
    with pytest.raises(LunaError) as info:
        v.validate_query("getX", {"face_id": "a"})
    assert (info.value.code, info.value.detail) == (
        12014,
        "Required parameters 'list_id' not found",
    )
    with pytest.raises(LunaError) as info:
        v.validate_query("getX", {"list_id": UUID})
    assert (info.value.code, info.value.detail) == (
        12016,
        "No one parameters '[face_id, event_id]' not found",
    )
    assert v.validate_query("getX", {"list_id": UUID, "ids": "1,2", "event_id": "e"}) == {
        "list_id": UUID,
        "ids": [1, 2],
        "event_id": "e",
    }
    for bad in ("1,2,3", "1,x"):
        with pytest.raises(LunaError) as info:
            v.validate_query("getX", {"list_id": UUID, "ids": bad, "face_id": "f"})
        assert info.value.detail == "Bad query parameters 'ids'"


def test_unknown_operation(validator: RequestValidator) -> None:
    with pytest.raises(KeyError):
        validator.validate_body("noSuchOperation", {})


def test_validation_is_fast(validator: RequestValidator) -> None:
    n = 2000
    start = time.perf_counter()
    for _ in range(n):
        validator.validate_body("createAccount", dict(ACCOUNT))
        validator.validate_query("getTokens", {"page": "2", "page_size": "50"})
    per_call = (time.perf_counter() - start) / (2 * n)
    # Generous bound (shared CI machines); measured ~10-30 microseconds here.
    assert per_call < 1e-3


def test_faces_and_lists_operations(validator: RequestValidator) -> None:
    err = body_error(validator, "linkFaces", {"action": "move", "face_ids": [UUID]})
    assert err.detail == json_detail(
        "action", "value is not a valid enumeration member; permitted: 'attach', 'detach'"
    )
    err = body_error(validator, "linkFaces", {"action": "attach", "face_ids": []})
    assert err.detail == json_detail("face_ids", "ensure this value has at least 1 items")
    err = body_error(validator, "createFace", {"user_data": "u" * 129})
    assert err.detail == json_detail("user_data", "ensure this value has at most 128 characters")
    assert validator.validate_body("createFace", {"external_id": "e"}) == {
        "external_id": "e",
        "user_data": "",
        "avatar": "",
    }
    got = validator.validate_query(
        "getFaces", {"face_ids": f"{UUID},{UUID[:-1]}1", "targets": "face_id,lists"}
    )
    assert got["face_ids"] == [UUID, UUID[:-1] + "1"]
    assert got["targets"] == ["face_id", "lists"]
    assert (got["page"], got["page_size"]) == (1, 10)
    for name, value in (
        ("face_ids", f"{UUID},bad"),
        ("targets", "face_id,nope"),
        ("page_size", "0"),
    ):
        with pytest.raises(LunaError) as info:
            validator.validate_query("getFaces", {name: value})
        assert info.value.detail == f"Bad query parameters '{name}'"
    with pytest.raises(LunaError) as info:
        validator.validate_query("getAttributes", {})
    assert info.value.detail == "Required parameters 'attribute_ids' not found"
    assert validator.validate_query("extractAttributes", {})["ttl"] == 300
    with pytest.raises(LunaError):
        validator.validate_query("extractAttributes", {"ttl": "86401"})
    err = body_error(validator, "extractAttributes", [UUID] * 9)
    assert err.detail == json_detail("", "ensure this value has at most 8 items")


def test_binary_bodies_are_not_json_validated(validator: RequestValidator) -> None:
    assert validator.validate_content_type("createObject", "text/plain") == "text/plain"
    assert validator.validate_content_type("createImage", "image/jpeg") == "image/jpeg"
    with pytest.raises(LunaError) as info:
        validator.validate_content_type("createImage", "application/json")
    assert info.value.code == 12023
    assert validator.validate_body("createImage", b"\xff\xd8") == b"\xff\xd8"
