"""Chaos: steady face creation and matching through REST while each of faces, matcher, events,
estimator, gateway, NATS and PostgreSQL is SIGKILLed in turn (issue 9).

Afterwards every acknowledged (201) face exists, is in its list exactly once and is its own
best match; no creation is duplicated. The time from each kill until the platform is healthy
again (supervisor restarted the process, /6/healthcheck 200, a new face created and matched)
is printed against the 10 s target; the test fails above LUNA_CHAOS_MAX_RECOVERY_S (20 s).

Run alone: `pytest -m chaos -s`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import psutil
import pytest
from lunatest import create_account

from services.launcher.embedded import pick_free_port

pytestmark = [pytest.mark.e2e, pytest.mark.chaos, pytest.mark.slow]

VERSION = 200
COMPONENTS = ("faces", "matcher", "events", "estimator", "gateway", "nats", "postgres")
TARGET_RECOVERY_S = 10.0  # the target, printed per component
# Hard limit of the test: twice the target, so a busy 2-core machine does not make it flaky
# while a component that does not come back on its own (the defect) still fails it.
MAX_RECOVERY_S = float(os.environ.get("LUNA_CHAOS_MAX_RECOVERY_S", "20"))
STEADY_S = 2.0  # workload between recovery and the next kill
WRITERS = 3
TIMEOUT = aiohttp.ClientTimeout(total=20)


def descriptor(seed: int) -> str:
    v = np.random.default_rng(seed).standard_normal(128).astype(np.float32)
    return base64.b64encode((v / np.linalg.norm(v)).astype("<f4").tobytes()).decode()


@dataclass
class World:
    url: str
    data_dir: Path
    proc: asyncio.subprocess.Process
    auth: dict[str, str] = field(default_factory=dict)
    list_id: str = ""


@pytest.fixture(scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    data_dir = tmp_path_factory.mktemp("chaos")
    port = pick_free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LUNA_")}
    env.update(LUNA_DATA_DIR=str(data_dir), LUNA_PORT=str(port), PYTHONUNBUFFERED="1")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services", "up", "--free-ports",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert proc.stdout is not None
    lines: list[bytes] = []
    while not lines or b"LUNA platform is up" not in lines[-1]:
        line = await asyncio.wait_for(proc.stdout.readline(), 300)
        assert line, b"".join(lines).decode(errors="replace")
        lines.append(line)

    async def drain() -> None:
        assert proc.stdout is not None
        while await proc.stdout.readline():
            pass

    drainer = asyncio.ensure_future(drain())
    try:
        yield World(f"http://127.0.0.1:{port}", data_dir, proc)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(proc.wait(), 90)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        drainer.cancel()


@dataclass
class Load:
    """What the workload saw: acknowledged faces by external id, and every failure."""

    acked: dict[str, str] = field(default_factory=dict)  # external_id -> face_id
    seeds: dict[str, int] = field(default_factory=dict)  # external_id -> descriptor seed
    unacked: int = 0
    client_errors: list[str] = field(default_factory=list)
    server_errors: dict[int, int] = field(default_factory=dict)  # error_code -> count
    matches_ok: int = 0
    matches_failed: int = 0
    max_latency_s: float = 0.0
    next_seed: int = 0

    def seed(self) -> int:
        self.next_seed += 1
        return self.next_seed


async def create_face(http: aiohttp.ClientSession, w: World, load: Load) -> str | None:
    seed = load.seed()
    external_id = f"chaos-{seed}"
    body = {
        "attribute": {"face_descriptors": [{"descriptor": descriptor(seed), "version": VERSION}]},
        "lists": [w.list_id],
        "external_id": external_id,
    }
    started = time.monotonic()
    try:
        async with http.post(w.url + "/6/faces", json=body, headers=w.auth) as r:
            payload = await r.json(content_type=None)
            status = r.status
    except (aiohttp.ClientError, TimeoutError, ValueError):
        load.unacked += 1
        return None
    finally:
        load.max_latency_s = max(load.max_latency_s, time.monotonic() - started)
    if status == 201:
        load.acked[external_id] = payload["face_id"]
        load.seeds[external_id] = seed
        return str(payload["face_id"])
    load.unacked += 1
    if status >= 500:
        # A documented LUNA error of an outage, never a bare 500 of a bug (code 1).
        assert set(payload) >= {"error_code", "desc", "detail"}, payload
        assert payload["error_code"] != 1, payload
        load.server_errors[payload["error_code"]] = (
            load.server_errors.get(payload["error_code"], 0) + 1
        )
    else:
        load.client_errors.append(f"{status} {payload}")
    return None


async def best_matches(
    http: aiohttp.ClientSession, w: World, face_ids: list[str]
) -> list[str] | None:
    body = {
        "references": [{"type": "face", "id": f} for f in face_ids],
        "candidates": [{"filters": {"list_id": w.list_id}, "limit": 1}],
    }
    try:
        async with http.post(w.url + "/6/matcher/faces", json=body, headers=w.auth) as r:
            if r.status != 200:
                return None
            result = await r.json()
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return None
    best = []
    for ref in result:
        found = ref["matches"][0]["result"]
        best.append(found[0]["face"]["face_id"] if found else "")
    return best


async def workload(http: aiohttp.ClientSession, w: World, load: Load, stop: asyncio.Event) -> None:
    async def writer() -> None:
        while not stop.is_set():
            if await create_face(http, w, load) is None:
                await asyncio.sleep(0.05)

    async def matcher() -> None:
        while not stop.is_set():
            recent = list(load.acked.values())[-5:]
            if recent:
                if await best_matches(http, w, recent) is not None:
                    load.matches_ok += 1
                else:
                    load.matches_failed += 1
            await asyncio.sleep(0.1)

    await asyncio.gather(*(writer() for _ in range(WRITERS)), matcher())


def runtime_pid(w: World, name: str) -> int | None:
    try:
        runtime = json.loads((w.data_dir / "runtime.json").read_text())
    except (FileNotFoundError, ValueError):
        return None
    info = runtime["services"].get(name) or runtime.get("infrastructure", {}).get(name)
    return info.get("pid") if info else None


def alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def healthy(http: aiohttp.ClientSession, w: World, load: Load) -> bool:
    try:
        async with http.get(w.url + "/6/healthcheck") as r:
            if r.status != 200:
                return False
    except (aiohttp.ClientError, TimeoutError):
        return False
    face_id = await create_face(http, w, load)
    if face_id is None:
        return False
    return await best_matches(http, w, [face_id]) == [face_id]


async def kill_and_time(http: aiohttp.ClientSession, w: World, load: Load, name: str) -> float:
    old = runtime_pid(w, name)
    assert alive(old), (name, old)
    started = time.monotonic()
    os.kill(old, signal.SIGKILL)  # type: ignore[arg-type]
    while time.monotonic() - started < 120:
        new = runtime_pid(w, name)
        if new != old and alive(new) and await healthy(http, w, load):
            return time.monotonic() - started
        await asyncio.sleep(0.1)
    raise AssertionError(f"{name}: not healthy 120 s after SIGKILL")


async def all_faces_in_list(http: aiohttp.ClientSession, w: World) -> list[dict[str, Any]]:
    faces: list[dict[str, Any]] = []
    page = 1
    while True:
        params = {"list_id": w.list_id, "page": str(page), "page_size": "1000"}
        async with http.get(w.url + "/6/faces", params=params, headers=w.auth) as r:
            assert r.status == 200, await r.text()
            batch = (await r.json())["faces"]
        faces += batch
        if len(batch) < 1000:
            return faces
        page += 1


async def test_every_acknowledged_face_survives_kills_of_every_component(
    world: World, request: pytest.FixtureRequest
) -> None:
    w = world
    async with aiohttp.ClientSession(timeout=TIMEOUT) as http:
        _, w.auth = await create_account(http, w.url)
        async with http.post(w.url + "/6/lists", json={}, headers=w.auth) as r:
            assert r.status == 201
            w.list_id = (await r.json())["list_id"]
        load, stop = Load(), asyncio.Event()
        running = asyncio.ensure_future(workload(http, w, load, stop))
        recovery: dict[str, float] = {}
        latency: dict[str, float] = {}
        try:
            await asyncio.sleep(STEADY_S)
            for name in COMPONENTS:
                load.max_latency_s = 0.0
                recovery[name] = round(await kill_and_time(http, w, load, name), 2)
                latency[name] = round(load.max_latency_s, 2)
                await asyncio.sleep(STEADY_S)
        finally:
            stop.set()
            await running

        # Everything acknowledged is there: readable, in its list once, its own best match.
        faces = await all_faces_in_list(http, w)
        by_external: dict[str, list[str]] = {}
        for face in faces:
            by_external.setdefault(face["external_id"], []).append(face["face_id"])
        duplicated = {e: ids for e, ids in by_external.items() if len(ids) > 1}
        missing = {e: f for e, f in load.acked.items() if by_external.get(e) != [f]}
        face_ids = list(load.acked.values())
        wrong_best = []
        for i in range(0, len(face_ids), 30):
            chunk = face_ids[i : i + 30]
            best = await best_matches(http, w, chunk)
            assert best is not None
            wrong_best += [f for f, b in zip(chunk, best, strict=True) if f != b]
        for face_id in face_ids[:: max(1, len(face_ids) // 50)]:
            async with http.get(f"{w.url}/6/faces/{face_id}", headers=w.auth) as r:
                assert r.status == 200, await r.text()

    report = {
        "recovery_s": recovery,
        "target_met": {n: t <= TARGET_RECOVERY_S for n, t in recovery.items()},
        "max_create_latency_s": latency,
        "acknowledged": len(load.acked),
        "unacknowledged": load.unacked,
        "server_errors_by_code": load.server_errors,
        "matches_ok": load.matches_ok,
        "matches_failed": load.matches_failed,
        "faces_in_list": len(faces),
    }
    with request.config.pluginmanager.get_plugin("capturemanager").global_and_fixture_disabled():  # type: ignore[union-attr]
        print("\nchaos:", json.dumps(report, indent=1))
    assert load.client_errors == [], load.client_errors[:5]
    assert duplicated == {}
    assert missing == {}
    assert wrong_best == []
    assert len(load.acked) > 100, report
    slow = {n: t for n, t in recovery.items() if t > MAX_RECOVERY_S}
    assert slow == {}, f"recovery above {MAX_RECOVERY_S} s: {slow} ({report})"
