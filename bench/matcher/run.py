"""Matcher benchmark, whole path: raw hnswlib vs exact BLAS vs IndexSet vs MatcherService over
gRPC vs REST /6/matcher/faces, on the same clustered descriptors in the same run.

    python -m bench.matcher.run --n 1000000      # -> bench/results/matcher_run.json

Steps:
  1. `luna up --free-ports` in a temp data dir; one account + one list through REST.
  2. Build an IndexSet holding N faces in that list (one add_many + the background HNSW
     build, default LUNA_MATCHER_* settings): build time, memory.
  3. In-process, one thread: (d) exact BLAS scan (ground truth), (a) raw hnswlib knn_query on
     the very graph the IndexSet built, (e) IndexSet.search (HNSW + exact re-rank).
  4. Bulk path (documented, not the API): the N face rows and their list links are COPY'd
     straight into the faces service's PostgreSQL tables (faces, list_faces; descriptors are
     NOT written there), and the IndexSet is saved as the matcher's snapshot at the current
     FACES_CHANGES sequence. Creating 1M faces through /6/faces would take hours on this box.
  5. The platform's matcher is SIGKILLed; the supervisor restarts it and it loads the 1M
     snapshot: restart-to-serving time, matcher RSS.
  6. (b) MatcherService.MatchFaces over gRPC and (c) POST /6/matcher/faces through the gateway,
     one request at a time (concurrency 1): latency, QPS and recall vs exact. Both include
     the read-your-writes wait (one JetStream stream-info round trip, measured separately)
     and the face records, which the matcher holds itself (saved in the snapshot with the
     index, as FACES_CHANGES would have brought them): the `*_unseen_probes` rows (one pass
     over 200 new probes) should equal the looped ones.
"""

from __future__ import annotations

import os

# One core for the in-process searches: BLAS threads are fixed at numpy import.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import asyncio  # noqa: E402
import base64  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Awaitable, Callable, Iterable  # noqa: E402
from datetime import datetime  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import aiohttp  # noqa: E402
import grpc  # noqa: E402
import hnswlib  # noqa: E402
import numpy as np  # noqa: E402
import psutil  # noqa: E402
import psycopg  # noqa: E402
from google.protobuf.timestamp_pb2 import Timestamp  # noqa: E402
from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from luna.common.v1 import account_pb2, paging_pb2  # noqa: E402
from luna.faces.v1 import faces_pb2, faces_pb2_grpc  # noqa: E402
from luna.matcher.v1 import matcher_pb2, matcher_pb2_grpc  # noqa: E402

from bench.common import running_platform, save  # noqa: E402
from bench.matcher.data import describe, load_or_generate  # noqa: E402
from bench.matcher.raw import (  # noqa: E402
    exact_search_fn,
    exact_truth,
    face_id,
    face_index,
    recall,
    recall_matches,
    rss_mb,
    run_queries,
    trim_heap,
)
from services.common import nats_streams  # noqa: E402
from services.matcher import settings as matcher_settings  # noqa: E402
from services.matcher.core import IndexSet, ListCandidates  # noqa: E402
from services.matcher.core.collection import LIST, CollectionKey  # noqa: E402
from services.matcher.core.similarity import SFACE_COSINE_THRESHOLD  # noqa: E402
from services.matcher.core.snapshot import save_snapshot  # noqa: E402
from services.matcher.face_records import FaceRecords  # noqa: E402

VERSION = 200
LOGIN, PASSWORD = "bench-matcher@example.com", "bench-pass-1"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def latency_summary(lat: list[float]) -> dict[str, float]:
    arr = np.array(lat)
    return {
        "n": len(lat),
        "qps": float(len(lat) / arr.sum()),
        "mean_ms": float(arr.mean() * 1e3),
        "p50_ms": float(np.percentile(arr, 50) * 1e3),
        "p99_ms": float(np.percentile(arr, 99) * 1e3),
    }


