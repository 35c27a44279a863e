"""Account takeover and stale credentials, driven through REST on two gateway processes.

The second gateway (`python -m services.gateway` on its own port, against the same platform's
services and NATS) trusts Luna-Account-Id only from TEST-NET-1, so loopback clients are
refused there; every credential change made through one gateway must be honoured by the
other at once, and no token may work past its `expiration_time` on either.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from lunatest import assert_error, basic, bearer, unique_login

from services.launcher.embedded import pick_free_port

pytestmark = pytest.mark.e2e
ALL_TOKEN = {"token": ["creation", "view", "modification", "deletion"], "face": ["view"]}


@pytest.fixture(scope="module")
async def second_gateway(platform, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    runtime = platform.runtime
    env = {k: v for k, v in os.environ.items() if not k.startswith("LUNA_")}
    port = pick_free_port()
    env.update(
        LUNA_DATA_DIR=str(platform.data_dir),
        LUNA_DATABASE_URL=runtime["database_url"],
        LUNA_NATS_URL=runtime["nats_url"],
        LUNA_HOST="127.0.0.1",
        LUNA_PORT=str(port),
        LUNA_ACCOUNT_ID_HEADER_NETWORKS="192.0.2.0/24",
        PYTHONUNBUFFERED="1",
    )
    for name, service in runtime["services"].items():
        if name != "gateway":
            env[f"LUNA_{name.upper()}_ADDRESS"] = service["address"]
    log_path = Path(tmp_path_factory.mktemp("gateway2")) / "gateway.log"
    with log_path.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services.gateway", env=env, stdout=log, stderr=log
        )
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(300):
                if proc.returncode is not None:
                    raise RuntimeError("second gateway exited:\n" + log_path.read_text())
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(url + "/version") as resp:
                        if resp.status == 200:
                            break
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError("second gateway did not start:\n" + log_path.read_text())
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def _account(http: aiohttp.ClientSession, url: str) -> tuple[str, str, str]:
    login, password = unique_login(), "victim-pass1"
    body = {"login": login, "password": password, "account_type": "user"}
    async with http.post(url + "/6/accounts", json=body) as resp:
        assert resp.status == 201
        return (await resp.json())["account_id"], login, password


async def test_account_id_alone_cannot_take_an_account_over(platform, http) -> None:
    url = platform.url
    victim, login, password = await _account(http, url)
    header = {"Luna-Account-Id": victim}
    takeover = {"password": "attacker123"}
    async with http.patch(url + "/6/account", json=takeover, headers=header) as r:
        await assert_error(r, 403, 11061, "Basic")
    async with http.patch(url + "/6/account", json={"login": unique_login()}, headers=header) as r:
        await assert_error(r, 403, 11061)
    async with http.delete(url + "/6/account", headers=header) as r:
        await assert_error(r, 403, 11061)
    token_body = {"permissions": ALL_TOKEN}
    async with http.post(url + "/6/tokens", json=token_body, headers=header) as r:
        await assert_error(r, 403, 11061)
    async with http.get(url + "/6/tokens", headers=header) as r:  # listings show each JWT
        await assert_error(r, 403, 11061)
    # The victim is untouched: the old password works, no token was made for the attacker.
    async with http.get(url + "/6/tokens", headers=basic(login, password)) as r:
        assert r.status == 200
        assert (await r.json())["tokens"] == []
    # From a trusted network (loopback by default) the header still reads, as LUNA documents.
    async with http.get(url + "/6/account", headers=header) as r:
        assert r.status == 200
        assert (await r.json())["account_id"] == victim
    # With real credentials the same changes work.
    async with http.post(url + "/6/tokens", json=token_body, headers=basic(login, password)) as r:
        assert r.status == 201


async def test_account_header_refused_outside_trusted_networks(
    platform, http, second_gateway
) -> None:
    victim, login, password = await _account(http, platform.url)
    header = {"Luna-Account-Id": victim}
    for path in ("/6/account", "/6/faces", "/6/lists"):
        async with http.get(second_gateway + path, headers=header) as r:
            await assert_error(r, 403, 11061, "network")
    async with http.post(second_gateway + "/6/faces", json={}, headers=header) as r:
        await assert_error(r, 403, 11061)
    async with http.get(second_gateway + "/6/faces", headers=basic(login, password)) as r:
        assert r.status == 200


async def _status(http: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> int:
    async with http.get(url + "/6/faces", headers=headers) as r:
        await r.read()
        return r.status


async def test_expired_token_refused_on_every_gateway(platform, http, second_gateway) -> None:
    _, login, password = await _account(http, platform.url)
    expires = datetime.now(UTC) + timedelta(seconds=3)
    body = {
        "permissions": ALL_TOKEN,
        "expiration_time": expires.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }
    owner = basic(login, password)
    async with http.post(platform.url + "/6/tokens", json=body, headers=owner) as r:
        assert r.status == 201
        token = (await r.json())["token"]
    gateways = (platform.url, second_gateway)
    for gw in gateways:  # both have it cached now
        assert await _status(http, gw, bearer(token)) == 200
    await asyncio.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 0.1)
    for gw in gateways:
        async with http.get(gw + "/6/faces", headers=bearer(token)) as r:
            await assert_error(r, 401, 11065, "expired")


async def _refused_soon(http: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> None:
    """The credential is refused within about two seconds (NATS delivery), far below the
    cache TTL (30 s)."""
    for _ in range(40):
        status = await _status(http, url, headers)
        if status == 401:
            return
        assert status == 200
        await asyncio.sleep(0.05)
    raise AssertionError(f"{url} still accepts a changed credential")


async def test_changes_through_one_gateway_reach_the_other(platform, http, second_gateway) -> None:
    a, b = platform.url, second_gateway
    _, login, password = await _account(http, a)
    old = basic(login, password)
    token_body = {"permissions": ALL_TOKEN}
    async with http.post(b + "/6/tokens", json=token_body, headers=old) as r:
        token = (await r.json())["token"]
        token_id = (await r.json())["token_id"]
    for gw in (a, b):
        assert await _status(http, gw, old) == 200
        assert await _status(http, gw, bearer(token)) == 200
    # A password changed through A: B refuses the old one.
    async with http.patch(a + "/6/account", json={"password": "new-pass-2"}, headers=old) as r:
        assert r.status == 204
    await _refused_soon(http, b, old)
    new = basic(login, "new-pass-2")
    assert await _status(http, b, new) == 200
    # A token deleted through B: A refuses it.
    async with http.delete(b + f"/6/tokens/{token_id}", headers=new) as r:
        assert r.status == 204
    await _refused_soon(http, a, bearer(token))
    # A token replaced through A: B refuses its old JWT.
    async with http.post(a + "/6/tokens", json=token_body, headers=new) as r:
        second = await r.json()
    assert await _status(http, b, bearer(second["token"])) == 200
    async with http.put(a + f"/6/tokens/{second['token_id']}", json=token_body, headers=new) as r:
        assert r.status == 200
    await _refused_soon(http, b, bearer(second["token"]))
    # The account deleted through B: A refuses its password.
    assert await _status(http, a, new) == 200
    async with http.delete(b + "/6/account", headers=new) as r:
        assert r.status == 204
    await _refused_soon(http, a, new)
