"""Analytical tasks benchmark: our cores next to the raw limit, same input, same threads.

    python -m bench.tasks_analytics.run                      # sized for a shared 2-core box
    python -m bench.tasks_analytics.run --references 10000 --candidates 1000000 \
        --cluster-n 100000 --roc-n 10000                     # the issue's full sizes

128-D clustered synthetic descriptors (bench.matcher.data). Measured in-process, the code a
task part runs (descriptor transfer through gRPC is not part of these numbers):
- cross_match: references x candidates, top `--limit`: our part path (HNSW searched wider
  and re-ranked exactly above HNSW_MIN candidates, blocked BLAS below) vs raw hnswlib
  `knn_query` over an index with the same parameters and threads; recall@1 of both vs the
  exact answer on a sample of references.
- clustering: `analytics.cluster` (coarse-partition pairs above EXACT_MAX) vs the exact
  all-pairs connected components (blocked BLAS) and, with --dbscan, scikit-learn's
  DBSCAN(metric="cosine", min_samples=1) -- the same connected components; adjusted Rand
  index vs exact.
- roc: wall time and peak traced memory over `--roc-n` labelled faces.
Results: bench/results/tasks_analytics.json.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from typing import Any

import numpy as np

from bench.common import save
from bench.matcher.data import generate
from services.matcher.core.similarity import similarity_to_cosine
from services.tasks import analytics
from services.tasks.types import cross_match


def ari(a: np.ndarray, b: np.ndarray) -> float:
    """Adjusted Rand index of two labelings (contingency table, vectorised)."""
    _, ai = np.unique(a, return_inverse=True)
    _, bi = np.unique(b, return_inverse=True)
    n = a.shape[0]
    table = np.zeros((ai.max() + 1, bi.max() + 1), dtype=np.int64)
    np.add.at(table, (ai, bi), 1)

    def pairs(v: np.ndarray) -> float:
        return float((v * (v - 1) // 2).sum())

    index = pairs(table.reshape(-1))
    rows, cols = pairs(table.sum(1)), pairs(table.sum(0))
    expected = rows * cols / (n * (n - 1) / 2)
    top = (rows + cols) / 2 - expected
    return 1.0 if top == 0 else (index - expected) / top


def timed(fn: Any, *args: Any, **kw: Any) -> tuple[Any, float]:
    began = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - began


def bench_cross_match(n_refs: int, n_cands: int, limit: int, sample: int) -> dict[str, Any]:
    data = generate(n_cands, n_queries=n_refs, seed=7)
    refs, cands = data.queries, data.gallery
    print(f"cross_match: {refs.shape[0]} references x {n_cands} candidates, top {limit}")
    use_hnsw = n_cands > cross_match.HNSW_MIN
    out: dict[str, Any] = {"references": int(refs.shape[0]), "candidates": n_cands,
                           "limit": limit, "threads": analytics.threads(),
                           "path": "hnsw+rerank" if use_hnsw else "blas"}  # fmt: skip
    ours: analytics.HnswCandidates | None = None
    if use_hnsw:
        ours, out["build_s"] = timed(analytics.HnswCandidates.build, cands)
        print(f"  index built in {out['build_s']:.1f}s")

        def search(r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            assert ours is not None
            return ours.top(r, limit, 0.0)

    else:

        def search(r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return analytics.top_matches(r, cands, limit, 0.0)

    def ours_all() -> np.ndarray:
        # Reference blocks of PART_SIZE, as the task's parts run them.
        got = [search(refs[s : s + cross_match.PART_SIZE])[0]
               for s in range(0, refs.shape[0], cross_match.PART_SIZE)]  # fmt: skip
        return np.vstack(got)

    got, out["ours_s"] = timed(ours_all)
    if use_hnsw:  # the alternative the task takes below HNSW_MIN candidates, for scale
        _, out["blas_exact_s"] = timed(analytics.top_matches, refs, cands, limit, 0.0)
    # Raw: the same index (or one with the same parameters), the same threads, the ef our
    # path uses, top `limit`.
    raw_index = ours.index if ours is not None else analytics.build_hnsw(analytics.unit_rows(cands))
    raw_index.set_ef(max(analytics.SEARCH_EF, min(n_cands, analytics.search_k(limit))))
    unit_refs = analytics.unit_rows(refs)
    (raw, _), out["raw_knn_query_s"] = timed(
        raw_index.knn_query, unit_refs, k=limit, num_threads=analytics.threads()
    )
    out["ratio_raw_over_ours"] = out["raw_knn_query_s"] / out["ours_s"]
    pick = np.random.default_rng(0).choice(refs.shape[0], min(sample, refs.shape[0]), False)
    exact, _ = analytics.top_matches(refs[pick], cands, 1, 0.0)
    out["recall_at_1_ours"] = float((got[pick, 0] == exact[:, 0]).mean())
    out["recall_at_1_raw"] = float((raw[pick, 0].astype(np.int64) == exact[:, 0]).mean())
    print(f"  ours {out['ours_s']:.2f}s  raw knn_query {out['raw_knn_query_s']:.2f}s  "
          f"ratio {out['ratio_raw_over_ours']:.2f}  recall@1 {out['recall_at_1_ours']:.4f} "
          f"(raw {out['recall_at_1_raw']:.4f})")  # fmt: skip
    return out


def bench_clustering(n: int, threshold: float, dbscan: bool) -> dict[str, Any]:
    data = generate(n, n_queries=1, seed=13)
    x = data.gallery
    print(f"clustering: {n} faces, threshold {threshold}")
    path = "exact" if n <= analytics.EXACT_MAX else "partition"
    out: dict[str, Any] = {"n": n, "threshold": threshold, "path": path,
                           "cells_probes": analytics.partition_size(n)}  # fmt: skip
    # CPU seconds too: on a shared box the wall times of the two runs see different loads.
    cpu = time.process_time()
    ours, out["ours_s"] = timed(analytics.cluster, x, threshold)
    out["ours_cpu_s"], cpu = time.process_time() - cpu, time.process_time()
    exact, out["exact_all_pairs_s"] = timed(analytics.cluster, x, threshold, exact_max=n + 1)
    out["exact_cpu_s"] = time.process_time() - cpu
    out["ari_vs_exact"] = ari(ours, exact)
    out["clusters"] = int(ours.max() + 1)
    out["speedup_vs_exact"] = out["exact_all_pairs_s"] / out["ours_s"]
    out["cpu_speedup_vs_exact"] = out["exact_cpu_s"] / out["ours_cpu_s"]
    print(f"  ours {out['ours_s']:.2f}s (cpu {out['ours_cpu_s']:.2f}s)  exact "
          f"{out['exact_all_pairs_s']:.2f}s (cpu {out['exact_cpu_s']:.2f}s)  "
          f"ARI {out['ari_vs_exact']:.5f}  clusters {out['clusters']}")  # fmt: skip
    if dbscan:
        from sklearn.cluster import DBSCAN

        eps = 1.0 - similarity_to_cosine(threshold)
        model = DBSCAN(eps=eps, min_samples=1, metric="cosine", n_jobs=analytics.threads())
        labels, out["dbscan_s"] = timed(model.fit_predict, x)
        out["ari_dbscan_vs_exact"] = ari(labels, exact)
        out["speedup_vs_dbscan"] = out["dbscan_s"] / out["ours_s"]
        print(f"  DBSCAN {out['dbscan_s']:.2f}s  ARI {out['ari_dbscan_vs_exact']:.5f}")
    return out


def bench_roc(n: int) -> dict[str, Any]:
    data = generate(n, n_queries=1, seed=17)
    print(f"roc: {n} labelled faces")
    tracemalloc.start()
    got, seconds = timed(analytics.roc, data.gallery, data.gallery_identity, 5, 0.0, [1e-3])
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"  {seconds:.2f}s  peak {peak / 2**20:.0f} MiB  AUC {got.auc:.5f}")
    return {"n": n, "seconds": seconds, "peak_traced_mib": peak / 2**20, "auc": got.auc,
            "pairs": n * (n - 1) // 2}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--references", type=int, default=2000)
    p.add_argument("--candidates", type=int, default=100_000)
    p.add_argument(
        "--hnsw-min",
        type=int,
        default=50_000,
        help=f"candidates above which cross_match uses HNSW (task: {cross_match.HNSW_MIN})",
    )
    p.add_argument("--limit", type=int, default=10)
    p.add_argument("--recall-sample", type=int, default=500)
    p.add_argument("--cluster-n", type=int, default=60_000)
    p.add_argument("--threshold", type=float, default=0.81)
    p.add_argument("--dbscan", action="store_true", help="also time scikit-learn's DBSCAN")
    p.add_argument("--roc-n", type=int, default=5000)
    p.add_argument("--only", choices=["cross_match", "clustering", "roc"], default=None)
    p.add_argument("--out", default="tasks_analytics", help="bench/results/<out>.json")
    a = p.parse_args()
    payload: dict[str, Any] = {"args": vars(a)}
    cross_match.HNSW_MIN = a.hnsw_min
    if a.only in (None, "cross_match"):
        payload["cross_match"] = bench_cross_match(
            a.references, a.candidates, a.limit, a.recall_sample
        )
    if a.only in (None, "clustering"):
        payload["clustering"] = bench_clustering(a.cluster_n, a.threshold, a.dbscan)
    if a.only in (None, "roc"):
        payload["roc"] = bench_roc(a.roc_n)
    print(f"saved {save(a.out, payload)}")


if __name__ == "__main__":
    main()
