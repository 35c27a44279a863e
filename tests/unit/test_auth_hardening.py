"""Authentication hardening without a network: trusted networks for Luna-Account-Id, routes that
refuse it, cache entries bounded by their token's expiry and by the NATS connection."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from luna.faces.v1 import accounts_pb2

from services.common import errors, times
from services.gateway.auth import (
    Authenticator,
    AuthRule,
    is_trusted,
    parse_networks,
)

ACCOUNT = "0f4e9a1c-5d21-4c3a-9a7e-3b2f1d0c9e8a"


class FakeAccounts:
    """VerifyCredentials answering for one account, counting calls."""

    def __init__(self, expires_in: float | None = None) -> None:
        self.calls = 0
        self.expires_in = expires_in

    async def VerifyCredentials(self, request: Any) -> Any:
        self.calls += 1
        reply = accounts_pb2.VerifyCredentialsResponse(
            account_id=ACCOUNT, account_type=accounts_pb2.ACCOUNT_TYPE_USER
        )
        if request.WhichOneof("credentials") == "token":
            reply.token_id = "t1"
            reply.visibility_area = accounts_pb2.VISIBILITY_AREA_ALL
            if self.expires_in is not None:
                end = datetime.now(UTC) + timedelta(seconds=self.expires_in)
                reply.expiration_time.CopyFrom(times.to_timestamp(end))
        return reply


def _auth(accounts: FakeAccounts) -> Authenticator:
    return Authenticator(SimpleNamespace(accounts=accounts))  # type: ignore[arg-type]


def _request(headers: dict[str, str], remote: str | None = "127.0.0.1") -> Any:
    return SimpleNamespace(headers=headers, remote=remote)


def test_trusted_networks() -> None:
    loopback = parse_networks("127.0.0.0/8,::1/128")
    assert is_trusted("127.0.0.1", loopback)
    assert is_trusted("127.8.9.10", loopback)
    assert is_trusted("::1", loopback)
    assert is_trusted("::ffff:127.0.0.1", loopback)  # a dual-stack socket's view of IPv4
    assert not is_trusted("10.0.0.7", loopback)
    assert not is_trusted("2001:db8::1", loopback)
    assert not is_trusted(None, loopback)
    assert not is_trusted("not-an-ip", loopback)
    lan = parse_networks(" 10.0.0.0/8 , fd00::/8 ")
    assert is_trusted("10.200.1.1", lan) and is_trusted("fd00::5", lan)
    assert not is_trusted("127.0.0.1", lan)
    assert parse_networks("") == ()
    with pytest.raises(ValueError, match="LUNA_ACCOUNT_ID_HEADER_NETWORKS"):
        parse_networks("10.0.0.0/33")


async def test_account_header_only_from_trusted_networks(monkeypatch) -> None:
    monkeypatch.setenv("LUNA_ACCOUNT_ID_HEADER_NETWORKS", "192.0.2.0/24")
    accounts = FakeAccounts()
    auth = _auth(accounts)
    header = {"Luna-Account-Id": ACCOUNT}
    principal = await auth.authenticate(_request(header, "192.0.2.9"), AuthRule())
    assert principal.account_id == ACCOUNT
    for remote in ("127.0.0.1", "198.51.100.1", None):
        with pytest.raises(errors.LunaError) as err:
            await auth.authenticate(_request(header, remote), AuthRule())
        assert err.value.code == errors.ACCOUNT_HEADER_DISABLED
        assert err.value.http_status == 403
    assert accounts.calls == 1  # refused before any lookup


async def test_credential_routes_refuse_the_account_header() -> None:
    auth = _auth(FakeAccounts())
    rule = AuthRule(bearer=False, account_header=False)
    with pytest.raises(errors.LunaError) as err:
        await auth.authenticate(_request({"Luna-Account-Id": ACCOUNT}), rule)
    assert err.value.code == errors.ACCOUNT_HEADER_DISABLED
    assert "Basic" in err.value.detail


async def test_cached_token_never_outlives_its_expiry() -> None:
    accounts = FakeAccounts(expires_in=0.4)
    auth = _auth(accounts)
    headers = {"Authorization": "Bearer some.jwt.value"}
    await auth.authenticate(_request(headers), AuthRule())
    await auth.authenticate(_request(headers), AuthRule())
    assert accounts.calls == 1  # cached while valid
    await asyncio.sleep(0.5)
    await auth.authenticate(_request(headers), AuthRule())
    assert accounts.calls == 2  # past expiry: asked again (and the faces service refuses it)
    # Without an expiration time the TTL alone bounds the entry.
    forever = FakeAccounts(expires_in=None)
    auth = _auth(forever)
    for _ in range(3):
        await auth.authenticate(_request(headers), AuthRule())
    assert forever.calls == 1


async def test_cache_is_not_trusted_while_nats_is_away() -> None:
    accounts = FakeAccounts()
    auth = _auth(accounts)
    nc = SimpleNamespace(is_connected=True, stats={"reconnects": 0})
    auth.follow(nc)
    headers = {"Authorization": "Basic dUBleGFtcGxlLmNvbTpwdw=="}
    await auth.authenticate(_request(headers), AuthRule())
    await auth.authenticate(_request(headers), AuthRule())
    assert accounts.calls == 1
    nc.is_connected = False  # invalidations may be missed now: verify every request
    await auth.authenticate(_request(headers), AuthRule())
    await auth.authenticate(_request(headers), AuthRule())
    assert accounts.calls == 3
    nc.is_connected = True
    await auth.authenticate(_request(headers), AuthRule())
    await auth.authenticate(_request(headers), AuthRule())
    assert accounts.calls == 4
    # A reconnect the gateway never saw as a disconnection still drops what it held.
    nc.stats["reconnects"] = 1
    started = time.monotonic()
    await auth.authenticate(_request(headers), AuthRule())
    assert accounts.calls == 5 and time.monotonic() - started < 1


def test_front_proxy_strips_the_account_header() -> None:
    """Envoy connects to the gateway from a trusted (loopback) address; a client's
    Luna-Account-Id must not reach the gateway through it."""
    from pathlib import Path

    import yaml

    config = yaml.safe_load(
        (Path(__file__).resolve().parents[2] / "deploy" / "envoy" / "envoy.yaml").read_text()
    )
    hosts = [
        host
        for listener in config["static_resources"]["listeners"]
        for chain in listener["filter_chains"]
        for flt in chain["filters"]
        for host in flt["typed_config"].get("route_config", {}).get("virtual_hosts", [])
        # Hosts that reach the gateway; the internal listener routes gRPC to the services.
        if any(r.get("route", {}).get("cluster") == "luna_gateway" for r in host["routes"])
    ]
    assert hosts
    for host in hosts:
        assert "luna-account-id" in [h.lower() for h in host.get("request_headers_to_remove", [])]


async def test_verification_across_a_reconnect_is_not_cached() -> None:
    class Slow(FakeAccounts):
        async def VerifyCredentials(self, request: Any) -> Any:
            await asyncio.sleep(0.1)
            return await super().VerifyCredentials(request)

    accounts = Slow()
    auth = _auth(accounts)
    nc = SimpleNamespace(is_connected=True, stats={"reconnects": 0})
    auth.follow(nc)
    headers = {"Authorization": "Basic dUBleGFtcGxlLmNvbTpwdw=="}
    first = asyncio.ensure_future(auth.authenticate(_request(headers), AuthRule()))
    await asyncio.sleep(0.02)
    nc.stats["reconnects"] = 1  # an invalidation may have been lost meanwhile
    await first
    await auth.authenticate(_request(headers), AuthRule())
    assert accounts.calls == 2
    # While disconnected, concurrent requests still share one verification.
    nc.is_connected = False
    await asyncio.gather(*(auth.authenticate(_request(headers), AuthRule()) for _ in range(8)))
    assert accounts.calls == 3
