"""The analytical tasks through both REST APIs of a running platform: clustering and its
report, cross_match and roc, on descriptors of real photos (skimage's astronaut in several
shots, the estimator's test photos for other people) and on synthetic clustered descriptors
whose exact answer numpy computes here; errors, account isolation, cancel."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import csv
import io
import json
import os
import signal
import uuid
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from lunatest import assert_error, create_account
from PIL import Image, ImageEnhance
from scipy.sparse.csgraph import connected_components
from skimage import data
from taskstest import CANCELLED, DONE, tasks_url, wait_task

from bench.matcher.data import generate
from services.estimator import model_repo
from services.matcher.core.similarity import cosine_to_similarity

VERSION = 200
TEST_IMAGES = model_repo.test_images_dir(Path(__file__).resolve().parents[2] / "models")
OTHER_PHOTOS = ["01.jpg", "test2.jpg", "test3.jpg", "test_crop.jpg", "p3.jpg"]


def jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="JPEG", quality=92)
    return buf.getvalue()


def astronaut_shots() -> list[bytes]:
    """Four different photos of one person: as is, mirrored, cropped and rescaled, darker."""
    img = Image.fromarray(data.astronaut())
    return [
        jpeg(img),
        jpeg(img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)),
        jpeg(img.crop((60, 0, 400, 340)).resize((300, 300))),
        jpeg(ImageEnhance.Brightness(img).enhance(0.6)),
    ]


async def sdk_descriptors(http: Any, url: str, auth: dict[str, str], image: bytes) -> list[str]:
    async with http.post(
        url + "/6/sdk",
        params={"detect_face": "1", "estimate_face_descriptor": "1"},
        data=image,
        headers={**auth, "Content-Type": "image/jpeg"},
    ) as r:
        assert r.status == 200, await r.text()
        found = (await r.json())["images_estimations"][0]["estimations"]
    return [e["face"]["attributes"]["descriptor"]["sdk_descriptor"] for e in found]


async def create_face(
    http: Any, url: str, auth: dict[str, str], desc: str, user_data: str = "", **kw: Any
) -> str:
    body = {
        "attribute": {"face_descriptors": [{"descriptor": desc, "version": VERSION}]},
        "user_data": user_data,
        **kw,
    }
    async with http.post(url + "/6/faces", json=body, headers=auth) as r:
        assert r.status == 201, await r.text()
        return (await r.json())["face_id"]


def b64(vec: np.ndarray) -> str:
    return base64.b64encode(np.asarray(vec, "<f4").tobytes()).decode()


async def run_task(
    http: Any, url: str, path: str, body: dict[str, Any], auth: dict[str, str]
) -> tuple[dict[str, Any], Any]:
    async with http.post(f"{url}/tasks/{path}", json=body, headers=auth) as r:
        assert r.status == 202, await r.text()
        task_id = (await r.json())["task_id"]
    task = await wait_task(http, url, task_id, auth)
    assert task["task_status"] == DONE, task
    assert task["count_task_parts_done"] == task["count_task_parts_all"] >= 1
    async with http.get(f"{url}/tasks/{task_id}/result", headers=auth) as r:
        assert r.status == 200
        if r.content_type == "application/zip":
            return task, await r.read()
        return task, await r.json()


@pytest.fixture(scope="module")
async def photos(platform: Any, http: Any) -> dict[str, Any]:
    url = platform.url
    account_id, auth = await create_account(http, url)
    astro = []
    for shot in astronaut_shots():
        (desc,) = await sdk_descriptors(http, url, auth, shot)
        astro.append(await create_face(http, url, auth, desc, "photo astro"))
    others = []
    for name in OTHER_PHOTOS:
        for desc in await sdk_descriptors(http, url, auth, jpeg(Image.open(TEST_IMAGES / name))):
            others.append(await create_face(http, url, auth, desc, f"photo {name}"))
    assert len(others) >= 3
    return {"account_id": account_id, "auth": auth, "astro": astro, "others": others}


async def test_clustering_real_photos_and_report(platform, http, photos) -> None:
    url, auth = platform.url, photos["auth"]
    body = {
        "description": "who is who",
        "content": {"objects_type": "faces", "filters": {"user_data": "photo"}, "threshold": 0.5},
    }
    task, got = await run_task(http, url + "/6", "clustering", body, auth)
    assert task["task_type"] == 2 and task["content"]["limit"] == 20000
    assert got["errors"] == []
    result = got["result"]
    everyone = photos["astro"] + photos["others"]
    assert result["total_objects"] == len(everyone)
    assert result["total_clusters"] == len(result["clusters"])
    assert sorted(f for c in result["clusters"] for f in c) == sorted(everyone)
    # Every shot of the astronaut in one cluster, and nobody else in it.
    (astro_cluster,) = [c for c in result["clusters"] if photos["astro"][0] in c]
    assert sorted(astro_cluster) == sorted(photos["astro"])
    # The report of that clustering: cluster number, face id, the chosen columns.
    report = {
        "content": {
            "filters": {"task_id": task["task_id"]},
            "columns": ["user_data", "create_time"],
            "csv_delimiter": ";",
            "save_images": 0,
        }
    }
    rtask, body_zip = await run_task(http, url + "/6", "reporter", report, auth)
    assert rtask["task_type"] == 3
    with zipfile.ZipFile(io.BytesIO(body_zip)) as archive:
        rows = list(csv.reader(io.StringIO(archive.read("report.csv").decode()), delimiter=";"))
    assert rows[0] == ["cluster", "face_id", "user_data", "create_time"]
    by_face = {r[1]: r for r in rows[1:]}
    assert sorted(by_face) == sorted(everyone)
    astro_numbers = {by_face[f][0] for f in photos["astro"]}
    assert len(astro_numbers) == 1 and by_face[photos["astro"][0]][2] == "photo astro"
    assert by_face[photos["astro"][0]][3].endswith("Z")


async def test_cross_match_and_roc_real_photos(platform, http, photos) -> None:
    tasks = tasks_url(platform) + "/2"
    account_id = photos["account_id"]
    astro, others = photos["astro"], photos["others"]
    body = {
        "account_id": account_id,
        "content": {
            "filters": {
                "reference_type": "faces",
                "candidate_type": "faces",
                "reference_filters": {"face_ids": astro[:1]},
                "candidate_filters": {"face_ids": astro[1:] + others},
            },
            "limit": 3,
        },
    }
    _, got = await run_task(http, tasks, "cross_match", body, {})
    (match,) = got["result"]
    assert match["reference_id"] == astro[0]
    found = match["candidates"]
    assert len(found) == 3
    assert {c["candidate_id"] for c in found} == set(astro[1:])
    sims = [c["similarity"] for c in found]
    assert sims == sorted(sims, reverse=True) and all(0.5 < s <= 1 for s in sims)
    # Clean markup: the astronaut's shots share a label, every other face has its own.
    markup = [{"face_id": f, "label": 0} for f in astro]
    markup += [{"face_id": f, "label": i + 1} for i, f in enumerate(others)]
    body = {"account_id": account_id, "content": {"markup": markup, "filters": {}}}
    _, got = await run_task(http, tasks, "roc", body, {})
    result = got["result"]
    assert result["auc"] > 0.95
    assert set(result["hit_top_probability"]) == {f"top-{i}" for i in range(1, 6)}
    assert result["hit_top_probability"]["top-1"] == 1.0
    assert result["key_points"] is None
    point = result["type_I_and_II_error_rates_equal_point"]
    assert set(point) == {"FPR", "TPR", "similarity"}
    assert all({"FPR", "TPR", "similarity"} == set(p) for p in result["roc"])


async def test_synthetic_clusters_equal_exact_components(platform, http) -> None:
    url = platform.url
    tasks = tasks_url(platform) + "/2"
    account_id, auth = await create_account(http, url)
    gen = generate(120, samples_per_identity=6, n_queries=1, seed=21)
    async with http.post(url + "/6/lists", json={}, headers=auth) as r:
        list_id = (await r.json())["list_id"]
    ids = [await create_face(http, url, auth, b64(v), "syn", lists=[list_id]) for v in gen.gallery]
    threshold = 0.6
    x = gen.gallery / np.linalg.norm(gen.gallery, axis=1, keepdims=True)
    _, labels = connected_components(cosine_to_similarity(x @ x.T) >= threshold, directed=False)
    want = sorted(sorted(ids[i] for i in np.nonzero(labels == c)[0]) for c in set(labels))
    body = {
        "account_id": account_id,
        "content": {
            "objects_type": "faces",
            "filters": {"account_id": account_id, "user_data": "syn"},
            "threshold": threshold,
        },
    }
    _, got = await run_task(http, tasks, "clustering", body, {})
    assert sorted(got["result"]["clusters"]) == want
    assert got["result"]["total_clusters"] == len(want)
    # Cross-match of the set with itself: each face's best candidate is itself; the rest are
    # the exact next best.
    body = {
        "account_id": account_id,
        "content": {
            "filters": {
                "reference_type": "faces", "candidate_type": "faces",
                "reference_filters": {"user_data": "syn"},
                "candidate_filters": {"user_data": "syn"},
            },
            "limit": 4,
            "threshold": 0.3,
        },
    }  # fmt: skip
    _, got = await run_task(http, tasks, "cross_match", body, {})
    sim = cosine_to_similarity(x @ x.T)
    assert len(got["result"]) == 120
    for item in got["result"]:
        i = ids.index(item["reference_id"])
        best = [j for j in np.argsort(-sim[i], kind="stable")[:4] if sim[i, j] >= 0.3]
        assert [c["candidate_id"] for c in item["candidates"]] == [ids[j] for j in best]
        assert item["candidates"][0]["candidate_id"] == ids[i]
    # Temporary attributes as references: each finds the face made from its descriptor.
    attrs = []
    for v in gen.gallery[:10]:
        body_attr = {"face_descriptors": [{"descriptor": b64(v), "version": VERSION}]}
        async with http.post(url + "/6/attributes", json=body_attr, headers=auth) as r:
            assert r.status == 201, await r.text()
            attrs.append((await r.json())["attribute_id"])
    attr_body = {
        "account_id": account_id,
        "content": {
            "filters": {
                "reference_type": "attributes", "candidate_type": "faces",
                "reference_filters": {"attribute_ids": attrs},
                "candidate_filters": {"user_data": "syn"},
            },
            "limit": 1,
        },
    }  # fmt: skip
    _, by_attr = await run_task(http, tasks, "cross_match", attr_body, {})
    best = {m["reference_id"]: m["candidates"][0] for m in by_attr["result"]}
    assert sorted(best) == sorted(attrs)
    for aid, fid in zip(attrs, ids[:10], strict=True):
        assert best[aid]["candidate_id"] == fid and best[aid]["similarity"] > 0.999
    # Candidates of one list go through the matcher's indexes: the same answer.
    body["content"]["filters"]["candidate_filters"] = {"list_id": list_id}
    _, by_matcher = await run_task(http, tasks, "cross_match", body, {})
    assert len(by_matcher["result"]) == 120
    local = {m["reference_id"]: m["candidates"] for m in got["result"]}
    for item in by_matcher["result"]:
        want_ids = [c["candidate_id"] for c in local[item["reference_id"]]]
        assert [c["candidate_id"] for c in item["candidates"]] == want_ids
        for a, b in zip(item["candidates"], local[item["reference_id"]], strict=True):
            assert a["similarity"] == pytest.approx(b["similarity"], abs=1e-4)


async def test_roc_shuffled_labels_near_chance(platform, http) -> None:
    url = platform.url
    _, auth = await create_account(http, url)
    gen = generate(200, samples_per_identity=4, n_queries=1, seed=5)
    ids = [await create_face(http, url, auth, b64(v)) for v in gen.gallery]
    labels = np.random.default_rng(1).permutation(gen.gallery_identity)
    markup = [{"face_id": f, "label": int(lbl)} for f, lbl in zip(ids, labels, strict=True)]
    body = {"content": {"markup": markup, "filters": {}, "key_FPRs": [0.01], "limit": 2}}
    _, got = await run_task(http, url + "/6", "roc", body, auth)
    result = got["result"]
    assert 0.35 < result["auc"] < 0.65
    assert result["hit_top_probability"]["top-3"] is None
    (key,) = result["key_points"]
    assert key["FPR"] <= 0.01
    clean = [{"face_id": f, "label": int(lbl)} for f, lbl in zip(ids, gen.gallery_identity,
                                                                  strict=True)]  # fmt: skip
    # Half the clean markup as temporary attributes of the same descriptors.
    for i in range(0, 200, 2):
        body_attr = {"face_descriptors": [{"descriptor": b64(gen.gallery[i]), "version": VERSION}]}
        async with http.post(url + "/6/attributes", json=body_attr, headers=auth) as r:
            assert r.status == 201, await r.text()
            clean[i] = {
                "attribute_id": (await r.json())["attribute_id"],
                "label": clean[i]["label"],
            }
    _, got = await run_task(http, url + "/6", "roc", {"content": {"markup": clean, "filters": {}}},
                            auth)  # fmt: skip
    assert got["result"]["auc"] > 0.99 and got["errors"] == []
    gone = [*clean[:3], {"attribute_id": str(uuid.uuid4()), "label": 1}]
    body = {"content": {"markup": gone, "filters": {}}}
    async with http.post(url + "/6/tasks/roc", json=body, headers=auth) as r:
        await assert_error(r, 404, 22011)


async def test_analytical_errors_and_isolation(platform, http, photos) -> None:
    url, tasks = platform.url, tasks_url(platform)
    other_id, other_auth = await create_account(http, url)
    mine = photos["astro"]
    cases: list[tuple[str, dict[str, Any], int, int]] = [
        ("clustering", {"objects_type": "faces"}, 400, 12022),
        ("clustering", {"objects_type": "faces", "filters": {}, "threshold": 2}, 400, 12022),
        ("clustering", {"objects_type": "faces", "filters": {"bogus": 1}}, 400, 12022),
        ("clustering", {"objects_type": "events", "filters": {"event_ids": ["x"]}}, 400, 12022),
        ("clustering", {"objects_type": "faces", "filters": {}, "limit": 20001}, 400, 12022),
        (
            "clustering",
            {"objects_type": "faces", "filters": {"account_id": photos["account_id"]}},
            400,
            12031,
        ),
        (
            "clustering",
            {"objects_type": "faces", "filters": {}, "descriptor": {"type": "body"}},
            501,
            12029,
        ),
        ("cross_match", {"filters": {"reference_type": "faces"}}, 400, 12022),
        (
            "cross_match",
            {
                "filters": {
                    "reference_type": "attributes",
                    "candidate_type": "faces",
                    "reference_filters": {"attribute_ids": []},
                    "candidate_filters": {},
                }
            },
            400,
            12022,
        ),
        ("roc", {"markup": [{"face_id": mine[0], "label": 1}], "filters": {}}, 400, 12022),
        (
            "roc",
            {"markup": [{"face_id": f, "label": 1} for f in mine[:2]], "filters": {}},
            404,
            22002,
        ),  # another account's faces
        ("reporter", {"filters": {"task_id": 10**9}}, 404, 28001),
    ]
    for path, content, status, code in cases:
        async with http.post(f"{url}/6/tasks/{path}", json={"content": content},
                             headers=other_auth) as r:  # fmt: skip
            await assert_error(r, status, code)
    async with http.get(url + "/6/tasks/count", headers=other_auth) as r:
        assert await r.json() == {"count": 0}  # nothing refused was stored
    # Another account's clustering sees none of these faces: an empty result, not an error.
    body = {
        "account_id": other_id,
        "content": {"objects_type": "faces", "filters": {"face_ids": mine}},
    }
    task, got = await run_task(http, tasks + "/2", "clustering", body, {})
    assert got["result"] == {"clusters": [], "total_objects": 0, "total_clusters": 0}
    # A reporter of a task that is not a clustering, and of a clustering not done yet.
    body = {"content": {"objects_type": "faces", "filters": {}}}
    async with http.post(url + "/6/tasks/exporter", json=body, headers=other_auth) as r:
        exporter_id = (await r.json())["task_id"]
    await wait_task(http, url + "/6", exporter_id, other_auth)
    report = {"content": {"filters": {"task_id": exporter_id}}}
    async with http.post(url + "/6/tasks/reporter", json=report, headers=other_auth) as r:
        await assert_error(r, 400, 28013)
    # Another account's clustering task is not found.
    report = {"content": {"filters": {"task_id": task["task_id"]}}}
    async with http.post(url + "/6/tasks/reporter", json=report, headers=photos["auth"]) as r:
        await assert_error(r, 404, 28001)
    # Cancel: a cancelled clustering has no result.
    body = {
        "content": {"objects_type": "faces", "filters": {"face_id__gte": str(uuid.UUID(int=0))}}
    }
    async with http.post(url + "/6/tasks/clustering", json=body, headers=photos["auth"]) as r:
        task_id = (await r.json())["task_id"]
    async with http.patch(f"{url}/6/tasks/{task_id}", headers=photos["auth"]) as r:
        assert r.status in (202, 400)
    task = await wait_task(http, url + "/6", task_id, photos["auth"])
    if task["task_status"] == CANCELLED:
        async with http.get(f"{url}/6/tasks/{task_id}/result", headers=photos["auth"]) as r:
            await assert_error(r, 400, 28020)
        report = {"content": {"filters": {"task_id": task_id}}}
        async with http.post(url + "/6/tasks/reporter", json=report, headers=photos["auth"]) as r:
            await assert_error(r, 400, 28015)


def _signal_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def worker_pids(platform: Any) -> list[int]:
    services = json.loads((platform.data_dir / "runtime.json").read_text())["services"]
    return [int(v["pid"]) for k, v in services.items() if k.startswith("tasks_worker")]


async def test_clustering_cancel_and_crash_resume(platform, http) -> None:
    """A cancelled clustering stops with no result; a clustering whose workers and tasks
    service are SIGKILLed while its parts are delivered finishes with the exact answer."""
    url = platform.url
    _, auth = await create_account(http, url)
    gen = generate(60, samples_per_identity=5, n_queries=1, seed=33)
    ids = [await create_face(http, url, auth, b64(v), "crash") for v in gen.gallery]
    x = gen.gallery / np.linalg.norm(gen.gallery, axis=1, keepdims=True)
    _, labels = connected_components(cosine_to_similarity(x @ x.T) >= 0.7, directed=False)
    want = sorted(sorted(ids[i] for i in np.nonzero(labels == c)[0]) for c in set(labels))
    body = {"content": {"objects_type": "faces", "filters": {}, "threshold": 0.7}}
    pids = worker_pids(platform)
    _signal_all(pids, signal.SIGSTOP)
    try:
        async with http.post(url + "/6/tasks/clustering", json=body, headers=auth) as r:
            cancelled = (await r.json())["task_id"]
        async with http.patch(f"{url}/6/tasks/{cancelled}", headers=auth) as r:
            assert r.status == 202
        async with http.get(f"{url}/6/tasks/{cancelled}/result", headers=auth) as r:
            await assert_error(r, 400, 28020)
        async with http.post(url + "/6/tasks/clustering", json=body, headers=auth) as r:
            task_id = (await r.json())["task_id"]
        await wait_task(http, url + "/6", task_id, auth, statuses=(1,))
        tasks_pid = int(
            json.loads((platform.data_dir / "runtime.json").read_text())["services"]["tasks"]["pid"]
        )
        os.kill(tasks_pid, signal.SIGKILL)
        await asyncio.sleep(1.5)  # the stopped workers' pending pulls receive the part
    finally:
        _signal_all(pids, signal.SIGKILL)
    task = await wait_task(http, url + "/6", task_id, auth)
    assert task["task_status"] == DONE, task
    async with http.get(f"{url}/6/tasks/{task_id}/result", headers=auth) as r:
        assert sorted((await r.json())["result"]["clusters"]) == want
    assert set(worker_pids(platform)).isdisjoint(pids)  # restarted by the supervisor
    async with http.get(f"{url}/6/tasks/{cancelled}", headers=auth) as r:
        assert (await r.json())["task_status"] == CANCELLED


async def test_events_clustering_report_and_cross_match(platform, http, photos) -> None:
    url, auth = platform.url, photos["auth"]
    policies = {
        "extract_policy": {"extract_face_descriptor": 1},
        "storage_policy": {
            "face_sample_policy": {"store_sample": 1},
            "event_policy": {"store_event": 1, "wait_saving": 1},
        },
    }
    async with http.post(url + "/6/handlers", json={"policies": policies}, headers=auth) as r:
        assert r.status == 201, await r.text()
        handler_id = (await r.json())["handler_id"]
    astro_events, other_events = [], []
    shots = [(s, True) for s in astronaut_shots()[:3]]
    shots.append((jpeg(Image.open(TEST_IMAGES / "test_crop.jpg")), False))
    for image, is_astro in shots:
        async with http.post(
            f"{url}/6/handlers/{handler_id}/events",
            data=image,
            headers={**auth, "Content-Type": "image/jpeg"},
        ) as r:
            assert r.status == 201, await r.text()
            events = [e["event_id"] for e in (await r.json())["events"]]
        (astro_events if is_astro else other_events).extend(events)
    assert len(astro_events) == 3 and other_events
    body = {
        "content": {
            "objects_type": "events",
            "filters": {"handler_ids": [handler_id]},
            "threshold": 0.5,
        }
    }
    task, got = await run_task(http, url + "/6", "clustering", body, auth)
    result = got["result"]
    assert result["total_objects"] == len(astro_events) + len(other_events)
    (astro_cluster,) = [c for c in result["clusters"] if astro_events[0] in c]
    assert sorted(astro_cluster) == sorted(astro_events)
    report = {
        "content": {
            "filters": {"task_id": task["task_id"]},
            "columns": ["handler_id", "create_time"],
            "save_images": 1,
        }
    }
    _, body_zip = await run_task(http, url + "/6", "reporter", report, auth)
    with zipfile.ZipFile(io.BytesIO(body_zip)) as archive:
        rows = list(csv.reader(io.StringIO(archive.read("report.csv").decode())))
        images = [n for n in archive.namelist() if n.startswith("images/")]
    assert rows[0] == ["cluster", "event_id", "handler_id", "create_time"]
    assert {r[1] for r in rows[1:]} == set(astro_events + other_events)
    assert all(r[2] == handler_id for r in rows[1:])
    assert {n.split("/")[1] for n in images} == set(astro_events + other_events)
    # Events as references, faces as candidates: each astronaut event finds astronaut faces.
    body = {
        "content": {
            "filters": {
                "reference_type": "events",
                "candidate_type": "faces",
                "reference_filters": {"event_ids": astro_events},
                "candidate_filters": {"face_ids": photos["astro"] + photos["others"]},
            },
            "limit": 1,
            "threshold": 0.5,
        }
    }
    _, got = await run_task(http, url + "/6", "cross_match", body, auth)
    assert sorted(m["reference_id"] for m in got["result"]) == sorted(astro_events)
    assert all(m["candidates"][0]["candidate_id"] in photos["astro"] for m in got["result"])
