"""Sharded matcher benchmark (issue #15): 2N faces over two shards behind the matcher proxy
vs N faces on one shard, in the same run, through Envoy and the gateway (REST
`POST /6/matcher/faces`) and over gRPC.

    python -m bench.cluster.run --n 1000000 --snapshot-cache /work/bigcache
        # N faces per shard -> bench/results/cluster_run.json; the shards' snapshots are built
        # once into the cache (bench/cluster/cache.py, ~15 min per 1M on 2 cores) and only
        # loaded by later runs
    python -m bench.cluster.run --n 20000      # no cache: built in a temp dir, then removed

Layout (every part a process on loopback):
  - `luna up --free-ports` for PostgreSQL, NATS, faces, events, ... Its own matcher is told it
    is shard 99 of a one-shard map, so it holds nothing (the bench's shards hold the data).
  - one account whose faces are spread over the shards by face id (LUNA_MATCHER_SPREAD_ACCOUNTS),
    2N faces in one list: shard 0 and shard 1 (`services.matcher`, LUNA_MATCHER_SHARD=0/1)
    hold about N each; the matcher proxy (`services.matcher.proxy`) in front of both;
  - gateway A -> proxy -> shards 0 and 1 (every match of the list fans out to both);
    gateway B -> shard 0 directly (one shard of N faces, no proxy hop);
    an Envoy in front of each gateway (deploy/envoy/render.py, the real binary).
Data path (documented, not the API, as bench/matcher/run.py): the list row, face rows and list
links are COPY'd into PostgreSQL, and each shard's IndexSet (HNSW, LUNA_MATCHER_* settings) comes
from bench/cluster/cache.py: built with every core and saved with the matcher's save_snapshot,
then installed as that shard's snapshot at the fresh stream's FACES_CHANGES sequence. Each shard
must report that it loaded its snapshot (not a reload from faces) with the expected faces.

A third path, a proxy over shard 0 alone (`one_shard_via_proxy`), splits the fan-out cost into
the proxy hop and the second shard; a fourth, `two_shards_in_gateway` (REST only), has the
gateway route to both shards itself, as it does by default when given the shard map. Each
REST path reports its gateway's CPU per match (`gateway_cpu_ms_per_match`).

Measured, one request at a time: recall@1 and recall@k against the exact scan of the faces
each path can see (2N via the proxy, shard 0's N directly), p50/p99 latency of REST through
Envoy and of gRPC MatchFaces, and the fan-out's added latency: proxy path minus direct path.
"""

from __future__ import annotations

import os

# One BLAS thread in the bench and the processes it starts (they inherit the environment), as
# a matcher serves one search per thread. hnswlib's builds use their own std::threads and are
# not limited by this (bench/cluster/cache.py builds with every core).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import asyncio  # noqa: E402
import base64  # noqa: E402
import logging  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Awaitable, Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import aiohttp  # noqa: E402
import grpc  # noqa: E402
import numpy as np  # noqa: E402
import psutil  # noqa: E402
import psycopg  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from luna.common.v1 import account_pb2  # noqa: E402
from luna.matcher.v1 import matcher_pb2, matcher_pb2_grpc  # noqa: E402

from bench.cluster import cache  # noqa: E402
from bench.cluster.cache import SHARDS, VERSION, log  # noqa: E402
from bench.common import running_platform, save  # noqa: E402
from bench.matcher.raw import exact_truth, face_id, face_index, recall  # noqa: E402
from bench.matcher.run import BULK_TIME, copy_faces, latency_summary, rest, wait_serving  # noqa: E402
from services.common import config, nats_streams  # noqa: E402
from services.launcher.embedded import pick_free_port  # noqa: E402
from services.launcher.supervisor import wait_http  # noqa: E402
from services.matcher import settings as matcher_settings  # noqa: E402

