"""The Sender API (v2) on its own listener of a running platform, driven as a LUNA Sender
client would: events generated through /6 reach /6/ws and /2/ws subscribers, user-published
events and general events reach theirs, filters and accounts separate them."""

from __future__ import annotations

import asyncio
import io
import uuid
from typing import Any

import aiohttp
import pytest
import yaml
from lunatest import REQUEST_ID_RE, assert_error, create_account
from PIL import Image
from skimage import data

pytestmark = pytest.mark.e2e
HANDLER = "8b8b5937-2e9c-4e8b-a7a7-5caf86621b5a"
CREATED = "2026-12-07T10:00:00Z"
ENDED = "2026-12-07T10:00:02Z"


@pytest.fixture(scope="module")
def photo() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(data.astronaut()).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


@pytest.fixture(scope="module")
def sender(platform) -> str:
    url = platform.runtime["sender_url"]
    assert url and url != platform.url
    return url


async def _next(ws: aiohttp.ClientWebSocketResponse, timeout: float) -> dict[str, Any] | None:
    try:
        msg = await ws.receive(timeout=timeout)
    except TimeoutError:
        return None
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    return msg.json()


async def _publish(
    http: aiohttp.ClientSession, url: str, body: dict[str, Any], account_id: str | None
) -> None:
    headers = {"Luna-Account-Id": account_id} if account_id else {}
    async with http.post(url, json=body, headers=headers) as resp:
        got = await resp.json()
        assert resp.status == 201, got
        assert got == {}
        assert REQUEST_ID_RE.match(resp.headers["Luna-Request-Id"])


async def test_generated_events_reach_both_websockets(
    platform, http: aiohttp.ClientSession, sender: str, photo: bytes
) -> None:
    account_id, auth = await create_account(http, platform.url)
    _, other_auth = await create_account(http, platform.url)
    async with http.post(f"{platform.url}/6/handlers", json={"policies": {}}, headers=auth) as r:
        handler_id = (await r.json())["handler_id"]
    acct = {"Luna-Account-Id": account_id}
    async with (
        http.ws_connect(f"{platform.url}/6/ws?sources=door", headers=auth) as rest_ws,
        http.ws_connect(f"{sender}/2/ws?sources=door&handler_ids={handler_id}", headers=acct) as ws,
        http.ws_connect(f"{sender}/2/ws?sources=window", headers=acct) as filtered,
        http.ws_connect(f"{platform.url}/6/ws", headers=other_auth) as other_account,
    ):
        await asyncio.sleep(0.3)  # subscriptions registered before the event
        async with http.post(
            f"{platform.url}/6/handlers/{handler_id}/events?source=door",
            data=photo,
            headers={**auth, "Content-Type": "image/jpeg"},
        ) as resp:
            generated = await resp.json()
            assert resp.status == 201, generated
        event_id = generated["events"][0]["event_id"]
        via_sender = await _next(ws, 10)
        via_rest = await _next(rest_ws, 10)
        assert await _next(filtered, 0.5) is None
        assert await _next(other_account, 0.3) is None
    for message in (via_sender, via_rest):
        assert message is not None
        assert set(message) == {
            "event",
            "handler_id",
            "event-create-time",
            "event-end-time",
            "Luna-Request-id",
        }
        assert message["event"]["event_id"] == event_id
        assert message["handler_id"] == handler_id
        assert message["event"]["source"] == "door"
        assert REQUEST_ID_RE.match(message["Luna-Request-id"])


async def test_published_events_reach_their_subscribers(
    platform, http: aiohttp.ClientSession, sender: str
) -> None:
    account_id, auth = await create_account(http, platform.url)
    acct = {"Luna-Account-Id": account_id}
    stranger = {"Luna-Account-Id": str(uuid.uuid4())}
    body = {
        "events": [{"source": "cam1", "age": 40, "note": "one"}, {"source": "cam2", "age": 20}],
        "handler_id": HANDLER,
        "event_create_time": CREATED,
        "event_end_time": ENDED,
    }
    async with (
        http.ws_connect(f"{sender}/2/ws", headers=acct) as everything,
        http.ws_connect(f"{sender}/2/ws?sources=cam1&age__gte=30", headers=acct) as cam1,
        http.ws_connect(f"{platform.url}/6/ws?sources=cam2", headers=auth) as rest_cam2,
        http.ws_connect(f"{sender}/2/ws", headers=stranger) as other,
    ):
        await asyncio.sleep(0.3)
        await _publish(http, f"{sender}/2/events", body, account_id)
        first, second = await _next(everything, 5), await _next(everything, 5)
        only = await _next(cam1, 5)
        rest = await _next(rest_cam2, 5)
        assert await _next(cam1, 0.5) is None
        assert await _next(other, 0.3) is None
    assert first is not None and second is not None and only is not None and rest is not None
    assert [first["event"], second["event"]] == body["events"]
    assert only == {
        "event": body["events"][0],
        "handler_id": HANDLER,
        "event-create-time": CREATED,
        "event-end-time": ENDED,
        "Luna-Request-id": only["Luna-Request-id"],
    }
    assert REQUEST_ID_RE.match(only["Luna-Request-id"])
    assert rest["event"] == body["events"][1]


