"""Matcher benchmark, in-process half: raw hnswlib vs exact BLAS vs our IndexSet, one core.

    python -m bench.matcher.raw --n 1000000

Variants (letters kept stable so the gRPC (b) and REST (c) variants slot in later):
  (a) raw hnswlib knn_query        -- the limit our indexed path wraps
  (d) exact BLAS scan (numpy)      -- the limit our exact path wraps, and the ground truth
  (e) IndexSet.search in-process   -- ListCandidates over one list holding all N faces
  (e_acct) IndexSet.search with AccountCandidates (exact scan path), fewer queries
Plus IndexSet snapshot save, and snapshot load timed in a fresh process.
Every searcher goes through `run_queries(search_fn, queries, k)`; results go to
bench/results/matcher_raw.json.
"""

from __future__ import annotations

import os

# One core for searches: BLAS threads are fixed at numpy import, so set them first.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from dataclasses import asdict, dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

import hnswlib  # noqa: E402
import numpy as np  # noqa: E402
import psutil  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.matcher.data import describe, load_or_generate  # noqa: E402
from services.matcher.core import (  # noqa: E402
    AccountCandidates,
    IndexSet,
    ListCandidates,
    MatcherConfig,
)

RESULTS = ROOT / "bench" / "results" / "matcher_raw.json"
ACCOUNT = "00000000-0000-4000-8000-00000000000a"
LIST_ID = "00000000-0000-4000-8000-0000000000b1"


@dataclass
class RunStats:
    n: int
    qps: float
    mean_ms: float
    p50_ms: float
    p99_ms: float
    ids: list[list[int]] = field(default_factory=list, repr=False)

    def summary(self) -> dict[str, float]:
        d = asdict(self)
        d.pop("ids")
        return d


def run_queries(
    search_fn: Callable[[np.ndarray, int], Sequence[int]], queries: np.ndarray, k: int
) -> RunStats:
    """Run one query at a time (latency = one request), sequentially on the calling thread."""
    for q in queries[: min(5, len(queries))]:
        search_fn(q, k)  # warm-up
    lat = np.empty(len(queries))
    ids: list[list[int]] = []
    t_all = time.perf_counter()
    for i, q in enumerate(queries):
        t0 = time.perf_counter()
        res = search_fn(q, k)
        lat[i] = time.perf_counter() - t0
        ids.append(list(res))
    total = time.perf_counter() - t_all
    return RunStats(
        n=len(queries),
        qps=len(queries) / total,
        mean_ms=float(lat.mean() * 1e3),
        p50_ms=float(np.percentile(lat, 50) * 1e3),
        p99_ms=float(np.percentile(lat, 99) * 1e3),
        ids=ids,
    )


def recall(found: list[list[int]], truth: np.ndarray, k: int) -> float:
    hits = [len(set(f[:k]) & set(truth[i, :k].tolist())) / k for i, f in enumerate(found)]
    return float(np.mean(hits))


def recall_matches(found: list[list[int]], truth: np.ndarray, genuine: np.ndarray) -> float:
    """Share of the true top-k that are genuine matches (cosine >= SFace's 0.363) found."""
    want = [set(truth[i][genuine[i]].tolist()) for i in range(len(found))]
    total = sum(len(w) for w in want)
    got = sum(len(w & set(f)) for w, f in zip(want, found, strict=False))
    return float(got / total) if total else 1.0


def trim_heap() -> None:
    """Hand freed heap back to the OS so an RSS delta measures new memory, not reuse."""
    import ctypes

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def face_id(i: int) -> str:
    return str(uuid.UUID(int=i, version=4))


def face_index(fid: str) -> int:
    # uuid version bits overwrite part of the int; we only use ids < 2**48, which survive.
    return uuid.UUID(fid).int & ((1 << 48) - 1)


def exact_truth(gallery: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    out = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), 100):
        s = gallery @ queries[start : start + 100].T
        part = np.argpartition(-s, k, axis=0)[:k]
        for j in range(part.shape[1]):
            col = part[:, j]
            out[start + j] = col[np.argsort(-s[col, j])]
    return out


def exact_search_fn(gallery: np.ndarray) -> Callable[[np.ndarray, int], list[int]]:
    def fn(q: np.ndarray, k: int) -> list[int]:
        s = gallery @ q
        part = np.argpartition(-s, k)[:k]
        return part[np.argsort(-s[part])].tolist()

    return fn


