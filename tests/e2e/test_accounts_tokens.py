"""Accounts, tokens and the three ways to authenticate, including every refusal."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

from lunatest import UUID_RE, assert_error, basic, bearer, create_account, unique_login

ALL_TOKEN = {"token": ["creation", "view", "modification", "deletion"]}


async def test_create_account_and_read_it(platform, http) -> None:
    login = unique_login()
    body = {
        "login": login,
        "password": "pa55word",
        "account_type": "advanced_user",
        "description": "camera hall",
    }
    async with http.post(platform.url + "/6/accounts", json=body) as resp:
        assert resp.status == 201
        account_id = (await resp.json())["account_id"]
    assert UUID_RE.match(account_id)
    async with http.get(platform.url + "/6/account", headers=basic(login, "pa55word")) as resp:
        assert resp.status == 200
        account = await resp.json()
    assert account["account_id"] == account_id
    assert account["login"] == login
    assert account["account_type"] == "advanced_user"
    assert account["description"] == "camera hall"
    created = datetime.fromisoformat(account["create_time"].replace("Z", "+00:00"))
    assert abs((datetime.now(UTC) - created).total_seconds()) < 120
    assert account["create_time"].endswith("Z")


async def test_account_id_chosen_by_client(platform, http) -> None:
    wanted = "0f4e9a1c-5d21-4c3a-9a7e-3b2f1d0c9e8a"
    body = {"login": unique_login(), "password": "secret1", "account_type": "user"}
    headers = {"Luna-Account-Id": wanted}
    async with http.post(platform.url + "/6/accounts", json=body, headers=headers) as resp:
        assert resp.status == 201
        assert (await resp.json())["account_id"] == wanted
    async with http.get(platform.url + "/6/account", headers={"Luna-Account-Id": wanted}) as r:
        assert r.status == 200
        assert (await r.json())["account_id"] == wanted


async def test_bad_account_bodies_get_documented_errors(platform, http) -> None:
    url = platform.url + "/6/accounts"
    good = {"login": unique_login(), "password": "secret1", "account_type": "user"}
    cases = [
        ({**good, "extra_field": 1}, "extra fields not permitted"),
        ({k: v for k, v in good.items() if k != "password"}, "password"),
        ({**good, "login": "not-an-email"}, "login"),
        ({**good, "password": 12345}, "password"),
        ({**good, "description": "x" * 129}, "description"),
        ({**good, "account_type": "admin"}, "account_type"),
    ]
    for body, part in cases:
        async with http.post(url, json=body) as resp:
            await assert_error(resp, 400, 12022, part)
    async with http.post(url, data=b"{not json", headers={"Content-Type": "application/json"}) as r:
        await assert_error(r, 400, 12002)
    async with http.post(url, data=b"", headers={"Content-Type": "application/json"}) as r:
        await assert_error(r, 400, 12030)
    async with http.post(url, data=json.dumps(good), headers={"Content-Type": "text/plain"}) as r:
        await assert_error(r, 415, 12023)
    # Nothing of the refused requests was stored: the login is still free.
    async with http.post(url, json=good) as resp:
        assert resp.status == 201
    async with http.post(url, json=good) as resp:
        await assert_error(resp, 409, 11011)


async def test_basic_auth_failures(platform, http) -> None:
    _, headers = await create_account(http, platform.url)
    login = base64.b64decode(headers["Authorization"].split()[1]).decode().split(":")[0]
    async with http.get(platform.url + "/6/account", headers=basic(login, "wrong")) as resp:
        await assert_error(resp, 401, 11002)
    bad = {"Authorization": "Basic !!!"}
    async with http.get(platform.url + "/6/account", headers=bad) as resp:
        await assert_error(resp, 401, 36002)


async def test_account_header_rules(platform, http) -> None:
    async with http.get(platform.url + "/6/account", headers={"Luna-Account-Id": "xyz"}) as r:
        await assert_error(r, 400, 11037)
    unknown = {"Luna-Account-Id": "11111111-2222-4333-8444-555555555555"}
    async with http.get(platform.url + "/6/account", headers=unknown) as resp:
        await assert_error(resp, 401, 11065)


async def test_patch_account_and_password_change_takes_effect_at_once(platform, http) -> None:
    _account_id, headers = await create_account(http, platform.url)
    async with http.get(platform.url + "/6/account", headers=headers) as resp:
        assert resp.status == 200  # now cached by the gateway
    async with http.patch(platform.url + "/6/account", headers=headers, json={}) as resp:
        await assert_error(resp, 400, 12022)
    patch = {"description": "lobby", "password": "newpass1"}
    async with http.patch(platform.url + "/6/account", headers=headers, json=patch) as resp:
        assert resp.status == 204
    async with http.get(platform.url + "/6/account", headers=headers) as resp:
        await assert_error(resp, 401, 11002)
    login = base64.b64decode(headers["Authorization"].split()[1]).decode().split(":")[0]
    async with http.get(platform.url + "/6/account", headers=basic(login, "newpass1")) as resp:
        assert resp.status == 200
        assert (await resp.json())["description"] == "lobby"


async def test_token_lifecycle(platform, http) -> None:
    account_id, headers = await create_account(http, platform.url)
    body = {"permissions": ALL_TOKEN, "expiration_time": None, "description": "cam 1"}
    async with http.post(platform.url + "/6/tokens", headers=headers, json=body) as resp:
        assert resp.status == 201
        created = await resp.json()
    assert set(created) == {"token", "token_id", "url"}
    assert created["url"] == f"/6/tokens/{created['token_id']}"
    header, payload, _ = created["token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    assert json.loads(base64.urlsafe_b64decode(header + "=="))["alg"] == "HS256"
    assert claims["tokenId"] == created["token_id"] and claims["accountId"] == account_id

    # The token authenticates and its permissions are enforced.
    async with http.get(platform.url + "/6/tokens", headers=bearer(created["token"])) as resp:
        assert resp.status == 200
        tokens = (await resp.json())["tokens"]
    assert [t["token_id"] for t in tokens] == [created["token_id"]]
    async with http.get(platform.url + created["url"], headers=headers) as resp:
        token = await resp.json()
    assert token["permissions"] == ALL_TOKEN
    assert token["expiration_time"] is None and token["visibility_area"] == "all"
    assert token["account_id"] == account_id and token["description"] == "cam 1"

    # Bearer tokens may not read /account.
    async with http.get(platform.url + "/6/account", headers=bearer(created["token"])) as resp:
        await assert_error(resp, 403, 11064)

    # Replacing issues a new JWT; the old one stops working at once.
    expires = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    replacement = {
        "permissions": {"token": ["view"]},
        "expiration_time": expires,
        "visibility_area": "account",
    }
    async with http.put(platform.url + created["url"], headers=headers, json=replacement) as r:
        assert r.status == 200
        replaced = await r.json()
    assert replaced["token_id"] == created["token_id"] and replaced["token"] != created["token"]
    async with http.get(platform.url + "/6/tokens", headers=bearer(created["token"])) as resp:
        await assert_error(resp, 401, 11065)
    async with http.get(platform.url + "/6/tokens", headers=bearer(replaced["token"])) as resp:
        assert resp.status == 200
    async with http.post(
        platform.url + "/6/tokens", headers=bearer(replaced["token"]), json=body
    ) as resp:
        await assert_error(resp, 403, 11059, "creation")

    async with http.delete(platform.url + created["url"], headers=headers) as resp:
        assert resp.status == 204
    async with http.get(platform.url + "/6/tokens", headers=bearer(replaced["token"])) as resp:
        await assert_error(resp, 401, 11065)
    async with http.get(platform.url + created["url"], headers=headers) as resp:
        await assert_error(resp, 404, 11022)


async def test_bad_tokens_are_refused(platform, http) -> None:
    _, headers = await create_account(http, platform.url)
    url = platform.url + "/6/tokens"
    cases = [
        ({"permissions": {"face": ["fly"]}, "expiration_time": None}, "permissions"),
        ({"permissions": {"nothing": ["view"]}, "expiration_time": None}, "permissions"),
        ({"permissions": ALL_TOKEN, "expiration_time": "yesterday"}, "expiration_time"),
        ({"permissions": ALL_TOKEN, "expiration_time": "2001-01-01T00:00:00Z"}, "expiration_time"),
        ({"permissions": ALL_TOKEN, "visibility_area": "world"}, "visibility_area"),
        ({"expiration_time": None}, "permissions"),
    ]
    for body, part in cases:
        async with http.post(url, headers=headers, json=body) as resp:
            await assert_error(resp, 400, 12022, part)
    async with http.get(url, headers=headers) as resp:
        assert (await resp.json())["tokens"] == []  # nothing half-created
    async with http.get(url, headers=bearer("not.a.jwt")) as resp:
        await assert_error(resp, 403, 11062)
    async with http.get(url + "/not-a-uuid", headers=headers) as resp:
        await assert_error(resp, 400, 12012)
    async with http.get(url, headers=headers, params={"page_size": "1001"}) as resp:
        await assert_error(resp, 400, 12012, "page_size")


async def test_accounts_never_see_each_other(platform, http) -> None:
    a_id, a = await create_account(http, platform.url)
    _b_id, b = await create_account(http, platform.url)
    body = {"permissions": ALL_TOKEN, "expiration_time": None}
    async with http.post(platform.url + "/6/tokens", headers=a, json=body) as resp:
        a_token = await resp.json()
    # B (a user) can neither read, replace nor delete A's token, nor list it.
    async with http.get(platform.url + a_token["url"], headers=b) as resp:
        await assert_error(resp, 404, 11022)
    async with http.put(platform.url + a_token["url"], headers=b, json=body) as resp:
        await assert_error(resp, 404, 11022)
    async with http.delete(platform.url + a_token["url"], headers=b) as resp:
        await assert_error(resp, 404, 11022)
    params = {"account_id": a_id}
    async with http.get(platform.url + "/6/tokens", headers=b, params=params) as resp:
        assert (await resp.json())["tokens"] == []
    # An advanced_user sees A's token (read-only) but still cannot delete it.
    _, adv = await create_account(http, platform.url, "advanced_user")
    async with http.get(platform.url + "/6/tokens", headers=adv, params=params) as resp:
        assert [t["token_id"] for t in (await resp.json())["tokens"]] == [a_token["token_id"]]
    async with http.delete(platform.url + a_token["url"], headers=adv) as resp:
        await assert_error(resp, 404, 11022)
    # A token limited to its account does not see others even for an advanced_user.
    body_acc = {**body, "visibility_area": "account"}
    async with http.post(platform.url + "/6/tokens", headers=adv, json=body_acc) as resp:
        adv_token = (await resp.json())["token"]
    async with http.get(
        platform.url + "/6/tokens", headers=bearer(adv_token), params=params
    ) as resp:
        seen = {t["token_id"] for t in (await resp.json())["tokens"]}
    assert a_token["token_id"] not in seen and len(seen) == 1  # only its own token
    async with http.get(platform.url + a_token["url"], headers=a) as resp:
        assert resp.status == 200  # still there


async def test_credentials_verifier(platform, http) -> None:
    account_id, headers = await create_account(http, platform.url)
    login = base64.b64decode(headers["Authorization"].split()[1]).decode().split(":")[0]
    url = platform.url + "/6/credentials/verifier"
    async with http.post(url, json={"login": login, "password": "secret1"}) as resp:
        assert resp.status == 200
        assert await resp.json() == {"account_id": account_id, "account_type": "user"}
    async with http.post(url, json={"login": login, "password": "wrong1"}) as resp:
        await assert_error(resp, 401, 11002)
    body = {"permissions": {"token": ["view"]}, "expiration_time": None}
    async with http.post(platform.url + "/6/tokens", headers=headers, json=body) as resp:
        token = (await resp.json())["token"]
    async with http.post(url, json={"token": token}) as resp:
        verified = await resp.json()
    assert verified["account_type"] == "user" and verified["permissions"] == {"token": ["view"]}
    async with http.post(url, json={"account_id": account_id}) as resp:
        assert (await resp.json()) == {"account_type": "user"}


async def test_delete_account_removes_it_and_its_tokens(platform, http) -> None:
    _account_id, headers = await create_account(http, platform.url)
    body = {"permissions": ALL_TOKEN, "expiration_time": None}
    async with http.post(platform.url + "/6/tokens", headers=headers, json=body) as resp:
        token = (await resp.json())["token"]
    async with http.delete(platform.url + "/6/account", headers=headers) as resp:
        assert resp.status == 204
    async with http.get(platform.url + "/6/account", headers=headers) as resp:
        await assert_error(resp, 401, 11002)
    async with http.get(platform.url + "/6/tokens", headers=bearer(token)) as resp:
        await assert_error(resp, 401, 11065)