async def test_general_events_reach_subscribers_of_their_type(
    http: aiohttp.ClientSession, sender: str
) -> None:
    account_id = str(uuid.uuid4())
    kind = f"door-{uuid.uuid4().hex[:8]}"
    body = {
        "events": [{"temperature": 37.5, "room": "A-1"}, {"temperature": 36.1, "room": "B-2"}],
        "event_type": kind,
        "account_id": account_id,
        "event_create_time": CREATED,
        "event_end_time": ENDED,
    }
    async with (
        http.ws_connect(f"{sender}/2/ws/general?event_type={kind}") as all_of_type,
        http.ws_connect(
            f"{sender}/2/ws/general?event_type={kind}&account_id={account_id}"
            "&event.temperature__gt:numeric=37&event.room__like=A%25"
        ) as fever,
        http.ws_connect(f"{sender}/2/ws/general?event_type=other-{kind}") as other_type,
    ):
        await asyncio.sleep(0.3)
        await _publish(http, f"{sender}/2/general_events", body, None)
        got = [await _next(all_of_type, 5), await _next(all_of_type, 5)]
        hot = await _next(fever, 5)
        assert await _next(fever, 0.5) is None
        assert await _next(other_type, 0.3) is None
    assert [g["event"] for g in got if g] == body["events"]
    assert hot == {
        "event": body["events"][0],
        "event_type": kind,
        "account_id": account_id,
        "event-create-time": CREATED,
        "event-end-time": ENDED,
    }


async def test_handshake_and_publish_errors(http: aiohttp.ClientSession, sender: str) -> None:
    acct = {"Luna-Account-Id": str(uuid.uuid4())}
    async with http.get(f"{sender}/2/ws") as resp:
        await assert_error(resp, 403, 29001, "Luna-Account-Id")
    async with http.get(f"{sender}/2/ws", headers={"Luna-Account-Id": "nope"}) as resp:
        await assert_error(resp, 400, 11037)
    async with http.get(f"{sender}/2/ws?gender=7", headers=acct) as resp:
        await assert_error(resp, 400, 12012, "gender")
    async with http.get(f"{sender}/2/ws?unknown_filter=1", headers=acct) as resp:
        await assert_error(resp, 400, 12012, "unknown_filter")
    async with http.get(f"{sender}/2/ws/general") as resp:
        await assert_error(resp, 400, 12014, "event_type")
    async with http.get(f"{sender}/2/ws/general?event_type=t&event.a__gt=none") as resp:
        await assert_error(resp, 400, 12012)
    good = {
        "events": [{}],
        "handler_id": HANDLER,
        "event_create_time": CREATED,
        "event_end_time": ENDED,
    }
    async with http.post(f"{sender}/2/events", json=good) as resp:
        await assert_error(resp, 400, 12014, "Luna-Account-Id")
    async with http.post(f"{sender}/2/events", json={**good, "events": []}, headers=acct) as resp:
        await assert_error(resp, 400, 12022, "events")
    async with http.post(
        f"{sender}/2/events", json={**good, "handler_id": "x"}, headers=acct
    ) as resp:
        await assert_error(resp, 400, 12022, "handler_id")
    as_json = {**acct, "Content-Type": "application/json"}
    async with http.post(f"{sender}/2/events", data=b"{not json", headers=as_json) as resp:
        await assert_error(resp, 400, 12002)
    async with http.post(f"{sender}/2/events", data=b"x", headers={**acct}) as resp:
        await assert_error(resp, 415, 12023)
    async with http.post(f"{sender}/2/general_events", json={"events": [{}]}) as resp:
        await assert_error(resp, 400, 12022, "event_type")
    async with http.get(f"{sender}/2/no-such-resource") as resp:
        await assert_error(resp, 404, 12013)


async def test_service_resources(http: aiohttp.ClientSession, sender: str) -> None:
    async with http.get(f"{sender}/2/version") as resp:
        body = await resp.json()
        assert resp.status == 200
    assert body["Version"]["api"] == 2 and isinstance(body["Version"]["major"], int)
    async with http.get(f"{sender}/2/healthcheck") as resp:
        body = await resp.json()
        assert resp.status == 200
    assert 0 <= body["execution_time"] < 5
    async with http.get(f"{sender}/2/plugins") as resp:
        assert resp.status == 200 and await resp.json() == {"plugins": []}
    async with http.get(f"{sender}/2/config") as resp:
        cfg = await resp.json()
        assert resp.status == 200
    assert cfg["LUNA_SENDER_PORT"] == sender.rsplit(":", 1)[1]
    assert cfg["LUNA_DATABASE_URL"] in ("", "***") or "@" not in cfg["LUNA_DATABASE_URL"]
    async with http.get(f"{sender}/2/docs/spec", headers={"Accept": "application/x-yaml"}) as r:
        spec = yaml.safe_load(await r.text())
        assert r.status == 200
    assert {"/2/ws", "/2/ws/general", "/2/events", "/2/general_events"} <= set(spec["paths"])
    async with http.get(f"{sender}/2/docs/spec", headers={"Accept": "image/png"}) as resp:
        await assert_error(resp, 415, 12024)
    async with http.get(f"{sender}/2/docs/dev", allow_redirects=False) as resp:
        assert resp.status == 302 and resp.headers["Location"] == "/docs/dev/index.html"
    async with http.get(f"{sender}/2/docs/dev") as resp:
        page = await resp.text()
        assert resp.status == 200 and resp.content_type == "text/html"
    assert "<h1>" in page and "/2/ws" in page
