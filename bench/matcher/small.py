"""Watchlist-sized matching (1k-20k faces), whole path vs its raw limits, in one run:

    python -m bench.matcher.small --sizes 1000,4000,20000   # -> bench/results/matcher_small.json

Per size N, one list of N clustered faces loaded through FacesService.ImportFaces (the
documented bulk path, also timed: faces/s), then at concurrency 1:
  raw_exact      numpy BLAS scan of the N x 128 gallery + top-k (the exact limit)
  raw_hnswlib    hnswlib knn_query on an index of the same descriptors (built here)
  grpc_raw       MatcherService.MatchFaces directly (the gateway's share = rest_raw - this)
  grpc_batch10   ten raw-descriptor references in one MatchFaces (per-reference rate)
  stream_info_rtt  the JetStream stream-info round trip of the read-your-writes wait
  rest_raw       POST /6/matcher/faces, reference = raw descriptor
  rest_attr      POST /6/matcher/faces, reference = temporary attribute (the documented
                 pipeline: /6/attributes from a descriptor, then match by attribute id)
  rest_batch10   ten attribute references in one request (per-reference rate reported)
Every REST row includes the read-your-writes wait and the face records (the matcher's own).
Targets (issue #14): REST >= 1,000 matches/s and p99 <= 3 ms for lists of 1k-20k faces.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import asyncio  # noqa: E402
import base64  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Awaitable, Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import aiohttp  # noqa: E402
import grpc  # noqa: E402
import hnswlib  # noqa: E402
import numpy as np  # noqa: E402
import psutil  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from luna.common.v1 import account_pb2  # noqa: E402
from luna.faces.v1 import faces_pb2, faces_pb2_grpc  # noqa: E402
from luna.matcher.v1 import matcher_pb2, matcher_pb2_grpc  # noqa: E402

from bench.common import running_platform, save  # noqa: E402
from bench.matcher.data import generate  # noqa: E402
from services.common import nats_streams  # noqa: E402

VERSION = 200
LOGIN = "bench-small@example.com"
PASSWORD = "bench-password-1"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def summary(lat: list[float], per_call: int = 1) -> dict[str, float]:
    arr = np.array(lat)
    return {
        "calls": len(lat),
        "matches_per_s": round(per_call * len(lat) / float(arr.sum()), 1),
        "p50_ms": round(float(np.percentile(arr, 50)) * 1e3, 3),
        "p99_ms": round(float(np.percentile(arr, 99)) * 1e3, 3),
    }


def sync_loop(fn: Callable[[int], Any], n_queries: int, duration: float) -> dict[str, float]:
    lat: list[float] = []
    began = time.perf_counter()
    i = 0
    while time.perf_counter() - began < duration:
        t0 = time.perf_counter()
        fn(i % n_queries)
        lat.append(time.perf_counter() - t0)
        i += 1
    return summary(lat)


async def async_loop(
    fn: Callable[[int], Awaitable[Any]], n_queries: int, duration: float, per_call: int = 1
) -> tuple[dict[str, float], list[Any]]:
    for i in range(min(5, n_queries)):
        await fn(i)  # warm-up
    lat: list[float] = []
    first: list[Any] = []
    began = time.perf_counter()
    i = 0
    while i < n_queries or time.perf_counter() - began < duration:
        t0 = time.perf_counter()
        got = await fn(i % n_queries)
        lat.append(time.perf_counter() - t0)
        if i < n_queries:
            first.append(got)
        i += 1
    return summary(lat, per_call), first


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """CPU (user + system) each service process and this client have used so far: on a
    shared box wall time swings with other load, the CPU a match costs far less."""
    out = {name: sum(psutil.Process(pid).cpu_times()[:2]) for name, pid in pids.items()}
    out["client"] = time.process_time()
    return out


async def cpu_loop(
    pids: dict[str, int],
    fn: Callable[[int], Awaitable[Any]],
    n_queries: int,
    duration: float,
    per_call: int = 1,
) -> tuple[dict[str, Any], list[Any]]:
    """async_loop, plus the CPU milliseconds per match each process spent (warm-up included)."""
    before = cpu_seconds(pids)
    stats, first = await async_loop(fn, n_queries, duration, per_call)
    after = cpu_seconds(pids)
    matches = (stats["calls"] + min(5, n_queries)) * per_call
    stats["cpu_ms_per_match"] = {
        name: round((after[name] - before[name]) * 1e3 / matches, 3) for name in after
    }
    return stats, first


async def rest(session: aiohttp.ClientSession, method: str, url: str, **kw: Any) -> Any:
    async with session.request(method, url, **kw) as resp:
        body = await resp.json(content_type=None)
        if resp.status >= 300:
            raise RuntimeError(f"{method} {url}: {resp.status} {body}")
        return body


def b64(v: np.ndarray) -> str:
    return base64.b64encode(v.astype("<f4").tobytes()).decode()


async def one_size(
    n: int, args: argparse.Namespace, http: aiohttp.ClientSession, ctx: dict[str, Any]
) -> dict[str, Any]:
    url, auth, k = ctx["url"], ctx["auth"], args.k
    data = generate(n, n_queries=args.queries, seed=11 + n)
    gallery, queries = data.gallery, data.queries
    nq = len(queries)
    out: dict[str, Any] = {"n": n, "k": k, "queries": nq}
    list_id = (await rest(http, "POST", url + "/6/lists", json={}, headers=auth))["list_id"]

    # Bulk load through the faces service.
    t0 = time.perf_counter()
    face_ids: list[str] = []
    scope = account_pb2.AccountScope(account_id=ctx["account_id"])
    async with grpc.aio.insecure_channel(ctx["faces_address"]) as ch:
        stub = faces_pb2_grpc.FacesServiceStub(ch)
        for s in range(0, n, 1000):
            req = faces_pb2.ImportFacesRequest(
                scope=scope, descriptor_version=VERSION, list_ids=[list_id]
            )
            for i in range(s, min(n, s + 1000)):
                req.faces.add(descriptor=gallery[i].astype("<f4").tobytes(), user_data=f"p{i}")
            face_ids.extend((await stub.ImportFaces(req)).face_ids)
    load_s = time.perf_counter() - t0
    out["import"] = {"seconds": round(load_s, 3), "faces_per_s": round(n / load_s, 1)}
    log(f"n={n}: imported in {load_s:.2f}s ({n / load_s:,.0f} faces/s)")
    index_of = {f: i for i, f in enumerate(face_ids)}

    # Raw limits, in this process, one query at a time.
    exact = np.argsort(-(queries @ gallery.T), axis=1)[:, :k]

    def raw_exact(i: int) -> np.ndarray:
        sims = gallery @ queries[i]
        top = np.argpartition(-sims, k)[:k]
        return top[np.argsort(-sims[top])]

    hnsw = hnswlib.Index(space="ip", dim=gallery.shape[1])
    hnsw.init_index(max_elements=n, M=16, ef_construction=100)
    hnsw.add_items(gallery, np.arange(n))
    hnsw.set_ef(64)
    hnsw.set_num_threads(1)
    rows: dict[str, Any] = {
        "raw_exact": sync_loop(raw_exact, nq, args.duration),
        "raw_hnswlib": sync_loop(lambda i: hnsw.knn_query(queries[i], k=k), nq, args.duration),
    }

    # Temporary attributes of the probes (the documented pipeline).
    attrs = []
    for q in queries:
        body = {"face_descriptors": [{"descriptor": b64(q), "version": VERSION}]}
        made = await rest(http, "POST", url + "/6/attributes?ttl=3600", json=body, headers=auth)
        attrs.append(made["attribute_id"])
    cands = [{"filters": {"list_id": list_id}, "limit": k}]

    async def call(refs: list[dict[str, Any]]) -> Any:
        body = {"references": refs, "candidates": cands}
        return await rest(http, "POST", url + "/6/matcher/faces", json=body, headers=auth)

    def top(got: Any, j: int = 0) -> list[int]:
        return [index_of[r["face"]["face_id"]] for r in got[j]["matches"][0]["result"]]

    async def rest_raw(i: int) -> list[int]:
        return top(await call([{"type": "raw_descriptor", "descriptor": b64(queries[i])}]))

    async def rest_attr(i: int) -> list[int]:
        got = await call([{"type": "attribute", "id": attrs[i]}])
        assert got[0]["matches"][0]["result"][0]["face"]["user_data"].startswith("p")
        return top(got)

    async def rest_batch(i: int) -> list[int]:
        refs = [{"type": "attribute", "id": attrs[(i + j) % nq]} for j in range(10)]
        got = await call(refs)
        return top(got)

    # Breakdown of a REST match: the matcher alone over gRPC, and the read-your-writes
    # stream-info round trip every match makes first.
    scope = account_pb2.AccountScope(account_id=ctx["account_id"])
    async with grpc.aio.insecure_channel(ctx["matcher_address"]) as mch:
        mstub = matcher_pb2_grpc.MatcherServiceStub(mch)

        async def grpc_raw(i: int) -> list[int]:
            reply = await mstub.MatchFaces(
                matcher_pb2.MatchFacesRequest(
                    scope=scope,
                    references=[
                        matcher_pb2.Reference(
                            descriptor=matcher_pb2.RawDescriptor(
                                descriptor=queries[i].astype("<f4").tobytes(), version=VERSION
                            )
                        )
                    ],
                    candidates=[matcher_pb2.FaceCandidates(list_id=list_id, limit=k)],
                )
            )
            return [index_of[m.face.face_id] for m in reply.results[0].candidates[0].matches]

        stats, first = await cpu_loop(ctx["pids"], grpc_raw, nq, args.duration)
        stats["recall_at_1"] = round(
            float(np.mean([f[0] == exact[i, 0] for i, f in enumerate(first)])), 4
        )
        rows["grpc_raw"] = stats

        async def grpc_batch(i: int) -> None:
            refs = [
                matcher_pb2.Reference(
                    descriptor=matcher_pb2.RawDescriptor(
                        descriptor=queries[(i + j) % nq].astype("<f4").tobytes(),
                        version=VERSION,
                    )
                )
                for j in range(10)
            ]
            await mstub.MatchFaces(
                matcher_pb2.MatchFacesRequest(
                    scope=scope,
                    references=refs,
                    candidates=[matcher_pb2.FaceCandidates(list_id=list_id, limit=k)],
                )
            )

        rows["grpc_batch10"], _ = await cpu_loop(ctx["pids"], grpc_batch, nq, args.duration, 10)
    nc = await nats_streams.connect(ctx["nats_url"], name="bench-small")
    js = nc.jetstream()

    async def stream_info(i: int) -> None:
        await js.stream_info("FACES_CHANGES")

    rows["stream_info_rtt"], _ = await async_loop(stream_info, nq, min(args.duration, 2.0))
    await nc.close()

    for name, fn, per in (
        ("rest_raw", rest_raw, 1),
        ("rest_attr", rest_attr, 1),
        ("rest_batch10", rest_batch, 10),
    ):
        stats, first = await cpu_loop(ctx["pids"], fn, nq, args.duration, per)
        if name != "rest_batch10":
            stats["recall_at_1"] = round(
                float(np.mean([f[0] == exact[i, 0] for i, f in enumerate(first)])), 4
            )
        rows[name] = stats
        log(f"n={n} {name}: {stats}")
    for name in ("grpc_raw", "grpc_batch10", "rest_raw", "rest_attr", "rest_batch10"):
        for raw in ("raw_exact", "raw_hnswlib"):
            rows[name][f"ratio_to_{raw}"] = round(
                rows[name]["matches_per_s"] / rows[raw]["matches_per_s"], 3
            )
    out["rows"] = rows
    return out


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(prefix="bench-small-"))
    results = []
    try:
        async with running_platform(data_dir) as runtime, aiohttp.ClientSession() as http:
            url = runtime["url"]
            made = await rest(
                http,
                "POST",
                url + "/6/accounts",
                json={"login": LOGIN, "password": PASSWORD, "account_type": "user"},
            )
            token = base64.b64encode(f"{LOGIN}:{PASSWORD}".encode()).decode()
            ctx = {
                "url": url,
                "auth": {"Authorization": f"Basic {token}"},
                "account_id": made["account_id"],
                "faces_address": runtime["services"]["faces"]["address"],
                "matcher_address": runtime["services"]["matcher"]["address"],
                "nats_url": runtime["nats_url"],
                "pids": {
                    name: runtime["services"][name]["pid"]
                    for name in ("gateway", "matcher", "faces")
                },
            }
            for n in args.sizes:
                results.append(await one_size(n, args, http, ctx))
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    return {"sizes": results, "duration_s": args.duration}


TARGET_RATE = 1000.0  # matches/s at concurrency 1 (issue #14)
TARGET_P99_MS = 3.0


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Each size's REST rows against issue #14's small-list targets, plus where the time
    goes: the matcher alone over gRPC, and the gateway's share (REST - gRPC)."""
    out = []
    for size in result["sizes"]:
        rows = size["rows"]
        for name in ("rest_raw", "rest_attr", "rest_batch10"):
            row = rows[name]
            out.append(
                {
                    "n": size["n"],
                    "path": name,
                    "matches_per_s": row["matches_per_s"],
                    "rate_vs_target": round(row["matches_per_s"] / TARGET_RATE, 3),
                    "p99_ms": row["p99_ms"],
                    "p99_met": row["p99_ms"] <= TARGET_P99_MS,
                    "ratio_to_raw_exact": row["ratio_to_raw_exact"],
                    "ratio_to_raw_hnswlib": row["ratio_to_raw_hnswlib"],
                    "grpc_p50_ms": rows["grpc_raw"]["p50_ms"],
                    "gateway_p50_ms": round(row["p50_ms"] - rows["grpc_raw"]["p50_ms"], 3),
                    "cpu_ms_per_match": row.get("cpu_ms_per_match", {}),
                }
            )
    return out


