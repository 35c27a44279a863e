"""Background index maintenance: one worker thread builds, merges, rebuilds or demotes.

A job freezes the collection's delta into a segment (under its write lock, O(1)), builds a new
graph from the frozen inputs with no lock held (searches keep using the exact scan or the old
graph meanwhile), then swaps it in under the write lock, re-applying deletes that arrived during
the build. One worker keeps peak memory to one build at a time.
"""

from __future__ import annotations

import logging
import queue
import threading

import numpy as np

from services.matcher.core.collection import Collection
from services.matcher.core.exact_matrix import ExactMatrix
from services.matcher.core.hnsw_graph import HnswGraph, HnswParams

log = logging.getLogger(__name__)


def build_graph(
    labels: np.ndarray, vecs: np.ndarray, params: HnswParams, threads: int
) -> HnswGraph:
    """Build a fresh graph (module-level so tests can slow it down to probe mid-build writes)."""
    return HnswGraph.build(labels, vecs, params, threads)


def _gather(inputs: list, exclude: frozenset[int]) -> tuple[np.ndarray, np.ndarray]:
    labels, vecs = [], []
    for seg in inputs:
        lab, vec = seg.live_arrays(exclude)
        labels.append(lab)
        vecs.append(vec)
    if not labels:
        return np.empty(0, np.int64), np.empty((0, 0), np.float32)
    return np.concatenate(labels), np.concatenate(vecs)


def run_job(
    coll: Collection,
    threshold: int,
    delta_max: int,
    deleted_ratio: float,
    params: HnswParams,
    threads: int,
) -> None:
    with coll.lock.write():
        coll.build_queued = False
        mode = coll.pending_build(threshold, delta_max, deleted_ratio)
        if mode is None:
            return
        if len(coll.delta):
            coll.segments.append(coll.delta)
            coll.delta = ExactMatrix(coll.dim)
        inputs = list(coll.segments)
        tomb0 = frozenset(coll.tomb)
    log.info("matcher %s of %s: %d inputs", mode, coll.key, len(inputs))

    new: HnswGraph | ExactMatrix
    if mode == "merge":
        base = coll.graph()
        assert base is not None
        frozen = [s for s in inputs if s is not base]
        labels, vecs = _gather(frozen, tomb0)
        with coll.lock.read():  # no mark_deleted while hnswlib copies the graph
            state = base.copy_state()
        new = base.merged(state, labels, vecs.reshape(-1, coll.dim), params, threads)
    else:
        labels, vecs = _gather(inputs, tomb0)
        vecs = vecs.reshape(-1, coll.dim)
        if mode == "demote":
            new = ExactMatrix.from_arrays(labels, vecs)
        else:
            new = build_graph(labels, vecs, params, threads)

    with coll.lock.write():
        if coll.segments[: len(inputs)] != inputs:
            return  # the collection was reset meanwhile (should not happen: one worker)
        rest = coll.segments[len(inputs) :]
        if isinstance(new, HnswGraph):
            # Deletes that arrived during the build (or raced the copy) hit the new graph too.
            kept = set()
            for label in coll.tomb:
                if new.contains(label):
                    new.mark_deleted(label)
                    kept.add(label)
            coll.tomb = kept
            coll.segments = [new, *rest]
        else:
            # Demote: fold live rows back into the mutable delta; drop tombstoned ones.
            for label in coll.tomb:
                new.remove(label)
            new.extend(coll.delta.labels[: coll.delta.n], coll.delta.vecs[: coll.delta.n])
            coll.delta = new
            coll.tomb = set()
            coll.segments = list(rest)


class BuildWorker:
    """A daemon thread consuming collections that need maintenance."""

    def __init__(self, runner) -> None:  # runner: Callable[[Collection], None]
        self._runner = runner
        self._queue: queue.Queue[Collection | None] = queue.Queue()
        self._idle = threading.Condition()
        self._pending = 0
        self._thread = threading.Thread(
            target=self._loop, name="matcher-index-builder", daemon=True
        )
        self._thread.start()

    def submit(self, coll: Collection) -> None:
        with self._idle:
            self._pending += 1
        self._queue.put(coll)

    def wait_idle(self, timeout: float | None = None) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join()

    def _loop(self) -> None:
        while True:
            coll = self._queue.get()
            if coll is None:
                return
            try:
                self._runner(coll)
            except Exception:
                log.exception("matcher index build failed for %s", coll.key)
                coll.build_queued = False
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()
