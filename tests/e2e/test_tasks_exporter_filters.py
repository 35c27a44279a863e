"""The exporter over events with every event filter the catalogue documents for tasks
(tasks-api `events_filters`), one test per filter group, through `/6/tasks/exporter`: two
events that differ in every field; each filter must export exactly the one it names."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
import zipfile
from typing import Any

import pytest
from lunatest import assert_error, create_account
from taskstest import DONE, wait_task

FACE_A, FACE_B = str(uuid.uuid4()), str(uuid.uuid4())
MATCH_A, MATCH_B = str(uuid.uuid4()), str(uuid.uuid4())


def _event(i: int) -> dict[str, Any]:
    """Event 0 or 1; every filterable field differs between them."""
    return {
        "source": f"cam{i}",
        "user_data": f"visitor {'alpha' if i == 0 else 'beta'}",
        "external_id": f"ext-{i}",
        "track_id": f"track_{i}",
        "tags": ["vip", "floor1"] if i == 0 else ["floor1"],
        "face": {"face_id": FACE_A if i == 0 else FACE_B},
        "location": {
            "city": ["Moscow", "Paris"][i],
            "area": ["Central", "North"][i],
            "district": ["Arbat", "Montmartre"][i],
            "street": ["Tverskaya", "Rivoli"][i],
            "house_number": ["1", "2"][i],
            "geo_position": {"longitude": [37.6, 2.35][i], "latitude": [55.75, 48.85][i]},
        },
        "face_attributes": {
            "basic_attributes": {
                "age": [25, 60][i],
                "gender": i,
                "ethnicity": ["asian", "caucasian"][i],
            }
        },
        "aggregate_estimations": {
            "face": {
                "attributes": {
                    "emotions": ["happiness", "sadness"][i],
                    "mask": ["missing", "medical_mask"][i],
                    "liveness": ["real", "spoof"][i],
                }
            }
        },
        "matches": [
            {
                "label": ["staff", "guests"][i],
                "candidates": [
                    {
                        "face": {"face_id": [MATCH_A, MATCH_B][i], "external_id": f"m-{i}"},
                        "similarity": [0.9, 0.4][i],
                    }
                ],
            }
        ],
    }


async def _seed(platform: Any, http: Any) -> tuple[dict[str, str], str, list[str]]:
    url = platform.url
    _, auth = await create_account(http, url)
    async with http.post(url + "/6/handlers", json={"handler_type": 1}, headers=auth) as r:
        handler = (await r.json())["handler_id"]
    ids = []
    for i in range(2):
        raw = f"{url}/6/handlers/{handler}/events/raw?wait_saving=1"
        async with http.post(raw, json=_event(i), headers=auth) as r:
            assert r.status == 201, await r.text()
            ids.append((await r.json())["event_id"])
        if i == 0:
            await asyncio.sleep(0.05)  # distinct create/end times
    return auth, handler, ids


async def _exported(platform: Any, http: Any, auth: dict[str, str], filters: dict) -> set[str]:
    url = platform.url
    body = {"content": {"objects_type": "events", "filters": filters, "columns": ["event_id"]}}
    async with http.post(url + "/6/tasks/exporter", json=body, headers=auth) as r:
        assert r.status == 202, (filters, await r.text())
        task_id = (await r.json())["task_id"]
    assert (await wait_task(http, url + "/6", task_id, auth))["task_status"] == DONE
    async with http.get(f"{url}/6/tasks/{task_id}/result", headers=auth) as r:
        data = await r.read()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        rows = list(csv.reader(io.StringIO(archive.read("events.csv").decode())))
    return {row[0] for row in rows[1:]}


async def _check(platform: Any, http: Any, cases: list[tuple[dict[str, Any], int | None]]) -> None:
    """Each (filters, which): the export holds only event `which` (None: neither)."""
    auth, _, ids = await _seed(platform, http)
    got = await asyncio.gather(*(_exported(platform, http, auth, f) for f, _ in cases))
    for (filters, which), exported in zip(cases, got, strict=True):
        want = set() if which is None else {ids[which]}
        assert exported == want, filters


async def test_exporter_event_id_and_time_filters(platform, http) -> None:
    auth, handler, ids = await _seed(platform, http)
    first, second = sorted(ids)
    async with http.get(f"{platform.url}/6/events/{ids[0]}", headers=auth) as r:
        event0 = await r.json()
    cases: list[tuple[dict[str, Any], set[str]]] = [
        ({"event_ids": [ids[1]]}, {ids[1]}),
        ({"event_id__gte": second}, {second}),
        ({"event_id__lt": second}, {first}),
        ({"handler_ids": [handler]}, set(ids)),
        ({"handler_ids": [str(uuid.uuid4())]}, set()),
        ({"external_ids": ["ext-0"]}, {ids[0]}),
        ({"face_ids": [FACE_B]}, {ids[1]}),
        ({"create_time__lt": event0["create_time"]}, set()),
        ({"create_time__gte": event0["create_time"]}, set(ids)),
        ({"end_time__gte": event0["end_time"], "end_time__lt": "2100-01-01T00:00:00Z"}, set(ids)),
        ({"end_time__lt": event0["end_time"]}, set()),
    ]
    got = await asyncio.gather(*(_exported(platform, http, auth, f) for f, _ in cases))
    for (filters, want), exported in zip(cases, got, strict=True):
        assert exported == want, filters


async def test_exporter_event_text_filters(platform, http) -> None:
    await _check(
        platform,
        http,
        [
            ({"sources": ["cam1"]}, 1),
            ({"user_data": "alpha"}, 0),
            ({"tags": ["vip"]}, 0),
            ({"tags": ["vip", "floor1"]}, 0),
            ({"tags": ["lobby"]}, None),
            ({"track_ids": ["track_1"]}, 1),
        ],
    )


async def test_exporter_event_match_filters(platform, http) -> None:
    await _check(
        platform,
        http,
        [
            ({"top_matching_candidates_label": "guests"}, 1),
            ({"top_similar_object_ids": [MATCH_A]}, 0),
            ({"top_similar_external_ids": ["m-1"]}, 1),
            ({"top_similar_object_similarity__gte": 0.5}, 0),
            ({"top_similar_object_similarity__lt": 0.5}, 1),
        ],
    )


async def test_exporter_event_attribute_filters(platform, http) -> None:
    await _check(
        platform,
        http,
        [
            ({"age__gte": 40}, 1),
            ({"age__lt": 40}, 0),
            ({"gender": 0}, 0),
            ({"emotions": [6]}, 1),
            ({"ethnic_groups": [3]}, 0),
            ({"masks": [2, 3]}, 1),
            ({"liveness": [1]}, 0),
        ],
    )


async def test_exporter_event_location_filters(platform, http) -> None:
    await _check(
        platform,
        http,
        [
            ({"cities": ["Paris"]}, 1),
            ({"areas": ["Central"]}, 0),
            ({"districts": ["Montmartre"]}, 1),
            ({"streets": ["Tverskaya", "Arbat"]}, 0),
            ({"house_numbers": ["2"]}, 1),
            ({"geo_position": {"origin_longitude": 37.6, "origin_latitude": 55.75}}, 0),
            (
                {
                    "geo_position": {
                        "origin_longitude": 3.0,
                        "origin_latitude": 49.0,
                        "longitude_delta": 1,
                        "latitude_delta": 1,
                    }
                },
                1,
            ),
        ],
    )


@pytest.mark.parametrize(
    "filters, path",
    [
        ({"gender": 2}, "content.filters.gender"),
        ({"emotions": [8]}, "content.filters.emotions.0"),
        ({"age__gte": 101}, "content.filters.age__gte"),
        ({"track_ids": ["bad id"]}, "content.filters.track_ids.0"),
        ({"geo_position": {"origin_longitude": 1}}, "content.filters.geo_position"),
        ({"top_similar_object_similarity__lt": 2}, "content.filters"),
        ({"meta.score": 1}, "content.filters"),
    ],
)
async def test_exporter_bad_event_filters(platform, http, filters, path) -> None:
    _, auth = await create_account(http, platform.url)
    body = {"content": {"objects_type": "events", "filters": filters}}
    async with http.post(platform.url + "/6/tasks/exporter", json=body, headers=auth) as r:
        err = await assert_error(r, 400, 12022)
    assert f"Path: '{path}" in err["detail"], err
