"""The local multi-process cluster (`luna up --cluster`, services/launcher/cluster.py) for the
`cluster` tests: started once per module in a temp data dir and stopped after it.

Set LUNA_CLUSTER_DATA_DIR to the data dir of a cluster already running to test that one
instead (handy while working on the tests)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from services.launcher.embedded import pick_free_port

START_TIMEOUT_S = 420


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that use the running cluster carry the `cluster` (and `slow`) marker."""
    here = Path(__file__).parent
    for item in items:
        mine = here in Path(str(item.fspath)).parents  # the hook sees every test collected
        if mine and "cluster" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.cluster)
            item.add_marker(pytest.mark.slow)


@dataclass
class Cluster:
    url: str  # Envoy's REST listener
    data_dir: Path

    def runtime(self) -> dict[str, Any]:
        return json.loads((self.data_dir / "runtime.json").read_text())

    def pid(self, name: str) -> int | None:
        """Current pid of an instance (`gateway_1`, `nats_0`, ...) per runtime.json."""
        try:
            runtime = self.runtime()
        except (FileNotFoundError, ValueError):
            return None
        info = runtime["services"].get(name) or runtime["infrastructure"].get(name)
        return info.get("pid") if info else None


@pytest.fixture(scope="module")
async def cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    existing = os.environ.get("LUNA_CLUSTER_DATA_DIR")
    if existing:
        data_dir = Path(existing)
        yield Cluster(json.loads((data_dir / "runtime.json").read_text())["url"], data_dir)
        return
    data_dir = tmp_path_factory.mktemp("cluster")
    port = pick_free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LUNA_")}
    env.update(LUNA_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services", "up", "--cluster", "--port", str(port),
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert proc.stdout is not None
    lines: list[bytes] = []
    try:
        while not lines or b"LUNA platform is up" not in lines[-1]:
            line = await asyncio.wait_for(proc.stdout.readline(), START_TIMEOUT_S)
            assert line, b"".join(lines).decode(errors="replace")
            lines.append(line)
    except BaseException:
        proc.kill()
        await proc.wait()
        raise

    async def drain() -> None:
        assert proc.stdout is not None
        with (data_dir / "supervisor.log").open("ab") as out:
            out.write(b"".join(lines))
            while line := await proc.stdout.readline():
                out.write(line)
                out.flush()

    drainer = asyncio.ensure_future(drain())
    try:
        yield Cluster(f"http://127.0.0.1:{port}", data_dir)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(proc.wait(), 120)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        drainer.cancel()
