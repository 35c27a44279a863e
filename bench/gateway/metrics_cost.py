"""What Prometheus metrics cost the REST gateway: the same authenticated read, `GET /6/account`,
through two extra gateway processes on one running platform, identical but for
`LUNA_METRICS_ENABLED` (1 vs 0), loaded at the same time in the same run (so load from
anything else on the machine slows both alike).

    .venv/bin/python -m bench.gateway.metrics_cost [--duration 1.5] [--rounds 10]
        [--concurrency 1 32]

Prints requests/s and p50 of both per concurrency (each gets concurrency clients) and the
median of the per-round on/off throughput ratios, plus the in-process cost of the middleware's
bookkeeping per request; saves bench/results/gateway_metrics.json. Target: metrics cost
<= 3 % of throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import uvloop
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from bench.common import closed_loop, running_platform, save
from services.common import metrics
from services.gateway.metrics import HttpMetrics
from services.launcher.embedded import pick_free_port


@asynccontextmanager
async def gateway(runtime: dict[str, Any], data_dir: Path, metrics: bool) -> AsyncIterator[str]:
    """One more gateway process on the running platform's services; yields its URL."""
    port = pick_free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LUNA_")}
    env.update(
        LUNA_DATA_DIR=str(data_dir),
        LUNA_DATABASE_URL=runtime["database_url"],
        LUNA_NATS_URL=runtime["nats_url"],
        LUNA_PORT=str(port),
        LUNA_SENDER_PORT="0",
        LUNA_METRICS_ENABLED="1" if metrics else "0",
        PYTHONUNBUFFERED="1",
    )
    for name, info in runtime["services"].items():
        if name != "gateway":
            env[f"LUNA_{name.upper()}_ADDRESS"] = info["address"]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.gateway", env=env, stdout=asyncio.subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(300):
                try:
                    async with http.get(f"{url}/version") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError("the extra gateway did not start")
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 30)


async def record_cost(n: int = 200_000) -> float:
    """Microseconds the middleware's bookkeeping adds to one request (the part a gateway
    process pays per request for metrics; scraping is separate)."""
    app = web.Application()

    async def handler(request: web.Request) -> web.Response:
        return web.Response()

    app.router.add_get("/6/faces/{face_id}", handler)
    collected = HttpMetrics(metrics.Exposition())
    probe = make_mocked_request("GET", "/6/faces/1", app=app)
    match = await app.router.resolve(probe)
    request = make_mocked_request("GET", "/6/faces/1", app=app, match_info=match)
    response = web.Response()
    started = time.perf_counter()
    for _ in range(n):
        collected.record(request, 200, response, 0.0012)
    return (time.perf_counter() - started) / n * 1e6


async def main(duration: float, rounds: int, levels: list[int]) -> None:
    with tempfile.TemporaryDirectory(prefix="luna-bench-") as tmp:
        data_dir = Path(tmp)
        async with running_platform(data_dir) as runtime:
            connector = aiohttp.TCPConnector(limit=0)
            async with (
                gateway(runtime, data_dir, metrics=True) as on_url,
                gateway(runtime, data_dir, metrics=False) as off_url,
                aiohttp.ClientSession(connector=connector) as http,
            ):
                login, password = "bench@example.com", "bench-pass"
                body = {"login": login, "password": password, "account_type": "user"}
                async with http.post(f"{on_url}/6/accounts", json=body) as resp:
                    assert resp.status == 201, await resp.text()
                auth = {"Authorization": aiohttp.encode_basic_auth(login, password)}

                def reader(url: str) -> Any:
                    async def call() -> None:
                        async with http.get(f"{url}/6/account", headers=auth) as resp:
                            assert resp.status == 200
                            await resp.read()

                    return call

                on, off = reader(on_url), reader(off_url)
                await closed_loop("warmup-on", on, 8, 1.0)
                await closed_loop("warmup-off", off, 8, 1.0)
                rows = []
                for level in levels:
                    runs: dict[str, list[Any]] = {"on": [], "off": []}
                    ratios = []
                    for r in range(rounds):
                        # Both loads at once: on a shared machine whatever else runs slows
                        # both alike, so the ratio shows what metrics cost per request.
                        got_on, got_off = await asyncio.gather(
                            closed_loop("on", on, level, duration),
                            closed_loop("off", off, level, duration),
                        )
                        runs["on"].append(got_on)
                        runs["off"].append(got_off)
                        ratios.append(got_on.rps / got_off.rps)
                        print(
                            f"c={level} round {r + 1}/{rounds}: on {runs['on'][-1].rps} req/s, "
                            f"off {runs['off'][-1].rps} req/s",
                            flush=True,
                        )
                    ratio = statistics.median(ratios)
                    rows.append(
                        {
                            "concurrency": level,
                            "metrics_on_rps": round(
                                statistics.median(s.rps for s in runs["on"]), 1
                            ),
                            "metrics_off_rps": round(
                                statistics.median(s.rps for s in runs["off"]), 1
                            ),
                            "on_vs_off_rps": round(ratio, 4),
                            "cost_percent": round((1 - ratio) * 100, 2),
                            "on_p50_ms": round(statistics.median(s.p50_ms for s in runs["on"]), 3),
                            "off_p50_ms": round(
                                statistics.median(s.p50_ms for s in runs["off"]), 3
                            ),
                            "rounds": runs,
                        }
                    )
    record_us = await record_cost()
    header = ("conc", "on rps", "off rps", "on/off", "cost %", "on p50", "off p50")
    print("{:>4} {:>9} {:>9} {:>7} {:>7} {:>8} {:>8}".format(*header))
    for row in rows:
        print(
            f"{row['concurrency']:>4} {row['metrics_on_rps']:>9} {row['metrics_off_rps']:>9} "
            f"{row['on_vs_off_rps']:>7} {row['cost_percent']:>7} {row['on_p50_ms']:>8} "
            f"{row['off_p50_ms']:>8}"
        )
    print(f"metrics middleware bookkeeping: {record_us:.2f} us per request (in process)")
    path = save(
        "gateway_metrics",
        {
            "benchmark": "GET /6/account, two gateways loaded at once: LUNA_METRICS_ENABLED=1 vs 0",
            "duration_s": duration,
            "rounds": rounds,
            "rows": rows,
            "record_us_per_request": round(record_us, 3),
        },
    )
    print(f"saved {path}")


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=1.5)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    args = parser.parse_args()
    uvloop.run(main(args.duration, args.rounds, args.concurrency))


if __name__ == "__main__":
    cli()
