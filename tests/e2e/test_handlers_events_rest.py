"""Handlers, saved (client-built) events, event queries, statistics and verifiers through the
REST API of a running platform: main flows, bad input of every kind, account isolation."""

from __future__ import annotations

import asyncio
import uuid

from lunatest import UUID_RE, assert_error, bearer, create_account


async def _post(http, url, auth, body, status=201):
    async with http.post(url, json=body, headers=auth) as r:
        assert r.status == status, await r.text()
        return await r.json()


async def test_handler_crud_and_validation(platform, http) -> None:
    url = platform.url
    _, auth = await create_account(http, url)
    policies = {
        "detect_policy": {"estimate_mask": 1},
        "storage_policy": {"face_policy": {"store_face": 1}},
    }
    created = await _post(
        http, url + "/6/handlers", auth, {"description": "door", "policies": policies}
    )
    hid = created["handler_id"]
    assert UUID_RE.match(hid) and created["url"] == f"/6/handlers/{hid}"
    async with http.get(f"{url}/6/handlers/{hid}", headers=auth) as r:
        h = await r.json()
    assert h["handler_type"] == 0 and h["description"] == "door"
    assert h["policies"]["detect_policy"]["estimate_mask"] == 1
    assert h["policies"]["storage_policy"]["face_sample_policy"]["store_sample"] == 1
    assert h["policies"]["match_policy"] == []
    dyn = (await _post(http, url + "/6/handlers", auth, {"handler_type": 1}))["handler_id"]
    legacy = (await _post(http, url + "/6/handlers", auth, {"is_dynamic": True}))["handler_id"]
    async with http.get(url + "/6/handlers?handler_type=1", headers=auth) as r:
        assert {x["handler_id"] for x in await r.json()} == {dyn, legacy}
    async with http.get(url + "/6/handlers/count?description=DOO", headers=auth) as r:
        assert await r.json() == {"handlers_count": 1}
    async with http.head(f"{url}/6/handlers/{hid}", headers=auth) as r:
        assert r.status == 200
    async with http.put(
        f"{url}/6/handlers/{hid}", json={"description": "gate", "policies": {}}, headers=auth
    ) as r:
        assert r.status == 200, await r.text()
    async with http.get(f"{url}/6/handlers/{hid}", headers=auth) as r:
        h2 = await r.json()
    assert h2["description"] == "gate" and h2["policies"]["detect_policy"]["estimate_mask"] == 0
    await _post(http, url + "/6/handlers/validator", auth, {"policies": policies}, 200)
    # Invalid policies: 12022 with the path, nothing stored.
    for bad, path in (
        ({"detect_policy": {"multiface_policy": 7}}, "policies.detect_policy.multiface_policy"),
        ({"extra_policy": {}}, "policies.extra_policy"),
        (
            {"match_policy": [{"candidates": {"origin": "lists"}}]},
            "policies.match_policy.0.candidates.origin",
        ),
    ):
        for target in ("/6/handlers", "/6/handlers/validator"):
            async with http.post(url + target, json={"policies": bad}, headers=auth) as r:
                await assert_error(r, 400, 12022, f"Path: '{path}'")
    async with http.post(url + "/6/handlers", json={"descriptionx": 1}, headers=auth) as r:
        await assert_error(r, 400, 12022, "extra fields not permitted")
    async with http.post(
        url + "/6/handlers", data=b"{", headers={**auth, "Content-Type": "application/json"}
    ) as r:
        await assert_error(r, 400, 12002)
    async with http.get(url + "/6/handlers/count", headers=auth) as r:
        assert await r.json() == {"handlers_count": 3}
    async with http.get(url + "/6/handlers?handler_type=5", headers=auth) as r:
        await assert_error(r, 400, 12012)
    unknown = str(uuid.uuid4())
    async with http.get(f"{url}/6/handlers/{unknown}", headers=auth) as r:
        await assert_error(r, 404, 34000, unknown)
    async with http.delete(f"{url}/6/handlers/{hid}", headers=auth) as r:
        assert r.status == 204
    async with http.delete(f"{url}/6/handlers/{hid}", headers=auth) as r:
        await assert_error(r, 404, 34000)
    # Another account sees nothing of ours.
    _, other = await create_account(http, url)
    async with http.get(f"{url}/6/handlers/{dyn}", headers=other) as r:
        await assert_error(r, 404, 34000)
    async with http.put(f"{url}/6/handlers/{dyn}", json={}, headers=other) as r:
        await assert_error(r, 404, 34000)
    async with http.get(url + "/6/handlers", headers=other) as r:
        assert await r.json() == []


