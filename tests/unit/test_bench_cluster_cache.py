"""bench/cluster's snapshot cache: built once, loaded by the matcher's own loader at the
sequence of the run's fresh stream, and never changed by a run (runs hard-link its files)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.cluster import cache
from services.matcher.core import ListCandidates, MatcherConfig
from services.matcher.core.snapshot import current_snapshot, load_snapshot, save_snapshot
from services.matcher.face_records import FaceRecords

# index_threshold below a shard's size, so each shard's list gets a real HNSW graph.
CONFIG = MatcherConfig(index_threshold=50)


@pytest.fixture
def layout(tmp_path: Path) -> cache.Layout:
    return cache.Layout.of(tmp_path / "cache", 150, 3, CONFIG)


def test_a_cached_shard_loads_at_the_fresh_streams_sequence(
    layout: cache.Layout, tmp_path: Path
) -> None:
    data, rows, done = cache.ensure(layout)
    assert sum(len(r) for r in rows) == 300 and all(len(r) for r in rows)
    assert [d["faces"] for d in done] == [len(r) for r in rows]

    root = tmp_path / "run" / "shard-0-sig"
    installed = cache.install(layout, 0, root, 17)
    ix, seq = load_snapshot(root, CONFIG)
    assert seq == 17
    assert len(ix) == len(rows[0])
    assert [s["mode"] for s in ix.stats() if s["kind"] == "list"] == ["hnsw"]
    records = FaceRecords()
    assert records.load(installed) and len(records) == len(rows[0])
    # The shard answers its own faces: each face's descriptor finds that face first.
    probe = rows[0][:5]
    found = ix.search(layout.account_id, data.gallery[probe], ListCandidates(layout.list_id), 1)
    assert [m[0].face_id for m in found] == [cache.face_id(int(i)) for i in probe]

    cached = current_snapshot(layout.shard_dir(0))
    assert cached is not None
    assert json.loads((cached / "meta.json").read_text())["stream_seq"] == 0
    graph = next(cached.glob("c*/graph.bin"))
    assert (installed / graph.relative_to(cached)).stat().st_ino == graph.stat().st_ino

    # The matcher's next snapshot replaces the installed one; the cache is untouched.
    save_snapshot(ix, root, 18, records.save)
    ix.close()
    assert not installed.exists()
    again, seq = load_snapshot(layout.shard_dir(0), CONFIG)
    assert seq == 0 and len(again) == len(rows[0])
    again.close()


def test_a_second_run_builds_nothing(layout: cache.Layout, monkeypatch: pytest.MonkeyPatch) -> None:
    cache.ensure(layout)

    def no_build(*args: object) -> dict:
        raise AssertionError("rebuilt a cached shard")

    monkeypatch.setattr(cache, "build_shard", no_build)
    _, rows, done = cache.ensure(layout)
    assert [d["faces"] for d in done] == [len(r) for r in rows]


def test_the_key_follows_the_index_settings(tmp_path: Path) -> None:
    a = cache.Layout.of(tmp_path, 150, 3, CONFIG)
    assert cache.Layout.of(tmp_path, 150, 3, MatcherConfig(index_threshold=50)).root == a.root
    for other in (
        cache.Layout.of(tmp_path, 151, 3, CONFIG),
        cache.Layout.of(tmp_path, 150, 4, CONFIG),
        cache.Layout.of(tmp_path, 150, 3, MatcherConfig(index_threshold=50, hnsw_m=16)),
        cache.Layout.of(
            tmp_path, 150, 3, MatcherConfig(index_threshold=50, hnsw_ef_construction=100)
        ),
    ):
        assert other.root != a.root
    # ef is read when a snapshot loads, so it does not make another cache.
    assert (
        cache.Layout.of(tmp_path, 150, 3, MatcherConfig(index_threshold=50, hnsw_ef=64)).root
        == a.root
    )
    assert np.array_equal(a.rows()[0], cache.Layout.of(tmp_path / "x", 150, 3, CONFIG).rows()[0])
