"""Where one small-list REST match spends its time, at concurrency 1:

    python -m bench.gateway.profile_match [--n 1000] [--calls 1500] [--top 35]

Starts the platform (`luna up`), loads one list of N faces through FacesService.ImportFaces,
then runs an in-process gateway (the same `build_app`, talking to the platform's services)
under cProfile while one client sends `POST /6/matcher/faces` (raw-descriptor reference,
`list_id` candidates) back to back. Prints the profile of the gateway process's side (the
aiohttp client shares the process, its functions are listed too) and the time split:
client+HTTP, gateway handler, the MatchFaces gRPC call. Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import cProfile
import io
import os
import pstats
import shutil
import tempfile
import time
from pathlib import Path

import aiohttp
import grpc
import numpy as np
from aiohttp.test_utils import TestServer
from luna.common.v1 import account_pb2
from luna.faces.v1 import faces_pb2, faces_pb2_grpc

from bench.common import running_platform

LOGIN, PASSWORD = "bench-profile@example.com", "bench-password-1"


async def run(args: argparse.Namespace) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    try:
        async with running_platform(data_dir) as runtime, aiohttp.ClientSession() as http:
            url = runtime["url"]
            body = {"login": LOGIN, "password": PASSWORD, "account_type": "user"}
            async with http.post(url + "/6/accounts", json=body) as resp:
                account_id = (await resp.json())["account_id"]
            auth = {"Authorization": aiohttp.encode_basic_auth(LOGIN, PASSWORD)}
            async with http.post(url + "/6/lists", json={}, headers=auth) as resp:
                list_id = (await resp.json())["list_id"]
            rng = np.random.default_rng(5)
            gallery = rng.standard_normal((args.n, 128)).astype(np.float32)
            gallery /= np.linalg.norm(gallery, axis=1, keepdims=True)
            async with grpc.aio.insecure_channel(
                runtime["services"]["faces"]["address"]
            ) as channel:
                stub = faces_pb2_grpc.FacesServiceStub(channel)
                req = faces_pb2.ImportFacesRequest(
                    scope=account_pb2.AccountScope(account_id=account_id),
                    descriptor_version=200,
                    list_ids=[list_id],
                )
                for i in range(args.n):
                    req.faces.add(descriptor=gallery[i].astype("<f4").tobytes(), user_data=f"p{i}")
                await stub.ImportFaces(req)

            # An in-process gateway on the platform's services.
            for name, svc in runtime["services"].items():
                if svc.get("address"):
                    os.environ[f"LUNA_{name.upper()}_ADDRESS"] = svc["address"]
            os.environ["LUNA_NATS_URL"] = runtime["nats_url"]
            from services.gateway.app import build_app

            server = TestServer(build_app())
            await server.start_server()
            gw = str(server.make_url(""))
            queries = rng.standard_normal((64, 128)).astype(np.float32)
            bodies = [
                {
                    "references": [
                        {
                            "type": "raw_descriptor",
                            "descriptor": base64.b64encode(q.astype("<f4").tobytes()).decode(),
                        }
                    ],
                    "candidates": [{"filters": {"list_id": list_id}, "limit": 3}],
                }
                for q in queries
            ]

            async def one(i: int) -> None:
                async with http.post(
                    gw + "/6/matcher/faces", json=bodies[i % 64], headers=auth
                ) as r:
                    assert r.status == 200, await r.text()
                    await r.read()

            for i in range(50):
                await one(i)
            from luna.matcher.v1 import matcher_pb2, matcher_pb2_grpc

            from services.gateway.routes import matcher as matcher_routes

            scope = account_pb2.AccountScope(account_id=account_id)
            grpc_reqs = [
                matcher_pb2.MatchFacesRequest(
                    scope=scope,
                    references=[matcher_routes.reference_pb(b["references"][0], 0)],
                    candidates=[matcher_routes.candidates_pb(b["candidates"][0])],
                )
                for b in bodies
            ]
            async with grpc.aio.insecure_channel(runtime["services"]["matcher"]["address"]) as mch:
                mstub = matcher_pb2_grpc.MatcherServiceStub(mch)
                for rnd in range(3):  # alternate, so drift hits both
                    for name, fn in (
                        ("grpc MatchFaces", lambda i: mstub.MatchFaces(grpc_reqs[i % 64])),
                        ("REST in-process gateway", one),
                    ):
                        lat = []
                        for i in range(args.calls // 3):
                            t = time.perf_counter()
                            await fn(i)
                            lat.append(time.perf_counter() - t)
                        print(
                            f"round {rnd} {name:<24} p50 {np.percentile(lat, 50) * 1e3:.3f} ms"
                            f"  mean {np.mean(lat) * 1e3:.3f} ms"
                        )
            prof = cProfile.Profile()
            t0 = time.perf_counter()
            prof.enable()
            for i in range(args.calls):
                await one(i)
            prof.disable()
            wall = time.perf_counter() - t0
            await server.close()
            print(f"{args.calls} calls, {wall / args.calls * 1e3:.3f} ms each (under cProfile)")
            out = io.StringIO()
            stats = pstats.Stats(prof, stream=out)
            stats.sort_stats("cumulative").print_stats(args.top)
            stats.sort_stats("tottime").print_stats(args.top)
            print(out.getvalue())
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--calls", type=int, default=1500)
    ap.add_argument("--top", type=int, default=35)
    asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    main()
