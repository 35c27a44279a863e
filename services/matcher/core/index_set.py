"""`IndexSet`: every descriptor the matcher holds, per account and per list, and the searches.

Layout: each face has a slot (a monotonically increasing int, never reused, so a stale label
can never alias a newer face); every collection (one per account = "all faces of the account",
one per (account, list)) stores the face under that slot. Collections keyed by account make
isolation structural: a search for account B only ever touches B's collections.

Concurrency: mutations are serialised by one write lock; searches take no IndexSet lock, only
the read side of each collection's RW lock, so they run in parallel with each other and with
background builds, and a delete is visible to every search that starts after `remove` returns.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np

from services.matcher.core.builder import BuildWorker, run_job
from services.matcher.core.candidates import (
    AccountCandidates,
    Candidates,
    FaceIdCandidates,
    ListCandidates,
    Match,
)
from services.matcher.core.collection import (
    ACCOUNT,
    LIST,
    Collection,
    CollectionKey,
    Hits,
    merge_hits,
)
from services.matcher.core.descriptors import as_unit_rows, check_version
from services.matcher.core.exact_matrix import ExactMatrix
from services.matcher.core.hnsw_graph import HnswGraph, HnswParams, VectorSource
from services.matcher.core.settings import MatcherConfig
from services.matcher.core.similarity import cosine_to_similarity, similarity_to_cosine

DESCRIPTOR_DIM = 128


class FaceEntry(NamedTuple):
    slot: int
    account_id: str
    list_ids: tuple[str, ...]  # sorted; a tuple is ~4x smaller than a set per face


class IndexSet:
    def __init__(
        self,
        dim: int = DESCRIPTOR_DIM,
        version: int | None = None,
        config: MatcherConfig | None = None,
    ) -> None:
        self.dim = dim
        # One descriptor version per IndexSet; None = taken from the first add.
        self.version = version
        self.config = config if config is not None else MatcherConfig()
        self.params = HnswParams(
            self.config.hnsw_m, self.config.hnsw_ef_construction, self.config.hnsw_ef
        )
        self._write_lock = threading.RLock()
        self._sched_lock = threading.Lock()
        self._faces: dict[str, FaceEntry] = {}
        self._slot_face: list[str | None] = []
        self._collections: dict[CollectionKey, Collection] = {}
        # list_id -> accounts with a collection for it; values are replaced, never mutated,
        # so search threads can read them without a lock.
        self._list_accounts: dict[str, frozenset[str]] = {}
        self._accounts: frozenset[str] = frozenset()
        # While True no background build is scheduled (a bulk load builds once at its end).
        self._builds_held = False
        self._worker = BuildWorker(self._maintain)

    # --- lifecycle ---------------------------------------------------------------------
    def close(self) -> None:
        """Stop the background builder (pending jobs finish first)."""
        self._worker.stop()

    def wait_for_builds(self, timeout: float | None = None) -> bool:
        """Block until no background build is queued or running; False on timeout."""
        return self._worker.wait_idle(timeout)

    def hold_builds(self) -> None:
        """Schedule no build until `release_builds`: a bulk load (the matcher's initial load
        of every descriptor, in stream batches) then builds each graph once, from all its
        rows, with every build thread, as raw hnswlib's add_items would, instead of a small
        graph early and a merge (a copy of the whole graph plus inserts) every delta_max rows.
        Searches meanwhile scan exactly."""
        with self._write_lock:
            self._builds_held = True

    def release_builds(self) -> None:
        """Schedule every build that `hold_builds` held back."""
        with self._write_lock:
            self._builds_held = False
            for coll in list(self._collections.values()):
                self._maybe_schedule(coll)

    # --- collections -------------------------------------------------------------------
    def _collection(self, key: CollectionKey) -> Collection:
        coll = self._collections.get(key)
        if coll is None:
            indexable = key.kind == LIST or self.config.index_account_views
            coll = Collection(key, self.dim, indexable)
            self._collections[key] = coll
            if key.kind == LIST:
                have = self._list_accounts.get(key.list_id, frozenset())
                self._list_accounts[key.list_id] = have | {key.account_id}
            else:
                self._accounts = self._accounts | {key.account_id}
        return coll

    def _maybe_schedule(self, coll: Collection) -> None:
        cfg = self.config
        with self._sched_lock:
            if coll.build_queued or coll.dropped or self._builds_held:
                return
            if coll.pending_build(cfg.index_threshold, cfg.delta_max, cfg.rebuild_deleted_ratio):
                coll.build_queued = True
                self._worker.submit(coll)

    def _maintain(self, coll: Collection) -> None:
        cfg = self.config
        run_job(
            coll,
            cfg.index_threshold,
            cfg.delta_max,
            cfg.rebuild_deleted_ratio,
            self.params,
            cfg.effective_build_threads,
        )
        self._maybe_schedule(coll)  # writes during a long build may call for another pass

    def _check_version(self, version: int) -> None:
        if self.version is None:
            self.version = version
        check_version(version, self.version)

    # --- writes ------------------------------------------------------------------------
    def add(
        self,
        account_id: str,
        face_id: str,
        descriptor: np.ndarray,
        version: int,
        list_ids: Iterable[str] = (),
    ) -> None:
        """Insert or replace (= delete + add) a face's descriptor and its list membership."""
        vec = as_unit_rows(descriptor, self.dim)
        if vec.shape[0] != 1:
            raise ValueError("add() takes one descriptor; use add_many() for several")
        lists = tuple(sorted(set(list_ids)))
        with self._write_lock:
            self._check_version(version)
            self._remove_locked(face_id)
            slot = len(self._slot_face)
            self._slot_face.append(face_id)
            self._faces[face_id] = FaceEntry(slot, account_id, lists)
            keys = [CollectionKey(ACCOUNT, account_id)]
            keys += [CollectionKey(LIST, account_id, lid) for lid in lists]
            for key in keys:
                coll = self._collection(key)
                coll.add(slot, vec[0])
                self._maybe_schedule(coll)

    def add_many(
        self,
        account_id: str,
        face_ids: Sequence[str],
        descriptors: np.ndarray,
        version: int,
        list_ids: Iterable[str] = (),
    ) -> None:
        """Bulk `add` of faces of one account sharing the same lists (startup, benchmarks)."""
        vecs = as_unit_rows(descriptors, self.dim)
        if vecs.shape[0] != len(face_ids):
            raise ValueError("face_ids and descriptors differ in length")
        if len(set(face_ids)) != len(face_ids):
            raise ValueError("duplicate face ids in one add_many call")
        lists = tuple(sorted(set(list_ids)))
        with self._write_lock:
            self._check_version(version)
            for fid in face_ids:
                self._remove_locked(fid)
            first = len(self._slot_face)
            self._slot_face.extend(face_ids)
            slots = np.arange(first, first + len(face_ids), dtype=np.int64)
            for fid, slot in zip(face_ids, range(first, first + len(face_ids)), strict=True):
                self._faces[fid] = FaceEntry(slot, account_id, lists)
            keys = [CollectionKey(ACCOUNT, account_id)]
            keys += [CollectionKey(LIST, account_id, lid) for lid in lists]
            for key in keys:
                coll = self._collection(key)
                coll.extend(slots, vecs)
                self._maybe_schedule(coll)

    def _remove_locked(self, face_id: str) -> bool:
        entry = self._faces.pop(face_id, None)
        if entry is None:
            return False
        self._slot_face[entry.slot] = None
        keys = [CollectionKey(ACCOUNT, entry.account_id)]
        keys += [CollectionKey(LIST, entry.account_id, lid) for lid in entry.list_ids]
        for key in keys:
            coll = self._collections.get(key)
            if coll is not None:
                coll.remove(entry.slot)
                self._maybe_schedule(coll)
        return True

    def remove(self, face_id: str) -> bool:
        """Delete a face everywhere; False if unknown (idempotent for replayed streams)."""
        with self._write_lock:
            return self._remove_locked(face_id)

    def _vector_of(self, entry: FaceEntry) -> np.ndarray | None:
        coll = self._collections.get(CollectionKey(ACCOUNT, entry.account_id))
        if coll is None:
            return None
        with coll.lock.read():
            return coll.get_vector(entry.slot)

    def attach(self, list_id: str, face_ids: Iterable[str]) -> int:
        """Add known faces to a list (of each face's own account); returns how many changed.

        Unknown faces (no descriptor yet) are skipped: their `add` carries their lists.
        """
        changed = 0
        with self._write_lock:
            touched: dict[CollectionKey, Collection] = {}
            for fid in face_ids:
                entry = self._faces.get(fid)
                if entry is None or list_id in entry.list_ids:
                    continue
                vec = self._vector_of(entry)
                if vec is None:
                    continue
                key = CollectionKey(LIST, entry.account_id, list_id)
                coll = self._collection(key)
                coll.add(entry.slot, vec)
                touched[key] = coll
                lists = tuple(sorted((*entry.list_ids, list_id)))
                self._faces[fid] = entry._replace(list_ids=lists)
                changed += 1
            for coll in touched.values():
                self._maybe_schedule(coll)
        return changed

    def detach(self, list_id: str, face_ids: Iterable[str]) -> int:
        changed = 0
        with self._write_lock:
            for fid in face_ids:
                entry = self._faces.get(fid)
                if entry is None or list_id not in entry.list_ids:
                    continue
                coll = self._collections.get(CollectionKey(LIST, entry.account_id, list_id))
                if coll is not None:
                    coll.remove(entry.slot)
                    self._maybe_schedule(coll)
                lists = tuple(x for x in entry.list_ids if x != list_id)
                self._faces[fid] = entry._replace(list_ids=lists)
                changed += 1
        return changed

    def delete_list(self, list_id: str) -> bool:
        with self._write_lock:
            accounts = self._list_accounts.pop(list_id, None)
            if accounts is None:
                return False
            for acc in accounts:
                coll = self._collections.pop(CollectionKey(LIST, acc, list_id), None)
                if coll is None:
                    continue
                with coll.lock.write():
                    coll.dropped = True
                    labels = coll.live_labels()
                for slot in labels.tolist():
                    fid = self._slot_face[slot]
                    entry = self._faces.get(fid) if fid is not None else None
                    if entry is not None:
                        lists = tuple(x for x in entry.list_ids if x != list_id)
                        self._faces[fid] = entry._replace(list_ids=lists)
            return True

    # --- reads -------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._faces)

    def __contains__(self, face_id: str) -> bool:
        return face_id in self._faces

    def face_lists(self, face_id: str) -> tuple[str, ...] | None:
        entry = self._faces.get(face_id)
        return None if entry is None else entry.list_ids

    def _resolve(self, account_id: str | None, candidates: Candidates) -> list[Collection]:
        if isinstance(candidates, ListCandidates):
            accounts = (
                (account_id,)
                if account_id is not None
                else tuple(self._list_accounts.get(candidates.list_id, ()))
            )
            keys = [CollectionKey(LIST, acc, candidates.list_id) for acc in accounts]
        elif isinstance(candidates, AccountCandidates):
            accounts = (account_id,) if account_id is not None else tuple(self._accounts)
            keys = [CollectionKey(ACCOUNT, acc) for acc in accounts]
        else:
            raise TypeError(f"unsupported candidates {candidates!r}")
        colls = [self._collections.get(k) for k in keys]
        return [c for c in colls if c is not None]

    def _face_id_hits(
        self,
        account_id: str | None,
        face_ids: Sequence[str],
        queries: np.ndarray,
        k: int,
        cos_min: float,
    ) -> list[Hits]:
        labels, vecs = [], []
        for fid in dict.fromkeys(face_ids):
            entry = self._faces.get(fid)
            if entry is None or (account_id is not None and entry.account_id != account_id):
                continue
            vec = self._vector_of(entry)
            if vec is not None:
                labels.append(entry.slot)
                vecs.append(vec)
        if not labels:
            return [(np.empty(0, np.int64), np.empty(0, np.float32))] * queries.shape[0]
        matrix = ExactMatrix.from_arrays(np.array(labels, np.int64), np.stack(vecs))
        return matrix.search(queries, k, cos_min, frozenset())

    def _rerank_source(self, coll: Collection) -> VectorSource | None:
        """For a list, its account view's exact matrix holds every member's vector."""
        if coll.key.kind != LIST:
            return None
        acc = self._collections.get(CollectionKey(ACCOUNT, coll.key.account_id))
        return None if acc is None else acc.rows_of

    def search(
        self,
        account_id: str | None,
        query: np.ndarray,
        candidates: Candidates,
        limit: int,
        threshold: float = 0.0,
        version: int | None = None,
        *,
        unit: bool = False,
    ) -> list[list[Match]]:
        """Top `limit` matches with similarity >= `threshold` for each query row, best first.

        `account_id` None searches every account (LUNA allows matching without an account);
        `version`, when given, must equal the IndexSet's descriptor version. `unit`: `query`
        is already `as_unit_rows`' output (the matcher validated each reference so), and is
        not normalised again.
        """
        if limit < 1:
            raise ValueError("limit must be >= 1")
        if not 0.0 <= threshold <= 1.0:
            raise ValueError("threshold must be within [0, 1]")
        queries = query if unit else as_unit_rows(query, self.dim)
        if version is not None and self.version is not None:
            check_version(version, self.version)
        # Push the similarity threshold down as a cosine bound (the map is monotone); the
        # small margin keeps boundary values that round differently; the final filter below
        # is on similarity itself.
        cos_min = similarity_to_cosine(threshold) - 1e-6 if threshold > 0.0 else -1.0
        if isinstance(candidates, FaceIdCandidates):
            per_query = self._face_id_hits(account_id, candidates.face_ids, queries, limit, cos_min)
        else:
            parts = [
                c.search(queries, limit, cos_min, self._rerank_source(c))
                for c in self._resolve(account_id, candidates)
            ]
            per_query = [merge_hits([p[j] for p in parts], limit) for j in range(queries.shape[0])]
        # One similarity map for every query's hits (a numpy call each cost more than it).
        flat = (
            cosine_to_similarity(np.concatenate([cosines for _, cosines in per_query])).tolist()
            if per_query
            else []
        )
        out: list[list[Match]] = []
        at = 0
        for labels, _ in per_query:
            slots = labels.tolist()
            sims = flat[at : at + len(slots)]
            at += len(slots)
            row = []
            for slot, sim in zip(slots, sims, strict=True):
                fid = self._slot_face[slot]
                if fid is not None and sim >= threshold:
                    row.append(Match(fid, sim))
            out.append(row)
        return out

    def stats(self) -> list[dict[str, object]]:
        """Per collection: key, live size, search mode, delta size, tombstones."""
        rows = []
        for key, coll in list(self._collections.items()):
            with coll.lock.read():
                graph = coll.graph()
                rows.append(
                    {
                        "kind": key.kind,
                        "account_id": key.account_id,
                        "list_id": key.list_id or None,
                        "live": coll.live_count(),
                        "mode": "hnsw" if graph is not None else "exact",
                        "delta": len(coll.delta),
                        "deleted": len(coll.tomb),
                        "queued": coll.build_queued,
                    }
                )
        return rows


__all__ = ["FaceEntry", "HnswGraph", "IndexSet"]
