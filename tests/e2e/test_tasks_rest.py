"""Tasks through both REST APIs of a running platform: `/6/tasks` (credentials) and the Luna
Tasks API `/2` on its own listener; linker and exporter end to end, statuses and progress,
cancel/delete, results, errors with filters, account scoping, bad input leaving nothing."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import signal
import sys
import uuid
import zipfile
from typing import Any

import numpy as np
from aiohttp import web
from lunatest import REQUEST_ID_RE, assert_error, create_account
from taskstest import CANCELLED, DONE, FAILED, tasks_url, wait_task

from services.launcher.embedded import pick_free_port


async def make_faces(http, url: str, auth: dict[str, str], n: int, tag: str) -> list[str]:
    ids = []
    for i in range(n):
        body = {"user_data": f"{tag}-{i}", "external_id": f"{tag}{i}"}
        async with http.post(url + "/6/faces", json=body, headers=auth) as r:
            assert r.status == 201, await r.text()
            ids.append((await r.json())["face_id"])
    return ids


def runtime(platform: Any) -> dict[str, Any]:
    return json.loads((platform.data_dir / "runtime.json").read_text())


def worker_pids(platform: Any) -> list[int]:
    services = runtime(platform)["services"]
    return [int(v["pid"]) for k, v in services.items() if k.startswith("tasks_worker")]


async def test_linker_through_platform_api(platform, http) -> None:
    url = platform.url
    _, auth = await create_account(http, url)
    face_ids = await make_faces(http, url, auth, 5, "lnk")
    async with http.post(url + "/6/lists", json={"user_data": "target"}, headers=auth) as r:
        list_id = (await r.json())["list_id"]
    body = {
        "description": "link five",
        "content": {"objects_type": "faces", "list_id": list_id, "filters": {"user_data": "lnk"}},
    }
    async with http.post(url + "/6/tasks/linker", json=body, headers=auth) as r:
        assert r.status == 202, await r.text()
        assert REQUEST_ID_RE.match(r.headers["Luna-Request-Id"])
        task_id = (await r.json())["task_id"]
    assert isinstance(task_id, int) and task_id >= 1
    task = await wait_task(http, url + "/6", task_id, auth)
    assert task["task_status"] == DONE, task
    assert task["task_type"] == 1 and task["description"] == "link five"
    assert task["count_task_parts_done"] == task["count_task_parts_all"] == 1
    assert task["content"]["list_id"] == list_id and task["result_id"]
    assert task["end_time"] >= task["create_time"]
    async with http.get(f"{url}/6/tasks/{task_id}/result", headers=auth) as r:
        assert r.status == 200 and r.content_type == "application/json"
        result = await r.json()
    assert result["errors"] == []
    assert result["result"]["list_id"] == list_id
    assert sorted(result["result"]["face_ids"]) == sorted(face_ids)
    async with http.get(f"{url}/6/faces/count?list_id={list_id}", headers=auth) as r:
        assert (await r.json())["faces_count"] == 5
    async with http.get(f"{url}/6/tasks/{task_id}/subtasks", headers=auth) as r:
        subtasks = (await r.json())["subtasks"]
    assert len(subtasks) == 1 and subtasks[0]["subtask_status"] == 4
    assert subtasks[0]["task_id"] == task_id and subtasks[0]["result_id"]
    assert sorted(subtasks[0]["content"]["face_ids"]) == sorted(face_ids)
    # Finished: cannot be cancelled.
    async with http.patch(f"{url}/6/tasks/{task_id}", headers=auth) as r:
        await assert_error(r, 400, 28019, f"Task '{task_id}' with status 5")
    async with http.get(f"{url}/6/tasks?task_type=1&task_status=5", headers=auth) as r:
        assert [t["task_id"] for t in (await r.json())["tasks"]] == [task_id]
    async with http.get(f"{url}/6/tasks/count?task_ids={task_id},999999", headers=auth) as r:
        assert await r.json() == {"count": 1}
    async with http.options(f"{url}/6/tasks/{task_id}") as r:
        assert r.status == 200 and "PATCH" in r.headers["Allow"]
    async with http.delete(f"{url}/6/tasks/{task_id}", headers=auth) as r:
        assert r.status == 204
    async with http.get(f"{url}/6/tasks/{task_id}", headers=auth) as r:
        await assert_error(r, 404, 28001, str(task_id))


async def test_tasks_api_create_list_and_account_scoping(platform, http) -> None:
    url, tasks = platform.url, tasks_url(platform)
    account_id, auth = await create_account(http, url)
    other_id, other_auth = await create_account(http, url)
    # A fourth face of the account that the face_ids filter leaves out.
    *face_ids, _left_out = await make_faces(http, url, auth, 4, "newlist")
    body = {
        "account_id": account_id,
        "content": {
            "objects_type": "faces",
            "create_list": 1,
            "user_data": "made by task",
            "filters": {"face_ids": face_ids, "account_id": account_id},
        },
    }
    async with http.post(tasks + "/2/tasks/linker", json=body) as r:
        assert r.status == 202, await r.text()
        task_id = (await r.json())["task_id"]
    task = await wait_task(http, tasks + "/2", task_id, {})
    assert task["task_status"] == DONE and task["account_id"] == account_id
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services", "tasks", "watch", str(task_id), "--url", tasks,
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await proc.communicate()
    assert proc.returncode == 0 and f"task {task_id} [" in out.decode()
    assert out.decode().strip().endswith("1/1 parts  done")
    async with http.get(f"{tasks}/2/tasks/{task_id}/result") as r:
        result = (await r.json())["result"]
    new_list = result["list_id"]
    assert sorted(result["face_ids"]) == sorted(face_ids)
    async with http.get(f"{url}/6/lists/{new_list}", headers=auth) as r:
        assert r.status == 200 and (await r.json())["user_data"] == "made by task"
    # The same task through the platform API, and nobody else's.
    async with http.get(f"{url}/6/tasks/{task_id}", headers=auth) as r:
        assert (await r.json())["result_id"] == task["result_id"]
    for path in ("", "/result", "/subtasks", "/errors"):
        async with http.get(f"{url}/6/tasks/{task_id}{path}", headers=other_auth) as r:
            await assert_error(r, 404, 28001)
    async with http.patch(f"{url}/6/tasks/{task_id}", headers=other_auth) as r:
        await assert_error(r, 404, 28001)
    async with http.delete(f"{url}/6/tasks/{task_id}", headers=other_auth) as r:
        await assert_error(r, 404, 28001)
    async with http.get(f"{tasks}/2/tasks/{task_id}?account_id={other_id}") as r:
        await assert_error(r, 404, 28001)
    async with http.get(f"{url}/6/tasks", headers=other_auth) as r:
        assert (await r.json())["tasks"] == []
    # Another account's faces are invisible to a task of this account: nothing linked.
    body["content"]["filters"] = {"face_ids": face_ids}
    async with http.post(
        url + "/6/tasks/linker", json={"content": body["content"]}, headers=other_auth
    ) as r:
        other_task = (await r.json())["task_id"]
    done = await wait_task(http, url + "/6", other_task, other_auth)
    async with http.get(f"{url}/6/tasks/{done['task_id']}/result", headers=other_auth) as r:
        assert (await r.json())["result"]["face_ids"] == []
    # Service endpoints of the Tasks API.
    async with http.get(tasks + "/version") as r:
        assert r.status == 200 and "luna-tasks" in await r.json()
    async with http.get(tasks + "/healthcheck") as r:
        assert r.status == 200 and "execution_time" in await r.json()
    async with http.get(tasks + "/2/docs/spec", headers={"Accept": "application/x-yaml"}) as r:
        assert r.status == 200 and "/2/tasks/linker" in await r.text()
    async with http.get(tasks + "/2/docs/spec", headers={"Accept": "image/png"}) as r:
        await assert_error(r, 415, 12024)
    async with http.get(tasks + "/2/docs/dev") as r:
        assert r.status == 200 and r.content_type == "text/html"
    async with http.get(tasks + "/2/config") as r:
        assert "LUNA_TASKS_WORKERS" in await r.json()


async def test_exporter_faces_zip(platform, http) -> None:
    url = platform.url
    _, auth = await create_account(http, url)
    face_ids = await make_faces(http, url, auth, 4, "exp")
    body = {
        "content": {
            "objects_type": "faces",
            "filters": {"user_data": "exp"},
            "columns": ["face_id", "user_data", "external_id", "lists"],
            "csv_delimiter": ";",
        }
    }
    async with http.post(url + "/6/tasks/exporter", json=body, headers=auth) as r:
        assert r.status == 202, await r.text()
        task_id = (await r.json())["task_id"]
    task = await wait_task(http, url + "/6", task_id, auth)
    assert task["task_status"] == DONE and task["task_type"] == 8
    assert task["content"]["save_images"] == 0  # defaults filled in
    async with http.get(f"{url}/6/tasks/{task_id}/result", headers=auth) as r:
        assert r.status == 200 and r.content_type == "application/zip"
        assert r.headers["Content-Disposition"] == f"attachment; filename=task_{task_id}.zip"
        data = await r.read()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        text = archive.read("faces.csv").decode()
    rows = list(csv.reader(io.StringIO(text), delimiter=";"))
    assert rows[0] == ["face_id", "user_data", "external_id", "lists"]
    assert sorted(r[0] for r in rows[1:]) == sorted(face_ids)
    assert {r[1] for r in rows[1:]} == {f"exp-{i}" for i in range(4)}
    assert all(r[3] == "[]" for r in rows[1:])


async def test_bad_input_creates_nothing(platform, http) -> None:
    url, tasks = platform.url, tasks_url(platform)
    account_id, auth = await create_account(http, url)
    _, other_auth = await create_account(http, url)
    async with http.post(url + "/6/lists", json={}, headers=other_auth) as r:
        foreign_list = (await r.json())["list_id"]
    faces = {"objects_type": "faces"}
    cases = [
        ({"content": faces}, 400, 12022),
        ({"content": {**faces, "objects_type": "rocks", "filters": {}}}, 400, 12022),
        ({"content": {**faces, "filters": {}}}, 400, 12022),  # no list
        ({"content": {**faces, "filters": {}, "list_id": foreign_list}}, 404, 22003),
        ({"content": {**faces, "filters": {"face_ids": ["x"]}, "create_list": 1}}, 400, 12022),
        ({"content": {}, "userdata": 1}, 400, 12022),
        (
            {"description": "x" * 129, "content": {**faces, "filters": {}, "create_list": 1}},
            400,
            12022,
        ),
    ]
    for body, status, code in cases:
        async with http.post(url + "/6/tasks/linker", json=body, headers=auth) as r:
            await assert_error(r, status, code)
    async with http.post(url + "/6/tasks/linker", data=b"{nope", headers=auth) as r:
        await assert_error(r, 400, 12002)
    async with http.post(url + "/6/tasks/clustering", json={"content": {}}, headers=auth) as r:
        await assert_error(r, 400, 12022)
    async with http.post(tasks + "/2/tasks/linker", json={"content": {}}) as r:
        await assert_error(r, 400, 12022, "account_id")
    async with http.get(url + "/6/tasks/count", headers=auth) as r:
        assert await r.json() == {"count": 0}
    for query, name in (
        ("task_type=12", "task_type"),
        ("task_status=x", "task_status"),
        ("page_size=1001", "page_size"),
        ("task_ids=1,a", "task_ids"),
        ("create_time__gte=yesterday", "create_time__gte"),
    ):
        async with http.get(f"{url}/6/tasks?{query}", headers=auth) as r:
            await assert_error(r, 400, 12012, name)
    async with http.get(f"{tasks}/2/tasks?page_size=101") as r:
        await assert_error(r, 400, 12012, "page_size")
    async with http.get(f"{url}/6/tasks/0", headers=auth) as r:
        await assert_error(r, 400, 12012, "task_id")
    async with http.get(f"{url}/6/tasks/errors/123456789", headers=auth) as r:
        await assert_error(r, 404, 28003)
    async with http.get(f"{url}/6/tasks") as r:
        assert r.status == 401
    assert account_id


async def _signal_all(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


async def test_failed_part_is_a_task_error_with_filters(platform, http) -> None:
    """Workers paused, the list deleted under the task: the part fails as a task error."""
    url = platform.url
    _, auth = await create_account(http, url)
    await make_faces(http, url, auth, 2, "gone")
    async with http.post(url + "/6/lists", json={}, headers=auth) as r:
        list_id = (await r.json())["list_id"]
    pids = worker_pids(platform)
    await _signal_all(pids, signal.SIGSTOP)
    try:
        body = {
            "content": {
                "objects_type": "faces",
                "list_id": list_id,
                "filters": {"user_data": "gone"},
            }
        }
        async with http.post(url + "/6/tasks/linker", json=body, headers=auth) as r:
            task_id = (await r.json())["task_id"]
        await wait_task(http, url + "/6", task_id, auth, statuses=(1,))
        async with http.delete(f"{url}/6/lists/{list_id}", headers=auth) as r:
            assert r.status == 204
    finally:
        await _signal_all(pids, signal.SIGCONT)
    task = await wait_task(http, url + "/6", task_id, auth)
    assert task["task_status"] == FAILED, task
    async with http.get(f"{url}/6/tasks/{task_id}/errors", headers=auth) as r:
        errors = (await r.json())["errors"]
    assert len(errors) == 1 and errors[0]["error_code"] == 22003
    err = errors[0]
    assert err["task_id"] == task_id and err["subtask_id"] >= 1 and list_id in err["detail"]
    assert err["link"].endswith("code-22003") and err["error_time"].endswith("Z")
    async with http.get(f"{url}/6/tasks/errors/{err['error_id']}", headers=auth) as r:
        assert await r.json() == err
    for query, n in (
        (f"task_ids={task_id}", 1),
        ("error_code=22003", 1),
        ("error_code=22004", 0),
        ("task_type=1&status_code=404", 1),
        ("task_type=8", 0),
        (f"error_ids={err['error_id']}", 1),
        ("error_time__gte=2100-01-01T00:00:00Z", 0),
    ):
        async with http.get(f"{url}/6/tasks/errors?{query}", headers=auth) as r:
            assert len((await r.json())["errors"]) == n, query
        async with http.get(f"{url}/6/tasks/errors/count?{query}", headers=auth) as r:
            assert (await r.json())["count"] == n, query
    async with http.get(f"{url}/6/tasks/{task_id}/result", headers=auth) as r:
        await assert_error(r, 404, 28017)


async def test_cancel_stops_a_task(platform, http) -> None:
    url = platform.url
    _, auth = await create_account(http, url)
    await make_faces(http, url, auth, 2, "cancel")
    pids = worker_pids(platform)
    await _signal_all(pids, signal.SIGSTOP)
    try:
        body = {"content": {"objects_type": "faces", "create_list": 1, "filters": {}}}
        async with http.post(url + "/6/tasks/linker", json=body, headers=auth) as r:
            task_id = (await r.json())["task_id"]
        async with http.patch(f"{url}/6/tasks/{task_id}", headers=auth) as r:
            assert r.status == 202
        async with http.get(f"{url}/6/tasks/{task_id}", headers=auth) as r:
            task = await r.json()
        assert task["task_status"] == CANCELLED and task["end_time"]
        async with http.get(f"{url}/6/tasks/{task_id}/result", headers=auth) as r:
            await assert_error(r, 400, 28020, f"task {task_id} with status 2")
        async with http.patch(f"{url}/6/tasks/{task_id}", headers=auth) as r:
            await assert_error(r, 400, 28019)
    finally:
        await _signal_all(pids, signal.SIGCONT)
    await asyncio.sleep(1)
    async with http.get(f"{url}/6/tasks/{task_id}/subtasks", headers=auth) as r:
        assert {s["subtask_status"] for s in (await r.json())["subtasks"]} <= {2}


async def test_killed_workers_and_tasks_service_resume(platform, http) -> None:
    """SIGKILL every worker while it holds a delivered part, and the tasks service while the
    task runs: the part is redelivered to the restarted workers and applied once."""
    url = platform.url
    _, auth = await create_account(http, url)
    face_ids = await make_faces(http, url, auth, 3, "crash")
    async with http.post(url + "/6/lists", json={}, headers=auth) as r:
        list_id = (await r.json())["list_id"]
    pids = worker_pids(platform)
    await _signal_all(pids, signal.SIGSTOP)
    body = {
        "content": {"objects_type": "faces", "list_id": list_id, "filters": {"user_data": "crash"}}
    }
    async with http.post(url + "/6/tasks/linker", json=body, headers=auth) as r:
        task_id = (await r.json())["task_id"]
    await wait_task(http, url + "/6", task_id, auth, statuses=(1,))
    tasks_pid = int(runtime(platform)["services"]["tasks"]["pid"])
    os.kill(tasks_pid, signal.SIGKILL)
    await asyncio.sleep(1.5)  # the stopped workers' pending pulls receive the part
    await _signal_all(pids, signal.SIGKILL)
    task = await wait_task(http, url + "/6", task_id, auth)
    assert task["task_status"] == DONE, task
    assert task["count_task_parts_done"] == task["count_task_parts_all"] == 1
    async with http.get(f"{url}/6/tasks/{task_id}/result", headers=auth) as r:
        assert sorted((await r.json())["result"]["face_ids"]) == sorted(face_ids)
    async with http.get(f"{url}/6/faces?list_id={list_id}&page_size=100", headers=auth) as r:
        assert sorted(f["face_id"] for f in (await r.json())["faces"]) == sorted(face_ids)
    assert set(worker_pids(platform)).isdisjoint(pids)  # restarted by the supervisor
    assert uuid.UUID(task["result_id"])


def _warp_jpeg(seed: int) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 255, (250, 250, 3), dtype=np.uint8))
    buf = io.BytesIO()
    img.save(buf, "JPEG")
    return buf.getvalue()


async def _raw_event(
    http, url, auth, handler_id: str, sample_id: str | None, city: str, origin: str | None = None
) -> str:
    body: dict[str, Any] = {
        "user_data": city,
        "location": {"city": city, "geo_position": {"longitude": 37.5, "latitude": 55.75}},
    }
    if sample_id:
        body["detections"] = [
            {
                "samples": {
                    "face": {
                        "sample_id": sample_id,
                        "detection": {"rect": {"x": 0, "y": 0, "width": 10, "height": 10}},
                    }
                },
                **({"image_origin": origin} if origin else {}),
            }
        ]
    raw = f"{url}/6/handlers/{handler_id}/events/raw?wait_saving=1"
    async with http.post(raw, json=body, headers=auth) as r:
        assert r.status == 201, await r.text()
        return (await r.json())["event_id"]


async def test_gc_events_and_exporter_events(platform, http) -> None:
    url, tasks = platform.url, tasks_url(platform)
    account_id, auth = await create_account(http, url)
    _, other_auth = await create_account(http, url)
    handlers = []
    for who in (auth, auth, other_auth):
        async with http.post(url + "/6/handlers", json={"handler_type": 1}, headers=who) as r:
            handlers.append((await r.json())["handler_id"])
    samples = []
    for i in range(2):
        async with http.post(
            url + "/6/samples/faces",
            data=_warp_jpeg(i),
            headers={**auth, "Content-Type": "image/jpeg"},
        ) as r:
            assert r.status == 201, await r.text()
            samples.append((await r.json())["sample_id"])
    # Source images: one of ours, one on an external server that must receive a DELETE.
    async with http.post(
        url + "/6/images", data=_warp_jpeg(7), headers={**auth, "Content-Type": "image/jpeg"}
    ) as r:
        assert r.status == 201, await r.text()
        image_url = (await r.json())["url"]
    deleted: list[str] = []

    async def on_delete(request: web.Request) -> web.Response:
        deleted.append(request.path)
        return web.Response(status=204)

    origin_app = web.Application()
    origin_app.router.add_delete("/cam/{name}", on_delete)
    runner = web.AppRunner(origin_app)
    await runner.setup()
    origin_port = pick_free_port()
    await web.TCPSite(runner, "127.0.0.1", origin_port).start()
    external = f"http://127.0.0.1:{origin_port}/cam/frame1.jpg"
    doomed = [
        await _raw_event(http, url, auth, handlers[0], s, "Moscow", origin)
        for s, origin in zip(samples, (image_url, external), strict=True)
    ]
    kept = await _raw_event(http, url, auth, handlers[1], None, "Paris")
    foreign = await _raw_event(http, url, other_auth, handlers[2], None, "Rome")

    # Exporter of events first: the kept handler's event with its location columns.
    body = {
        "content": {
            "objects_type": "events",
            "filters": {"handler_ids": [handlers[1]]},
            "columns": ["event_id", "handler_id", "city", "geo_position", "user_data"],
        }
    }
    async with http.post(url + "/6/tasks/exporter", json=body, headers=auth) as r:
        assert r.status == 202, await r.text()
        export_id = (await r.json())["task_id"]
    assert (await wait_task(http, url + "/6", export_id, auth))["task_status"] == DONE
    async with http.get(f"{url}/6/tasks/{export_id}/result", headers=auth) as r:
        data = await r.read()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        rows = list(csv.reader(io.StringIO(archive.read("events.csv").decode())))
    assert rows == [
        ["event_id", "handler_id", "city", "geo_position", "user_data"],
        [kept, handlers[1], "Paris", "55.75, 37.5", "Paris"],
    ]

    # The same with samples: each event's face sample in images/<event_id>/.
    body["content"].update(filters={"handler_ids": [handlers[0]]}, save_images=1)
    async with http.post(url + "/6/tasks/exporter", json=body, headers=auth) as r:
        export_id = (await r.json())["task_id"]
    assert (await wait_task(http, url + "/6", export_id, auth))["task_status"] == DONE
    async with http.get(f"{url}/6/tasks/{export_id}/result", headers=auth) as r:
        data = await r.read()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = set(archive.namelist())
        assert names == {
            "events.csv",
            *(f"images/{e}/{s}.jpg" for e, s in zip(doomed, samples, strict=True)),
        }
        assert archive.read(f"images/{doomed[0]}/{samples[0]}.jpg") == _warp_jpeg(0)

    gc = {
        "account_id": account_id,
        "description": "drop handler 0",
        "content": {
            "target": "events",
            "filters": {"handler_id": handlers[0]},
            "remove_samples": True,
            "remove_image_origins": True,
        },
    }
    async with http.post(tasks + "/2/tasks/gc", json=gc) as r:
        assert r.status == 202, await r.text()
        gc_id = (await r.json())["task_id"]
    task = await wait_task(http, tasks + "/2", gc_id, {})
    assert task["task_status"] == DONE and task["task_type"] == 4
    assert task["content"]["store_results"] is True
    async with http.get(f"{tasks}/2/tasks/{gc_id}/result") as r:
        result = await r.json()
    assert result["errors"] == []
    assert sorted(result["result"], key=lambda x: x["event_id"]) == sorted(
        (
            {"event_id": e, "samples": [s], "image_origins": [o]}
            for e, s, o in zip(doomed, samples, (image_url, external), strict=True)
        ),
        key=lambda x: x["event_id"],
    )
    assert deleted == ["/cam/frame1.jpg"]
    await runner.cleanup()
    async with http.get(url + image_url, headers=auth) as r:
        assert r.status == 404
    for event_id in doomed:
        async with http.get(f"{url}/6/events/{event_id}", headers=auth) as r:
            assert r.status == 404
    for sample_id in samples:
        async with http.get(f"{url}/6/samples/faces/{sample_id}", headers=auth) as r:
            assert r.status == 404
    # Everything of the account, results not stored; another account's event survives.
    gc["content"] = {"target": "events", "store_results": False}
    async with http.post(tasks + "/2/tasks/gc", json=gc) as r:
        gc_all = (await r.json())["task_id"]
    assert (await wait_task(http, tasks + "/2", gc_all, {}))["task_status"] == DONE
    async with http.get(f"{url}/6/events/{kept}", headers=auth) as r:
        assert r.status == 404
    async with http.get(f"{url}/6/events/{foreign}", headers=other_auth) as r:
        assert r.status == 200
    async with http.get(f"{tasks}/2/tasks/{gc_all}/result") as r:
        await assert_error(r, 404, 28017)
    for content, status, code in (
        ({"target": "events", "filters": {"account_id": str(uuid.uuid4())}}, 400, 12031),
        ({"target": "faces"}, 400, 12022),
        ({"target": "events", "filters": {"insert_time__lt": "2030-01-01T00:00:00Z"}}, 501, 12029),
        ({"target": "events", "filters": {"handler_id": "nope"}}, 400, 12022),
    ):
        async with http.post(tasks + "/2/tasks/gc", json={**gc, "content": content}) as r:
            await assert_error(r, status, code)


async def test_schedules_crud(platform, http) -> None:
    url = platform.url
    _, auth = await create_account(http, url)
    _, other_auth = await create_account(http, url)
    body = {
        "task": {"task_type": 4, "content": {"target": "events"}, "description": "nightly"},
        "trigger": {"cron": "5 4 * * *", "cron_timezone": "utc"},
        "behaviour": {"start_immediately": True},
    }
    async with http.post(url + "/6/tasks/schedules", json=body, headers=auth) as r:
        assert r.status == 201, await r.text()
        sid = (await r.json())["schedule_id"]
    async with http.get(f"{url}/6/tasks/schedules/{sid}", headers=auth) as r:
        sc = await r.json()
    assert sc["status"] == "running" and sc["trigger"] == body["trigger"]
    assert sc["task"]["task_type"] == 4 and len(sc["task_ids"]) == 1
    assert sc["next_run_time"].endswith("Z") and "T04:05:00" in sc["next_run_time"]
    first = sc["task_ids"][0]
    task = await wait_task(http, url + "/6", first, auth)
    assert task["task_status"] == DONE and task["schedule_id"] == sid
    async with http.get(f"{url}/6/tasks?schedule_id={sid}", headers=auth) as r:
        assert [t["task_id"] for t in (await r.json())["tasks"]] == [first]
    async with http.get(f"{url}/6/tasks/schedules?task_type=4", headers=auth) as r:
        listed = await r.json()
    assert [s["schedule_id"] for s in listed] == [sid]
    async with http.patch(f"{url}/6/tasks/schedules/{sid}?action=pause", headers=auth) as r:
        assert r.status == 204
    async with http.get(f"{url}/6/tasks/schedules/{sid}", headers=auth) as r:
        sc = await r.json()
    assert sc["status"] == "stopped" and sc["next_run_time"] is None
    body["trigger"] = {"cron": "0 */2 * * *"}
    body["behaviour"] = {"create_stopped": False}
    async with http.put(f"{url}/6/tasks/schedules/{sid}", json=body, headers=auth) as r:
        assert r.status == 200 and (await r.json()) == {"schedule_id": sid}
    async with http.get(f"{url}/6/tasks/schedules/{sid}", headers=auth) as r:
        sc = await r.json()
    assert sc["status"] == "running" and sc["trigger"]["cron_timezone"] == "utc"
    for method in ("get", "delete"):
        async with http.request(method, f"{url}/6/tasks/schedules/{sid}", headers=other_auth) as r:
            await assert_error(r, 404, 28040)
    for bad, code in (
        ({**body, "trigger": {"cron": "every day"}}, 12022),
        ({**body, "task": {"task_type": 4, "content": {"target": "nothing"}}}, 12022),
        ({"trigger": body["trigger"]}, 12022),
    ):
        async with http.post(url + "/6/tasks/schedules", json=bad, headers=auth) as r:
            await assert_error(r, 400, code)
    async with http.patch(f"{url}/6/tasks/schedules/{sid}?action=jump", headers=auth) as r:
        await assert_error(r, 400, 12012, "action")
    async with http.delete(f"{url}/6/tasks/schedules/{sid}", headers=auth) as r:
        assert r.status == 204
    async with http.get(f"{url}/6/tasks/schedules/{sid}", headers=auth) as r:
        await assert_error(r, 404, 28040)


async def test_linker_of_events_makes_one_face_per_event(platform, http) -> None:
    from services.estimator import model_repo as mr

    url = platform.url
    _, auth = await create_account(http, url)
    async with http.post(url + "/6/handlers", json={"handler_type": 1}, headers=auth) as r:
        dynamic = (await r.json())["handler_id"]
    raw = [await _raw_event(http, url, auth, dynamic, None, f"City{i}") for i in range(2)]
    policies = {"extract_policy": {"extract_face_descriptor": 1}}
    async with http.post(url + "/6/handlers", json={"policies": policies}, headers=auth) as r:
        static = (await r.json())["handler_id"]
    photo = (mr.test_images_dir(mr.models_dir()) / "test_crop.jpg").read_bytes()
    async with http.post(
        f"{url}/6/handlers/{static}/events?user_data=from-photo",
        data=photo,
        headers={**auth, "Content-Type": "image/jpeg"},
    ) as r:
        assert r.status == 201, await r.text()
        generated = [e["event_id"] for e in (await r.json())["events"]]
    assert len(generated) == 1
    for _ in range(100):  # the handler may save its event just after answering
        async with http.head(f"{url}/6/events/{generated[0]}", headers=auth) as r:
            if r.status == 200:
                break
        await asyncio.sleep(0.05)
    body = {
        "content": {
            "objects_type": "events",
            "create_list": 1,
            "filters": {"event_ids": [*raw, *generated]},
        }
    }
    async with http.post(url + "/6/tasks/linker", json=body, headers=auth) as r:
        assert r.status == 202, await r.text()
        task_id = (await r.json())["task_id"]
    task = await wait_task(http, url + "/6", task_id, auth)
    assert task["task_status"] == DONE, task
    async with http.get(f"{url}/6/tasks/{task_id}/result", headers=auth) as r:
        result = (await r.json())["result"]
    assert len(result["face_ids"]) == 3
    async with http.get(
        f"{url}/6/faces?list_id={result['list_id']}&page_size=10", headers=auth
    ) as r:
        faces = {f["event_id"]: f for f in (await r.json())["faces"]}
    assert set(faces) == {*raw, *generated}
    assert faces[raw[0]]["user_data"] == "City0"
    assert faces[generated[0]]["user_data"] == "from-photo"
    face = faces[generated[0]]["face_id"]
    async with http.get(f"{url}/6/faces/{face}/attributes", headers=auth) as r:
        body = await r.json()
    assert body["attributes"].get("face_descriptor"), body  # the event's descriptor came along
    # Export the list's faces with their samples: the photo face brought its event's sample.
    body = {
        "content": {
            "objects_type": "faces",
            "filters": {"list_id": result["list_id"]},
            "save_images": 1,
        }
    }
    async with http.post(url + "/6/tasks/exporter", json=body, headers=auth) as r:
        export_id = (await r.json())["task_id"]
    assert (await wait_task(http, url + "/6", export_id, auth))["task_status"] == DONE
    async with http.get(f"{url}/6/tasks/{export_id}/result", headers=auth) as r:
        data = await r.read()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        images = [n for n in archive.namelist() if n.startswith("images/")]
        assert len(images) == 1 and images[0].startswith(f"images/{face}/")
        assert archive.read(images[0])[:2] == b"\xff\xd8"  # a JPEG sample

    # gc of the events' face descriptors: the events stay, their descriptors go.
    import psycopg

    gc = {"content": {"target": "event_descriptors", "filters": {"descriptor_version": 200}}}
    async with http.post(url + "/6/tasks/gc", json=gc, headers=auth) as r:
        await assert_error(r, 400, 12022)  # descriptor_type is required
    gc["content"]["filters"]["descriptor_type"] = "face"
    async with http.post(url + "/6/tasks/gc", json=gc, headers=auth) as r:
        gc_id = (await r.json())["task_id"]
    assert (await wait_task(http, url + "/6", gc_id, auth))["task_status"] == DONE
    async with http.get(f"{url}/6/tasks/{gc_id}/result", headers=auth) as r:
        assert (await r.json())["result"] == generated
    async with await psycopg.AsyncConnection.connect(platform.runtime["database_url"]) as conn:
        cur = await conn.execute(
            "select count(*) from event_descriptors where event_id = %s", (generated[0],)
        )
        assert (await cur.fetchone())[0] == 0
    async with http.get(f"{url}/6/events/{generated[0]}", headers=auth) as r:
        assert r.status == 200

    # gc the face descriptors, then extract them again from the faces' own samples.
    import base64

    async with http.get(f"{url}/6/faces/{face}/attributes", headers=auth) as r:
        before = np.frombuffer(
            base64.b64decode((await r.json())["attributes"]["face_descriptor"]), "<f4"
        )
    gc = {"content": {"target": "face_descriptors", "filters": {"descriptor_version": 200}}}
    async with http.post(url + "/6/tasks/gc", json=gc, headers=auth) as r:
        gc_id = (await r.json())["task_id"]
    assert (await wait_task(http, url + "/6", gc_id, auth))["task_status"] == DONE
    async with http.get(f"{url}/6/faces/{face}/attributes", headers=auth) as r:
        assert not (await r.json())["attributes"].get("face_descriptor")
    extract = {
        "content": {
            "extraction_target": "face_descriptor",
            "options": {"descriptor_version": 200},
            "filters": {"objects_type": "faces"},
        }
    }
    for expected in ([face], []):  # the second run finds nothing missing
        async with http.post(url + "/6/tasks/additional_extract", json=extract, headers=auth) as r:
            assert r.status == 202, await r.text()
            ae_id = (await r.json())["task_id"]
        assert (await wait_task(http, url + "/6", ae_id, auth))["task_status"] == DONE
        async with http.get(f"{url}/6/tasks/{ae_id}/result", headers=auth) as r:
            got = await r.json()
        assert [i["face_id"] for i in got["result"]] == expected, got
        assert all(len(i["samples"]) == 1 for i in got["result"])
    async with http.get(f"{url}/6/faces/{face}/attributes", headers=auth) as r:
        after = np.frombuffer(
            base64.b64decode((await r.json())["attributes"]["face_descriptor"]), "<f4"
        )
    assert float(before @ after) > 0.95  # the same face, re-extracted from its sample
    for options, status, code in (
        ({"descriptor_version": 999}, 400, 34001),
        ({"descriptor_version": 200, "missing": False}, 501, 12029),
    ):
        bad = {"content": {**extract["content"], "options": options}}
        async with http.post(url + "/6/tasks/additional_extract", json=bad, headers=auth) as r:
            await assert_error(r, status, code)


async def test_task_stored_before_a_crash_is_planned_after_restart(platform, http) -> None:
    """The tasks service dies between storing a task and planning it (simulated: the row is
    written while the service is stopped, then the service is SIGKILLed): the restarted
    service plans it and workers finish it."""
    import psycopg
    from psycopg.types.json import Jsonb

    url = platform.url
    account_id, auth = await create_account(http, url)
    face_ids = await make_faces(http, url, auth, 3, "restart")
    async with http.post(url + "/6/lists", json={}, headers=auth) as r:
        list_id = (await r.json())["list_id"]
    tasks_pid = int(runtime(platform)["services"]["tasks"]["pid"])
    os.kill(tasks_pid, signal.SIGSTOP)
    try:
        content = {"objects_type": "faces", "list_id": list_id, "filters": {"user_data": "restart"}}
        async with await psycopg.AsyncConnection.connect(platform.runtime["database_url"]) as conn:
            cur = await conn.execute(
                "insert into tasks_tasks (account_id, task_type, content) values (%s, 1, %s)"
                " returning task_id",
                (account_id, Jsonb(content)),
            )
            task_id = (await cur.fetchone())[0]
            await conn.commit()
    finally:
        os.kill(tasks_pid, signal.SIGKILL)
    task = await wait_task(http, url + "/6", task_id, auth)
    assert task["task_status"] == DONE, task
    async with http.get(f"{url}/6/tasks/{task_id}/result", headers=auth) as r:
        assert sorted((await r.json())["result"]["face_ids"]) == sorted(face_ids)
    assert int(runtime(platform)["services"]["tasks"]["pid"]) != tasks_pid


async def test_gc_face_descriptors(platform, http) -> None:
    import base64

    url, tasks = platform.url, tasks_url(platform)
    account_id, auth = await create_account(http, url)
    _, other_auth = await create_account(http, url)

    async def face_with_descriptor(who: dict[str, str], seed: int) -> str:
        vec = np.random.default_rng(seed).standard_normal(128).astype("<f4")
        attr = {
            "face_descriptors": [
                {"descriptor": base64.b64encode(vec.tobytes()).decode(), "version": 200}
            ],
            "basic_attributes": {"age": 30, "gender": 1, "ethnicity": 2},
        }
        async with http.post(url + "/6/attributes?ttl=60", json=attr, headers=who) as r:
            attribute_id = (await r.json())["attribute_id"]
        body = {"attribute": {"attribute_id": attribute_id}}
        async with http.post(url + "/6/faces", json=body, headers=who) as r:
            assert r.status == 201, await r.text()
            return (await r.json())["face_id"]

    mine = [await face_with_descriptor(auth, i) for i in range(3)]
    theirs = await face_with_descriptor(other_auth, 99)
    await make_faces(http, url, auth, 1, "no-descriptor")
    gc = {
        "account_id": account_id,
        "content": {"target": "face_descriptors", "filters": {"descriptor_version": 200}},
    }
    async with http.post(tasks + "/2/tasks/gc", json=gc) as r:
        assert r.status == 202, await r.text()
        task_id = (await r.json())["task_id"]
    assert (await wait_task(http, tasks + "/2", task_id, {}))["task_status"] == DONE
    async with http.get(f"{tasks}/2/tasks/{task_id}/result") as r:
        assert sorted((await r.json())["result"]) == sorted(mine)
    async with http.get(f"{url}/6/faces/{mine[0]}/attributes", headers=auth) as r:
        left = (await r.json())["attributes"]
    assert not left.get("face_descriptor") and left["basic_attributes"]["age"] == 30
    async with http.get(f"{url}/6/faces/{theirs}/attributes", headers=other_auth) as r:
        assert (await r.json())["attributes"]["face_descriptor"]
    gc["content"]["filters"] = {}
    async with http.post(tasks + "/2/tasks/gc", json=gc) as r:
        await assert_error(r, 400, 12022)
