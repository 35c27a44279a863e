"""services/common without a network: config, errors, times, JWTs, passwords."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from services.common import config, errors, times
from services.faces import jwt_tokens, passwords

SECRET = "a-test-secret-long-enough-for-hs256-0123456789"


def test_settings_are_declared_once_and_read_late(monkeypatch: pytest.MonkeyPatch) -> None:
    s = config.declare("LUNA_TEST_ONLY_SETTING", 7, "a test setting")
    assert s.get_int() == 7
    monkeypatch.setenv("LUNA_TEST_ONLY_SETTING", "9")
    assert s.get_int() == 9
    with pytest.raises(ValueError):
        config.declare("NOT_LUNA", 1, "bad name")


def test_every_setting_is_listed_with_a_doc() -> None:
    names = {s.name: s for s in config.declared()}
    for expected in (
        "LUNA_PORT",
        "LUNA_DATA_DIR",
        "LUNA_DATABASE_URL",
        "LUNA_NATS_URL",
        "LUNA_FACES_ADDRESS",
        "LUNA_AUTH_CACHE_TTL",
        "LUNA_TOKEN_SECRET",
    ):
        assert expected in names
    assert all(s.doc for s in names.values())
    assert os.environ.get("LUNA_TEST_ONLY_SETTING") is None


def test_luna_errors_carry_registered_status_and_desc() -> None:
    err = errors.LunaError(errors.BAD_JSON, "Failed to validate input json. Path: 'x'")
    assert (err.http_status, err.desc) == (400, "Bad/incomplete input data")
    assert err.as_json() == {
        "error_code": 12022,
        "desc": "Bad/incomplete input data",
        "detail": "Failed to validate input json. Path: 'x'",
    }
    assert errors.LunaError(errors.UNAUTHORIZED).http_status == 401
    assert errors.grpc_status_for(404) == grpc.StatusCode.NOT_FOUND
    assert errors.grpc_status_for(418) == grpc.StatusCode.INVALID_ARGUMENT
    unknown = errors.LunaError(987654, "x")
    assert unknown.http_status == 500  # never invent a client error for an unknown code


def test_times_round_trip() -> None:
    now = times.now()
    text = times.to_rfc3339(now)
    assert text is not None and text.endswith("Z")
    assert times.parse_rfc3339(text) == now
    assert times.from_timestamp(times.to_timestamp(now)) == now
    assert times.parse_rfc3339("2021-08-11T14:57:18.416928+03:00").utcoffset() is not None


def test_timestamp_text_is_the_datetime_text() -> None:
    """The fast Timestamp -> RFC 3339 renderer says exactly what the datetime path says, at
    the edges of the range, whole seconds, before the epoch and sub-microsecond nanos."""
    cases = [(0, 0), (1, 999), (1, 999_999_999), (-1, 5000), (-62135596800, 0)]
    cases += [(253402300799, 999_999_999), (1765141489, 123_456_789), (1765141489, 1000)]
    for seconds, nanos in cases:
        stamp = Timestamp(seconds=seconds, nanos=nanos)
        assert times.timestamp_rfc3339(stamp) == times.to_rfc3339(times.from_timestamp(stamp))
    assert times.timestamp_rfc3339(Timestamp(seconds=0)) == "1970-01-01T00:00:00.000000Z"


def test_jwt_issue_and_decode() -> None:
    expires = datetime.now(UTC) + timedelta(hours=1)
    jwt = jwt_tokens.issue(SECRET, "tid", "aid", expires)
    payload = jwt_tokens.decode(SECRET, jwt)
    assert payload is not None and payload["tokenId"] == "tid" and payload["accountId"] == "aid"
    assert jwt_tokens.decode(SECRET[::-1], jwt) is None
    assert jwt_tokens.issue(SECRET, "tid", "aid", None) != jwt


async def test_passwords_hash_and_verify() -> None:
    hashed = await passwords.hash_password("pa55word")
    assert hashed.startswith("$argon2id$") and "pa55word" not in hashed
    assert await passwords.verify_password(hashed, "pa55word")
    assert not await passwords.verify_password(hashed, "pa55wore")
    assert not await passwords.verify_password("garbage", "pa55word")


def test_readme_configuration_table_is_current() -> None:
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LUNA_")}
    table = subprocess.run(
        [sys.executable, "-m", "services", "config", "--markdown"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    readme = (root / "README.md").read_text()
    start = readme.index("<!-- config-table:start -->\n") + len("<!-- config-table:start -->\n")
    block = readme[start : readme.index("<!-- config-table:end -->")]
    assert block == table, "README's configuration table is stale: paste `luna config --markdown`"


def test_copy_fields_keeps_presence_and_copies_messages_and_lists() -> None:
    from luna.faces.v1 import faces_pb2
    from luna.matcher.v1 import matcher_pb2

    from services.common import pbjson

    names = ("face_ids", "list_id", "user_data", "create_time_gte")
    src = matcher_pb2.FaceCandidates(face_ids=["a", "b"], list_id="l")
    out = pbjson.copy_fields(src, faces_pb2.FaceFilter(), names)
    assert list(out.face_ids) == ["a", "b"] and out.list_id == "l"
    assert not out.HasField("user_data") and not out.HasField("create_time_gte")
    src.user_data = ""  # set to empty is not unset
    src.create_time_gte.seconds = 5
    out = pbjson.copy_fields(src, faces_pb2.FaceFilter(), names)
    assert out.HasField("user_data") and out.user_data == ""
    assert out.create_time_gte.seconds == 5