async def timed_loop(
    call: Callable[[np.ndarray], Awaitable[list[int]]], queries: np.ndarray, duration: float
) -> tuple[dict[str, float], list[list[int]]]:
    """One request at a time; the first pass over `queries` gives ids for recall, then more
    passes until `duration` seconds are spent, for latency."""
    for q in queries[:5]:
        await call(q)  # warm-up
    lat: list[float] = []
    ids: list[list[int]] = []
    began = time.perf_counter()
    i = 0
    while i < len(queries) or time.perf_counter() - began < duration:
        q = queries[i % len(queries)]
        t0 = time.perf_counter()
        got = await call(q)
        lat.append(time.perf_counter() - t0)
        if i < len(queries):
            ids.append(got)
        i += 1
    return latency_summary(lat), ids


async def rest(session: aiohttp.ClientSession, method: str, url: str, **kw: Any) -> Any:
    async with session.request(method, url, **kw) as resp:
        body = await resp.json(content_type=None)
        if resp.status >= 300:
            raise RuntimeError(f"{method} {url}: {resp.status} {body}")
        return body


BULK_TIME = "2026-01-01T00:00:00+00:00"


def bulk_records(account_id: str, list_id: str, rows: Iterable[int]) -> FaceRecords:
    """The matcher's face records of the COPY'd faces `rows` (what FACES_CHANGES would carry),
    so the snapshot answers matches without reading the faces service, as a live one does."""
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


async def copy_faces(database_url: str, account_id: str, list_id: str, n: int) -> float:
    """The documented bulk path: face rows + list links straight into PostgreSQL."""
    t0 = time.perf_counter()
    chunk = 100_000
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        async with conn.cursor() as cur:
            async with cur.copy(
                "COPY faces (face_id, account_id, create_time, last_update_time) FROM STDIN"
            ) as copy:
                for s in range(0, n, chunk):
                    rows = "".join(
                        f"{face_id(i)}\t{account_id}\t{BULK_TIME}\t{BULK_TIME}\n"
                        for i in range(s, min(n, s + chunk))
                    )
                    await copy.write(rows.encode())
            async with cur.copy("COPY list_faces (list_id, face_id) FROM STDIN") as copy:
                for s in range(0, n, chunk):
                    rows = "".join(
                        f"{list_id}\t{face_id(i)}\n" for i in range(s, min(n, s + chunk))
                    )
                    await copy.write(rows.encode())
        await conn.commit()
    return time.perf_counter() - t0