def targets_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        f"{'n':>7} {'path':<13} {'matches/s':>10} {'/1000':>6} {'p99 ms':>7} {'<=3ms':>6}"
        f" {'/exact':>7} {'/hnsw':>7} {'grpc p50':>9} {'gw p50':>7}  cpu ms/match"
    ]
    for r in rows:
        lines.append(
            f"{r['n']:>7} {r['path']:<13} {r['matches_per_s']:>10,.1f} {r['rate_vs_target']:>6}"
            f" {r['p99_ms']:>7.2f} {'yes' if r['p99_met'] else 'no':>6}"
            f" {r['ratio_to_raw_exact']:>7} {r['ratio_to_raw_hnswlib']:>7}"
            f" {r['grpc_p50_ms']:>9.3f} {r['gateway_p50_ms']:>7.3f}  "
            + " ".join(f"{k} {v:.2f}" for k, v in r["cpu_ms_per_match"].items())
        )
    return "\n".join(lines)


def table(result: dict[str, Any]) -> str:
    lines = [
        f"{'n':>7} {'path':<13} {'matches/s':>10} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'/exact':>7} {'/hnsw':>7} {'recall@1':>8}"
    ]
    for size in result["sizes"]:
        for name, row in size["rows"].items():
            lines.append(
                f"{size['n']:>7} {name:<13} {row['matches_per_s']:>10,.1f} {row['p50_ms']:>8.3f}"
                f" {row['p99_ms']:>8.3f} {row.get('ratio_to_raw_exact', ''):>7}"
                f" {row.get('ratio_to_raw_hnswlib', ''):>7} {row.get('recall_at_1', ''):>8}"
            )
        rate = size["import"]["faces_per_s"]
        lines.append(f"{size['n']:>7} {'import':<13} {rate:>10,.1f} faces/s")
    return "\n".join(lines)


