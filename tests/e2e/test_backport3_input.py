"""Backport 3 input hardening through its own listener: /4 bodies and queries obey the
gateway's one JSON parser and limits (nesting, NUL), multipart bodies its one reader, and each
refusal is the LUNA 3 error the catalogue documents (12022 for JSON bodies, 12012 for queries,
11049 for a bad multipart body), never a 500."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import msgpack
from e2e.test_backport3_rest import Client, err

from services.gateway import jsonbody


def nested(depth: int) -> Any:
    doc: Any = "x"
    for _ in range(depth):
        doc = {"a": doc}
    return doc


async def test_bad_bodies_and_queries_get_luna3_errors(
    platform: Any, http: aiohttp.ClientSession
) -> None:
    a = await Client(http, platform.runtime["backport3_url"]).register()
    json_type = {"Content-Type": "application/json"}

    async def post(path: str, data: bytes, status: int, code: int, **kw: Any) -> dict[str, Any]:
        headers = {**json_type, **kw.pop("headers", {})}
        async with a.req("POST", path, data=data, headers=headers, **kw) as r:
            return await err(r, status, code)

    # Not JSON, nested past the limit, a NUL in a string or a key: 12022 each.
    body = await post("/4/storage/persons", b"{not json", 400, 12022)
    assert "Failed to validate input json" in body["detail"]
    deep = json.dumps({"user_data": nested(jsonbody.MAX_DEPTH + 5)}).encode()
    body = await post("/4/storage/persons", deep, 400, 12022)
    assert "nested deeper" in body["detail"]
    body = await post("/4/storage/persons", b'{"user_data": "a\\u0000b"}', 400, 12022)
    assert "NUL" in body["detail"]
    body = await post("/4/storage/lists", b'{"list_data\\u0000": "x"}', 400, 12022)
    assert "NUL" in body["detail"]
    # The raw batch verification: JSON and msgpack alike.
    raw = "/4/handlers/verify/raw"
    await post(raw, deep, 400, 12022)
    packed = msgpack.packb({"references": nested(jsonbody.MAX_DEPTH + 5), "candidates": []})
    await post(raw, packed, 400, 12022, headers={"Content-Type": "application/msgpack"})
    packed = msgpack.packb({"references": [{"id": "a\x00"}], "candidates": []})
    await post(raw, packed, 400, 12022, headers={"Content-Type": "application/msgpack"})

    # A NUL anywhere in the query: 12012, before the route reads it.
    async with a.req("GET", "/4/storage/persons", params={"user_data": "a\x00b"}) as r:
        await err(r, 400, 12012)
    async with a.req("GET", "/4/storage/persons", params={"x\x00": "1"}) as r:
        await err(r, 400, 12012)

    # A malformed or nested multipart body for liveness: LUNA 3's bad multipart body.
    broken = b"--b\r\nContent-Disposition: form-data; name=image\r\n\r\nno end"
    headers = {"Content-Type": "multipart/form-data; boundary=b"}
    async with a.req("POST", "/4/liveness", data=broken, headers=headers) as r:
        await err(r, 400, 11049)
    inner = (
        b"--b\r\nContent-Disposition: form-data; name=image; filename=a.jpg\r\n"
        b"Content-Type: multipart/mixed\r\n\r\nx\r\n--b--\r\n"
    )
    async with a.req("POST", "/4/liveness", data=inner, headers=headers) as r:
        await err(r, 400, 11049)

    # The listener still answers the account.
    assert (await a.call("GET", "/4/account", 200, headers=a.basic))["email"] == a.email
