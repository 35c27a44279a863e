"""A second recognition model end to end: faces enrolled with the default descriptor version
(200, SFace) get MobileFaceNet descriptors (201) from additional_extract, and a 201 reference
finds the right face among them; the matcher never compares the two versions."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import pytest
from lunatest import create_account, json_of, same_person_photos
from taskstest import DONE, wait_task

from services.estimator import model_repo as mr

MFN = mr.MOBILEFACENET_DESCRIPTOR_VERSION


@pytest.fixture(scope="module")
def photos() -> dict[str, bytes]:
    return same_person_photos()


async def detect(http, url: str, auth: dict[str, str], image: bytes) -> str:
    headers = {**auth, "Content-Type": "image/jpeg"}
    async with http.post(f"{url}/6/detector", data=image, headers=headers) as r:
        (img,) = (await json_of(r, 201))["images"]
    return img["detections"]["samples"][0]["face"]["sample_id"]


async def extract(http, url: str, auth: dict[str, str], ids: list[str], query: str = "") -> list:
    async with http.post(f"{url}/6/extractor{query}", json=ids, headers=auth) as r:
        return await json_of(r, 201)


async def _face(http, url: str, auth: dict[str, str], sample_id: str) -> str:
    (attr,) = await extract(http, url, auth, [sample_id], "?ttl=600")
    body = {"attribute": {"attribute_id": attr["attribute_id"]}}
    async with http.post(url + "/6/faces", json=body, headers=auth) as r:
        return (await json_of(r, 201))["face_id"]


async def _match(http, url: str, auth: dict[str, str], ref: dict[str, Any], list_id: str) -> list:
    body = {"references": [ref], "candidates": [{"filters": {"list_id": list_id}, "limit": 5}]}
    async with http.post(url + "/6/matcher/faces", json=body, headers=auth) as r:
        (match,) = await json_of(r, 200)
    return [(x["face"]["face_id"], x["similarity"]) for x in match["matches"][0]["result"]]


async def test_additional_extract_to_mobilefacenet_then_match_by_version(
    platform,
    http,
    photos,
) -> None:
    url = platform.url
    _, auth = await create_account(http, url)
    astronaut = await _face(http, url, auth, await detect(http, url, auth, photos["enrolled"]))
    stranger = await _face(http, url, auth, await detect(http, url, auth, photos["stranger"]))
    async with http.post(url + "/6/lists", json={}, headers=auth) as r:
        list_id = (await json_of(r, 201))["list_id"]
    link = {"action": "attach", "face_ids": [astronaut, stranger]}
    async with http.patch(f"{url}/6/lists/{list_id}/faces", json=link, headers=auth) as r:
        assert r.status == 204, await r.text()

    # A probe extracted as version 201 (the extractor takes the version).
    probe_sample = await detect(http, url, auth, photos["probe"])
    (probe,) = await extract(http, url, auth, [probe_sample], f"?descriptor_version={MFN}")
    async with http.get(f"{url}/6/attributes/{probe['attribute_id']}", headers=auth) as r:
        raw = base64.b64decode((await json_of(r, 200))["face_descriptor"])
    assert len(raw) == 192 * 4
    ref = {"type": "raw_descriptor", "data": base64.b64encode(raw).decode(), "version": MFN}

    # Before re-extraction no face has a 201 descriptor: nothing to find, never a 200 match.
    assert await _match(http, url, auth, ref, list_id) == []

    task = {
        "content": {
            "extraction_target": "face_descriptor",
            "options": {"descriptor_version": MFN},
            "filters": {"objects_type": "faces"},
        }
    }
    async with http.post(url + "/6/tasks/additional_extract", json=task, headers=auth) as r:
        assert r.status == 202, await r.text()
        task_id = (await r.json())["task_id"]
    assert (await wait_task(http, url + "/6", task_id, auth))["task_status"] == DONE
    async with http.get(f"{url}/6/tasks/{task_id}/result", headers=auth) as r:
        done = {i["face_id"] for i in (await r.json())["result"]}
    assert done == {astronaut, stranger}
    async with http.get(
        f"{url}/6/faces/{astronaut}/attributes?descriptor_version={MFN}", headers=auth
    ) as r:
        stored = base64.b64decode((await json_of(r, 200))["attributes"]["face_descriptor"])
    assert len(stored) == 192 * 4

    # The 201 reference finds the astronaut first, well above the stranger.
    found = await _match(http, url, auth, ref, list_id)
    assert [f for f, _ in found] == [astronaut, stranger], found
    assert found[0][1] > found[1][1] + 0.2, found
    probe_vec = np.frombuffer(raw, "<f4")
    assert float(probe_vec @ np.frombuffer(stored, "<f4")) > 0.7

    # The default version still matches in its own index (attribute references are 200).
    (probe200,) = await extract(http, url, auth, [probe_sample])
    found = await _match(
        http, url, auth, {"type": "attribute", "id": probe200["attribute_id"]}, list_id
    )
    assert found[0][0] == astronaut

    # A face enrolled later, with version 200 only, is no 201 candidate.
    late = await _face(http, url, auth, await detect(http, url, auth, photos["enrolled"]))
    link = {"action": "attach", "face_ids": [late]}
    async with http.patch(f"{url}/6/lists/{list_id}/faces", json=link, headers=auth) as r:
        assert r.status == 204, await r.text()
    assert late not in [f for f, _ in await _match(http, url, auth, ref, list_id)]

    # A handler extracting version 201 matches in the 201 index: the probe photo finds the
    # astronaut among the list's re-extracted faces (the late 200-only face is no candidate).
    policies = {
        "extract_policy": {"extract_face_descriptor": 1, "descriptor_version": MFN},
        "match_policy": [
            {"label": "mfn", "candidates": {"origin": "faces", "list_id": list_id}, "limit": 5}
        ],
    }
    async with http.post(url + "/6/handlers", json={"policies": policies}, headers=auth) as r:
        handler_id = (await json_of(r, 201))["handler_id"]
    headers = {**auth, "Content-Type": "image/jpeg"}
    async with http.post(
        f"{url}/6/handlers/{handler_id}/events", data=photos["probe"], headers=headers
    ) as r:
        (event,) = (await json_of(r, 201))["events"]
    (matched,) = event["matches"]
    cands = [c["face"]["face_id"] for c in matched["candidates"]]
    assert cands[0] == astronaut and late not in cands, matched