def _event(i: int) -> dict:
    return {
        "source": f"cam{i % 2}",
        "user_data": f"visitor {i}",
        "external_id": f"ext-{i}",
        "tags": ["vip"] if i else [],
        "location": {
            "city": "Moscow" if i < 2 else "Paris",
            "geo_position": {"longitude": 37.0, "latitude": 55.0 + i},
        },
        "face_attributes": {"basic_attributes": {"age": 20 + 10 * i, "gender": i % 2}},
        "matches": [
            {
                "label": "staff",
                "candidates": [
                    {"face": {"face_id": str(uuid.uuid4())}, "similarity": 0.5 + i / 10}
                ],
            }
        ],
        "detections": [
            {
                "samples": {
                    "face": {
                        "sample_id": str(uuid.uuid4()),
                        "detection": {"rect": {"x": 0, "y": 0, "width": 10, "height": 10}},
                    }
                }
            }
        ],
        "meta": {"score": i},
    }


async def test_raw_events_queries_and_statistics(platform, http) -> None:
    url = platform.url
    _, auth = await create_account(http, url)
    dyn = (await _post(http, url + "/6/handlers", auth, {"handler_type": 1}))["handler_id"]
    static = (await _post(http, url + "/6/handlers", auth, {"policies": {}}))["handler_id"]
    raw = f"{url}/6/handlers/{dyn}/events/raw"
    ids = []
    for i in range(3):
        saved = await _post(http, raw + "?wait_saving=1", auth, _event(i), 201)
        assert saved["url"] == f"/6/events/{saved['event_id']}"
        ids.append(saved["event_id"])
    buffered = await _post(http, raw + "?wait_saving=0", auth, {"user_data": "late"}, 202)
    ids.append(buffered["event_id"])
    async with http.get(f"{url}/6/events/{ids[1]}", headers=auth) as r:
        e = await r.json()
    assert (
        e["event_id"] == ids[1] and e["handler_id"] == dyn and e["age"] == 30 and e["gender"] == 1
    )
    assert e["location"]["city"] == "Moscow" and e["top_match"]["label"] == "staff"
    async with http.get(f"{url}/6/events/{ids[1]}?target=event_id,age", headers=auth) as r:
        assert await r.json() == {"event_id": ids[1], "age": 30}
    for _ in range(50):  # the wait_saving=0 event lands right after the answer
        async with http.head(f"{url}/6/events/{ids[3]}", headers=auth) as r:
            if r.status == 200:
                break
        await asyncio.sleep(0.1)
    assert r.status == 200

    async def query(qs: str) -> list[str]:
        async with http.get(f"{url}/6/events?{qs}", headers=auth) as r:
            assert r.status == 200, await r.text()
            return [x["event_id"] for x in (await r.json())["events"]]

    assert await query("") == ids[::-1]
    assert await query("order=asc&page=2&page_size=2") == ids[2:]
    assert await query("sources=cam1") == [ids[1]]
    assert set(await query("sources=cam0,null")) == {ids[0], ids[2], ids[3]}
    assert await query("cities=Paris") == [ids[2]]
    assert set(await query("tags=vip")) == {ids[1], ids[2]}
    assert await query("age__gte=25&age__lt=35") == [ids[1]]
    assert await query("gender=null") == [ids[3]]
    assert await query("user_data=VISITOR%202") == [ids[2]]
    assert await query("external_ids=ext-0") == [ids[0]]
    assert await query("top_similar_object_similarity__gte=0.65") == [ids[2]]
    assert await query("top_matching_candidates_label=staff&order=asc") == ids[:3]
    assert await query("origin_longitude=37&origin_latitude=56") == [ids[1]]
    assert await query("meta.score__gte:integer=1&order=asc") == ids[1:3]
    assert await query(f"handler_ids={static}") == []
    assert await query(f"event_ids={ids[0]},{ids[2]}&order=asc") == [ids[0], ids[2]]
    async with http.get(f"{url}/6/events?target=nope", headers=auth) as r:
        await assert_error(r, 400, 12012)
    async with http.get(f"{url}/6/events?emotions=9", headers=auth) as r:
        await assert_error(r, 400, 12012)
    async with http.get(f"{url}/6/events?meta.a%20b=1", headers=auth) as r:
        await assert_error(r, 400, 12012)

    stats = await _post(
        http,
        url + "/6/events/stats",
        auth,
        {
            "targets": [
                {"column": "gender", "aggregator": "group_by"},
                {"column": "age", "aggregator": "max"},
                {"column": "event_id", "aggregator": "count"},
            ]
        },
        200,
    )
    assert stats == {
        "fields": ["gender", "max_age", "count_event_id"],
        "stats": [[0, 40, 2], [1, 30, 1], [None, None, 1]],
    }
    stats = await _post(
        http,
        url + "/6/events/stats",
        auth,
        {"filters": [{"column": "city", "operator": "eq", "value": "Moscow"}]},
        200,
    )
    assert stats == {"fields": ["count_event_id"], "stats": [[2]]}
    async with http.post(
        url + "/6/events/stats",
        json={"targets": [{"column": "age", "aggregator": "group_by"}]},
        headers=auth,
    ) as r:
        await assert_error(r, 400, 12031)
    async with http.post(url + "/6/events/stats", json={"group_by": "2x"}, headers=auth) as r:
        await assert_error(r, 400, 12022)

    # Bad saves: static handler, unknown handler, invalid body; nothing stored.
    async with http.post(f"{url}/6/handlers/{static}/events/raw", json={}, headers=auth) as r:
        await assert_error(r, 403, 34007)
    async with http.post(f"{url}/6/handlers/{uuid.uuid4()}/events/raw", json={}, headers=auth) as r:
        await assert_error(r, 404, 34000)
    for bad in ({"track_id": "a b"}, {"unknown": 1}, {"tags": ["x" * 37]}, {"matches": [{}] * 31}):
        async with http.post(raw, json=bad, headers=auth) as r:
            await assert_error(r, 400, 12022)
    assert len(await query("page_size=100")) == 4

    # Another account: no reads, no saves with our handler.
    _, other = await create_account(http, url)
    async with http.get(f"{url}/6/events/{ids[0]}", headers=other) as r:
        await assert_error(r, 404, 23001)
    async with http.get(f"{url}/6/events", headers=other) as r:
        assert (await r.json())["events"] == []
    async with http.post(raw, json={}, headers=other) as r:
        await assert_error(r, 404, 34000)
    assert (await _post(http, url + "/6/events/stats", other, {}, 200))["stats"] == [[0]]


