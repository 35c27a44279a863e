"""Session-wide worlds for tests: each starts its own servers on random ports in temp dirs.

`platform` starts the whole platform exactly as a user does (`luna up`), on a random REST port
and free internal gRPC ports, with embedded NATS and PostgreSQL in a temp data directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from services.launcher.embedded import pick_free_port

START_TIMEOUT = 300.0


@dataclass
class Platform:
    url: str
    data_dir: Path
    runtime: dict[str, Any]
    process: asyncio.subprocess.Process
    # Everything `luna up` printed, kept up to date while tests run.
    output: list[str]


@pytest.fixture(scope="session")
async def platform(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Platform]:
    data_dir = tmp_path_factory.mktemp("luna-data")
    port = pick_free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LUNA_")}
    env.update(LUNA_DATA_DIR=str(data_dir), LUNA_PORT=str(port), PYTHONUNBUFFERED="1")
    # Estimator tasks may read this directory and reach loopback (test HTTP/FTP servers).
    tasks_disk = tmp_path_factory.mktemp("tasks-disk")
    env.update(LUNA_TASKS_DISK_ROOTS=str(tasks_disk), LUNA_TASKS_SOURCE_NETWORKS="127.0.0.0/8")
    for key in ("LUNA_MODELS_DIR",):
        if key in os.environ:
            env[key] = os.environ[key]
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
    output: list[str] = []

    async def wait_up() -> None:
        while True:
            line = (await proc.stdout.readline()).decode(errors="replace")
            if not line:
                raise RuntimeError("luna up exited:\n" + "".join(output[-60:]))
            output.append(line)
            if "LUNA platform is up" in line:
                return

    try:
        await asyncio.wait_for(wait_up(), START_TIMEOUT)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise

    async def drain() -> None:  # keep the pipe from filling up while tests run
        while line := await proc.stdout.readline():
            output.append(line.decode(errors="replace"))

    drainer = asyncio.ensure_future(drain())
    runtime = json.loads((data_dir / "runtime.json").read_text())
    yield Platform(f"http://127.0.0.1:{port}", data_dir, runtime, proc, output)
    proc.send_signal(signal.SIGINT)
    try:
        await asyncio.wait_for(proc.wait(), 60)
    except TimeoutError:
        proc.kill()
        await proc.wait()
    drainer.cancel()


@pytest.fixture(scope="session")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session
