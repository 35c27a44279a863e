"""One authenticated read, `GET /6/account`, through the REST gateway vs the same read as a
direct gRPC call to the faces service, in the same run at the same concurrency.

    .venv/bin/python -m bench.gateway.run [--duration 5] [--concurrency 1 8 64]

Prints requests/s and p50/p99 of both and their ratios; saves bench/results/gateway.json.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import aiohttp
import grpc
import uvloop
from luna.faces.v1 import accounts_pb2, accounts_pb2_grpc

from bench.common import closed_loop, running_platform, save


async def main(duration: float, levels: list[int]) -> None:
    with tempfile.TemporaryDirectory(prefix="luna-bench-") as tmp:
        async with running_platform(Path(tmp)) as runtime:
            url = runtime["url"]
            faces = runtime["services"]["faces"]["address"]
            login, password = "bench@example.com", "bench-pass"
            connector = aiohttp.TCPConnector(limit=0)
            async with aiohttp.ClientSession(connector=connector) as http:
                body = {"login": login, "password": password, "account_type": "user"}
                async with http.post(f"{url}/6/accounts", json=body) as resp:
                    account_id = (await resp.json())["account_id"]
                auth = {"Authorization": aiohttp.encode_basic_auth(login, password)}

                async def rest() -> None:
                    async with http.get(f"{url}/6/account", headers=auth) as resp:
                        assert resp.status == 200
                        await resp.read()

                async with grpc.aio.insecure_channel(faces) as channel:
                    stub = accounts_pb2_grpc.AccountsServiceStub(channel)
                    request = accounts_pb2.GetAccountRequest(account_id=account_id)

                    async def direct() -> None:
                        await stub.GetAccount(request)

                    await closed_loop("warmup-rest", rest, 8, 1.0)
                    await closed_loop("warmup-grpc", direct, 8, 1.0)
                    rows = []
                    for level in levels:
                        g = await closed_loop("grpc-direct", direct, level, duration)
                        r = await closed_loop("rest-gateway", rest, level, duration)
                        rows.append(
                            {
                                "concurrency": level,
                                "grpc": g,
                                "rest": r,
                                "rest_vs_grpc_rps": round(r.rps / g.rps, 3),
                                "added_p50_ms": round(r.p50_ms - g.p50_ms, 3),
                                "added_p99_ms": round(r.p99_ms - g.p99_ms, 3),
                            }
                        )
    print(
        f"{'conc':>4} {'grpc rps':>9} {'rest rps':>9} {'ratio':>6} "
        f"{'grpc p50':>9} {'rest p50':>9} {'+p50 ms':>8} {'grpc p99':>9} {'rest p99':>9}"
    )
    for row in rows:
        g, r = row["grpc"], row["rest"]
        print(
            f"{row['concurrency']:>4} {g.rps:>9} {r.rps:>9} {row['rest_vs_grpc_rps']:>6} "
            f"{g.p50_ms:>9} {r.p50_ms:>9} {row['added_p50_ms']:>8} {g.p99_ms:>9} {r.p99_ms:>9}"
        )
    path = save(
        "gateway",
        {
            "benchmark": "GET /6/account: REST gateway vs direct gRPC",
            "duration_s": duration,
            "rows": rows,
        },
    )
    print(f"saved {path}")


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 64])
    args = parser.parse_args()
    # Same event loop for both clients, so the comparison measures the servers' paths.
    uvloop.run(main(args.duration, args.concurrency))


if __name__ == "__main__":
    cli()
