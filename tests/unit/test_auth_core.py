"""Pure parts of authentication and authorization: no network."""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any

import pytest

from services.common import errors, permissions
from services.common.permissions import Principal
from services.gateway import request_ids
from services.gateway.auth import _basic_pair


def test_request_ids_are_generated_in_luna_format() -> None:
    rid = request_ids.new_request_id()
    assert request_ids.is_valid(rid)
    assert not request_ids.is_valid("1536751345,not-a-uuid")
    assert not request_ids.is_valid("153675134,8b8b5937-2e9c-4e8b-a7a7-5caf86621b5a")
    assert request_ids.new_request_id() != rid
    for _ in range(200):  # every one a version 4 UUID of the RFC 4122 variant
        seconds, made = request_ids.new_request_id().split(",")
        parsed = uuid.UUID(made)
        assert str(parsed) == made and parsed.version == 4 and parsed.variant == uuid.RFC_4122
        assert abs(int(seconds) - time.time()) < 5


def test_basic_header_parsing() -> None:
    raw = base64.b64encode(b"luna@visionlabs.ru:pa:ss").decode()
    assert _basic_pair(raw) == ("luna@visionlabs.ru", "pa:ss")
    bad_ones = ("!!!", base64.b64encode(b"no-colon").decode(), base64.b64encode(b":pw").decode())
    # Non-ASCII header text (aiohttp hands obs-text bytes over surrogate-escaped), and
    # base64 of bytes that are not UTF-8: a 401 like any malformed header, never a 500.
    bad_ones += ("\u00e9abc", "YWJj\udce9", base64.b64encode(b"\xff:pw").decode())
    for bad in bad_ones:
        with pytest.raises(errors.LunaError) as exc:
            _basic_pair(bad)
        assert exc.value.code == errors.BAD_BASIC_AUTH
        assert exc.value.http_status == 401


@pytest.mark.parametrize(
    ("account_type", "method", "area", "sees_all"),
    [
        ("user", "basic", "all", False),
        ("advanced_user", "basic", "all", True),
        ("admin", "basic", "all", True),
        ("advanced_user", "bearer", "all", True),
        ("advanced_user", "bearer", "account", False),
        ("user", "bearer", "all", False),
        ("advanced_user", "account_id", "all", False),
    ],
)
def test_visibility_matrix(account_type: str, method: str, area: str, sees_all: bool) -> None:
    principal = Principal("a", account_type, method, visibility_area=area)
    assert principal.sees_all is sees_all


def test_token_permissions_restrict_bearers_only() -> None:
    token = Principal("a", "user", "bearer", permissions={"face": ("view",)})
    assert token.allows("face", "view")
    assert not token.allows("face", "deletion")
    assert not token.allows("list", "view")
    assert Principal("a", "user", "basic").allows("list", "deletion")


def test_permission_validation() -> None:
    assert permissions.validate_permissions({"face": ["view", "creation"]}) is None
    assert permissions.validate_permissions({"emit_events": {"allowed": 1}}) is None
    assert "unknown" in (permissions.validate_permissions({"faces": ["view"]}) or "")
    assert "does not accept" in (permissions.validate_permissions({"face": ["fly"]}) or "")
    assert "twice" in (permissions.validate_permissions({"face": ["view", "view"]}) or "")
    assert permissions.validate_permissions({"emit_events": ["allowed"]}) is not None


def test_permissions_round_trip_through_protobuf() -> None:
    perms = {
        "face": ["view"],
        "list": [],
        "emit_events": {"allowed": 1, "white_list": ["8b8b5937-2e9c-4e8b-a7a7-5caf86621b5a"]},
    }
    assert permissions.from_pb(permissions.to_pb(perms)) == perms


async def test_concurrent_misses_share_one_verification_and_invalidation_is_honoured() -> None:
    import asyncio
    from types import SimpleNamespace

    from luna.faces.v1 import accounts_pb2

    from services.gateway.auth import Authenticator

    calls: list[str] = []

    class Accounts:
        async def VerifyCredentials(self, request: Any) -> Any:
            calls.append(request.login_password.login)
            n = len(calls)
            await asyncio.sleep(0.05)  # a password hash check takes a while
            return accounts_pb2.VerifyCredentialsResponse(
                account_id=f"acc-{n}", account_type=accounts_pb2.ACCOUNT_TYPE_USER
            )

    auth = Authenticator(SimpleNamespace(accounts=Accounts()))  # type: ignore[arg-type]

    def request() -> accounts_pb2.VerifyCredentialsRequest:
        return accounts_pb2.VerifyCredentialsRequest(
            login_password=accounts_pb2.VerifyCredentialsRequest.LoginPassword(
                login="a", password="p"
            )
        )

    got = await asyncio.gather(*(auth._verify("k", "basic", request) for _ in range(64)))
    assert len(calls) == 1 and {p.account_id for p in got} == {"acc-1"}
    assert (await auth._verify("k", "basic", request)).account_id == "acc-1"  # cached
    # An invalidation during a verification: that result is not cached, later requests
    # do not join it.
    auth.forget(account_id="acc-1")
    first = asyncio.ensure_future(auth._verify("k", "basic", request))
    await asyncio.sleep(0.01)
    auth.forget(account_id="acc-1")
    second = await auth._verify("k", "basic", request)
    assert (await first).account_id == "acc-2" and second.account_id == "acc-3"
    assert (await auth._verify("k", "basic", request)).account_id == "acc-3"


async def test_cached_basic_callers_cost_a_hash_and_malformed_headers_are_never_cached() -> None:
    from types import SimpleNamespace

    from luna.faces.v1 import accounts_pb2

    from services.gateway.auth import Authenticator, AuthRule

    verified: list[tuple[str, str]] = []

    class Accounts:
        async def VerifyCredentials(self, request: Any) -> Any:
            verified.append((request.login_password.login, request.login_password.password))
            return accounts_pb2.VerifyCredentialsResponse(
                account_id="acc-1", account_type=accounts_pb2.ACCOUNT_TYPE_USER
            )

    auth = Authenticator(SimpleNamespace(accounts=Accounts()))  # type: ignore[arg-type]

    def caller(authorization: str) -> Any:
        return SimpleNamespace(headers={"Authorization": authorization})

    good = "Basic " + base64.b64encode(b"user@example.com:pass:word").decode()
    for _ in range(3):
        principal = await auth.authenticate(caller(good), AuthRule())
        assert principal.account_id == "acc-1" and principal.method == "basic"
    assert verified == [("user@example.com", "pass:word")]
    # Another password for the same login is verified on its own, not served from the cache.
    other = "Basic " + base64.b64encode(b"user@example.com:guess").decode()
    await auth.authenticate(caller(other), AuthRule())
    assert verified[-1] == ("user@example.com", "guess")
    for _ in range(2):  # refused each time: nothing about it was cached
        with pytest.raises(errors.LunaError) as exc:
            await auth.authenticate(caller("Basic \udce9\udce9"), AuthRule())
        assert exc.value.code == errors.BAD_BASIC_AUTH
    # Invalidation drops the cached caller: the next request verifies again.
    auth.forget(account_id="acc-1")
    await auth.authenticate(caller(good), AuthRule())
    assert len(verified) == 3