def load_child(snapshot_root: str) -> None:
    """Child-process mode: load a snapshot, print timing + peak RSS as JSON."""
    from services.matcher.core.snapshot import load_snapshot

    base = rss_mb()
    t0 = time.perf_counter()
    index_set, seq = load_snapshot(Path(snapshot_root), MatcherConfig(build_threads=1))
    dt = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "load_s": dt,
                "rss_delta_mb": rss_mb() - base,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "faces": len(index_set),
                "stream_seq": seq,
                "stats": index_set.stats(),
            }
        )
    )
    index_set.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--exact-queries", type=int, default=200, help="queries for exact scans")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--ef-construction", type=int, default=200)
    ap.add_argument("--ef", type=int, default=128)
    ap.add_argument("--build-threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument(
        "--ef-sweep", default="", help="extra ef values to query raw hnswlib with, e.g. 256,512"
    )
    ap.add_argument("--skip", default="", help="comma list of variants to skip: a,d,e,snap")
    ap.add_argument("--load-child", help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    if args.load_child:
        load_child(args.load_child)
        return
    skip = set(filter(None, args.skip.split(",")))
    k = args.k

    t0 = time.perf_counter()
    data = load_or_generate(args.n, args.queries)
    gallery = np.ascontiguousarray(data.gallery)
    queries = np.ascontiguousarray(data.queries)
    print(f"data: {gallery.shape} in {time.perf_counter() - t0:.1f}s; {describe(data)}")
    t0 = time.perf_counter()
    truth = exact_truth(gallery, queries, k)
    print(f"ground truth in {time.perf_counter() - t0:.1f}s")
    truth_cos = np.einsum("qkd,qd->qk", gallery[truth], queries)
    genuine = truth_cos >= 0.363
    out: dict[str, object] = {
        "n": args.n,
        "dim": gallery.shape[1],
        "k": k,
        "queries": len(queries),
        "exact_queries": args.exact_queries,
        "hnsw": {"M": args.m, "ef_construction": args.ef_construction, "ef": args.ef},
        "build_threads": args.build_threads,
        "cpu_count": os.cpu_count(),
        "data_stats": describe(data),
        "variants": {},
    }
    variants: dict[str, dict[str, object]] = out["variants"]  # type: ignore[assignment]
    exact_q = queries[: args.exact_queries]

    def save() -> None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=2))

    if "d" not in skip:
        st = run_queries(exact_search_fn(gallery), exact_q, k)
        variants["d_exact_blas"] = {
            **st.summary(),
            "recall@1": recall(st.ids, truth, 1),
            "recall@10": recall(st.ids, truth, k),
            "recall@10_genuine": recall_matches(st.ids, truth[: st.n], genuine[: st.n]),
        }
        print("(d)", variants["d_exact_blas"])
        save()

    if "a" not in skip:
        trim_heap()
        base = rss_mb()
        t0 = time.perf_counter()
        index = hnswlib.Index(space="ip", dim=gallery.shape[1])
        index.init_index(max_elements=args.n, M=args.m, ef_construction=args.ef_construction)
        index.add_items(gallery, np.arange(args.n), num_threads=args.build_threads)
        build_s = time.perf_counter() - t0
        mem = rss_mb() - base
        index.set_ef(args.ef)
        index.set_num_threads(1)

        def raw_fn(q: np.ndarray, kk: int) -> list[int]:
            labels, _ = index.knn_query(q, k=kk, num_threads=1)
            return labels[0].tolist()

        st = run_queries(raw_fn, queries, k)
        variants["a_raw_hnswlib"] = {
            **st.summary(),
            "build_s": build_s,
            "rss_delta_mb": mem,
            "recall@1": recall(st.ids, truth, 1),
            "recall@10": recall(st.ids, truth, k),
            "recall@10_genuine": recall_matches(st.ids, truth[: st.n], genuine[: st.n]),
        }
        print("(a)", variants["a_raw_hnswlib"])
        for ef in [int(x) for x in args.ef_sweep.split(",") if x]:
            index.set_ef(ef)
            st = run_queries(raw_fn, queries, k)
            variants[f"a_raw_hnswlib_ef{ef}"] = {
                **st.summary(),
                "recall@1": recall(st.ids, truth, 1),
                "recall@10": recall(st.ids, truth, k),
                "recall@10_genuine": recall_matches(st.ids, truth, genuine),
            }
            print(f"(a ef={ef})", variants[f"a_raw_hnswlib_ef{ef}"])
        del index
        gc.collect()
        save()

    if "e" not in skip:
        cfg = MatcherConfig(
            hnsw_m=args.m,
            hnsw_ef_construction=args.ef_construction,
            hnsw_ef=args.ef,
            build_threads=args.build_threads,
        )
        ids = [face_id(i) for i in range(args.n)]
        trim_heap()
        base = rss_mb()
        t0 = time.perf_counter()
        index_set = IndexSet(version=1, config=cfg)
        index_set.add_many(ACCOUNT, ids, gallery, 1, {LIST_ID})
        add_s = time.perf_counter() - t0
        index_set.wait_for_builds()
        build_s = time.perf_counter() - t0
        mem = rss_mb() - base
        print(f"(e) add_many {add_s:.1f}s, ready {build_s:.1f}s, {index_set.stats()}")

        def ours(cands: object) -> Callable[[np.ndarray, int], list[int]]:
            def fn(q: np.ndarray, kk: int) -> list[int]:
                res = index_set.search(ACCOUNT, q, cands, kk, 0.0)[0]  # type: ignore[arg-type]
                return [face_index(m.face_id) for m in res]

            return fn

        st = run_queries(ours(ListCandidates(LIST_ID)), queries, k)
        variants["e_indexset_list"] = {
            **st.summary(),
            "add_many_s": add_s,
            "build_s": build_s,
            "rss_delta_mb": mem,
            "recall@1": recall(st.ids, truth, 1),
            "recall@10": recall(st.ids, truth, k),
            "recall@10_genuine": recall_matches(st.ids, truth[: st.n], genuine[: st.n]),
        }
        print("(e)", variants["e_indexset_list"])
        st = run_queries(ours(AccountCandidates()), exact_q, k)
        variants["e_indexset_account_exact"] = {
            **st.summary(),
            "recall@1": recall(st.ids, truth, 1),
            "recall@10": recall(st.ids, truth, k),
            "recall@10_genuine": recall_matches(st.ids, truth[: st.n], genuine[: st.n]),
        }
        print("(e_acct)", variants["e_indexset_account_exact"])
        save()

        if "snap" not in skip:
            from services.matcher.core.snapshot import save_snapshot

            snap_root = Path(tempfile.mkdtemp(prefix="matcher-snap-"))
            try:
                t0 = time.perf_counter()
                path = save_snapshot(index_set, snap_root, stream_seq=12345)
                save_s = time.perf_counter() - t0
                size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
                child = subprocess.run(
                    [sys.executable, "-m", "bench.matcher.raw", "--load-child", str(snap_root)],
                    cwd=ROOT,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                loaded = json.loads(child.stdout.strip().splitlines()[-1])
                variants["snapshot"] = {
                    "save_s": save_s,
                    "size_mb": size / 2**20,
                    "load_s": loaded["load_s"],
                    "load_rss_delta_mb": loaded["rss_delta_mb"],
                    "load_peak_rss_mb": loaded["peak_rss_mb"],
                    "faces": loaded["faces"],
                }
                print("(snapshot)", variants["snapshot"])
            finally:
                shutil.rmtree(snap_root, ignore_errors=True)
        index_set.close()
        save()

    print_table(out)
    save()
    print(f"saved {args.out}")


def print_table(out: dict[str, object]) -> None:
    variants: dict[str, dict[str, float]] = out["variants"]  # type: ignore[assignment]
    cols = ["n", "qps", "p50_ms", "p99_ms", "recall@1", "recall@10", "recall@10_genuine"]
    cols += ["build_s", "rss_delta_mb"]
    print(f"\n{'variant':28s}" + "".join(f"{c:>13s}" for c in cols))
    for name, v in variants.items():
        if name == "snapshot":
            continue
        cells = "".join(
            f"{v[c]:>13.3f}" if isinstance(v.get(c), float) else f"{v.get(c, '-')!s:>13s}"
            for c in cols
        )
        print(f"{name:28s}{cells}")
    a, e = variants.get("a_raw_hnswlib"), variants.get("e_indexset_list")
    d, ea = variants.get("d_exact_blas"), variants.get("e_indexset_account_exact")
    if a and e:
        print(
            f"IndexSet(list, HNSW) / raw hnswlib: QPS x{e['qps'] / a['qps']:.2f}, "
            f"p50 x{e['p50_ms'] / a['p50_ms']:.2f}, p99 x{e['p99_ms'] / a['p99_ms']:.2f}"
        )
    if d and ea:
        print(
            f"IndexSet(account, exact) / raw BLAS: QPS x{ea['qps'] / d['qps']:.2f}, "
            f"p50 x{ea['p50_ms'] / d['p50_ms']:.2f}"
        )
    if d and e:
        print(f"IndexSet(list, HNSW) vs exact BLAS: QPS x{e['qps'] / d['qps']:.1f}")
    if "snapshot" in variants:
        print("snapshot:", variants["snapshot"])


if __name__ == "__main__":
    main()
