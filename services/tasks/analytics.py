"""Numeric cores of the analytical tasks (clustering, cross_match, roc); no network, no I/O.

Every all-against-all question here is answered with float32 matrix products over blocks of
rows (BLAS does the quadratic work; Python only loops over blocks), or, for large sets, with
an hnswlib k-NN graph whose candidate pairs are re-ranked exactly. Thresholds are LUNA
similarities; the calibration is strictly increasing, so each one is turned into a cosine once
and every comparison happens in cosine space.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import hnswlib
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from services.matcher.core.similarity import cosine_to_similarity, similarity_to_cosine

# Rows per matrix-product block, and at most CELLS similarities (256 MB of float32) per block.
BLOCK = 2048
CELLS = 1 << 26
# Above this many objects clustering compares each row only with the rows of its nearest
# coarse cells (an inverted file) instead of scanning all pairs. An HNSW k-NN graph was tried
# first: building it cost as much as the blocked exact scan at 100k (bench/tasks_analytics).
EXACT_MAX = 20000
# Rows per coarse cell, the share of cells each row probes, its least number of probes, and
# the cells each row lives in (see partition_size).
CELL_ROWS, PROBE_SHARE, MIN_PROBES, SPILL = 48, 1 / 64, 32, 2
Progress = Callable[[float], None]


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows as contiguous float32 unit vectors (a zero row stays zero and matches nothing)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(x / norms)


def threads() -> int:
    return max(1, os.cpu_count() or 1)


def components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Connected components of the graph with edges (a[i], b[i]): one label per node, labels
    numbered by each component's smallest node so equal input gives equal output."""
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    graph = coo_matrix(
        (np.ones(a.shape[0], dtype=np.int8), (a.astype(np.int64), b.astype(np.int64))),
        shape=(n, n),
    ).tocsr()
    _, raw = connected_components(graph, directed=True, connection="weak")
    # Renumber by first appearance: component of node 0 is 0, and so on.
    _, first = np.unique(raw, return_index=True)
    order = np.argsort(first)
    rank = np.empty_like(order)
    rank[order] = np.arange(order.shape[0])
    return rank[raw].astype(np.int64)


