"""The estimator task through REST with real models and photos, from every source this server
implements: a network disk (roots, prefix/postfix, recursion, links), a ZIP by URL (with and
without password, corrupt, unreachable, not allowed) and a real FTP server (pyftpdlib).
Per-image results and errors; a broken image is an error of its image, never a crashed task."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import shutil
import subprocess
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from lunatest import assert_error, create_account
from taskstest import DONE, FAILED, tasks_url, wait_task

from services.estimator import model_repo as mr
from services.launcher.embedded import pick_free_port

FACES = ("01.jpg", "test_crop.jpg")


@pytest.fixture(scope="module")
def photos() -> Path:
    return Path(mr.test_images_dir(mr.models_dir()))


async def disk_root(http, platform) -> Path:
    async with http.get(tasks_url(platform) + "/2/config") as r:
        return Path((await r.json())["LUNA_TASKS_DISK_ROOTS"])


async def static_handler(http, url: str, auth: dict[str, str]) -> str:
    async with http.post(url + "/6/handlers", json={"policies": {}}, headers=auth) as r:
        assert r.status == 201, await r.text()
        return (await r.json())["handler_id"]


async def run_task(http, url: str, auth, content: dict[str, Any]) -> tuple[dict, dict]:
    async with http.post(url + "/6/tasks/estimator", json={"content": content}, headers=auth) as r:
        assert r.status == 202, await r.text()
        task_id = (await r.json())["task_id"]
    task = await wait_task(http, url + "/6", task_id, auth)
    result: dict = {}
    if task["task_status"] == DONE:
        async with http.get(f"{url}/6/tasks/{task_id}/result", headers=auth) as r:
            result = await r.json()
    return task, result


def by_name(result: dict) -> dict[str, dict]:
    return {item["filename"]: item for item in result["result"]}


def assert_face_item(item: dict) -> None:
    assert item["errors"] == [] and item["result"] is not None, item
    events = item["result"]["events"]
    assert len(events) >= 1 and events[0]["event_id"]
    assert "filtered_detections" in item["result"]


async def test_network_disk_source(platform, http, photos: Path) -> None:
    url = platform.url
    _, auth = await create_account(http, url)
    _, other_auth = await create_account(http, url)
    handler_id = await static_handler(http, url, auth)
    root = await disk_root(http, platform)
    batch = root / f"batch-{os.getpid()}"
    (batch / "a" / "sub").mkdir(parents=True)
    shutil.copy(photos / FACES[0], batch / "a" / FACES[0])
    shutil.copy(photos / FACES[1], batch / "a" / "sub" / FACES[1])
    (batch / "broken.jpg").write_text("this is not an image")
    (batch / "notes.txt").write_text("skipped by the postfix")
    # A link out of the roots: never read, with or without follow_links.
    (batch / "escape.jpg").symlink_to(platform.data_dir / "runtime.json")
    source = {"source_type": "network_disk", "reference": {"path": str(batch), "postfix": ".jpg"}}
    task, result = await run_task(
        http, url, auth, {"handler": {"handler_id": handler_id}, "source": source}
    )
    assert task["task_status"] == DONE, task
    assert task["content"]["source"]["recursive"] is True  # defaults filled in
    items = by_name(result)
    assert set(items) == {"a/01.jpg", "a/sub/test_crop.jpg", "broken.jpg"}
    assert_face_item(items["a/01.jpg"])
    assert_face_item(items["a/sub/test_crop.jpg"])
    broken = items["broken.jpg"]
    assert broken["result"] is None and broken["errors"][0]["error_code"] > 0
    assert [e["additional_info"] for e in result["errors"]] == ["broken.jpg"]
    event_id = items["a/01.jpg"]["result"]["events"][0]["event_id"]
    async with http.get(f"{url}/6/events/{event_id}", headers=auth) as r:
        assert r.status == 200 and (await r.json())["handler_id"] == handler_id

    # prefix, no recursion, links followed (the escape still refused: outside the roots).
    source["recursive"] = False
    source["reference"].update(prefix="b", follow_links=True)
    task, result = await run_task(
        http, url, auth, {"handler": {"handler_id": handler_id}, "source": source}
    )
    assert task["task_status"] == DONE and set(by_name(result)) == {"broken.jpg"}

    for path in ("/etc", f"{root}/../", str(platform.data_dir), "relative/dir", f"{batch}/none"):
        bad = {"source_type": "network_disk", "reference": {"path": path}}
        body = {"content": {"handler": {"handler_id": handler_id}, "source": bad}}
        async with http.post(url + "/6/tasks/estimator", json=body, headers=auth) as r:
            await assert_error(r, 400, 12031)
    body = {"content": {"handler": {"handler_id": handler_id}, "source": source}}
    async with http.post(url + "/6/tasks/estimator", json=body, headers=other_auth) as r:
        await assert_error(r, 404, 34000)
    async with http.get(url + "/6/tasks/count", headers=other_auth) as r:
        assert await r.json() == {"count": 0}

    # A dynamic handler runs with the task's policies, and refuses to run without them.
    async with http.post(url + "/6/handlers", json={"handler_type": 1}, headers=auth) as r:
        dynamic = (await r.json())["handler_id"]
    sub = {"source_type": "network_disk", "reference": {"path": str(batch / "a" / "sub")}}
    task, result = await run_task(
        http, url, auth, {"handler": {"handler_id": dynamic, "policies": {}}, "source": sub}
    )
    assert task["task_status"] == DONE, task
    assert_face_item(by_name(result)["test_crop.jpg"])
    body = {"content": {"handler": {"handler_id": dynamic}, "source": sub}}
    async with http.post(url + "/6/tasks/estimator", json=body, headers=auth) as r:
        await assert_error(r, 400, 12031, "dynamic")


@contextlib.contextmanager
def serving(routes: dict[str, bytes]) -> Iterator[str]:
    """A real HTTP server on a free loopback port, in its own thread and loop."""
    port = pick_free_port()
    started = threading.Event()
    stop: dict[str, Any] = {}

    def run() -> None:
        loop = asyncio.new_event_loop()
        app = web.Application()
        for path, body in routes.items():

            async def handle(_request: web.Request, body: bytes = body) -> web.Response:
                return web.Response(body=body)

            app.router.add_get(path, handle)
        runner = web.AppRunner(app)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        stop.update(loop=loop, runner=runner)
        started.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    started.wait(10)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop["loop"].call_soon_threadsafe(stop["loop"].stop)
        thread.join(10)


def plain_zip(photos: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.write(photos / FACES[0], "people/01.jpg")
        archive.writestr("people/notes.jpg", b"not an image at all")
    return buf.getvalue()


def password_zip(photos: Path, tmp: Path) -> bytes:
    shutil.copy(photos / FACES[1], tmp / "face.jpg")
    subprocess.run(["zip", "-q", "-P", "s3cret", "locked.zip", "face.jpg"], cwd=tmp, check=True)
    return (tmp / "locked.zip").read_bytes()


async def test_zip_by_url_source(platform, http, photos: Path, tmp_path: Path) -> None:
    url = platform.url
    _, auth = await create_account(http, url)
    handler_id = await static_handler(http, url, auth)
    routes = {
        "/plain.zip": plain_zip(photos),
        "/locked.zip": password_zip(photos, tmp_path),
        "/corrupt.zip": b"PK\x03\x04 definitely not a zip",
    }
    with serving(routes) as base:
        handler = {"handler_id": handler_id}
        plain = {"source_type": "zip", "reference": f"{base}/plain.zip"}
        task, result = await run_task(http, url, auth, {"handler": handler, "source": plain})
        assert task["task_status"] == DONE, task
        items = by_name(result)
        assert set(items) == {"people/01.jpg", "people/notes.jpg"}
        assert_face_item(items["people/01.jpg"])
        assert items["people/notes.jpg"]["result"] is None
        assert len(result["errors"]) == 1

        locked = {
            "source_type": "zip",
            "reference": f"{base}/locked.zip",
            "authorization": {"password": "s3cret"},
        }
        # New policies: the task makes its own static handler.
        task, result = await run_task(
            http, url, auth, {"handler": {"policies": {}}, "source": locked}
        )
        assert task["task_status"] == DONE, task
        assert_face_item(by_name(result)["face.jpg"])
        locked["authorization"]["password"] = "wrong"
        task, result = await run_task(http, url, auth, {"handler": handler, "source": locked})
        assert task["task_status"] == DONE
        assert by_name(result)["face.jpg"]["result"] is None

        for ref in (f"{base}/corrupt.zip", f"{base}/missing.zip", f"{url}/6/samples/faces/x"):
            bad = {"source_type": "zip", "reference": ref}
            task, _ = await run_task(http, url, auth, {"handler": handler, "source": bad})
            assert task["task_status"] == FAILED, (ref, task)
            async with http.get(f"{url}/6/tasks/{task['task_id']}/errors", headers=auth) as r:
                errors = (await r.json())["errors"]
            assert len(errors) == 1 and errors[0]["error_code"] == 12031, errors
    body = {
        "content": {
            "handler": {"handler_id": handler_id},
            "source": {"source_type": "zip", "reference": "http://10.255.0.1/x.zip"},
        }
    }
    async with http.post(url + "/6/tasks/estimator", json=body, headers=auth) as r:
        await assert_error(r, 400, 12031, "not in an allowed network")
    body["content"]["source"] = {
        "source_type": "s3",
        "reference": {"bucket_name": "b", "endpoint": "http://10.255.0.1:9000"},
        "authorization": {"public_access_key": "k", "secret_access_key": "s"},
    }
    async with http.post(url + "/6/tasks/estimator", json=body, headers=auth) as r:
        await assert_error(r, 400, 12031, "not in an allowed network")


async def test_ftp_source(platform, http, photos: Path, tmp_path: Path) -> None:
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler
    from pyftpdlib.servers import ThreadedFTPServer

    home = tmp_path / "ftp"
    (home / "in" / "deep").mkdir(parents=True)
    shutil.copy(photos / FACES[0], home / "in" / "cam_01.jpg")
    shutil.copy(photos / FACES[1], home / "in" / "deep" / "cam_02.jpg")
    (home / "in" / "other.jpg").write_bytes((photos / FACES[0]).read_bytes())
    authorizer = DummyAuthorizer()
    authorizer.add_user("luna", "ftp-pass", str(home), perm="elr")
    handler_cls = type("Handler", (FTPHandler,), {"authorizer": authorizer})
    port = pick_free_port()
    server = ThreadedFTPServer(("127.0.0.1", port), handler_cls)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = platform.url
        _, auth = await create_account(http, url)
        handler_id = await static_handler(http, url, auth)
        source = {
            "source_type": "ftp",
            "reference": {"host": "127.0.0.1", "port": port, "path": "/in", "prefix": "cam"},
            "authorization": {"user": "luna", "password": "ftp-pass"},
        }
        task, result = await run_task(
            http, url, auth, {"handler": {"handler_id": handler_id}, "source": source}
        )
        assert task["task_status"] == DONE, task
        items = by_name(result)
        assert set(items) == {"cam_01.jpg"}  # prefix on the relative path; deep/ lacks it
        assert_face_item(items["cam_01.jpg"])
        source["reference"]["prefix"] = ""
        task, result = await run_task(
            http, url, auth, {"handler": {"handler_id": handler_id}, "source": source}
        )
        assert set(by_name(result)) == {"cam_01.jpg", "deep/cam_02.jpg", "other.jpg"}
        source["authorization"]["password"] = "nope"
        task, _ = await run_task(
            http, url, auth, {"handler": {"handler_id": handler_id}, "source": source}
        )
        assert task["task_status"] == FAILED
    finally:
        server.close_all()
        thread.join(10)


async def test_s3_source(platform, http, photos: Path) -> None:
    import boto3
    from moto.server import ThreadedMotoServer

    port = pick_free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        keys = {"public_access_key": "AKIATEST", "secret_access_key": "secret"}
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id=keys["public_access_key"],
            aws_secret_access_key=keys["secret_access_key"],
        )
        s3.create_bucket(Bucket="photos")
        s3.put_object(Bucket="photos", Key="cam1/01.jpg", Body=(photos / FACES[0]).read_bytes())
        s3.put_object(
            Bucket="photos", Key="cam1/day2/crop.jpg", Body=(photos / FACES[1]).read_bytes()
        )
        s3.put_object(Bucket="photos", Key="cam2/other.jpg", Body=(photos / FACES[1]).read_bytes())
        url = platform.url
        _, auth = await create_account(http, url)
        # Origins are stored as references only when the handler's policy says so.
        origin_policy = {"store_image": 1, "use_external_references": 1}
        policies = {"storage_policy": {"image_origin_policy": origin_policy}}
        async with http.post(url + "/6/handlers", json={"policies": policies}, headers=auth) as r:
            assert r.status == 201, await r.text()
            handler_id = (await r.json())["handler_id"]
        source = {
            "source_type": "s3",
            "reference": {"endpoint": endpoint, "bucket_name": "photos", "prefix": "cam1/"},
            "authorization": keys,
        }
        task, result = await run_task(
            http, url, auth, {"handler": {"handler_id": handler_id}, "source": source}
        )
        assert task["task_status"] == DONE, task
        items = by_name(result)
        assert set(items) == {"cam1/01.jpg", "cam1/day2/crop.jpg"}
        for item in items.values():
            assert_face_item(item)
        event_id = items["cam1/01.jpg"]["result"]["events"][0]["event_id"]
        async with http.get(f"{url}/6/events/{event_id}", headers=auth) as r:
            event = await r.json()
        origins = {d.get("image_origin") for d in event["face_detections"]}
        assert f"{endpoint}/photos/cam1/01.jpg" in origins, event["face_detections"]
        source["recursive"] = False
        _, result = await run_task(
            http, url, auth, {"handler": {"handler_id": handler_id}, "source": source}
        )
        assert set(by_name(result)) == {"cam1/01.jpg"}
        source["authorization"] = {**keys, "secret_access_key": "wrong"}
        source["reference"]["bucket_name"] = "missing-bucket"
        task, _ = await run_task(
            http, url, auth, {"handler": {"handler_id": handler_id}, "source": source}
        )
        assert task["task_status"] == FAILED
    finally:
        server.stop()


async def test_worker_killed_mid_part_finishes_every_image(platform, http, photos: Path) -> None:
    """SIGKILL every worker while a 24-image part runs: the part comes back, images already in
    its ledger are not processed again, and the result has each image exactly once."""
    import json
    import signal

    url = platform.url
    _, auth = await create_account(http, url)
    handler_id = await static_handler(http, url, auth)
    root = await disk_root(http, platform)
    batch = root / f"crash-{os.getpid()}"
    batch.mkdir()
    for i in range(24):  # one face per photo: one event per image
        shutil.copy(photos / "test_crop.jpg", batch / f"img_{i:02d}.jpg")
    source = {"source_type": "network_disk", "reference": {"path": str(batch)}}
    body = {"content": {"handler": {"handler_id": handler_id}, "source": source}}
    async with http.post(url + "/6/tasks/estimator", json=body, headers=auth) as r:
        task_id = (await r.json())["task_id"]
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        async with http.get(f"{url}/6/tasks/{task_id}/subtasks", headers=auth) as r:
            subtasks = (await r.json())["subtasks"]
        if subtasks and subtasks[0]["subtask_status"] == 1:
            break
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)  # some images done, some in flight
    services = json.loads((platform.data_dir / "runtime.json").read_text())["services"]
    for name, info in services.items():
        if name.startswith("tasks_worker"):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(info["pid"]), signal.SIGKILL)
    task = await wait_task(http, url + "/6", task_id, auth)
    assert task["task_status"] == DONE, task
    assert task["count_task_parts_done"] == task["count_task_parts_all"] == 1
    async with http.get(f"{url}/6/tasks/{task_id}/result", headers=auth) as r:
        result = await r.json()
    names = [item["filename"] for item in result["result"]]
    assert sorted(names) == [f"img_{i:02d}.jpg" for i in range(24)]
    for item in result["result"]:
        assert_face_item(item)
        assert len(item["result"]["events"]) == 1
    async with http.get(
        f"{url}/6/events?handler_ids={handler_id}&page_size=100", headers=auth
    ) as r:
        stored = len((await r.json())["events"])
    # One event per image, plus at most the images in flight when the workers died.
    assert 24 <= stored < 24 + 8, stored
