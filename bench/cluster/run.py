"""Sharded matcher benchmark (issue #15): 2N faces over two shards behind the matcher proxy
vs N faces on one shard, in the same run, through Envoy and the gateway (REST
`POST /6/matcher/faces`) and over gRPC.

    python -m bench.cluster.run --n 1000000   # N faces per shard -> bench/results/cluster_run.json
    python -m bench.cluster.run --n 100000      # what fits this 2-core box in minutes

Layout (every part a process on loopback):
  - `luna up --free-ports` for PostgreSQL, NATS, faces, events, ... Its own matcher is told it
    is shard 99 of a one-shard map, so it holds nothing (the bench's shards hold the data).
  - one account whose faces are spread over the shards by face id (LUNA_MATCHER_SPREAD_ACCOUNTS),
    2N faces in one list: shard 0 and shard 1 (`services.matcher`, LUNA_MATCHER_SHARD=0/1)
    hold about N each; the matcher proxy (`services.matcher.proxy`) in front of both;
  - gateway A -> proxy -> shards 0 and 1 (every match of the list fans out to both);
    gateway B -> shard 0 directly (one shard of N faces, no proxy hop);
    an Envoy in front of each gateway (deploy/envoy/render.py, the real binary).
Data path (documented, not the API, as bench/matcher/run.py): face rows and list links are
COPY'd into PostgreSQL, and each shard's IndexSet (HNSW, default LUNA_MATCHER_* settings) is
built here and saved as that shard's snapshot at the current FACES_CHANGES sequence.

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
from datetime import datetime  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import aiohttp  # noqa: E402
import grpc  # noqa: E402
import numpy as np  # noqa: E402
import psutil  # noqa: E402
from google.protobuf.timestamp_pb2 import Timestamp  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from luna.common.v1 import account_pb2  # noqa: E402
from luna.faces.v1 import faces_pb2  # noqa: E402
from luna.matcher.v1 import matcher_pb2, matcher_pb2_grpc  # noqa: E402

from bench.common import running_platform, save  # noqa: E402
from bench.matcher.data import load_or_generate  # noqa: E402
from bench.matcher.raw import exact_truth, face_id, face_index, recall  # noqa: E402
from bench.matcher.run import BULK_TIME, copy_faces, latency_summary, rest, wait_serving  # noqa: E402
from services.common import config, nats_streams  # noqa: E402
from services.launcher.embedded import pick_free_port  # noqa: E402
from services.launcher.supervisor import wait_http  # noqa: E402
from services.matcher import settings as matcher_settings  # noqa: E402
from services.matcher.core import IndexSet  # noqa: E402
from services.matcher.core.snapshot import save_snapshot  # noqa: E402
from services.matcher.face_records import FaceRecords  # noqa: E402
from services.matcher.shard.partition import ShardMap  # noqa: E402

VERSION = 200
LOGIN, PASSWORD = "bench-cluster@example.com", "bench-pass-1"
SHARDS = 2


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def records_of(account_id: str, list_id: str, rows: np.ndarray) -> FaceRecords:
    ts = Timestamp(seconds=int(datetime.fromisoformat(BULK_TIME).timestamp()))
    records = FaceRecords()
    records.set_many(
        faces_pb2.Face(
            face_id=face_id(int(i)),
            account_id=account_id,
            create_time=ts,
            last_update_time=ts,
            list_ids=[list_id],
            has_attribute=True,
        )
        for i in rows
    )
    return records


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
    data = load_or_generate(n_total, n_queries=1000)
    queries = np.ascontiguousarray(data.queries[: args.queries])
    log(f"data {data.gallery.shape}")
    data_dir = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
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
            )  # fmt: skip
            account_id = made["account_id"]
            auth = {
                "Authorization": "Basic "
                + base64.b64encode(f"{LOGIN}:{PASSWORD}".encode()).decode()
            }
            list_id = (await rest(http, "POST", url + "/6/lists", json={}, headers=auth))["list_id"]
            shard_map = ShardMap.uniform(SHARDS, spread_accounts=[account_id])
            owner = np.array([shard_map.owner(account_id, face_id(i)) for i in range(n_total)])
            rows = [np.flatnonzero(owner == s) for s in range(SHARDS)]
            out["faces_per_shard"] = [len(r) for r in rows]
            log(f"account {account_id}; faces per shard {out['faces_per_shard']}")

            # --- data: PostgreSQL rows, one snapshot per shard ----------------------------
            nc = await nats_streams.connect(runtime["nats_url"], name="bench-cluster")
            seq = (await nc.jetstream().stream_info("FACES_CHANGES")).state.last_seq
            await nc.close()
            out["copy_to_postgres_s"] = await copy_faces(
                runtime["database_url"], account_id, list_id, n_total
            )
            cfg = matcher_settings.core_config()
            out["config"] = {"M": cfg.hnsw_m, "ef_construction": cfg.hnsw_ef_construction,
                             "ef": cfg.hnsw_ef, "index_threshold": cfg.index_threshold}  # fmt: skip
            builds = []
            for s in range(SHARDS):
                ix = IndexSet(version=VERSION, config=cfg)
                t0 = time.perf_counter()
                ids = [face_id(int(i)) for i in rows[s]]
                ix.add_many(account_id, ids, np.ascontiguousarray(data.gallery[rows[s]]), VERSION,
                            [list_id])  # fmt: skip
                ix.wait_for_builds(None)
                built = time.perf_counter() - t0
                root = data_dir / f"shard{s}" / f"shard-{s}-{shard_map.partition(s).signature}"
                save_snapshot(ix, root, seq, records_of(account_id, list_id, rows[s]).save)
                ix.close()
                builds.append(built)
                log(f"shard {s}: {len(ids)} faces, HNSW build {built:.1f}s, snapshot saved")
            out["build_s"] = builds

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
            k = args.k
            truth_all = exact_truth(data.gallery, queries, k)
            local = exact_truth(np.ascontiguousarray(data.gallery[rows[0]]), queries, k)
            truth = {
                "two_shards_via_proxy": truth_all,
                "two_shards_in_gateway": truth_all,
                "one_shard_direct": rows[0][local],
                "one_shard_via_proxy": rows[0][local],
            }
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
    args = ap.parse_args()
    out = asyncio.run(bench(args))
    path = save("cluster_run", out)
    log(f"saved {path}")


if __name__ == "__main__":
    main()