async def wait_serving(address: str, timeout: float) -> float:
    t0 = time.perf_counter()
    async with grpc.aio.insecure_channel(address) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        while True:
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return time.perf_counter() - t0
            except grpc.aio.AioRpcError:
                pass
            if time.perf_counter() - t0 > timeout:
                raise TimeoutError(f"{address} not serving after {timeout}s")
            await asyncio.sleep(0.05)


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"n": args.n, "k": args.k, "queries": args.queries}
    data = load_or_generate(args.n, n_queries=1000)
    queries = np.ascontiguousarray(data.queries[: args.queries])
    unseen = np.ascontiguousarray(data.queries[args.queries : 3 * args.queries])
    out["data_stats"] = describe(data)
    log(f"data {data.gallery.shape}")

    data_dir = Path(tempfile.mkdtemp(prefix="bench-matcher-"))
    try:
        async with running_platform(data_dir) as runtime, aiohttp.ClientSession() as http:
            url = runtime["url"]
            made = await rest(
                http,
                "POST",
                url + "/6/accounts",
                json={"login": LOGIN, "password": PASSWORD, "account_type": "user"},
            )
            account_id = made["account_id"]
            token = base64.b64encode(f"{LOGIN}:{PASSWORD}".encode()).decode()
            auth = {"Authorization": f"Basic {token}"}
            list_id = (await rest(http, "POST", url + "/6/lists", json={}, headers=auth))["list_id"]
            log(f"platform up at {url}; account {account_id}, list {list_id}")

            # --- 2. build ---------------------------------------------------------------
            cfg = matcher_settings.core_config()
            out["config"] = {
                "index_threshold": cfg.index_threshold,
                "M": cfg.hnsw_m,
                "ef_construction": cfg.hnsw_ef_construction,
                "ef": cfg.hnsw_ef,
                "build_threads": cfg.effective_build_threads,
            }
            if args.raw_build:
                # Raw hnswlib's own build of the same rows (all cores), for the ratio.
                t0 = time.perf_counter()
                raw_ix = hnswlib.Index(space="ip", dim=data.gallery.shape[1])
                raw_ix.init_index(
                    max_elements=args.n, M=cfg.hnsw_m, ef_construction=cfg.hnsw_ef_construction
                )
                raw_ix.add_items(
                    data.gallery, np.arange(args.n), num_threads=cfg.effective_build_threads
                )
                out["raw_build_s"] = time.perf_counter() - t0
                del raw_ix
                log(f"raw hnswlib build {out['raw_build_s']:.1f}s")
            trim_heap()
            rss0 = rss_mb()
            ix = IndexSet(version=VERSION, config=cfg)
            t0 = time.perf_counter()
            ids = [face_id(i) for i in range(args.n)]
            ix.add_many(account_id, ids, data.gallery, VERSION, [list_id])
            ix.wait_for_builds(None)
            build_s = time.perf_counter() - t0
            del ids
            trim_heap()
            out["build"] = {"seconds": build_s, "indexset_rss_delta_mb": rss_mb() - rss0}
            log(f"build {out['build']}")
            coll = ix._collections[CollectionKey(LIST, account_id, list_id)]
            graph = coll.graph()
            assert graph is not None, "list did not get an HNSW graph (n below threshold?)"

            # --- 3. in-process ----------------------------------------------------------
            k = args.k
            t0 = time.perf_counter()
            truth = exact_truth(data.gallery, queries, max(k, 10))
            truth_cos = np.take_along_axis(data.gallery @ queries.T, truth.T, axis=0).T
            genuine = truth_cos >= SFACE_COSINE_THRESHOLD
            log(f"ground truth in {time.perf_counter() - t0:.1f}s")
            variants: dict[str, Any] = {}

            def score(name: str, summary: dict[str, Any], found: list[list[int]]) -> None:
                summary["recall@1"] = recall(found, truth, 1)
                summary[f"recall@{k}"] = recall(found, truth, k)
                summary[f"recall@{k}_genuine"] = recall_matches(found, truth[:, :k], genuine[:, :k])
                variants[name] = summary
                log(f"({name}) {summary}")
                save("matcher_run", out | {"variants": variants})

            st = run_queries(exact_search_fn(data.gallery), queries, k)
            score("d_exact_blas", st.summary(), st.ids)
            index = graph.index
            index.set_ef(cfg.hnsw_ef)

            def raw_fn(q: np.ndarray, kk: int) -> list[int]:
                labels, _ = index.knn_query(q, k=kk, num_threads=1)
                return labels[0].tolist()  # labels are slots = gallery rows here

            st = run_queries(raw_fn, queries, k)
            score("a_raw_hnswlib", st.summary(), st.ids)
            cands = ListCandidates(list_id)

            def ix_fn(q: np.ndarray, kk: int) -> list[int]:
                return [face_index(m.face_id) for m in ix.search(account_id, q, cands, kk)[0]]

            st = run_queries(ix_fn, queries, k)
            score("e_indexset_inprocess", st.summary(), st.ids)
            # Recall vs speed of the same graph at other search breadths (ef is the hnswlib
            # object's, so it applies to (a) and (e) alike); back to the setting afterwards.
            sweep: dict[str, Any] = {}
            for ef in args.ef_sweep:
                index.set_ef(ef)
                row = {}
                for name, fn in (("a_raw_hnswlib", raw_fn), ("e_indexset", ix_fn)):
                    st = run_queries(fn, queries, k)
                    summ = st.summary()
                    summ["recall@1"] = recall(st.ids, truth, 1)
                    summ[f"recall@{k}"] = recall(st.ids, truth, k)
                    summ[f"recall@{k}_genuine"] = recall_matches(
                        st.ids, truth[:, :k], genuine[:, :k]
                    )
                    row[name] = summ
                sweep[str(ef)] = row
                log(f"ef={ef} {row}")
            index.set_ef(cfg.hnsw_ef)
            out["ef_sweep"] = sweep

            # --- 4. bulk path + snapshot ------------------------------------------------
            nc = await nats_streams.connect(runtime["nats_url"], name="bench")
            js = nc.jetstream()
            seq = (await js.stream_info("FACES_CHANGES")).state.last_seq
            copy_s = await copy_faces(runtime["database_url"], account_id, list_id, args.n)
            t0 = time.perf_counter()
            records = bulk_records(account_id, list_id, range(args.n))
            snap = save_snapshot(ix, data_dir / "matcher", seq, records.save)
            del records
            snap_s = time.perf_counter() - t0
            snap_mb = sum(p.stat().st_size for p in snap.rglob("*") if p.is_file()) / 2**20
            out["bulk_load"] = {
                "copy_to_postgres_s": copy_s,
                "snapshot_save_s": snap_s,
                "snapshot_mb": snap_mb,
                "stream_seq": seq,
            }
            log(f"bulk {out['bulk_load']}")
            ix.close()

            # --- 5. restart from the snapshot ------------------------------------------
            rt_path = data_dir / "runtime.json"
            old_pid = runtime["services"]["matcher"]["pid"]
            address = runtime["services"]["matcher"]["address"]
            t_kill = time.perf_counter()
            os.kill(old_pid, signal.SIGKILL)
            while True:
                pid = json.loads(rt_path.read_text())["services"]["matcher"]["pid"]
                if pid and pid != old_pid:
                    break
                await asyncio.sleep(0.02)
            t_spawn = time.perf_counter()
            await wait_serving(address, 600)
            t_up = time.perf_counter()
            out["restart"] = {
                "kill_to_serving_s": t_up - t_kill,
                "process_start_to_serving_s": t_up - t_spawn,
                "supervisor_backoff_s": t_spawn - t_kill,
                "matcher_rss_mb": psutil.Process(pid).memory_info().rss / 2**20,
            }
            log(f"restart {out['restart']}")

            # Read-your-writes cost: the stream-info round trip every match makes first.
            lat = []
            for _ in range(500):
                t0 = time.perf_counter()
                await js.stream_info("FACES_CHANGES")
                lat.append(time.perf_counter() - t0)
            out["consistency_wait_stream_info"] = latency_summary(lat)
            log(f"stream_info {out['consistency_wait_stream_info']}")
            await nc.close()

            # What MatchFaces spends on face records: one ListFaces of k ids with their lists.
            faces_address = runtime["services"]["faces"]["address"]
            rng = np.random.default_rng(1)
            async with grpc.aio.insecure_channel(faces_address) as fch:
                fstub = faces_pb2_grpc.FacesServiceStub(fch)
                lat = []
                for _ in range(300):
                    pick = [face_id(int(i)) for i in rng.integers(0, args.n, k)]
                    t0 = time.perf_counter()
                    await fstub.ListFaces(
                        faces_pb2.ListFacesRequest(
                            scope=account_pb2.AccountScope(account_id=account_id),
                            filter=faces_pb2.FaceFilter(face_ids=pick),
                            page=paging_pb2.Page(page=1, page_size=k),
                            with_lists=True,
                        )
                    )
                    lat.append(time.perf_counter() - t0)
            out["face_records_listfaces"] = latency_summary(lat)
            log(f"ListFaces {out['face_records_listfaces']}")

            # --- 6. gRPC and REST --------------------------------------------------------
            scope = account_pb2.AccountScope(account_id=account_id)
            async with grpc.aio.insecure_channel(address) as ch:
                stub = matcher_pb2_grpc.MatcherServiceStub(ch)

                async def grpc_call(q: np.ndarray) -> list[int]:
                    reply = await stub.MatchFaces(
                        matcher_pb2.MatchFacesRequest(
                            scope=scope,
                            references=[
                                matcher_pb2.Reference(
                                    descriptor=matcher_pb2.RawDescriptor(
                                        descriptor=q.astype("<f4").tobytes(), version=VERSION
                                    )
                                )
                            ],
                            candidates=[matcher_pb2.FaceCandidates(list_id=list_id, limit=k)],
                        )
                    )
                    return [
                        face_index(m.face.face_id) for m in reply.results[0].candidates[0].matches
                    ]

                # Probes never sent before: their matches' records are not in the matcher's
                # record cache yet (the looped probes below hit it after their first pass).
                summary, _ = await timed_loop(grpc_call, unseen[: len(queries)], 0.0)
                variants["b_grpc_matchfaces_unseen_probes"] = summary
                log(f"(b_grpc_matchfaces_unseen_probes) {summary}")
                summary, found = await timed_loop(grpc_call, queries, args.duration)
                score("b_grpc_matchfaces", summary, found)

            async def rest_call(q: np.ndarray) -> list[int]:
                body = {
                    "references": [
                        {
                            "type": "raw_descriptor",
                            "version": VERSION,
                            "descriptor": base64.b64encode(q.astype("<f4").tobytes()).decode(),
                        }
                    ],
                    "candidates": [{"filters": {"list_id": list_id}, "limit": k}],
                }
                got = await rest(http, "POST", url + "/6/matcher/faces", json=body, headers=auth)
                return [face_index(r["face"]["face_id"]) for r in got[0]["matches"][0]["result"]]

            summary, _ = await timed_loop(rest_call, unseen[len(queries) :], 0.0)
            variants["c_rest_matcher_faces_unseen_probes"] = summary
            log(f"(c_rest_matcher_faces_unseen_probes) {summary}")
            summary, found = await timed_loop(rest_call, queries, args.duration)
            score("c_rest_matcher_faces", summary, found)
            out["variants"] = variants
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    return out


