"""One candidate set (a list of an account, or all faces of an account) and its search.

State = `segments` (at most one HNSW graph, plus exact matrices frozen while a build reads
them) + `delta` (a mutable exact matrix that takes every add) + `tomb` (labels removed from the
segments). Live members = (segments - tomb) + delta. Builds only ever freeze the delta into a
segment and later swap the segments for one new graph, so writes during a build need no
replay: they already sit in the delta/tomb, which stay valid against the new graph.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from services.matcher.core.exact_matrix import ExactMatrix, top_k
from services.matcher.core.hnsw_graph import HnswGraph, VectorSource
from services.matcher.core.rwlock import RWLock

Segment = HnswGraph | ExactMatrix
Hits = tuple[np.ndarray, np.ndarray]  # (labels int64, cosines float32), best first

ACCOUNT = "account"
LIST = "list"


class CollectionKey(NamedTuple):
    """A tuple (hashed in C, so lock-free dict lookups from search threads stay cheap)."""

    kind: str  # ACCOUNT or LIST
    account_id: str
    list_id: str = ""


def merge_hits(parts: list[Hits], k: int) -> Hits:
    parts = [p for p in parts if p[0].shape[0]]
    if not parts:
        return np.empty(0, np.int64), np.empty(0, np.float32)
    if len(parts) == 1:
        return parts[0][0][:k], parts[0][1][:k]
    labels = np.concatenate([p[0] for p in parts])
    scores = np.concatenate([p[1] for p in parts])
    idx, vals = top_k(scores, k, -1.0)
    return labels[idx], vals


class Collection:
    def __init__(self, key: CollectionKey, dim: int, indexable: bool) -> None:
        self.key = key
        self.dim = dim
        self.indexable = indexable
        self.lock = RWLock()
        self.delta = ExactMatrix(dim)
        self.segments: list[Segment] = []
        self.tomb: set[int] = set()
        self.build_queued = False
        self.dropped = False

    # --- reads (caller holds at least the read lock) -------------------------------------
    def graph(self) -> HnswGraph | None:
        for seg in self.segments:
            if isinstance(seg, HnswGraph):
                return seg
        return None

    def _in_segments(self, label: int) -> bool:
        for seg in self.segments:
            if isinstance(seg, HnswGraph):
                if seg.contains(label):
                    return True
            elif label in seg:
                return True
        return False

    def contains(self, label: int) -> bool:
        return label in self.delta or (label not in self.tomb and self._in_segments(label))

    def live_count(self) -> int:
        total = len(self.delta)
        for seg in self.segments:
            total += seg.count if isinstance(seg, HnswGraph) else len(seg)
        return total - len(self.tomb)

    def get_vector(self, label: int) -> np.ndarray | None:
        vec = self.delta.get(label)
        if vec is not None or label in self.tomb:
            return vec
        for seg in self.segments:
            if isinstance(seg, HnswGraph):
                if seg.contains(label):
                    return seg.vectors(np.array([label], dtype=np.int64))[0]
            else:
                vec = seg.get(label)
                if vec is not None:
                    return vec
        return None

    def live_labels(self) -> np.ndarray:
        parts = [self.delta.labels[: self.delta.n]]
        for seg in self.segments:
            parts.append(seg.sorted_labels if isinstance(seg, HnswGraph) else seg.labels[: seg.n])
        labels = np.concatenate(parts) if parts else np.empty(0, np.int64)
        if self.tomb:
            tomb = np.fromiter(self.tomb, dtype=np.int64, count=len(self.tomb))
            labels = labels[~np.isin(labels, tomb)]
        return labels.copy()

    def rows_of(self, labels: np.ndarray) -> np.ndarray | None:
        """Vectors of `labels` from this collection's delta (a plain matrix), or None."""
        with self.lock.read():
            return self.delta.rows_of(labels)

    def search(
        self,
        queries: np.ndarray,
        k: int,
        cos_min: float,
        vectors_of: VectorSource | None = None,
    ) -> list[Hits]:
        """Top-k per query. `vectors_of` feeds the exact re-rank of graph candidates (it may
        take another collection's read lock: writers never hold two collection locks, so
        this nesting cannot deadlock)."""
        with self.lock.read():
            per_part: list[list[Hits]] = [self.delta.search(queries, k, cos_min, frozenset())]
            for seg in self.segments:
                if isinstance(seg, HnswGraph):
                    hits = seg.search(queries, k, cos_min, vectors_of)
                    if self.tomb:
                        # Belt and braces: the graph has these marked deleted already.
                        hits = [
                            (lab[keep], sc[keep])
                            for lab, sc in hits
                            for keep in [np.array([int(x) not in self.tomb for x in lab], bool)]
                        ]
                    per_part.append(hits)
                else:
                    per_part.append(seg.search(queries, k, cos_min, self.tomb))
            return [merge_hits([p[j] for p in per_part], k) for j in range(queries.shape[0])]

    # --- writes (caller holds the IndexSet write lock; these take our write lock) ---------
    def add(self, label: int, vec: np.ndarray) -> None:
        with self.lock.write():
            if not self.contains(label):
                self.delta.add(label, vec)

    def extend(self, labels: np.ndarray, vecs: np.ndarray) -> None:
        with self.lock.write():
            self.delta.extend(labels, vecs)

    def remove(self, label: int) -> bool:
        with self.lock.write():
            if self.delta.remove(label):
                return True
            if label in self.tomb or not self._in_segments(label):
                return False
            self.tomb.add(label)
            for seg in self.segments:
                if isinstance(seg, HnswGraph):
                    seg.mark_deleted(label)
            return True

    # --- background maintenance -----------------------------------------------------------
    def pending_build(self, threshold: int, delta_max: int, deleted_ratio: float) -> str | None:
        """Which maintenance this collection needs now: build/merge/rebuild/demote or None."""
        if self.dropped or not self.indexable:
            return None
        graph = self.graph()
        live = self.live_count()
        if graph is None:
            return "build" if live >= threshold else None
        if live < threshold // 2:
            return "demote"
        if len(self.tomb) > deleted_ratio * max(graph.count, 1):
            return "rebuild"
        if len(self.delta) >= delta_max:
            return "merge"
        return None