async def test_verifiers_crud(platform, http) -> None:
    url = platform.url
    _, auth = await create_account(http, url)
    body = {
        "description": "strict",
        "policies": {"verification_threshold": 0.7, "detect_policy": {"estimate_mask": 1}},
    }
    vid = (await _post(http, url + "/6/verifiers", auth, body))["verifier_id"]
    async with http.get(f"{url}/6/verifiers/{vid}", headers=auth) as r:
        v = await r.json()
    assert v["version"] == 1 and v["policies"]["verification_threshold"] == 0.7
    assert v["policies"]["storage_policy"]["face_sample_policy"]["store_sample"] == 0
    async with http.put(
        f"{url}/6/verifiers/{vid}", json={"description": "lenient"}, headers=auth
    ) as r:
        assert await r.json() == {"version": 2}
    async with http.get(url + "/6/verifiers/count?description=LENI", headers=auth) as r:
        assert await r.json() == {"verifiers_count": 1}
    async with http.get(url + "/6/verifiers", headers=auth) as r:
        assert [x["verifier_id"] for x in await r.json()] == [vid]
    async with http.post(
        url + "/6/verifiers", json={"policies": {"verification_threshold": 3}}, headers=auth
    ) as r:
        await assert_error(r, 400, 12022, "verification_threshold")
    _, other = await create_account(http, url)
    async with http.get(f"{url}/6/verifiers/{vid}", headers=other) as r:
        await assert_error(r, 404, 34004)
    async with http.delete(f"{url}/6/verifiers/{vid}", headers=other) as r:
        await assert_error(r, 404, 34004)
    async with http.delete(f"{url}/6/verifiers/{vid}", headers=auth) as r:
        assert r.status == 204
    async with http.head(f"{url}/6/verifiers/{vid}", headers=auth) as r:
        assert r.status == 404


async def test_token_permissions(platform, http) -> None:
    url = platform.url
    _, auth = await create_account(http, url)
    body = {"permissions": {"handler": ["view"], "event": ["view"]}}
    token = (await _post(http, url + "/6/tokens", auth, body))["token"]
    async with http.get(url + "/6/handlers", headers=bearer(token)) as r:
        assert r.status == 200
    async with http.post(url + "/6/handlers", json={}, headers=bearer(token)) as r:
        await assert_error(r, 403, 11059)
    async with http.post(url + "/6/verifiers", json={}, headers=bearer(token)) as r:
        await assert_error(r, 403, 11059)
    async with http.get(url + "/6/events", headers=bearer(token)) as r:
        assert r.status == 200
