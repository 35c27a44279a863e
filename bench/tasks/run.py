"""Tasks against the raw limit they wrap, in one run on one platform:

(a) linker of N faces into a new list  vs  the same links by one direct SQL statement;
(b) gc of N events                     vs  one direct SQL delete of N other events, and vs
                                            that delete answering what it removed (the
                                            items of gc's stored result);
(c) estimator task over P photos on a network disk  vs  the handler called image by image
    through REST by a client loop with the task's concurrency;
(d) the same estimator task with 1 and with 2 worker processes (the second one started by
    hand, the way workers scale out).

    .venv/bin/python -m bench.tasks.run [--faces 100000] [--events 100000] [--photos 100]
                                        [--only linker gc estimator]

Faces and events are seeded by SQL (seeding is not what is measured). Ratios are
direct/task for (a) and (b) (1.0: the task is as fast as the database alone; target >= 0.5)
and loop/task for (c) (target >= 1.0: the task is never slower than a client loop).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
from PIL import Image

from bench.common import running_platform, save
from services.estimator import model_repo as mr
from services.events import events_bulk

LOGIN, PASSWORD = "bench-tasks@example.com", "secret123"
# A worker sends at most LUNA_TASKS_ESTIMATOR_CONCURRENCY images at once; the loop matches it.
IMAGE_CONCURRENCY = 8


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


async def rest(http: aiohttp.ClientSession, method: str, url: str, **kw: Any) -> Any:
    async with http.request(method, url, **kw) as resp:
        body = await resp.json(content_type=None)
        if resp.status >= 300:
            raise RuntimeError(f"{method} {url}: {resp.status} {body}")
        return body


async def run_task(
    http: aiohttp.ClientSession, url: str, auth: dict[str, str], kind: str, content: dict
) -> tuple[float, dict[str, Any]]:
    """Seconds from the creating request to status done, and the finished task."""
    started = time.perf_counter()
    task_id = (
        await rest(http, "POST", f"{url}/6/tasks/{kind}", json={"content": content}, headers=auth)
    )["task_id"]
    last = ""
    while True:
        task = await rest(http, "GET", f"{url}/6/tasks/{task_id}", headers=auth)
        line = f"{task['count_task_parts_done']}/{task['count_task_parts_all']}"
        if line != last:
            log(f"  {kind} task {task_id}: status {task['task_status']}, parts {line}")
            last = line
        if task["task_status"] in (2, 3, 5):
            break
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - started
    if task["task_status"] != 5:
        raise RuntimeError(f"{kind} task ended with status {task['task_status']}")
    return elapsed, task


async def sql_seconds(db: str, sql: str, args: tuple) -> tuple[float, int]:
    async with await psycopg.AsyncConnection.connect(db) as conn:
        started = time.perf_counter()
        cur = await conn.execute(sql, args)
        await conn.commit()
        return time.perf_counter() - started, cur.rowcount


def photo_variants(n: int, dest: Path) -> list[Path]:
    """`n` distinct JPEGs of real faces: the test photos mirrored, scaled and re-encoded."""
    src = Path(mr.test_images_dir(mr.models_dir()))
    bases = [Image.open(src / name).convert("RGB") for name in ("01.jpg", "test_crop.jpg")]
    dest.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        img = bases[i % len(bases)]
        scale = 0.8 + 0.2 * ((i // 2) % 5) / 4
        img = img.resize((int(img.width * scale), int(img.height * scale)))
        if (i // 10) % 2:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        path = dest / f"photo_{i:05d}.jpg"
        img.save(path, "JPEG", quality=70 + i % 25)
        paths.append(path)
    return paths


async def client_loop(
    http: aiohttp.ClientSession, url: str, auth: dict[str, str], handler: str, paths: list[Path]
) -> float:
    """The handler over every photo through REST, `concurrency` requests in flight."""
    queue = list(paths)
    headers = {**auth, "Content-Type": "image/jpeg"}

    async def worker() -> None:
        while queue:
            path = queue.pop()
            await rest(
                http, "POST", f"{url}/6/handlers/{handler}/events", data=path.read_bytes(),
                headers=headers,
            )  # fmt: skip

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(IMAGE_CONCURRENCY)))
    return time.perf_counter() - started


async def extra_worker(runtime: dict[str, Any], env_extra: dict[str, str]) -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LUNA_")}
    env.update(env_extra)
    env.update(
        LUNA_DATABASE_URL=runtime["database_url"],
        LUNA_NATS_URL=runtime["nats_url"],
        **{
            f"LUNA_{name.upper()}_ADDRESS": info["address"]
            for name, info in runtime["services"].items()
            if name in ("faces", "events", "estimator", "matcher", "tasks")
        },
    )
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.tasks.worker", env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="luna-bench-tasks-"))
    disk = tmp / "disk"
    disk.mkdir()
    env_extra = {"LUNA_TASKS_WORKERS": "1", "LUNA_TASKS_DISK_ROOTS": str(disk)}
    out: dict[str, Any] = {"params": vars(args)}
    async with (
        running_platform(tmp / "data", env_extra) as runtime,
        aiohttp.ClientSession() as http,
    ):
        url, db = runtime["url"], runtime["database_url"]
        account_id = (
            await rest(
                http,
                "POST",
                url + "/6/accounts",
                json={"login": LOGIN, "password": PASSWORD, "account_type": "user"},
            )
        )["account_id"]
        auth = {
            "Authorization": "Basic " + base64.b64encode(f"{LOGIN}:{PASSWORD}".encode()).decode()
        }

        if "linker" in args.only:
            out["linker"] = await bench_linker(http, url, db, auth, account_id, args.faces)
        if "gc" in args.only:
            out["gc"] = await bench_gc(http, url, db, auth, account_id, args.events)
        if "estimator" in args.only:
            out["estimator"] = await bench_estimator(
                http, url, auth, runtime, env_extra, disk / "photos", args.photos
            )
    return out


def ratio(n_key: str, n: int, task: dict[str, Any], task_s: float, sql_s: float) -> dict:
    return {
        n_key: n,
        "parts": task["count_task_parts_all"],
        "task_s": round(task_s, 3),
        "direct_sql_s": round(sql_s, 3),
        "ratio_sql_over_task": round(sql_s / task_s, 3),
    }


async def bench_linker(
    http: aiohttp.ClientSession, url: str, db: str, auth: dict, account_id: str, faces: int
) -> dict[str, Any]:
    """(a) linker of `faces` faces into a new list vs one INSERT ... SELECT."""
    log(f"seeding {faces} faces by SQL")
    await sql_seconds(
        db,
        "insert into faces (face_id, account_id, user_data)"
        " select gen_random_uuid(), %s, 'bench' from generate_series(1, %s)",
        (account_id, faces),
    )
    task_s, task = await run_task(
        http, url, auth, "linker", {"objects_type": "faces", "create_list": 1, "filters": {}}
    )
    list_id = (await rest(http, "GET", f"{url}/6/tasks/{task['task_id']}/result", headers=auth))[
        "result"
    ]["list_id"]
    count = (await rest(http, "GET", f"{url}/6/faces/count?list_id={list_id}", headers=auth))[
        "faces_count"
    ]
    assert count == faces, count
    direct_list = str(uuid.uuid4())
    await sql_seconds(
        db, "insert into lists (list_id, account_id) values (%s, %s)", (direct_list, account_id)
    )
    sql_s, linked = await sql_seconds(
        db,
        "insert into list_faces (list_id, face_id)"
        " select %s, face_id from faces where account_id = %s",
        (direct_list, account_id),
    )
    assert linked == faces
    out = ratio("faces", faces, task, task_s, sql_s)
    log(f"linker: {out}")
    return out


async def bench_gc(
    http: aiohttp.ClientSession, url: str, db: str, auth: dict, account_id: str, events: int
) -> dict[str, Any]:
    """(b) gc of `events` events of one handler vs one DELETE of another handler's."""
    handler = (
        await rest(http, "POST", url + "/6/handlers", json={"handler_type": 1}, headers=auth)
    )["handler_id"]
    other_handler, answered_handler = str(uuid.uuid4()), str(uuid.uuid4())
    log(f"seeding {3 * events} events by SQL")
    for h in (handler, other_handler, answered_handler):
        await sql_seconds(
            db,
            "insert into events (event_id, account_id, handler_id, create_time, end_time,"
            " data) select gen_random_uuid(), %s, %s, now(), now(), '{}'::jsonb"
            " from generate_series(1, %s)",
            (account_id, h, events),
        )
    await sql_seconds(db, "analyze events", ())
    task_s, task = await run_task(
        http, url, auth, "gc", {"target": "events", "filters": {"handler_id": handler}}
    )
    sql_s, deleted = await sql_seconds(
        db, "delete from events where handler_id = %s", (other_handler,)
    )
    assert deleted == events
    # The same delete answering what it removed (the items gc's result lists, with
    # store_results' default true), as the events service's own statement builds them:
    # a direct-SQL reference that does the task's whole database work, without the task.
    answered_s, _ = await sql_seconds(
        db,
        events_bulk.answered_delete("e.handler_id = %s AND e.account_id = %s"),
        (answered_handler, account_id),
    )
    out = ratio("events", events, task, task_s, sql_s)
    out["direct_sql_with_result_s"] = round(answered_s, 3)
    out["ratio_sql_with_result_over_task"] = round(answered_s / task_s, 3)
    log(f"gc: {out}")
    return out


