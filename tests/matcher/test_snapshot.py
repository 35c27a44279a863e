"""Snapshots: atomic write, identical results after load, stream sequence kept."""

from __future__ import annotations

import pytest

from services.matcher.core import AccountCandidates, FaceIdCandidates, IndexSet, ListCandidates
from services.matcher.core import snapshot as snap
from services.matcher.core.snapshot import SnapshotError, load_snapshot, save_snapshot


def fid(i: int) -> str:
    return f"f-{i:06d}"


def all_results(ix: IndexSet, data) -> list:
    q = data.queries[:40]
    out = []
    for acc in ("a", "b"):
        for c in (
            ListCandidates("big"),
            ListCandidates("small"),
            AccountCandidates(),
            FaceIdCandidates(tuple(fid(i) for i in range(0, 3000, 7))),
        ):
            out.append(ix.search(acc, q, c, 10, 0.2))
    return out


def test_round_trip_gives_identical_results(make_index, data3k, tmp_path) -> None:
    ix = make_index(threshold=500)
    ids = [fid(i) for i in range(3000)]
    ix.add_many("a", ids[:2500], data3k.gallery[:2500], 1, {"big"})
    ix.add_many("b", ids[2500:], data3k.gallery[2500:], 1, {"small"})
    ix.attach("small", ids[:100])  # account a's own "small" list
    ix.wait_for_builds(60)
    for i in range(0, 200, 3):
        ix.remove(ids[i])  # tombstones in the graph
    ix.add("a", "late", data3k.gallery[5], 1, {"big"})  # in the delta
    before = all_results(ix, data3k)
    path = save_snapshot(ix, tmp_path, stream_seq=4242)
    loaded, seq = load_snapshot(tmp_path, ix.config)
    try:
        assert seq == 4242 and path.parent == tmp_path
        assert len(loaded) == len(ix) and loaded.version == 1
        assert loaded.face_lists(ids[52]) == ix.face_lists(ids[52]) == ("big", "small")
        assert {r["mode"] for r in loaded.stats() if r["list_id"] == "big"} == {"hnsw"}
        assert all_results(loaded, data3k) == before
        # The loaded set keeps working: deletes and adds apply.
        loaded.remove("late")
        assert "late" not in [
            m.face_id
            for m in loaded.search("a", data3k.gallery[5], ListCandidates("big"), 5, 0.0)[0]
        ]
    finally:
        loaded.close()


def test_new_snapshot_replaces_old_atomically(make_index, data3k, tmp_path, monkeypatch) -> None:
    ix = make_index()
    ix.add_many("a", [fid(i) for i in range(50)], data3k.gallery[:50], 1, {"l"})
    first = save_snapshot(ix, tmp_path, stream_seq=1)
    ix.remove(fid(0))
    second = save_snapshot(ix, tmp_path, stream_seq=2)
    assert not first.exists() and second.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["CURRENT", second.name])

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(snap, "_write_collection", broken)
    ix.remove(fid(1))
    with pytest.raises(OSError):
        save_snapshot(ix, tmp_path, stream_seq=3)
    monkeypatch.undo()
    # The failed write left the previous snapshot current and no temp dirs behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["CURRENT", second.name])
    loaded, seq = load_snapshot(tmp_path, ix.config)
    try:
        assert seq == 2 and len(loaded) == 49 and fid(1) in loaded
    finally:
        loaded.close()
    with pytest.raises(SnapshotError):
        load_snapshot(tmp_path / "nothing-here")
