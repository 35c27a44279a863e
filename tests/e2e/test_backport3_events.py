"""/4/ws follows the events service: a LUNA 3 client opens /4/ws, runs an extraction and a
matching through /4 and receives LUNA 3's messages, and the same events are LUNA 5 events of
the account, listed by /6/events (proof that they went through the events service)."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import aiohttp
from e2e.test_backport3_rest import ASTRONAUT, MIRROR, Client


async def _messages(ws: Any, count: int) -> list[dict[str, Any]]:
    return [await asyncio.wait_for(ws.receive_json(), 30) for _ in range(count)]


async def test_ws_messages_are_events_of_the_events_service(
    platform: Any, http: aiohttp.ClientSession
) -> None:
    bp3_url = platform.runtime["backport3_url"]
    a = await Client(http, bp3_url).register()
    lst = (await a.call("POST", "/4/storage/lists", 201, json={"list_data": "gate"}))["list_id"]
    person = (await a.call("POST", "/4/storage/persons", 201, json={"user_data": "astro"}))[
        "person_id"
    ]
    async with aiohttp.ClientSession() as ws_http:
        async with (
            ws_http.ws_connect(a.url + "/4/ws", headers=a.tok) as every,
            ws_http.ws_connect(
                a.url + "/4/ws", headers=a.basic, params={"event_type": "match", "list": lst}
            ) as matches,
            ws_http.ws_connect(a.url + "/4/ws", headers=a.tok, params={"observe": "basic"}) as mute,
        ):
            made = await a.image("/4/storage/descriptors", ASTRONAUT)
            desc = made["faces"][0]["id"]
            await a.call(
                "PATCH", f"/4/storage/persons/{person}/linked_descriptors", 204,
                params={"descriptor_id": desc, "do": "attach"},
            )  # fmt: skip
            await a.call(
                "PATCH", f"/4/storage/persons/{person}/linked_lists", 204,
                params={"list_id": lst, "do": "attach"},
            )  # fmt: skip
            probe = (await a.image("/4/storage/descriptors", MIRROR))["faces"][0]["id"]
            got = await a.call(
                "POST", "/4/matching/identify", 201,
                params={"descriptor_id": probe, "list_id": lst},
            )  # fmt: skip
            extract1, extract2, identify = await _messages(every, 3)
            (only_match,) = await _messages(matches, 1)
            # Nothing was done with Basic auth: the observer of "basic" sees nothing.
            try:
                silent = await asyncio.wait_for(mute.receive_json(), 2)
            except TimeoutError:
                silent = None
            assert silent is None, silent

    token_auth = {"token_id": a.token, "token_data": ""}
    assert extract1["event_type"] == "extract" and extract1["source"] == "descriptors"
    assert extract1["result"] == made and extract1["authorization"] == token_auth
    assert extract2["result"]["faces"][0]["id"] == probe
    assert identify == only_match
    assert identify["event_type"] == "match" and identify["source"] == "identify"
    assert identify["authorization"] == token_auth
    assert identify["result"] == got and identify["template"] == {"descriptor_id": probe}
    assert identify["candidate"] == {"list_id": lst, "list_data": "gate", "list_type": 1}
    assert isinstance(identify["timestamp"], float)

    # The same three events through /6/events, made by the account's Backport 3 handler.
    async with http.get(
        platform.url + "/6/events", headers=a.basic, params={"tags": "backport3"}
    ) as r:
        assert r.status == 200, await r.text()
        events = (await r.json())["events"]
    assert len(events) == 3 and len({e["handler_id"] for e in events}) == 1
    by_source = {}
    for e in events:
        by_source.setdefault(e["source"], []).append(e)
    assert sorted(by_source) == ["descriptors", "identify"]
    (match,) = by_source["identify"]
    assert match["meta"]["backport3"]["result"] == got
    assert match["top_match"]["face_id"] == desc
    assert match["meta"]["backport3"]["timestamp"] == identify["timestamp"]
    # The event keeps the token's hash, never the token.
    assert a.token not in str(events)
    digest = hashlib.sha256(a.token.encode()).hexdigest()
    assert match["meta"]["backport3"]["authorization"]["token_sha256"] == digest
    # The handler is a dynamic LUNA 5 handler of the account.
    async with http.get(f"{platform.url}/6/handlers/{match['handler_id']}", headers=a.basic) as r:
        assert r.status == 200, await r.text()
        assert (await r.json())["handler_type"] == 1
