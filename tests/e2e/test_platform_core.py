"""The platform as a user meets it: version, health, spec, config, request ids, errors."""

from __future__ import annotations

import aiohttp
import yaml
from lunatest import REQUEST_ID_RE, assert_error


async def test_version_on_both_paths(platform, http: aiohttp.ClientSession) -> None:
    for path in ("/version", "/6/version"):
        async with http.get(platform.url + path) as resp:
            assert resp.status == 200
            body = await resp.json()
            assert REQUEST_ID_RE.match(resp.headers["Luna-Request-Id"])
        assert body["luna-api"]["api"] == 6
        for component in ("luna-faces", "luna-handlers", "luna-remote-sdk", "luna-matcher-proxy"):
            assert isinstance(body[component]["major"], int), body


async def test_request_id_is_echoed_and_validated(platform, http) -> None:
    rid = "1536751345,8b8b5937-2e9c-4e8b-a7a7-5caf86621b5a"
    async with http.get(platform.url + "/6/version", headers={"Luna-Request-Id": rid}) as resp:
        assert resp.status == 200
        assert resp.headers["Luna-Request-Id"] == rid
    async with http.get(platform.url + "/6/version", headers={"Luna-Request-Id": "nope"}) as r:
        await assert_error(r, 400, 12031, "Luna-Request-Id")


async def test_healthcheck_checks_everything(platform, http) -> None:
    for path in ("/healthcheck", "/6/healthcheck"):
        async with http.get(platform.url + path) as resp:
            body = await resp.json()
            assert resp.status == 200, body
        assert isinstance(body["execution_time"], float)
        assert 0 <= body["execution_time"] < 5


async def test_spec_yaml_and_html(platform, http) -> None:
    headers = {"Accept": "application/x-yaml"}
    async with http.get(platform.url + "/6/docs/spec", headers=headers) as resp:
        assert resp.status == 200
        assert resp.content_type == "application/x-yaml"
        spec = yaml.safe_load(await resp.text())
    assert spec["openapi"].startswith("3.")
    assert "/6/accounts" in spec["paths"]
    async with http.get(platform.url + "/6/docs/spec") as resp:
        assert resp.status == 200
        assert resp.content_type == "text/html"
        assert "/6/tokens/{token_id}" in await resp.text()


async def test_config_lists_settings_and_hides_secrets(platform, http) -> None:
    async with http.get(platform.url + "/6/config") as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body["LUNA_PORT"] == platform.url.rsplit(":", 1)[1]
    assert body["LUNA_DATABASE_URL"] == "***"
    assert "LUNA_AUTH_CACHE_TTL" in body


async def test_options_lists_allowed_methods(platform, http) -> None:
    async with http.options(platform.url + "/6/tokens") as resp:
        assert resp.status == 200
        allow = {m.strip() for m in resp.headers["Allow"].split(",")}
        assert {"GET", "POST", "OPTIONS"} <= allow
        assert REQUEST_ID_RE.match(resp.headers["Luna-Request-Id"])
    async with http.options(platform.url + "/6/tokens/8b8b5937-2e9c-4e8b-a7a7-5caf86621b5a") as r:
        assert {"GET", "PUT", "DELETE"} <= {m.strip() for m in r.headers["Allow"].split(",")}


async def test_unknown_path_and_method(platform, http) -> None:
    async with http.get(platform.url + "/6/no-such-thing") as resp:
        await assert_error(resp, 404, 12013)
    async with http.delete(platform.url + "/6/version") as resp:
        await assert_error(resp, 405, 12021)


async def test_protected_resources_need_credentials(platform, http) -> None:
    for method, path in (
        ("GET", "/6/account"),
        ("PATCH", "/6/account"),
        ("GET", "/6/tokens"),
        ("POST", "/6/tokens"),
        ("GET", "/6/tokens/8b8b5937-2e9c-4e8b-a7a7-5caf86621b5a"),
    ):
        async with http.request(method, platform.url + path) as resp:
            await assert_error(resp, 401, 12010)