LOGIN, PASSWORD = "bench-cluster@example.com", "bench-pass-1"
LOADED = re.compile(r"matcher loaded (\d+) faces from (\w+); applied stream sequence (\d+)")


def truth_of(gallery: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """exact_truth in slices of 10 queries: at 2M rows a slice of 100 holds ~3 GB of scores
    and argpartition indices at once."""
    return np.concatenate(
        [exact_truth(gallery, queries[i : i + 10], k) for i in range(0, len(queries), 10)]
    )


async def insert_list(database_url: str, account_id: str, list_id: str) -> None:
    """The cached snapshots hold the list's id, so the list row is written with it (the same
    bulk path as the faces; the REST API would pick a fresh id)."""
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        await conn.execute(
            "INSERT INTO lists (list_id, account_id, create_time, last_update_time)"
            " VALUES (%s, %s, %s, %s)",
            (list_id, account_id, BULK_TIME, BULK_TIME),
        )
        await conn.commit()


def loaded_from(log_path: Path) -> tuple[int, str, int] | None:
    """(faces, "snapshot"/"faces", applied sequence) from a shard's start log line."""
    found = LOADED.search(log_path.read_text(errors="replace"))
    return (int(found[1]), found[2], int(found[3])) if found else None


async def check_live_delete(
    http: aiohttp.ClientSession,
    url: str,
    auth: dict[str, str],
    calls: dict[str, Callable[[np.ndarray], Awaitable[list[int]]]],
    query: np.ndarray,
    gone: int,
) -> dict[str, list[bool]]:
    """The shards follow the fresh stream after their installed snapshots: delete the
    query's exact top face through the API, and no path may answer it afterwards (a snapshot
    sequence past the stream's would skip the change). {path: [found before, found after]}."""
    seen = {name: [gone in await call(query)] for name, call in calls.items()}
    await rest(
        http, "DELETE", url + "/6/faces", json={"face_ids": [face_id(gone)]}, headers=auth
    )  # fmt: skip
    for name, call in calls.items():
        seen[name].append(gone in await call(query))
    if not any(before for before, _ in seen.values()) or any(after for _, after in seen.values()):
        raise RuntimeError(f"face {gone} deleted through the API: found before/after {seen}")
    log(f"live delete of face {gone}: found before/after {seen}")
    return seen


class Procs:
    """The bench's own processes (logs under data_dir/logs), stopped at exit."""

    def __init__(self, data_dir: Path, base_env: dict[str, str]) -> None:
        self.data_dir = data_dir
        self.base_env = base_env
        self.procs: dict[str, asyncio.subprocess.Process] = {}
        (data_dir / "logs").mkdir(parents=True, exist_ok=True)

    async def start(self, name: str, argv: list[str], **env: str) -> asyncio.subprocess.Process:
        out = (self.data_dir / "logs" / f"{name}.log").open("ab")
        proc = await asyncio.create_subprocess_exec(
            *argv, env={**self.base_env, **env}, stdout=out, stderr=out
        )
        self.procs[name] = proc
        return proc

    async def stop(self) -> None:
        for proc in self.procs.values():
            if proc.returncode is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                await asyncio.wait_for(proc.wait(), 60)
            except TimeoutError:
                proc.kill()


async def paired_loop(
    calls: dict[str, Callable[[np.ndarray], Awaitable[list[int]]]],
    queries: np.ndarray,
    duration: float,
) -> tuple[dict[str, dict[str, float]], dict[str, list[list[int]]]]:
    """The paths take turns on each query (one request at a time), so a noisy machine slows
    both alike; the first pass over `queries` gives the ids for recall."""
    for q in queries[:5]:
        for call in calls.values():
            await call(q)  # warm-up
    lat: dict[str, list[float]] = {n: [] for n in calls}
    ids: dict[str, list[list[int]]] = {n: [] for n in calls}
    began = time.perf_counter()
    i = 0
    while i < len(queries) or time.perf_counter() - began < duration:
        q = queries[i % len(queries)]
        order = list(calls.items())
        if i % 2:
            order.reverse()
        for name, call in order:
            t0 = time.perf_counter()
            got = await call(q)
            lat[name].append(time.perf_counter() - t0)
            if i < len(queries):
                ids[name].append(got)
        i += 1
    return {n: latency_summary(v) for n, v in lat.items()}, ids


def render_envoy(
    port: int, gateway: str, services: dict[str, str], admin: int, internal: int
) -> str:
    sys.path.insert(0, str(ROOT / "deploy" / "envoy"))
    try:
        from render import DESCRIPTOR, render  # deploy/envoy/render.py
    finally:
        sys.path.pop(0)
    return str(
        render(port, [gateway], services, admin, DESCRIPTOR, listen_host="127.0.0.1",
               internal_port=internal)
    )  # fmt: skip


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    n_total = SHARDS * args.n
    out: dict[str, Any] = {"n_per_shard": args.n, "n_total": n_total, "k": args.k}
    out["load_average_start"] = os.getloadavg()
    data_dir = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    cfg = matcher_settings.core_config()
    out["config"] = {"M": cfg.hnsw_m, "ef_construction": cfg.hnsw_ef_construction,
                     "ef": cfg.hnsw_ef, "index_threshold": cfg.index_threshold}  # fmt: skip
    # Without --snapshot-cache the cache lives in the run's temp dir: built, used, removed.
    layout = cache.Layout.of(args.snapshot_cache or data_dir / "cache", args.n, args.seed, cfg)
    t0 = time.perf_counter()
    data, rows, builds = cache.ensure(layout)
    out["cache"] = {"dir": str(layout.root), "ready_s": time.perf_counter() - t0,
                    "build_s": [b["build_s"] for b in builds]}  # fmt: skip
    out["build_s"] = out["cache"]["build_s"]
    out["faces_per_shard"] = [len(r) for r in rows]
    account_id, list_id, shard_map = layout.account_id, layout.list_id, layout.shard_map
    queries = np.ascontiguousarray(data.queries[: args.queries])
    log(
        f"data {data.gallery.shape}; account {account_id}; faces per shard {out['faces_per_shard']}"
    )
    # The exact answers before any process starts: their scan is the run's largest transient.
    k = args.k
    t0 = time.perf_counter()
    truth_all = truth_of(data.gallery, queries, k)
    local = truth_of(np.ascontiguousarray(data.gallery[rows[0]]), queries, k)
    truth = {
        "two_shards_via_proxy": truth_all,
        "two_shards_in_gateway": truth_all,
        "one_shard_direct": rows[0][local],
        "one_shard_via_proxy": rows[0][local],
    }
    log(f"exact truth in {time.perf_counter() - t0:.1f}s")
    del data  # 1 GB per 1M faces that the bench no longer needs
    # The platform's matcher is shard 99 of a one-shard map: it holds nothing.
    platform_env = {"LUNA_MATCHER_SHARD": "99", "LUNA_MATCHER_EXTRA_DESCRIPTOR_VERSIONS": ""}
    procs: Procs | None = None
    try:
        async with (
            running_platform(data_dir / "platform", platform_env) as runtime,
            aiohttp.ClientSession() as http,
        ):
            url = runtime["url"]
            made = await rest(
                http, "POST", url + "/6/accounts",
                json={"login": LOGIN, "password": PASSWORD, "account_type": "user"},
                headers={"Luna-Account-Id": account_id},
            )  # fmt: skip
            assert made["account_id"] == account_id, made
            auth = {
                "Authorization": "Basic "
                + base64.b64encode(f"{LOGIN}:{PASSWORD}".encode()).decode()
            }

            # --- data: PostgreSQL rows, one cached snapshot per shard ----------------------
            t0 = time.perf_counter()
            await insert_list(runtime["database_url"], account_id, list_id)
            await copy_faces(runtime["database_url"], account_id, list_id, n_total)
            out["copy_to_postgres_s"] = time.perf_counter() - t0
            # The snapshots reflect exactly the rows just copied, which published nothing: they
            # are at the stream's current sequence, and the shards replay what comes after.
            nc = await nats_streams.connect(runtime["nats_url"], name="bench-cluster")
            seq = (await nc.jetstream().stream_info("FACES_CHANGES")).state.last_seq
            await nc.close()
            for s in range(SHARDS):
                root = data_dir / f"shard{s}" / f"shard-{s}-{shard_map.partition(s).signature}"
                cache.install(layout, s, root, seq)
            out["stream_seq"] = seq

            # --- processes ---------------------------------------------------------------
            base = {k: v for k, v in os.environ.items() if not k.startswith("LUNA_")}
            base.update(
                PYTHONUNBUFFERED="1",
                LUNA_DATA_DIR=str(data_dir / "procs"),
                LUNA_NATS_URL=runtime["nats_url"],
                LUNA_DATABASE_URL=runtime["database_url"],
                LUNA_MATCHER_EXTRA_DESCRIPTOR_VERSIONS="",
                LUNA_MATCHER_SPREAD_ACCOUNTS=account_id,
                LUNA_MATCHER_SHARDS=str(SHARDS),
            )
            for name, info in runtime["services"].items():
                if name in config.SERVICE_ADDRESSES and info.get("address"):
                    base[config.SERVICE_ADDRESSES[name].name] = info["address"]
            for setting in config.METRICS_ADDRESSES.values():
                base[setting.name] = ""
            procs = Procs(data_dir, base)
            py = [sys.executable, "-m"]
            shard_addr = [f"127.0.0.1:{pick_free_port()}" for _ in range(SHARDS)]
            proxy_addr = f"127.0.0.1:{pick_free_port()}"
            proxy1_addr = f"127.0.0.1:{pick_free_port()}"  # a proxy over shard 0 alone
            for s in range(SHARDS):
                await procs.start(
                    f"shard{s}", [*py, "services.matcher"], LUNA_MATCHER_SHARD=str(s),
                    LUNA_MATCHER_ADDRESS=shard_addr[s],
                    LUNA_MATCHER_SNAPSHOT_DIR=str(data_dir / f"shard{s}"),
                )  # fmt: skip
            await procs.start(
                "proxy", [*py, "services.matcher.proxy"], LUNA_MATCHER_ADDRESS=proxy_addr,
                LUNA_MATCHER_SHARD_ADDRESSES=";".join(shard_addr),
            )  # fmt: skip
            await procs.start(
                "proxy_one", [*py, "services.matcher.proxy"], LUNA_MATCHER_ADDRESS=proxy1_addr,
                LUNA_MATCHER_SHARD_ADDRESSES=shard_addr[0], LUNA_MATCHER_SHARDS="1",
            )  # fmt: skip
            t0 = time.perf_counter()
            for a in (*shard_addr, proxy_addr, proxy1_addr):
                await wait_serving(a, 900)
            out["shards_serving_s"] = time.perf_counter() - t0
            for s in range(SHARDS):
                got = loaded_from(data_dir / "logs" / f"shard{s}.log")
                want = (len(rows[s]), "snapshot", seq)
                if got != want:
                    raise RuntimeError(
                        f"shard {s} loaded {got}, expected {want} (faces, from, seq)"
                    )
            out["shard_rss_mb"] = [
                psutil.Process(procs.procs[f"shard{s}"].pid).memory_info().rss / 2**20
                for s in range(SHARDS)
            ]
            log(f"shards serving after {out['shards_serving_s']:.1f}s, RSS {out['shard_rss_mb']}")
            paths: dict[str, dict[str, str]] = {}
            # The gateway of "two_shards_in_gateway" routes to the shards itself (the
            # default when it has the shard map); the others call one matcher address.
            in_gateway = {"LUNA_MATCHER_SHARD_ADDRESSES": ";".join(shard_addr)}
            for name, matcher, extra in (
                ("two_shards_via_proxy", proxy_addr, {}),
                ("two_shards_in_gateway", proxy_addr, in_gateway),
                ("one_shard_direct", shard_addr[0], {}),
                ("one_shard_via_proxy", proxy1_addr, {}),
            ):
                ports = {k: str(pick_free_port()) for k in ("LUNA_PORT", "LUNA_TASKS_API_PORT",
                         "LUNA_SENDER_PORT", "LUNA_BACKPORT3_PORT")}  # fmt: skip
                gateway = f"127.0.0.1:{ports['LUNA_PORT']}"
                await procs.start(
                    f"gateway_{name}", [*py, "services.gateway"], LUNA_HOST="127.0.0.1",
                    LUNA_MATCHER_ADDRESS=matcher, **ports, **extra,
                )  # fmt: skip
                await wait_http(f"http://{gateway}/version", 120)
                envoy_port = pick_free_port()
                services = {s: base[config.SERVICE_ADDRESSES[s].name] for s in config.SERVICE_PORTS}
                services["matcher"] = matcher
                conf = data_dir / f"envoy_{name}.yaml"
                conf.write_text(render_envoy(envoy_port, gateway, services, pick_free_port(),
                                             pick_free_port()))  # fmt: skip
                envoy = str(Path(sys.executable).with_name("envoy"))
                await procs.start(f"envoy_{name}", [envoy, "-c", str(conf), "--use-dynamic-base-id",
                                                     "-l", "warning"])  # fmt: skip
                await wait_http(f"http://127.0.0.1:{envoy_port}/version", 120)
                grpc_target = "" if extra else matcher  # no gRPC of its own: REST only
                paths[name] = {"rest": f"http://127.0.0.1:{envoy_port}", "grpc": grpc_target}
            log(f"paths {paths}")

            # --- measurements ------------------------------------------------------------
            scope = account_pb2.AccountScope(account_id=account_id)
            calls: dict[str, Callable[[np.ndarray], Awaitable[list[int]]]] = {}
            channels = []
            for name, where in paths.items():
                stub: Any = None
                if where["grpc"]:
                    channels.append(grpc.aio.insecure_channel(where["grpc"]))
                    stub = matcher_pb2_grpc.MatcherServiceStub(channels[-1])

                async def grpc_call(q: np.ndarray, stub: Any = stub) -> list[int]:
                    reply = await stub.MatchFaces(
                        matcher_pb2.MatchFacesRequest(
                            scope=scope,
                            references=[matcher_pb2.Reference(descriptor=matcher_pb2.RawDescriptor(
                                descriptor=q.astype("<f4").tobytes(), version=VERSION))],
                            candidates=[matcher_pb2.FaceCandidates(list_id=list_id, limit=k)],
                        )
                    )  # fmt: skip
                    matches = reply.results[0].candidates[0].matches
                    return [face_index(m.face.face_id) for m in matches]

                async def rest_call(q: np.ndarray, base_url: str = where["rest"]) -> list[int]:
                    packed = base64.b64encode(q.astype("<f4").tobytes()).decode()
                    body = {
                        "references": [
                            {"type": "raw_descriptor", "version": VERSION, "descriptor": packed}
                        ],
                        "candidates": [{"filters": {"list_id": list_id}, "limit": k}],
                    }
                    got = await rest(
                        http, "POST", base_url + "/6/matcher/faces", json=body, headers=auth
                    )
                    return [
                        face_index(r["face"]["face_id"]) for r in got[0]["matches"][0]["result"]
                    ]

                if stub is not None:
                    calls[f"grpc_{name}"] = grpc_call
                calls[f"rest_envoy_{name}"] = rest_call
            variants: dict[str, Any] = {}
            for kind in ("grpc", "rest_envoy"):
                pair = {n: c for n, c in calls.items() if n.startswith(kind + "_")}
                # CPU seconds of each path's gateway: its share of a match, which the load
                # of a shared box does not inflate as it does wall times.
                gateways = {p: psutil.Process(procs.procs[f"gateway_{p}"].pid) for p in paths}
                cpu0 = {p: sum(g.cpu_times()[:2]) for p, g in gateways.items()}
                summaries, found = await paired_loop(pair, queries, args.duration)
                for name, summary in summaries.items():
                    path = name.removeprefix(kind + "_")
                    summary["recall@1"] = recall(found[name], truth[path], 1)
                    summary[f"recall@{k}"] = recall(found[name], truth[path], k)
                    if kind == "rest_envoy":
                        cpu = sum(gateways[path].cpu_times()[:2]) - cpu0[path]
                        # (+5: the warm-up calls)
                        summary["gateway_cpu_ms_per_match"] = 1000 * cpu / (summary["n"] + 5)
                    variants[name] = summary
                    log(f"{name}: {summary}")
                save("cluster_run", out | {"variants": variants})
            out["live_delete"] = await check_live_delete(
                http, url, auth, calls, queries[0], int(truth_all[0][0])
            )
            for ch in channels:
                await ch.close()

            def diff(kind: str, a: str, b: str, stat: str) -> float:
                return float(variants[f"{kind}_{a}"][stat] - variants[f"{kind}_{b}"][stat])

            two, one, hop = "two_shards_via_proxy", "one_shard_direct", "one_shard_via_proxy"
            # Fan-out vs one shard (the figure), and its two parts: the proxy hop
            # itself (a proxy over shard 0 alone vs shard 0 directly) and the second shard.
            out["fan_out_added_ms"] = {
                "rest_p50": diff("rest_envoy", two, one, "p50_ms"),
                "rest_p99": diff("rest_envoy", two, one, "p99_ms"),
                "grpc_p50": diff("grpc", two, one, "p50_ms"),
                "grpc_p99": diff("grpc", two, one, "p99_ms"),
                "of_which_proxy_hop_rest_p50": diff("rest_envoy", hop, one, "p50_ms"),
                "of_which_proxy_hop_grpc_p50": diff("grpc", hop, one, "p50_ms"),
                "of_which_second_shard_rest_p50": diff("rest_envoy", two, hop, "p50_ms"),
                # The gateway routing itself (no proxy hop), the documented default.
                "in_gateway_rest_p50": diff("rest_envoy", "two_shards_in_gateway", one, "p50_ms"),
                "in_gateway_rest_p99": diff("rest_envoy", "two_shards_in_gateway", one, "p99_ms"),
                "target_p50_ms": 2.0,
            }
            out["ratio_rest_qps_two_vs_one"] = (
                variants[f"rest_envoy_{two}"]["qps"] / variants[f"rest_envoy_{one}"]["qps"]
            )
            out["variants"] = variants
            out["load_average_end"] = os.getloadavg()
            log(f"fan-out added {out['fan_out_added_ms']}")
            if procs is not None:
                await procs.stop()
                procs = None
    finally:
        if procs is not None:
            await procs.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000, help="faces per shard (2 shards)")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per latency loop")
    ap.add_argument("--seed", type=int, default=7, help="of the synthetic descriptors")
    ap.add_argument(
        "--snapshot-cache", type=Path, default=None,
        help="keep the data and the shards' snapshots here across runs (bench/cluster/cache.py)",
    )  # fmt: skip
    args = ap.parse_args()
    # The HNSW builds' progress lines (services.matcher.core.hnsw_graph) when the cache builds.
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(name)s: %(message)s")
    out = asyncio.run(bench(args))
    path = save("cluster_run", out)
    log(f"saved {path}")


if __name__ == "__main__":
    main()