def cpu_table(result: dict[str, Any]) -> str:
    """CPU milliseconds per match of each process, per measured path: where a match's cost
    lies (a quiet-box figure, unlike wall time, barely moves with other load)."""
    names = ("gateway", "matcher", "faces", "client")
    lines = [f"{'n':>7} {'path':<13} " + " ".join(f"{n:>8}" for n in names)]
    for size in result["sizes"]:
        for path, row in size["rows"].items():
            cpu = row.get("cpu_ms_per_match")
            if cpu:
                cells = " ".join(f"{cpu.get(n, 0.0):>8.3f}" for n in names)
                lines.append(f"{size['n']:>7} {path:<13} {cells}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1000,4000,20000")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--k", type=int, default=3)
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per loop")
    ap.add_argument("--name", default="matcher_small", help="bench/results/<name>.json")
    args = ap.parse_args()
    args.sizes = [int(x) for x in args.sizes.split(",")]
    result = asyncio.run(bench(args))
    result["targets"] = targets(result)
    path = save(args.name, result)
    print(table(result))
    print("\nissue #14 small-list targets (REST >= 1,000 matches/s, p99 <= 3 ms):")
    print(targets_table(result["targets"]))
    print("\nCPU ms per match, per process:")
    print(cpu_table(result))
    print(f"saved {path}")


if __name__ == "__main__":
    main()
