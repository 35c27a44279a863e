"""Shared benchmark plumbing: latency stats, closed-loop load, starting the platform, JSON."""

from __future__ import annotations

import asyncio
import json
import os
import platform as pyplatform
import signal
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from services.launcher.embedded import pick_free_port

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Stats:
    name: str
    concurrency: int
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float


def summarize(name: str, concurrency: int, latencies: list[float], seconds: float) -> Stats:
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return Stats(
        name=name,
        concurrency=concurrency,
        requests=len(ordered),
        seconds=round(seconds, 3),
        rps=round(len(ordered) / seconds, 1),
        p50_ms=round(statistics.median(ordered) * 1000, 3),
        p99_ms=round(p99 * 1000, 3),
    )


async def closed_loop(
    name: str, call: Callable[[], Awaitable[Any]], concurrency: int, duration: float
) -> Stats:
    """`concurrency` workers calling back to back for `duration` seconds."""
    latencies: list[float] = []
    stop_at = time.perf_counter() + duration

    async def worker() -> None:
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - started)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return summarize(name, concurrency, latencies, time.perf_counter() - began)


@asynccontextmanager
async def running_platform(
    data_dir: Path, extra_env: dict[str, str] | None = None
) -> AsyncIterator[dict[str, Any]]:
    """`luna up --free-ports` in `data_dir`; yields runtime.json (with the REST url)."""
    port = pick_free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LUNA_")}
    env.update(LUNA_DATA_DIR=str(data_dir), LUNA_PORT=str(port), PYTHONUNBUFFERED="1")
    env.update(extra_env or {})
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
    while True:
        line = await asyncio.wait_for(proc.stdout.readline(), 300)
        if not line:
            raise RuntimeError("luna up exited before it was up")
        if b"LUNA platform is up" in line:
            break

    async def drain() -> None:
        while await proc.stdout.readline():
            pass

    drainer = asyncio.ensure_future(drain())
    try:
        yield json.loads((data_dir / "runtime.json").read_text())
    finally:
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.wait(), 90)
        drainer.cancel()


def save(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "platform": pyplatform.platform(),
        },
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **payload,
    }
    path.write_text(json.dumps(payload, indent=2, default=lambda o: asdict(o)))
    return path
