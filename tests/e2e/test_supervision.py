"""`luna up` leaves nothing behind when it is SIGKILLed, and a later `luna up` on the same data
directory stops and replaces what an earlier one left running (issue 9, defect 5)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

import aiohttp
import psutil
import pytest

from services.launcher.embedded import pick_free_port
from services.launcher.procs import record_of

pytestmark = pytest.mark.e2e


async def _start(data_dir: Path, port: int) -> tuple[asyncio.subprocess.Process, list[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LUNA_")}
    env.update(LUNA_DATA_DIR=str(data_dir), LUNA_PORT=str(port), PYTHONUNBUFFERED="1")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services", "up", "--free-ports",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert proc.stdout is not None
    lines: list[str] = []
    while not lines or "LUNA platform is up" not in lines[-1]:
        line = await asyncio.wait_for(proc.stdout.readline(), 180)
        assert line, "".join(lines)
        lines.append(line.decode(errors="replace"))
    return proc, lines


def _pids(data_dir: Path) -> dict[str, int]:
    runtime = json.loads((data_dir / "runtime.json").read_text())
    pids = {name: info["pid"] for name, info in runtime["services"].items()}
    pids.update({name: info["pid"] for name, info in runtime["infrastructure"].items()})
    return pids


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def test_sigkill_of_luna_up_leaves_no_orphans_and_a_second_up_replaces_leftovers(
    tmp_path: Path,
) -> None:
    data_dir, port = tmp_path / "data", pick_free_port()
    proc, _ = await _start(data_dir, port)
    pids = _pids(data_dir)
    assert set(pids) >= {"faces", "events", "estimator", "matcher", "gateway", "nats", "postgres"}
    proc.kill()
    await proc.wait()
    deadline = time.monotonic() + 30  # graceful stops are bounded: 5 s + 10 s
    while any(_alive(p) for p in pids.values()) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.1)
    assert [n for n, p in pids.items() if _alive(p)] == []

    # An orphan of an earlier run still holds the REST port (here a stand-in answering 404
    # to everything) and is recorded in the runtime file: the next `luna up` must stop it
    # and serve on the port itself, not crash-loop on EADDRINUSE or report "up" from it.
    squatter = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
        cwd=tmp_path, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    bystander = await asyncio.create_subprocess_exec("sleep", "300")
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(100):
                try:
                    async with http.get(f"http://127.0.0.1:{port}/version") as r:
                        assert r.status == 404
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
        runtime = json.loads((data_dir / "runtime.json").read_text())
        squat = record_of("gateway", squatter.pid)
        assert squat is not None
        runtime["services"]["gateway"].update(squat.as_json())
        # A recorded pid now used by an unrelated program (different start time) stays.
        runtime["services"]["tasks"].update(pid=bystander.pid, create_time=1.0)
        (data_dir / "runtime.json").write_text(json.dumps(runtime))

        proc, _ = await _start(data_dir, port)
        try:
            assert await asyncio.wait_for(squatter.wait(), 5) is not None
            assert bystander.returncode is None
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://127.0.0.1:{port}/6/healthcheck") as r:
                    assert r.status == 200, await r.text()
                    assert "execution_time" in await r.json()
            gateway = _pids(data_dir)["gateway"]
            assert psutil.Process(gateway).ppid() == proc.pid
        finally:
            proc.send_signal(signal.SIGINT)
            await asyncio.wait_for(proc.communicate(), 90)
        assert proc.returncode == 0
    finally:
        for p in (squatter, bystander):
            if p.returncode is None:
                p.kill()
                await p.wait()
