"""additional_extract of events: events generated with SFace (200) descriptors get MobileFaceNet
(201) descriptors from their stored face samples, and a 201 reference then finds the right
event; an event whose face sample is not stored is a task error of that event."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from lunatest import create_account, json_of, same_person_photos
from taskstest import DONE, wait_task

from services.common import errors
from services.estimator import model_repo as mr

MFN = mr.MOBILEFACENET_DESCRIPTOR_VERSION


@pytest.fixture(scope="module")
def photos() -> dict[str, bytes]:
    return same_person_photos()


async def _event(http: Any, url: str, auth: dict, handler: str, image: bytes) -> dict[str, Any]:
    """The event the handler generates from the image, once it is saved."""
    async with http.post(
        f"{url}/6/handlers/{handler}/events", data=image,
        headers={**auth, "Content-Type": "image/jpeg"},
    ) as r:  # fmt: skip
        (event,) = (await json_of(r, 201))["events"]
    for _ in range(100):  # the handler may save its event just after answering
        async with http.head(f"{url}/6/events/{event['event_id']}", headers=auth) as r:
            if r.status == 200:
                break
        await asyncio.sleep(0.05)
    return event


async def _raw_event(http: Any, url: str, auth: dict, handler: str, sample: str | None) -> str:
    """An event saved as given: with a face detection naming `sample`, or with none."""
    body: dict[str, Any] = {"user_data": "raw"}
    if sample:
        rect = {"x": 0, "y": 0, "width": 10, "height": 10}
        body["detections"] = [
            {"samples": {"face": {"sample_id": sample, "detection": {"rect": rect}}}}
        ]
    async with http.post(
        f"{url}/6/handlers/{handler}/events/raw?wait_saving=1", json=body, headers=auth
    ) as r:
        return (await json_of(r, 201))["event_id"]


async def _probe(http: Any, url: str, auth: dict, image: bytes) -> dict[str, Any]:
    """A raw 201 reference of the image's face (the extractor takes the version)."""
    async with http.post(
        f"{url}/6/detector", data=image, headers={**auth, "Content-Type": "image/jpeg"}
    ) as r:
        (img,) = (await json_of(r, 201))["images"]
    sample = img["detections"]["samples"][0]["face"]["sample_id"]
    query = f"?descriptor_version={MFN}&ttl=600"
    async with http.post(f"{url}/6/extractor{query}", json=[sample], headers=auth) as r:
        (attr,) = await json_of(r, 201)
    async with http.get(f"{url}/6/attributes/{attr['attribute_id']}", headers=auth) as r:
        descriptor = (await json_of(r, 200))["face_descriptor"]
    return {"type": "raw_descriptor", "data": descriptor, "version": MFN}


async def _match_events(http: Any, url: str, auth: dict, ref: dict, handler: str) -> list:
    body = {
        "references": [ref],
        "candidates": [{"target": "events", "filters": {"handler_ids": [handler]}, "limit": 5}],
    }
    async with http.post(url + "/6/matcher/faces", json=body, headers=auth) as r:
        (match,) = await json_of(r, 200)
    return [(x["event"]["event_id"], x["similarity"]) for x in match["matches"][0]["result"]]


async def _extract(http: Any, url: str, auth: dict, filters: dict) -> dict[str, Any]:
    task = {
        "content": {
            "extraction_target": "face_descriptor",
            "options": {"descriptor_version": MFN},
            "filters": {"objects_type": "events", **filters},
        }
    }
    async with http.post(url + "/6/tasks/additional_extract", json=task, headers=auth) as r:
        task_id = (await json_of(r, 202))["task_id"]
    assert (await wait_task(http, url + "/6", task_id, auth))["task_status"] == DONE
    async with http.get(f"{url}/6/tasks/{task_id}/result", headers=auth) as r:
        return await json_of(r, 200)


async def test_additional_extract_of_events_to_mobilefacenet(platform, http, photos) -> None:
    url = platform.url
    _, auth = await create_account(http, url)
    policies = {"extract_policy": {"extract_face_descriptor": 1}}
    async with http.post(url + "/6/handlers", json={"policies": policies}, headers=auth) as r:
        handler = (await json_of(r, 201))["handler_id"]
    events = {
        k: await _event(http, url, auth, handler, photos[k]) for k in ("enrolled", "stranger")
    }
    sample_of = {
        e["event_id"]: e["detections"][0]["samples"]["face"]["sample_id"] for e in events.values()
    }
    async with http.post(url + "/6/handlers", json={"handler_type": 1}, headers=auth) as r:
        dynamic = (await json_of(r, 201))["handler_id"]
    no_sample = await _raw_event(http, url, auth, dynamic, None)
    gone_sample = str(uuid.uuid4())
    sample_gone = await _raw_event(http, url, auth, dynamic, gone_sample)

    # The events hold SFace descriptors only: a 201 reference finds none of them.
    probe = await _probe(http, url, auth, photos["probe"])
    assert await _match_events(http, url, auth, probe, handler) == []

    done = await _extract(http, url, auth, {})
    assert sorted(done["result"], key=lambda x: x["event_id"]) == sorted(
        ({"event_id": e, "samples": [s]} for e, s in sample_of.items()),
        key=lambda x: x["event_id"],
    )
    failed = {e["additional_info"]: e for e in done["errors"]}
    assert set(failed) == {no_sample, sample_gone}
    assert {e["error_code"] for e in failed.values()} == {errors.IMAGE_NOT_FOUND}
    assert gone_sample in failed[sample_gone]["detail"]

    # Now the astronaut's event is found by the 201 reference, scored by the 201 model.
    found = await _match_events(http, url, auth, probe, handler)
    assert found[0][0] == events["enrolled"]["event_id"] and found[0][1] > 0.85
    assert [e for e, _ in found] == [events[k]["event_id"] for k in ("enrolled", "stranger")]
    assert found[1][1] < 0.85

    # Nothing is missing any more: a second run extracts nothing (the errors stay errors).
    again = await _extract(http, url, auth, {"handler_id": handler})
    assert again["result"] == [] and again["errors"] == []
    # A task that selects no event at all is done with nothing to do.
    nothing = await _extract(http, url, auth, {"handler_id": str(uuid.uuid4())})
    assert nothing == {"result": [], "errors": []}


async def test_additional_extract_of_events_bad_filters(platform, http) -> None:
    url = platform.url
    _, auth = await create_account(http, url)
    content = {
        "extraction_target": "face_descriptor",
        "options": {"descriptor_version": MFN},
        "filters": {"objects_type": "events", "face_id__gte": str(uuid.uuid4())},
    }
    async with http.post(
        url + "/6/tasks/additional_extract", json={"content": content}, headers=auth
    ) as r:
        assert (await json_of(r, 400))["error_code"] == errors.BAD_JSON
    content["filters"] = {"objects_type": "events", "insert_time__lt": "2026-01-01T00:00:00Z"}
    async with http.post(
        url + "/6/tasks/additional_extract", json={"content": content}, headers=auth
    ) as r:
        assert (await json_of(r, 501))["error_code"] == errors.NOT_IMPLEMENTED
    async with http.get(url + "/6/tasks/count", headers=auth) as r:
        assert (await json_of(r, 200))["count"] == 0  # a refused task leaves nothing
