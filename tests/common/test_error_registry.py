"""The LUNA error registry (services/common/luna_errors.yaml) is well formed and matches LUNA."""

from __future__ import annotations

from http import HTTPStatus
from pathlib import Path

import pytest
import yaml

REGISTRY = Path(__file__).resolve().parents[2] / "services" / "common" / "luna_errors.yaml"


@pytest.fixture(scope="module")
def entries() -> list[dict]:
    data = yaml.safe_load(REGISTRY.read_text(encoding="utf-8"))
    assert isinstance(data, list) and data
    return data


@pytest.fixture(scope="module")
def by_code(entries: list[dict]) -> dict[int, dict]:
    return {e["code"]: e for e in entries}


def test_entries_have_the_documented_fields(entries: list[dict]) -> None:
    for e in entries:
        assert set(e) <= {"code", "http_status", "desc", "detail"}, e
        assert {"code", "http_status", "desc"} <= set(e), e
        assert type(e["code"]) is int and e["code"] >= 0, e
        assert isinstance(e["desc"], str) and e["desc"].strip(), e
        assert isinstance(e.get("detail", ""), str), e


def test_codes_are_unique(entries: list[dict]) -> None:
    codes = [e["code"] for e in entries]
    assert len(codes) == len(set(codes))


def test_statuses_are_valid_http_statuses(entries: list[dict]) -> None:
    valid = {s.value for s in HTTPStatus}
    for e in entries:
        assert type(e["http_status"]) is int and e["http_status"] in valid, e
        # Every error except "Success" is a client or server error.
        if e["code"] != 0:
            assert 400 <= e["http_status"] < 600, e


@pytest.mark.parametrize(
    ("code", "status", "desc"),
    [
        (0, 200, "Success"),
        (1, 500, "Internal server error"),
        # platform reference example: 12022 / "Bad/incomplete input data"
        (12022, 400, "Bad/incomplete input data"),
        # seed examples (backport3 / tasks OpenAPI texts): status above each example
        (12012, 400, "Bad/incomplete input data"),
        (12014, 400, "Bad/incomplete input data"),
        (12016, 400, "Bad/incomplete input data"),
        (12024, 415, "Bad/incomplete input data"),
        (12029, 501, "Functionality is not implemented"),
        (11002, 401, "Authorization failed"),
        (12010, 401, "Bad/incomplete input data"),
        (22003, 404, "Object not found"),
        (22008, 409, "Unique constraint error"),
        (28001, 404, "Object not found"),
        (9, 504, "Request timeout"),
        (12049, 403, "Forbidden"),
        # docs.visionlabs.ai code pages, status by meaning
        (22002, 404, "Object not found"),
        (12013, 404, "Resource not found"),
        (12021, 405, "Method not allowed"),
        (41001, 409, "Unique constraint error"),
        (11059, 403, "Forbidden"),
    ],
)
def test_well_known_codes(by_code: dict[int, dict], code: int, status: int, desc: str) -> None:
    assert by_code[code]["http_status"] == status
    assert by_code[code]["desc"] == desc


def test_detail_templates(by_code: dict[int, dict]) -> None:
    assert (
        by_code[12022]["detail"]
        == "Failed to validate input json. Path: '{value}', message: '{value}'"
    )
    assert by_code[12012]["detail"] == "Bad query parameters '{value}'"
    assert by_code[12014]["detail"] == "Required parameters '{value}' not found"
    assert by_code[12030]["detail"] == "Request does not contain data"


def test_codes_used_by_the_common_kit_are_registered(by_code: dict[int, dict]) -> None:
    from services.common import errors

    named = {
        name: value
        for name, value in vars(errors).items()
        if name.isupper() and isinstance(value, int) and not name.startswith("_")
    }
    assert len(named) > 20
    for name, code in named.items():
        assert code in by_code, name
    err = errors.LunaError(12022, "Failed to validate input json. Path: 'x', message: 'y'")
    assert (err.http_status, err.desc) == (400, "Bad/incomplete input data")


def test_every_named_code_is_registered_once(by_code: dict[int, dict]) -> None:
    """errors.py names each code the platform raises exactly once, and only registered ones."""
    from services.common import errors

    named = {
        name: value
        for name, value in vars(errors).items()
        if name.isupper() and type(value) is int and not name.startswith("_")
    }
    assert named, "errors.py names no codes"
    assert {name for name, code in named.items() if code not in by_code} == set()
    assert len(set(named.values())) == len(named), "a code has two names"


def test_bad_json_words_the_path_and_message() -> None:
    from services.common import errors

    err = errors.bad_json("limit", "value is not a valid integer")
    assert (err.code, err.http_status) == (12022, 400)
    assert err.detail == (
        "Failed to validate input json. Path: 'limit', message: 'value is not a valid integer'"
    )
