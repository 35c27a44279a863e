"""`luna up` as an operator relies on it: restarts what dies, keeps data, stops cleanly."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import aiohttp
import psutil
from lunatest import create_account

from services.launcher.embedded import pick_free_port


async def _start(data_dir: Path, port: int) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LUNA_")}
    env.update(LUNA_DATA_DIR=str(data_dir), LUNA_PORT=str(port), PYTHONUNBUFFERED="1")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services",
        "up",
        "--free-ports",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    lines: list[bytes] = []
    while b"LUNA platform is up" not in (lines[-1] if lines else b""):
        line = await asyncio.wait_for(proc.stdout.readline(), 300)
        assert line, b"".join(lines).decode(errors="replace")
        lines.append(line)
    return proc


async def _stop(proc: asyncio.subprocess.Process) -> bytes:
    proc.send_signal(signal.SIGINT)
    out, _ = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode == 0, out.decode(errors="replace")
    return out


async def test_dead_service_is_restarted_and_logged(platform, http) -> None:
    runtime_path = platform.data_dir / "runtime.json"
    before = json.loads(runtime_path.read_text())["services"]["tasks"]["pid"]
    os.kill(before, signal.SIGKILL)
    for _ in range(150):
        await asyncio.sleep(0.2)
        after = json.loads(runtime_path.read_text())["services"]["tasks"]["pid"]
        if after != before:
            break
    assert after != before
    for _ in range(100):
        async with http.get(platform.url + "/6/healthcheck") as resp:
            if resp.status == 200:
                break
        await asyncio.sleep(0.2)
    assert resp.status == 200
    assert psutil.pid_exists(after)
    assert any("tasks exited" in line and "restarting" in line for line in platform.output)


async def test_second_up_finds_the_data_and_stop_leaves_nothing(tmp_path: Path) -> None:
    data_dir, port = tmp_path / "data", pick_free_port()
    url = f"http://127.0.0.1:{port}"
    proc = await _start(data_dir, port)
    runtime = json.loads((data_dir / "runtime.json").read_text())
    pids = [s["pid"] for s in runtime["services"].values()]
    async with aiohttp.ClientSession() as http:
        account_id, headers = await create_account(http, url)
    await _stop(proc)
    for pid in pids:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    for server in ("postgres", "nats"):
        pidfile = {
            "postgres": data_dir / "postgres" / "pgdata" / "postmaster.pid",
            "nats": data_dir / "nats" / "nats.pid",
        }[server]
        if pidfile.exists():
            pid = int(pidfile.read_text().split()[0])
            assert not psutil.pid_exists(pid), server
    assert not (data_dir / "runtime.json").exists()

    proc = await _start(data_dir, port)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(url + "/6/account", headers=headers) as resp:
                assert resp.status == 200
                assert (await resp.json())["account_id"] == account_id
    finally:
        await _stop(proc)


async def test_second_up_on_a_running_data_dir_is_refused(platform) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LUNA_")}
    env.update(LUNA_DATA_DIR=str(platform.data_dir), LUNA_PORT=str(pick_free_port()))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services",
        "up",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode != 0
    assert b"already running" in out


async def test_luna_status_reports_every_service(platform) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LUNA_")}
    env["LUNA_DATA_DIR"] = str(platform.data_dir)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services",
        "status",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    text = out.decode()
    assert proc.returncode == 0, text
    for name in ("faces", "events", "estimator", "matcher", "tasks", "gateway"):
        line = next(line for line in text.splitlines() if line.startswith(name))
        assert "SERVING" in line and "NOT SERVING" not in line, text
