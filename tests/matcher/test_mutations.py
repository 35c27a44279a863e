"""Deletes, updates, list membership, background builds and concurrent searches."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from services.matcher.core import AccountCandidates, FaceIdCandidates, ListCandidates
from services.matcher.core import builder as builder_mod

ACC, LST = "acc", "L"


def fid(i: int) -> str:
    return f"f-{i:06d}"


def fill(ix, data) -> list[str]:
    ids = [fid(i) for i in range(len(data.gallery))]
    ix.add_many(ACC, ids, data.gallery, 1, {LST})
    return ids


def top(ix, q, k=5, cands=None) -> list[str]:
    return [m.face_id for m in ix.search(ACC, q, cands or ListCandidates(LST), k, 0.0)[0]]


def stat(ix, list_id=LST) -> dict:
    return next(r for r in ix.stats() if r["list_id"] == list_id)


def test_delete_is_immediate_in_exact_and_hnsw(make_index, data3k) -> None:
    for threshold in (100_000, 500):
        ix = make_index(threshold=threshold)
        ids = fill(ix, data3k)
        ix.wait_for_builds(60)
        q = data3k.gallery[10]
        assert top(ix, q)[0] == ids[10]
        assert ix.remove(ids[10]) and not ix.remove(ids[10])
        for cands in (ListCandidates(LST), AccountCandidates(), FaceIdCandidates((ids[10],))):
            assert ids[10] not in top(ix, q, 50, cands)
        assert ids[10] not in ix


def test_update_replaces_descriptor(make_index, data3k) -> None:
    ix = make_index(threshold=500)
    ids = fill(ix, data3k)
    ix.wait_for_builds(60)
    assert stat(ix)["mode"] == "hnsw"
    ix.add(ACC, ids[0], data3k.gallery[2000], 1, {LST, "other"})
    # New vector wins; the old one is gone; list membership follows the update.
    res = ix.search(ACC, data3k.gallery[2000], ListCandidates(LST), 2, 0.0)[0]
    assert {m.face_id for m in res} == {ids[0], ids[2000]}
    assert ids[0] not in top(ix, data3k.gallery[0], 10)
    assert ix.face_lists(ids[0]) == ("L", "other")
    assert top(ix, data3k.gallery[2000], 1, ListCandidates("other")) == [ids[0]]


def test_attach_detach_delete_list(make_index, data3k) -> None:
    ix = make_index(threshold=500)
    ids = fill(ix, data3k)
    assert ix.attach("V", ids[:600]) == 600 and ix.attach("V", ids[:10]) == 0
    ix.wait_for_builds(60)
    assert stat(ix, "V")["mode"] == "hnsw" and stat(ix, "V")["live"] == 600
    assert top(ix, data3k.gallery[5], 1, ListCandidates("V")) == [ids[5]]
    assert ix.detach("V", [ids[5]]) == 1
    assert ids[5] not in top(ix, data3k.gallery[5], 50, ListCandidates("V"))
    assert ix.face_lists(ids[5]) == ("L",)
    assert ix.delete_list("V") and not ix.delete_list("V")
    assert ix.search(ACC, data3k.gallery[6], ListCandidates("V"), 5, 0.0) == [[]]
    assert ix.face_lists(ids[6]) == ("L",)
    assert ix.attach("V", ["unknown-face"]) == 0


def test_writes_during_background_build_are_kept(make_index, data3k, monkeypatch) -> None:
    started, release = threading.Event(), threading.Event()
    real = builder_mod.build_graph

    def slow_build(*args, **kwargs):
        started.set()
        assert release.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(builder_mod, "build_graph", slow_build)
    ix = make_index(threshold=1000)
    ids = [fid(i) for i in range(3000)]
    ix.add_many(ACC, ids[:2500], data3k.gallery[:2500], 1, {LST})
    assert started.wait(30)
    # Mid-build: searches still answer (exact scan of the frozen rows), deletes are
    # honoured at once, new faces are searchable at once.
    assert top(ix, data3k.gallery[3], 1) == [ids[3]]
    ix.remove(ids[3])
    ix.detach(LST, [ids[4]])
    ix.add_many(ACC, ids[2500:], data3k.gallery[2500:], 1, {LST})
    for i in (3, 4):
        assert ids[i] not in top(ix, data3k.gallery[i], 50)
    assert top(ix, data3k.gallery[2900], 1) == [ids[2900]]
    assert stat(ix)["mode"] == "exact"
    release.set()
    assert ix.wait_for_builds(60)
    # After the swap: the graph serves, the replayed writes hold.
    assert stat(ix)["mode"] == "hnsw" and stat(ix)["live"] == 2998
    for i in (3, 4):
        assert ids[i] not in top(ix, data3k.gallery[i], 50)
    assert top(ix, data3k.gallery[2900], 1) == [ids[2900]]
    assert top(ix, data3k.gallery[7], 1) == [ids[7]]


def test_merge_and_rebuild_reclaim(make_index, data3k) -> None:
    ix = make_index(threshold=500, delta_max=300, rebuild_deleted_ratio=0.2)
    ids = [fid(i) for i in range(3000)]
    ix.add_many(ACC, ids[:2000], data3k.gallery[:2000], 1, {LST})
    ix.wait_for_builds(60)
    for i in range(2000, 2400):  # one by one, like the change stream
        ix.add(ACC, ids[i], data3k.gallery[i], 1, {LST})
    ix.wait_for_builds(60)
    s = stat(ix)
    assert s["mode"] == "hnsw" and s["delta"] < 300 and s["live"] == 2400
    for i in range(0, 600):
        ix.remove(ids[i])
    ix.wait_for_builds(60)
    s = stat(ix)
    assert s["live"] == 1800 and s["deleted"] < 0.2 * 2400
    assert top(ix, data3k.gallery[2300], 1) == [ids[2300]]
    assert all(ids[i] not in top(ix, data3k.gallery[i], 20) for i in range(0, 600, 37))
    for i in range(600, 2200):  # shrink below threshold/2: back to the exact scan
        ix.remove(ids[i])
    ix.wait_for_builds(60)
    assert stat(ix)["mode"] == "exact" and stat(ix)["live"] == 200
    assert top(ix, data3k.gallery[2300], 1) == [ids[2300]]


def test_concurrent_searches_never_see_deleted(make_index, data3k) -> None:
    ix = make_index(threshold=500, delta_max=200)
    ids = fill(ix, data3k)
    removed: set[str] = set()
    lock = threading.Lock()
    stop = threading.Event()
    errors: list[str] = []

    def searcher(seed: int) -> int:
        rng = np.random.default_rng(seed)
        n = 0
        while not stop.is_set():
            i = int(rng.integers(0, 3000))
            with lock:
                gone = set(removed)  # removed before this search started
            for m in ix.search(ACC, data3k.gallery[i], ListCandidates(LST), 10, 0.0)[0]:
                if m.face_id in gone:
                    errors.append(m.face_id)
            n += 1
        return n

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(searcher, s) for s in range(4)]
        for i in range(0, 3000, 3):
            ix.remove(ids[i])
            with lock:
                removed.add(ids[i])
            if i % 30 == 0:
                ix.add(ACC, f"new-{i}", data3k.gallery[i], 1, {LST})
        ix.wait_for_builds(60)
        stop.set()
        assert all(f.result() > 0 for f in futures)
    assert errors == []


def test_held_builds_run_once_from_every_row_when_released(make_index, data3k, monkeypatch) -> None:
    """A bulk load (the matcher's initial load) builds each graph once at its end from all
    rows, instead of an early small graph plus a merge per delta_max rows."""
    jobs: list[tuple[str, int]] = []
    real_build = builder_mod.build_graph

    def counted(labels, *args, **kwargs):
        jobs.append(("build", int(labels.shape[0])))
        return real_build(labels, *args, **kwargs)

    monkeypatch.setattr(builder_mod, "build_graph", counted)
    ix = make_index(threshold=500, delta_max=300)
    ix.hold_builds()
    ids = [fid(i) for i in range(3000)]
    for s in range(0, 3000, 250):  # stream-sized batches, as StreamDescriptors sends them
        ix.add_many(ACC, ids[s : s + 250], data3k.gallery[s : s + 250], 1, {LST})
    assert ix.wait_for_builds(5)
    assert stat(ix)["mode"] == "exact" and not stat(ix)["queued"]
    assert top(ix, data3k.gallery[5], 1) == [ids[5]]  # searchable (exactly) meanwhile
    ix.release_builds()
    assert ix.wait_for_builds(60)
    assert jobs == [("build", 3000)]
    assert stat(ix)["mode"] == "hnsw" and stat(ix)["delta"] == 0 and stat(ix)["live"] == 3000
    assert top(ix, data3k.gallery[2999], 1) == [ids[2999]]