def pairs_at_least(
    x: np.ndarray, cos_t: float, rows: np.ndarray | None = None, progress: Progress | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Every pair (i, j), i != j, with x[i].x[j] >= cos_t, by blocked matrix products.

    Without `rows` only the upper triangle is computed (each pair once, i < j); with `rows`
    those rows are compared with every row.
    """
    n = x.shape[0]
    out_a: list[np.ndarray] = []
    out_b: list[np.ndarray] = []
    subset = rows is not None
    row_ids = rows if rows is not None else np.arange(n)
    total = row_ids.shape[0]
    step = max(1, min(BLOCK, CELLS // max(n, 1)))
    for start in range(0, total, step):
        ids = row_ids[start : start + step]
        if subset:
            sims = x[ids] @ x.T
            ii, jj = np.nonzero(sims >= cos_t)
            a, b = ids[ii], jj
            keep = a != b
        else:
            lo = int(ids[0])
            sims = x[ids] @ x[lo:].T
            ii, jj = np.nonzero(sims >= cos_t)
            a, b = ids[ii], jj + lo
            keep = b > a
        out_a.append(a[keep])
        out_b.append(b[keep])
        if progress is not None:
            progress(min(1.0, (start + ids.shape[0]) / total))
    if not out_a:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(out_a).astype(np.int64), np.concatenate(out_b).astype(np.int64)


def build_hnsw(x: np.ndarray, m: int = 16, ef_construction: int = 100) -> hnswlib.Index:
    index = hnswlib.Index(space="ip", dim=x.shape[1])
    index.init_index(max_elements=max(1, x.shape[0]), M=m, ef_construction=ef_construction,
                     random_seed=100)  # fmt: skip
    index.add_items(x, np.arange(x.shape[0]), num_threads=threads())
    return index


def coarse_centroids(x: np.ndarray, cells: int, iterations: int = 3) -> np.ndarray:
    """`cells` unit centroids by a few rounds of spherical k-means over a fixed-seed sample
    of at most 16 rows per cell (deterministic for the same input)."""
    n = x.shape[0]
    rng = np.random.default_rng(0)
    sample = x[np.sort(rng.choice(n, min(n, 16 * cells), replace=False))]
    cent = sample[:cells].copy()
    for _ in range(iterations):
        home = np.argmax(sample @ cent.T, axis=1)
        sums = np.zeros_like(cent)
        np.add.at(sums, home, sample)
        empty = np.bincount(home, minlength=cells) == 0
        sums[empty] = cent[empty]
        cent = unit_rows(sums)
    return cent


def partition_pairs(
    x: np.ndarray,
    cos_t: float,
    cells: int,
    probes: int,
    spill: int = 1,
    progress: Progress | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs >= cos_t found through a coarse partition (an inverted file): every row lives in
    the cells of its `spill` nearest centroids and is compared exactly (BLAS) with the rows
    living in its `probes` nearest cells. A pair is found when either row probes a cell of
    the other, so the work is about n^2 probes spill / cells products instead of n^2 / 2; a
    pair whose rows sit in far-apart cells can be missed (recall, not precision: every
    returned pair is exact). Pairs come as (smaller, larger) and may repeat."""
    n = x.shape[0]
    cells = max(1, min(cells, n))
    probes = max(1, min(probes, cells))
    spill = max(1, min(spill, probes))
    cent = coarse_centroids(x, cells)
    home = np.empty((n, spill), dtype=np.int32)
    probe = np.empty((n, probes), dtype=np.int32)
    step = max(1, CELLS // (8 * cells))
    for s in range(0, n, step):
        scores = x[s : s + step] @ cent.T
        if probes < cells:
            top = np.argpartition(-scores, probes - 1, axis=1)[:, :probes]
        else:
            top = np.broadcast_to(np.arange(cells, dtype=np.int32), scores.shape)
        # The `spill` best of the probed cells are the row's homes.
        best = np.argpartition(-np.take_along_axis(scores, top, 1), spill - 1, axis=1)
        probe[s : s + step] = top
        home[s : s + step] = np.take_along_axis(top, best[:, :spill], 1)
    flat_home = home.reshape(-1)
    members = np.argsort(flat_home, kind="stable")
    member_at = np.searchsorted(flat_home[members], np.arange(cells + 1))
    members //= spill  # flat position -> row
    flat = probe.reshape(-1)
    queries = np.argsort(flat, kind="stable")
    query_at = np.searchsorted(flat[queries], np.arange(cells + 1))
    queries //= probes  # flat position -> row
    out_a: list[np.ndarray] = []
    out_b: list[np.ndarray] = []
    for c in range(cells):
        m = members[member_at[c] : member_at[c + 1]]
        q = queries[query_at[c] : query_at[c + 1]]
        if m.shape[0] and q.shape[0]:
            ii, jj = np.nonzero(x[q] @ x[m].T >= cos_t)
            a, b = q[ii], m[jj]
            keep = a != b
            out_a.append(np.minimum(a[keep], b[keep]))
            out_b.append(np.maximum(a[keep], b[keep]))
        if progress is not None and c % 64 == 63:
            progress((c + 1) / cells)
    if not out_a:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(out_a), np.concatenate(out_b)


def partition_size(n: int, probes: int | None = None) -> tuple[int, int]:
    """(cells, probes) for n rows: about CELL_ROWS rows a cell and PROBE_SHARE of the cells
    probed (at least MIN_PROBES). With SPILL homes a row the products are ~2 * PROBE_SHARE *
    SPILL of the exact scan's. At 100k (bench/tasks_analytics, threshold 0.81) more probes
    of small cells gave a better recall than fewer probes of large ones at equal work, and
    2 homes with half the probes better than 1 home; the cost that grows with the cell count
    is the argpartition over n x cells centroid scores."""
    cells = max(1, round(n / CELL_ROWS))
    if probes is None:
        probes = max(MIN_PROBES, round(cells * PROBE_SHARE))
    return cells, min(cells, probes)


def cluster(
    x: np.ndarray,
    threshold: float,
    exact_max: int = EXACT_MAX,
    probes: int | None = None,
    progress: Progress | None = None,
) -> np.ndarray:
    """Cluster labels: objects whose similarity is >= threshold end in one cluster (connected
    components of that graph); above `exact_max` rows the pairs come from a coarse partition
    (`partition_pairs`, `probes` cells probed per row)."""
    x = unit_rows(x)
    cos_t = similarity_to_cosine(threshold)
    if x.shape[0] <= exact_max:
        a, b = pairs_at_least(x, cos_t, progress=progress)
    else:
        cells, probes = partition_size(x.shape[0], probes)
        a, b = partition_pairs(x, cos_t, cells, probes, SPILL, progress=progress)
    return components(x.shape[0], a, b)


def clusters_of(labels: np.ndarray, ids: list[str]) -> list[list[str]]:
    """Clusters as id lists: the largest first, ties by their first id; ids sorted inside."""
    if labels.shape[0] == 0:
        return []
    order = np.argsort(labels, kind="stable")
    bounds = np.nonzero(np.diff(labels[order]))[0] + 1
    groups = [sorted(ids[i] for i in g) for g in np.split(order, bounds)]
    groups.sort(key=lambda g: (-len(g), g[0]))
    return groups


def top_matches(
    refs: np.ndarray, cands: np.ndarray, limit: int, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Each reference's `limit` most similar candidates, exactly (blocked products).

    Returns (indices, similarities), both (len(refs), limit'), best first; entries below the
    threshold have index -1.
    """
    refs, cands = unit_rows(refs), unit_rows(cands)
    nr, nc = refs.shape[0], cands.shape[0]
    k = min(limit, nc)
    idx = np.full((nr, k), -1, dtype=np.int64)
    sim = np.zeros((nr, k), dtype=np.float64)
    if k == 0:
        return idx, sim
    cos_t = similarity_to_cosine(threshold)
    step = max(1, min(BLOCK, CELLS // max(nc, 1)))
    for s in range(0, nr, step):
        cos = refs[s : s + step] @ cands.T
        if k < nc:
            part = np.argpartition(-cos, k - 1, axis=1)[:, :k]
        else:
            part = np.broadcast_to(np.arange(nc), (cos.shape[0], nc))
        vals = np.take_along_axis(cos, part, axis=1)
        # Best first; ties by candidate position, so the answer is deterministic.
        order = np.lexsort((part, -vals), axis=1)
        part, vals = np.take_along_axis(part, order, 1), np.take_along_axis(vals, order, 1)
        bad = vals < cos_t
        idx[s : s + step] = np.where(bad, -1, part)
        sim[s : s + step] = np.where(bad, 0.0, cosine_to_similarity(vals))
    return idx, sim


# The matcher's defaults (LUNA_MATCHER_HNSW_*): M 16 needed ef > 1000 for recall@1 0.99 on
# clustered 128-D descriptors, M 32 / ef 256 gives 0.996 at 1M.
SEARCH_M, SEARCH_EF_CONSTRUCTION, SEARCH_EF = 32, 200, 256


def search_k(limit: int) -> int:
    """Candidates fetched from HNSW for an exact re-rank down to `limit`."""
    return max(4 * limit, 64)


@dataclass
class HnswCandidates:
    """Candidates too many for a scan: an HNSW index, searched wider than `limit` and the
    found candidates re-ranked exactly."""

    vectors: np.ndarray
    index: hnswlib.Index

    @classmethod
    def build(cls, cands: np.ndarray) -> HnswCandidates:
        x = unit_rows(cands)
        return cls(x, build_hnsw(x, SEARCH_M, SEARCH_EF_CONSTRUCTION))

    def top(self, refs: np.ndarray, limit: int, threshold: float) -> tuple[np.ndarray, Any]:
        refs = unit_rows(refs)
        n = self.vectors.shape[0]
        k = min(n, search_k(limit))
        self.index.set_ef(max(SEARCH_EF, k))
        found, _ = self.index.knn_query(refs, k=k, num_threads=threads())
        found = found.astype(np.int64)
        cos = np.einsum("rd,rkd->rk", refs, self.vectors[found])
        order = np.lexsort((found, -cos), axis=1)[:, : min(limit, k)]
        found, cos = np.take_along_axis(found, order, 1), np.take_along_axis(cos, order, 1)
        bad = cos < similarity_to_cosine(threshold)
        return np.where(bad, -1, found), np.where(bad, 0.0, cosine_to_similarity(cos))


# ROC: pair similarities are counted in this many equal bins of [0, 1]; the curve's points are
# the bin edges, so FPR/TPR are exact at every listed similarity.
ROC_BINS = 1000


@dataclass
class Roc:
    roc: list[dict[str, float]]
    auc: float
    eer: dict[str, float] | None
    key_points: list[dict[str, float]] | None
    hit_top: dict[str, float | None]


@dataclass
class RocCounts:
    """What a block of query rows contributes: pair similarity histograms (each pair once,
    counted by its lower row) and top-N hits."""

    positives: np.ndarray
    negatives: np.ndarray
    hits: np.ndarray
    queries: int

    @classmethod
    def zero(cls) -> RocCounts:
        z = np.zeros(ROC_BINS + 1, dtype=np.int64)
        return cls(z, z.copy(), np.zeros(TOP_N, dtype=np.int64), 0)

    def add(self, other: RocCounts) -> RocCounts:
        return RocCounts(
            self.positives + other.positives,
            self.negatives + other.negatives,
            self.hits + other.hits,
            self.queries + other.queries,
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "positives": self.positives.tolist(),
            "negatives": self.negatives.tolist(),
            "hits": self.hits.tolist(),
            "queries": self.queries,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> RocCounts:
        return cls(
            np.asarray(d["positives"], dtype=np.int64),
            np.asarray(d["negatives"], dtype=np.int64),
            np.asarray(d["hits"], dtype=np.int64),
            int(d["queries"]),
        )


TOP_N = 5


def roc_counts(
    x: np.ndarray,
    labels: np.ndarray,
    rows: np.ndarray | None = None,
    threshold_hit_top: float = 0.0,
) -> RocCounts:
    """Counts of `rows` (default all) of a labelled set; x must be unit rows."""
    labels = np.asarray(labels)
    n = x.shape[0]
    rows_all = np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64)
    out = RocCounts.zero()
    hit_cos = similarity_to_cosine(threshold_hit_top)
    # Several temporaries per similarity (float64 calibration, bins, masks): smaller blocks.
    step = max(1, min(BLOCK, (CELLS >> 3) // max(n, 1)))
    for s in range(0, rows_all.shape[0], step):
        rows = rows_all[s : s + step]
        local = np.arange(rows.shape[0])
        cos = x[rows] @ x.T
        same = labels[rows][:, None] == labels[None, :]
        upper = np.arange(n)[None, :] > rows[:, None]
        bins = np.floor(cosine_to_similarity(cos) * ROC_BINS).astype(np.int64)
        out.positives += np.bincount(bins[upper & same], minlength=ROC_BINS + 1)
        out.negatives += np.bincount(bins[upper & ~same], minlength=ROC_BINS + 1)
        # Top-N: each object is a query against all the others.
        cos[local, rows] = -np.inf
        same[local, rows] = False
        has_pos = same.any(axis=1)
        k = min(TOP_N, n - 1)
        if k <= 0:
            continue
        best = np.argpartition(-cos, k - 1, axis=1)[:, :k]
        vals = np.take_along_axis(cos, best, 1)
        order = np.argsort(-vals, axis=1, kind="stable")
        best, vals = np.take_along_axis(best, order, 1), np.take_along_axis(vals, order, 1)
        good = np.take_along_axis(same, best, 1) & (vals >= hit_cos)
        first_hit = np.where(good.any(axis=1), good.argmax(axis=1), TOP_N)
        for rank in range(TOP_N):
            out.hits[rank] += int(((first_hit <= rank) & has_pos).sum())
        out.queries += int(has_pos.sum())
    return out


def roc_finish(counts: RocCounts, limit: int = 5, key_fprs: list[float] | None = None) -> Roc:
    pos_hist, neg_hist = counts.positives, counts.negatives
    p_total, n_total = int(pos_hist.sum()), int(neg_hist.sum())
    # Threshold t = edge i / BINS: a pair counts when its bin >= i.
    tp = np.cumsum(pos_hist[::-1])[::-1]
    fp = np.cumsum(neg_hist[::-1])[::-1]
    tpr = tp / p_total if p_total else np.zeros(tp.shape[0], dtype=np.float64)
    fpr = fp / n_total if n_total else np.zeros(fp.shape[0], dtype=np.float64)
    edges = np.arange(ROC_BINS + 1) / ROC_BINS
    points = [
        {"FPR": float(f), "TPR": float(t), "similarity": float(e)}
        for f, t, e in zip(fpr, tpr, edges, strict=True)
    ]
    # AUC by the trapezoid over the curve from (0, 0) to (1, 1); pairs tied within one bin
    # count half, as in the Mann-Whitney statistic.
    xs = np.concatenate([[0.0], fpr[::-1]])
    ys = np.concatenate([[0.0], tpr[::-1]])
    auc = float(np.sum((xs[1:] - xs[:-1]) * (ys[1:] + ys[:-1]) / 2)) if p_total and n_total else 0.0
    eer = None
    if p_total and n_total:
        i = int(np.argmin(np.abs(fpr - (1 - tpr))))
        eer = points[i]
    key_points = None
    if key_fprs is not None and n_total:
        key_points = []
        for key in key_fprs:
            ok = np.nonzero(fpr <= key)[0]
            key_points.append(points[int(ok[0])] if ok.shape[0] else points[-1])
    hit_top: dict[str, float | None] = {}
    for rank in range(TOP_N):
        hit_top[f"top-{rank + 1}"] = (
            float(counts.hits[rank] / counts.queries) if counts.queries and rank < limit else None
        )
    return Roc(points, min(1.0, max(0.0, auc)), eer, key_points, hit_top)


def roc(
    x: np.ndarray,
    labels: np.ndarray,
    limit: int = 5,
    threshold_hit_top: float = 0.0,
    key_fprs: list[float] | None = None,
) -> Roc:
    """ROC of all pairs of a labelled set (same label: expected positive), its AUC, the point
    where FPR = 1 - TPR, the points at key FPRs and the top-N hit probabilities."""
    counts = roc_counts(unit_rows(x), labels, threshold_hit_top=threshold_hit_top)
    return roc_finish(counts, limit, key_fprs)
