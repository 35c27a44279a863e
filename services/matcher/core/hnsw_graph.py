"""An hnswlib HNSW graph over unit descriptors (space 'ip'), labels = IndexSet face slots.

The graph is built once and then only receives `mark_deleted`; new rows go to the owning
collection's exact delta and are merged into a *copy* of the graph in the background, because
hnswlib's add_items is not safe to run alongside knn_query on the same index.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import hnswlib
import numpy as np

log = logging.getLogger(__name__)

VectorSource = Callable[[np.ndarray], "np.ndarray | None"]

# A build adds its rows in chunks so that it can say how far it is: a million rows take
# ~15 min on 2 cores, 10M hours on 16. A chunk is large enough that the threads' join at its
# end costs nothing measurable (hnswlib inserts row by row either way).
BUILD_CHUNK = 50_000
BUILD_PROGRESS_EVERY_S = 30.0


@dataclass(frozen=True)
class HnswParams:
    """hnswlib parameters; the defaults live in MatcherConfig (LUNA_MATCHER_HNSW_*)."""

    m: int
    ef_construction: int
    ef: int


def _new_index(dim: int, capacity: int, params: HnswParams) -> hnswlib.Index:
    index = hnswlib.Index(space="ip", dim=dim)
    index.init_index(
        max_elements=max(capacity, 1), M=params.m, ef_construction=params.ef_construction
    )
    index.set_ef(params.ef)
    return index


class HnswGraph:
    def __init__(self, index: hnswlib.Index, labels: np.ndarray, deleted: set[int]) -> None:
        self.index = index
        # Sorted labels give an O(log n) membership test for 8 bytes a row (a Python set of
        # a million ints would cost ~60 MB).
        self.sorted_labels = np.sort(labels.astype(np.int64, copy=False))
        self.deleted = deleted

    @property
    def count(self) -> int:
        return int(self.sorted_labels.shape[0])

    @property
    def live(self) -> int:
        return self.count - len(self.deleted)

    def contains(self, label: int) -> bool:
        i = int(np.searchsorted(self.sorted_labels, label))
        return i < self.count and int(self.sorted_labels[i]) == label

    @classmethod
    def build(
        cls, labels: np.ndarray, vecs: np.ndarray, params: HnswParams, threads: int
    ) -> HnswGraph:
        n = int(labels.shape[0])
        index = _new_index(vecs.shape[1], int(n * 1.05) + 16, params)
        began = last = time.monotonic()
        for start in range(0, n, BUILD_CHUNK):
            end = min(n, start + BUILD_CHUNK)
            index.add_items(vecs[start:end], labels[start:end], num_threads=threads)
            now = time.monotonic()
            if end < n and now - last >= BUILD_PROGRESS_EVERY_S:
                last = now
                log.info(
                    "HNSW build: %d of %d rows (%.0f%%) after %.0f s, %d threads",
                    end, n, 100.0 * end / n, now - began, threads,
                )  # fmt: skip
        if n >= BUILD_CHUNK:
            log.info(
                "HNSW build: %d rows in %.1f s, %d threads", n, time.monotonic() - began, threads
            )
        return cls(index, labels, set())

    def copy_state(self) -> tuple[hnswlib.Index, set[int]]:
        """A deep copy of the hnswlib index and of the deleted set.

        The caller holds the owner's read lock so no mark_deleted races the copy.
        """
        return hnswlib.Index(self.index), set(self.deleted)

    def merged(
        self,
        state: tuple[hnswlib.Index, set[int]],
        labels: np.ndarray,
        vecs: np.ndarray,
        params: HnswParams,
        threads: int,
    ) -> HnswGraph:
        """A new graph: the copied `state` of this graph with `labels`/`vecs` inserted."""
        index, deleted = state
        need = self.count + int(labels.shape[0])
        if need > index.get_max_elements():
            index.resize_index(int(need * 1.1) + 16)
        index.set_ef(params.ef)
        if labels.shape[0]:
            index.add_items(vecs, labels, num_threads=threads)
        return HnswGraph(index, np.concatenate([self.sorted_labels, labels]), deleted)

    def mark_deleted(self, label: int) -> bool:
        if label in self.deleted or not self.contains(label):
            return False
        self.index.mark_deleted(label)
        self.deleted.add(label)
        return True

    def vectors(self, labels: np.ndarray) -> np.ndarray:
        return np.asarray(self.index.get_items(labels), dtype=np.float32).reshape(
            -1, self.index.dim
        )

    def live_arrays(self, exclude: set[int] | frozenset[int]) -> tuple[np.ndarray, np.ndarray]:
        labels = self.sorted_labels
        gone = self.deleted | set(exclude)
        if gone:
            labels = labels[~np.isin(labels, np.fromiter(gone, dtype=np.int64, count=len(gone)))]
        return labels.copy(), self.vectors(labels)

    def search(
        self,
        queries: np.ndarray,
        k: int,
        cos_min: float,
        vectors_of: VectorSource | None = None,
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Approximate top-k' by HNSW, then exact re-rank; [(labels, cosines)] per query.

        `vectors_of(labels)` may supply the candidates' float32 vectors from a plain matrix
        (hnswlib's get_items costs ~5 us a row, as much as the graph search itself); when it
        returns None we fall back to get_items.
        """
        live = self.live
        if live <= 0:
            empty = (np.empty(0, np.int64), np.empty(0, np.float32))
            return [empty for _ in range(queries.shape[0])]
        fetch = min(max(k * 4, 64), live)
        while True:
            try:
                cand, _ = self.index.knn_query(queries, k=fetch, num_threads=1)
                break
            except RuntimeError:
                # hnswlib raises when it cannot fill k results (many deleted nodes near the
                # query); ask for fewer rather than failing the search.
                if fetch == 1:
                    empty = (np.empty(0, np.int64), np.empty(0, np.float32))
                    return [empty for _ in range(queries.shape[0])]
                fetch = max(1, fetch // 2)
        cand = cand.astype(np.int64, copy=False)
        flat = cand.reshape(-1)
        got = vectors_of(flat) if vectors_of is not None else None
        if got is None:
            got = self.vectors(flat)
        vecs = got.reshape(cand.shape[0], cand.shape[1], -1)
        out = []
        for j in range(queries.shape[0]):
            # Exact float32 re-score, identical arithmetic to the BLAS scan path.
            exact = vecs[j] @ queries[j]
            order = np.argsort(-exact, kind="stable")
            order = order[exact[order] >= cos_min][:k]
            out.append((cand[j][order], exact[order]))
        return out

    def save(self, path: Path) -> None:
        self.index.save_index(str(path))

    @classmethod
    def load(
        cls, path: Path, dim: int, labels: np.ndarray, deleted: set[int], params: HnswParams
    ) -> HnswGraph:
        index = hnswlib.Index(space="ip", dim=dim)
        # max_elements = stored count; the graph never grows in place (merges copy it).
        index.load_index(str(path), max_elements=int(labels.shape[0]))
        index.set_ef(params.ef)
        return cls(index, labels, deleted)