def targets(out: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue #14's targets at this size, each as measured / its limit (same run)."""
    v = out.get("variants", {})
    raw = v.get("a_raw_hnswlib", {}).get("qps")
    rows: list[dict[str, Any]] = []

    def add(name: str, value: float | None, limit: float | None, target: str, met: bool) -> None:
        ratio = None if value is None or not limit else round(value / limit, 3)
        rows.append({"target": name, "value": value, "ratio": ratio, "goal": target, "met": met})

    for key, name, goal in (
        ("b_grpc_matchfaces", "gRPC QPS / raw hnswlib", 0.70),
        ("c_rest_matcher_faces", "REST QPS / raw hnswlib", 0.60),
        ("c_rest_matcher_faces_unseen_probes", "REST new probes QPS / raw", 0.60),
    ):
        qps = v.get(key, {}).get("qps")
        met = qps is not None and raw is not None and qps / raw >= goal
        add(name, qps, raw, f">= {goal}", met)
    p99 = v.get("c_rest_matcher_faces_unseen_probes", {}).get("p99_ms")
    add("REST p99 ms, new probes", p99, 10.0, "<= 10 ms", p99 is not None and p99 <= 10.0)
    build, raw_build = out.get("build", {}).get("seconds"), out.get("raw_build_s")
    met = build is not None and raw_build is not None and build / raw_build <= 1.1
    add("build s / raw hnswlib build", build, raw_build, "<= 1.1", met)
    restart = out.get("restart", {}).get("process_start_to_serving_s")
    add("snapshot start-to-serving s", restart, 10.0, "<= 10 s", bool(restart and restart <= 10))
    return rows


def targets_table(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'target':<30} {'value':>10} {'ratio':>7} {'goal':>9} {'met':>4}"]
    for r in rows:
        value = "-" if r["value"] is None else f"{r['value']:.2f}"
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.3f}"
        met = "yes" if r["met"] else "no"
        lines.append(f"{r['target']:<30} {value:>10} {ratio:>7} {r['goal']:>9} {met:>4}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument(
        "--raw-build",
        action="store_true",
        help="also time raw hnswlib's build of the same rows (doubles the build time)",
    )
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--duration", type=float, default=15.0, help="seconds per gRPC/REST loop")
    ap.add_argument(
        "--ef-sweep",
        type=lambda v: [int(x) for x in v.split(",") if x],
        default=[128, 192, 384],
        help="extra HNSW ef values to measure (a) and (e) at",
    )
    args = ap.parse_args()
    result = asyncio.run(bench(args))
    result["targets"] = targets(result)
    path = save("matcher_run" if args.n >= 1_000_000 else f"matcher_run_{args.n}", result)
    print(json.dumps(result, indent=2, default=str))
    print(f"\nissue #14 targets at n={args.n} (concurrency 1, this run):")
    print(targets_table(result["targets"]))
    print(f"saved {path}")


if __name__ == "__main__":
    main()
