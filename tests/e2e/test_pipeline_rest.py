"""The main LUNA pipeline over REST on a running platform: generate events with matching,
storage and Sender delivery; documented errors that store nothing; verifications.

Real models and photos: skimage's astronaut enrolled, then a flipped, rescaled and
JPEG-recompressed astronaut as the probe; an nsface test photo as the other person.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from lunatest import assert_error, create_account, enrol_policies, jpeg
from PIL import Image
from skimage import data

from services.estimator import model_repo as mr


@pytest.fixture(scope="module")
def enrolled() -> bytes:
    return jpeg(data.astronaut())


@pytest.fixture(scope="module")
def probe() -> bytes:
    """Same person, different bytes: mirrored, scaled to 80 %, recompressed at quality 60."""
    img = Image.fromarray(data.astronaut()[:, ::-1].copy())
    img = img.resize((410, 410), Image.Resampling.BILINEAR)
    return jpeg(np.asarray(img), quality=60)


@pytest.fixture(scope="module")
def stranger() -> bytes:
    repo = mr.models_dir()
    assert mr.manifest_is_valid(repo, check_hashes=False), "run `luna models install` first"
    return (Path(mr.test_images_dir(repo)) / "test_crop.jpg").read_bytes()


async def _post(http: aiohttp.ClientSession, url: str, auth: dict[str, str], **kw: Any) -> Any:
    async with http.post(url, headers={**auth, **kw.pop("headers", {})}, **kw) as resp:
        body = await resp.json(content_type=None)
        assert resp.status == 201, body
        return body


async def _match(
    http: aiohttp.ClientSession, url: str, auth: dict[str, str], body: dict[str, Any]
) -> Any:
    async with http.post(f"{url}/6/matcher/faces", json=body, headers=auth) as resp:
        got = await resp.json(content_type=None)
        assert resp.status == 200, got
        return got


async def _counts(http: aiohttp.ClientSession, url: str, auth: dict[str, str]) -> tuple[int, int]:
    async with http.get(f"{url}/6/events?page_size=1000", headers=auth) as resp:
        events = len((await resp.json())["events"])
    async with http.get(f"{url}/6/faces/count", headers=auth) as resp:
        faces = next(iter((await resp.json()).values()))
    return events, faces


async def _next_event(ws: aiohttp.ClientWebSocketResponse, timeout: float) -> dict[str, Any] | None:
    try:
        msg = await ws.receive(timeout=timeout)
    except TimeoutError:
        return None
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    return msg.json()


async def test_generate_match_store_notify_and_verify(
    platform, http, enrolled: bytes, probe: bytes, stranger: bytes
) -> None:
    url = platform.url
    _, auth = await create_account(http, url)
    lst = await _post(http, f"{url}/6/lists", auth, json={"user_data": "vip"})
    list_id = lst["list_id"]

    # 1. enrol: a handler that stores a face linked to the list
    enrol = await _post(
        http,
        f"{url}/6/handlers",
        auth,
        json={"policies": enrol_policies(list_id)},
    )
    got = await _post(
        http,
        f"{url}/6/handlers/{enrol['handler_id']}/events?external_id=astro",
        auth,
        data=enrolled,
        headers={"Content-Type": "image/jpeg"},
    )
    enrol_event_id = got["events"][0]["event_id"]
    face = got["events"][0]["face"]
    assert face["lists"] == [list_id]
    face_id = face["face_id"]

    # 2. a matching handler
    match = await _post(
        http,
        f"{url}/6/handlers",
        auth,
        json={
            "policies": {
                "extract_policy": {"extract_face_descriptor": 1},
                "match_policy": [
                    {
                        "label": "vip",
                        "candidates": {"origin": "faces", "list_id": list_id},
                        "threshold": 0.5,
                    }
                ],
                "conditional_tags_policy": [
                    {"tag": "vip", "filters": {"match": [{"label": "vip", "similarity__gte": 0.5}]}}
                ],
                "storage_policy": {
                    "face_sample_policy": {"store_sample": 0},
                    "event_policy": {"store_event": 1, "wait_saving": 1},
                },
            }
        },
    )
    handler_id = match["handler_id"]
    before = await _counts(http, url, auth)
    # Recent enough for GET /6/events' default one-month window, distinct from "now".
    event_time = (datetime.now(UTC) - timedelta(minutes=5)).replace(microsecond=0)
    stamp = event_time.strftime("%Y-%m-%dT%H:%M:%SZ")

    async with (
        http.ws_connect(f"{url}/6/ws?sources=gate-a&tags=vip", headers=auth) as hit,
        http.ws_connect(f"{url}/6/ws?sources=gate-b", headers=auth) as miss,
    ):
        await asyncio.sleep(0.2)  # both subscriptions registered before the event
        got = await _post(
            http,
            f"{url}/6/handlers/{handler_id}/events?source=gate-a",
            auth,
            data=probe,
            headers={"Content-Type": "image/jpeg", "Luna-Event-Time": stamp},
        )
        message = await _next_event(hit, timeout=1.0)
        silent = await _next_event(miss, timeout=0.5)
    assert len(got["events"]) == 1
    event = got["events"][0]
    cand = event["matches"][0]["candidates"][0]
    assert event["matches"][0]["label"] == "vip"
    assert cand["face"]["face_id"] == face_id and cand["similarity"] > 0.5
    assert "vip" in event["tags"] and event["source"] == "gate-a"
    assert message is not None and message["event"]["event_id"] == event["event_id"]
    assert message["event"]["top_match"]["face"]["face_id"] == face_id
    assert silent is None

    async with http.get(f"{url}/6/events/{event['event_id']}", headers=auth) as resp:
        stored = await resp.json()
        assert resp.status == 200, stored
    assert stored["create_time"].startswith(stamp[:-1])
    assert stored["top_match"]["face"]["face_id"] == face_id
    assert await _counts(http, url, auth) == (before[0] + 1, before[1])

    # 3. documented errors store nothing
    before = await _counts(http, url, auth)
    async with http.post(
        f"{url}/6/handlers/{uuid.uuid4()}/events",
        data=probe,
        headers={**auth, "Content-Type": "image/jpeg"},
    ) as resp:
        await assert_error(resp, 404, 34000)
    async with http.post(
        f"{url}/6/handlers/{enrol['handler_id']}/events",
        data=b"definitely not a jpeg",
        headers={**auth, "Content-Type": "image/jpeg"},
    ) as resp:
        await assert_error(resp, 400, 18002)
    # a good image and a bad one in one request: refused whole, the good one stores nothing
    form = aiohttp.FormData()
    form.add_field("good", probe, filename="good.jpg", content_type="image/jpeg")
    form.add_field("bad", b"\xff\xd8junk", filename="bad.jpg", content_type="image/jpeg")
    async with http.post(
        f"{url}/6/handlers/{enrol['handler_id']}/events", data=form, headers=auth
    ) as resp:
        await assert_error(resp, 400, 18002)
    dynamic = await _post(http, f"{url}/6/handlers", auth, json={"handler_type": 1})
    form = aiohttp.FormData()
    form.add_field("image", probe, filename="p.jpg", content_type="image/jpeg")
    form.add_field(
        "policies",
        b'{"detect_policy": {"multiface_policy": 7}}',
        filename="policies.json",
        content_type="application/json",
    )
    async with http.post(
        f"{url}/6/handlers/{dynamic['handler_id']}/events", data=form, headers=auth
    ) as resp:
        await assert_error(resp, 400, 12022, "multiface_policy")
    assert await _counts(http, url, auth) == before

    # 4. verifications: strict `> threshold`
    verifier = await _post(
        http, f"{url}/6/verifiers", auth, json={"policies": {"verification_threshold": 0.5}}
    )
    vurl = f"{url}/6/verifiers/{verifier['verifier_id']}/verifications?face_ids={face_id}"
    same = await _post(http, vurl, auth, data=probe, headers={"Content-Type": "image/jpeg"})
    checks = same["images"][0]["detections"]["face_detections"][0]["verifications"]
    assert checks[0]["face"]["face_id"] == face_id
    assert checks[0]["status"] is True and checks[0]["similarity"] > 0.5
    assert same["images"][0]["detections"]["overall_status"] is True
    other = await _post(http, vurl, auth, data=stranger, headers={"Content-Type": "image/jpeg"})
    dets = other["images"][0]["detections"]["face_detections"]
    assert dets and all(not v["status"] for d in dets for v in d["verifications"])
    assert other["images"][0]["detections"]["overall_status"] is False

    # 5. events as references and candidates of /6/matcher/faces
    other_event = await _post(
        http,
        f"{url}/6/handlers/{handler_id}/events?source=gate-c",
        auth,
        data=stranger,
        headers={"Content-Type": "image/jpeg"},
    )
    other_ids = [e["event_id"] for e in other_event["events"]]
    body = {
        "references": [{"type": "event", "id": event["event_id"]}],
        "candidates": [
            {"target": "events", "filters": {"handler_ids": [enrol["handler_id"]]}, "limit": 5},
            {"filters": {"list_id": list_id}},
        ],
    }
    matched = await _match(http, url, auth, body)
    by_events, by_faces = matched[0]["matches"]
    assert matched[0]["reference"] == {"type": "event", "id": event["event_id"]}
    assert [r["event"]["event_id"] for r in by_events["result"]] == [enrol_event_id]
    assert by_events["result"][0]["similarity"] > 0.5 and by_events["total_found"] == 1
    assert by_events["result"][0]["event"]["external_id"] == "astro"
    assert by_faces["result"][0]["face"]["face_id"] == face_id
    body = {
        "references": [{"type": "event_external_id", "id": "astro"}],
        "candidates": [
            {
                "target": "events",
                "filters": {"event_ids": [event["event_id"], *other_ids]},
                "threshold": 0.5,
            }
        ],
    }
    matched = await _match(http, url, auth, body)
    assert matched[0]["reference"]["event_id"] == enrol_event_id
    result = matched[0]["matches"][0]["result"]
    assert [r["event"]["event_id"] for r in result] == [event["event_id"]]
    # Another account neither uses A's events as references nor finds them as candidates.
    _, auth_b = await create_account(http, url)
    async with http.post(
        f"{url}/6/matcher/faces",
        json={
            "references": [{"type": "event", "id": event["event_id"]}],
            "candidates": [{"target": "events", "filters": {}}],
        },
        headers=auth_b,
    ) as resp:
        await assert_error(resp, 404, 23001)
    body = {
        "references": [{"type": "event", "id": event["event_id"]}],
        "candidates": [{"target": "events", "filters": {"event_ids": [enrol_event_id]}}],
    }
    matched = await _match(http, url, auth, body)
    assert matched[0]["matches"][0]["total_found"] == 1
    async with http.post(f"{url}/6/matcher/faces", json=body, headers=auth_b) as resp:
        await assert_error(resp, 404, 23001)
    body["references"] = [{"type": "face", "id": face_id}]
    async with http.post(f"{url}/6/matcher/faces", json=body, headers=auth_b) as resp:
        await assert_error(resp, 404, 22002)
    body["candidates"][0]["filters"] = {"list_id": list_id}
    async with http.post(f"{url}/6/matcher/faces", json=body, headers=auth) as resp:
        await assert_error(resp, 400, 12022)
