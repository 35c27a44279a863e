"""A compact float32 matrix of descriptors keyed by integer labels, scanned exactly with BLAS.

Rows are kept contiguous (deletes swap the last row into the hole) so a scan is one matmul over
`vecs[:n]`. Labels are the IndexSet's face slots.
"""

from __future__ import annotations

import numpy as np


def top_k(scores: np.ndarray, k: int, cos_min: float) -> tuple[np.ndarray, np.ndarray]:
    """Indices and values of the `k` largest `scores` that are >= `cos_min`, best first."""
    idx = np.flatnonzero(scores >= cos_min) if cos_min > -1.0 else None
    vals = scores if idx is None else scores[idx]
    if vals.shape[0] > k:
        part = np.argpartition(-vals, k - 1)[:k]
    else:
        part = np.arange(vals.shape[0])
    order = part[np.argsort(-vals[part], kind="stable")]
    picked = order if idx is None else idx[order]
    return picked, scores[picked]


class ExactMatrix:
    def __init__(self, dim: int, capacity: int = 0) -> None:
        self.dim = dim
        self.vecs = np.empty((capacity, dim), dtype=np.float32)
        self.labels = np.empty(capacity, dtype=np.int64)
        self.n = 0
        self.pos: dict[int, int] = {}

    @classmethod
    def from_arrays(cls, labels: np.ndarray, vecs: np.ndarray) -> ExactMatrix:
        m = cls(vecs.shape[1], 0)
        m.vecs = np.ascontiguousarray(vecs, dtype=np.float32)
        m.labels = np.ascontiguousarray(labels, dtype=np.int64)
        m.n = int(labels.shape[0])
        m.pos = dict(zip(m.labels.tolist(), range(m.n), strict=True))
        return m

    def __len__(self) -> int:
        return self.n

    def __contains__(self, label: int) -> bool:
        return label in self.pos

    def _reserve(self, extra: int) -> None:
        need = self.n + extra
        cap = self.vecs.shape[0]
        if need <= cap:
            return
        # Grow by 1.5x (not 2x) to bound the slack on million-row sets.
        new_cap = max(need, int(cap * 1.5) + 16)
        vecs = np.empty((new_cap, self.dim), dtype=np.float32)
        labels = np.empty(new_cap, dtype=np.int64)
        vecs[: self.n] = self.vecs[: self.n]
        labels[: self.n] = self.labels[: self.n]
        self.vecs, self.labels = vecs, labels

    def add(self, label: int, vec: np.ndarray) -> None:
        self._reserve(1)
        self.vecs[self.n] = vec
        self.labels[self.n] = label
        self.pos[label] = self.n
        self.n += 1

    def extend(self, labels: np.ndarray, vecs: np.ndarray) -> None:
        m = int(labels.shape[0])
        self._reserve(m)
        self.vecs[self.n : self.n + m] = vecs
        self.labels[self.n : self.n + m] = labels
        self.pos.update(zip(labels.tolist(), range(self.n, self.n + m), strict=True))
        self.n += m

    def remove(self, label: int) -> bool:
        row = self.pos.pop(label, None)
        if row is None:
            return False
        last = self.n - 1
        if row != last:
            moved = int(self.labels[last])
            self.vecs[row] = self.vecs[last]
            self.labels[row] = moved
            self.pos[moved] = row
        self.n = last
        return True

    def get(self, label: int) -> np.ndarray | None:
        row = self.pos.get(label)
        return None if row is None else self.vecs[row].copy()

    def rows_of(self, labels: np.ndarray) -> np.ndarray | None:
        """Vectors of `labels` (copies), or None if any is missing."""
        pos = self.pos
        try:
            rows = [pos[x] for x in labels.tolist()]
        except KeyError:
            return None
        return self.vecs[rows]

    def live_arrays(self, exclude: set[int] | frozenset[int]) -> tuple[np.ndarray, np.ndarray]:
        """Labels and vectors of rows whose label is not in `exclude` (copies)."""
        labels = self.labels[: self.n]
        if exclude:
            keep = ~np.isin(labels, np.fromiter(exclude, dtype=np.int64, count=len(exclude)))
            return labels[keep].copy(), self.vecs[: self.n][keep]
        return labels.copy(), self.vecs[: self.n].copy()

    def search(
        self, queries: np.ndarray, k: int, cos_min: float, exclude: set[int] | frozenset[int]
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Exact top-k per query row: [(labels, cosines)], cosines >= cos_min, best first."""
        if self.n == 0:
            empty = (np.empty(0, np.int64), np.empty(0, np.float32))
            return [empty for _ in range(queries.shape[0])]
        scores = self.vecs[: self.n] @ queries.T  # (n, q): one BLAS call for all queries
        labels = self.labels[: self.n]
        if not exclude and cos_min <= -1.0 and queries.shape[0] > 1:
            return _top_k_columns(scores, labels, k)
        # Excluded rows (tombstones of a frozen segment) are skipped by over-fetching.
        kk = min(self.n, k + len(exclude)) if exclude else k
        out = []
        for j in range(queries.shape[0]):
            idx, vals = top_k(scores[:, j], kk, cos_min)
            labs = labels[idx]
            if exclude:
                keep = np.array([int(x) not in exclude for x in labs], dtype=bool)
                labs, vals = labs[keep][:k], vals[keep][:k]
            out.append((labs.copy(), vals.copy()))
        return out


def _top_k_columns(
    scores: np.ndarray, labels: np.ndarray, k: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """`top_k` of every column of `scores` (no cosine bound) in one partition and one sort
    for the whole batch instead of two per query; each column's picks and order are those
    `top_k` gives it (the same selection and stable sort, run along an axis)."""
    n = scores.shape[0]
    if n > k:
        part = np.argpartition(-scores, k - 1, axis=0)[:k]
    else:
        part = np.broadcast_to(np.arange(n)[:, None], scores.shape)
    vals = np.take_along_axis(scores, part, axis=0)
    order = np.argsort(-vals, axis=0, kind="stable")
    picked = np.take_along_axis(part, order, axis=0)
    best = np.take_along_axis(vals, order, axis=0)
    return [(labels[picked[:, j]], best[:, j].copy()) for j in range(scores.shape[1])]