async def bench_estimator(
    http: aiohttp.ClientSession,
    url: str,
    auth: dict,
    runtime: dict[str, Any],
    env_extra: dict[str, str],
    photos_dir: Path,
    photos: int,
) -> dict[str, Any]:
    """(c) the estimator task vs a client loop, (d) with 1 and 2 worker processes."""
    paths = photo_variants(photos, photos_dir)
    static = (await rest(http, "POST", url + "/6/handlers", json={"policies": {}}, headers=auth))[
        "handler_id"
    ]
    await client_loop(http, url, auth, static, paths[:8])  # warm the models
    loop_s = await client_loop(http, url, auth, static, paths)
    log(f"client loop: {loop_s:.2f}s for {len(paths)} photos")
    content = {
        "handler": {"handler_id": static},
        "source": {"source_type": "network_disk", "reference": {"path": str(photos_dir)}},
    }
    one_s, task = await run_task(http, url, auth, "estimator", content)
    proc = await extra_worker(runtime, env_extra)
    try:
        await asyncio.sleep(3)  # connected and pulling
        two_s, _ = await run_task(http, url, auth, "estimator", content)
    finally:
        proc.terminate()
        await proc.wait()
    out = {
        "photos": len(paths),
        "concurrency": IMAGE_CONCURRENCY,
        "parts": task["count_task_parts_all"],
        "client_loop_s": round(loop_s, 3),
        "task_1_worker_s": round(one_s, 3),
        "task_2_workers_s": round(two_s, 3),
        "ratio_loop_over_task": round(loop_s / one_s, 3),
        "speedup_2_workers": round(one_s / two_s, 3),
        "images_per_s_1_worker": round(len(paths) / one_s, 2),
    }
    log(f"estimator: {out}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--faces", type=int, default=100000)
    parser.add_argument("--events", type=int, default=100000)
    parser.add_argument("--photos", type=int, default=100)
    parser.add_argument(
        "--only",
        nargs="+",
        choices=("linker", "gc", "estimator"),
        default=["linker", "gc", "estimator"],
        help="run only these parts",
    )
    args = parser.parse_args()
    result = asyncio.run(bench(args))
    print(save("tasks", result))


if __name__ == "__main__":
    main()
