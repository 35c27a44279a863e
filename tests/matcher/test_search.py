"""Search semantics: exact vs HNSW agreement, threshold/limit, isolation, input errors."""

from __future__ import annotations

import numpy as np
import pytest

from services.common.errors import LunaError
from services.matcher.core import (
    AccountCandidates,
    FaceIdCandidates,
    IndexSet,
    ListCandidates,
)
from services.matcher.core.exact_matrix import ExactMatrix
from services.matcher.core.similarity import cosine_to_similarity

ACC = "acc-a"


def fid(i: int) -> str:
    return f"00000000-0000-4000-8000-{i:012d}"


LST = "list-1"


def fill(ix: IndexSet, data, account: str = ACC, lst: str = LST) -> list[str]:
    ids = [fid(i) for i in range(len(data.gallery))]
    ix.add_many(account, ids, data.gallery, 1, {lst})
    ix.wait_for_builds(60)
    return ids


def mode_of(ix: IndexSet, list_id: str) -> str:
    return next(r["mode"] for r in ix.stats() if r["list_id"] == list_id)


def test_exact_and_hnsw_agree(make_index, data3k) -> None:
    exact, hnsw = make_index(threshold=100_000), make_index(threshold=500)
    fill(exact, data3k)
    fill(hnsw, data3k)
    assert mode_of(exact, LST) == "exact" and mode_of(hnsw, LST) == "hnsw"
    a = exact.search(ACC, data3k.queries, ListCandidates(LST), 5, 0.0)
    b = hnsw.search(ACC, data3k.queries, ListCandidates(LST), 5, 0.0)
    top1_same = np.mean([x[0].face_id == y[0].face_id for x, y in zip(a, b, strict=True)])
    assert top1_same >= 0.99
    for x, y in zip(a, b, strict=True):
        sims = {m.face_id: m.similarity for m in x}
        for m in y:  # HNSW scores are exact (re-ranked), so shared faces score identically
            if m.face_id in sims:
                assert abs(sims[m.face_id] - m.similarity) < 1e-5
    # And the exact path is right: brute force over the gallery.
    cos = data3k.gallery @ data3k.queries[0]
    best = np.argsort(-cos)[:5]
    assert [m.face_id for m in a[0]] == [fid(i) for i in best]
    np.testing.assert_allclose(
        [m.similarity for m in a[0]], cosine_to_similarity(cos[best]), atol=1e-6
    )


@pytest.mark.parametrize("threshold", [100_000, 500])
def test_threshold_and_limit(make_index, data3k, threshold: int) -> None:
    ix = make_index(threshold=threshold)
    fill(ix, data3k)
    full = ix.search(ACC, data3k.queries[:20], ListCandidates(LST), 30, 0.0)
    cut = ix.search(ACC, data3k.queries[:20], ListCandidates(LST), 30, 0.5)
    identity_of = {fid(i): int(data3k.identity[i]) for i in range(len(data3k.gallery))}
    for q, (f, c) in enumerate(zip(full, cut, strict=True)):
        sims = [m.similarity for m in f]
        assert len(f) == 30 and sims == sorted(sims, reverse=True)
        # Thresholding = filtering the unthresholded list (threshold pushed down exactly).
        assert [m.face_id for m in c] == [m.face_id for m in f if m.similarity >= 0.5]
        assert all(m.similarity >= 0.5 for m in c)
        # A held-out sample matches (some of) its own identity's 4 samples, and nobody else.
        assert 1 <= len(c) <= 4
        assert {identity_of[m.face_id] for m in c} == {int(data3k.query_identity[q])}
    one = ix.search(ACC, data3k.queries[:3], ListCandidates(LST), 1, 0.0)
    assert [len(r) for r in one] == [1, 1, 1]
    assert ix.search(ACC, data3k.queries[:3], ListCandidates(LST), 5, 1.0) == [[], [], []]
    with pytest.raises(ValueError):
        ix.search(ACC, data3k.queries[0], ListCandidates(LST), 0, 0.0)


def test_genuine_match_found_for_held_out_queries(make_index, data3k) -> None:
    ix = make_index(threshold=500)
    fill(ix, data3k)
    res = ix.search(ACC, data3k.queries, ListCandidates(LST), 1, 0.5)
    ident = {fid(i): int(data3k.identity[i]) for i in range(len(data3k.gallery))}
    hits = [r[0].face_id for r in res if r]
    assert len(hits) >= 95
    want = data3k.query_identity.tolist()
    correct = [ident[h] == want[i] for i, h in enumerate(r[0].face_id for r in res if r)]
    assert np.mean(correct) > 0.95


def test_account_isolation(make_index, data3k) -> None:
    ix = make_index(threshold=500)
    ids_a = fill(ix, data3k, account="acc-a", lst="shared-list")
    ids_b = [f"b-{i}" for i in range(200)]
    ix.add_many("acc-b", ids_b, data3k.gallery[:200] * -1.0, 1, {"shared-list"})
    q = data3k.gallery[:5]  # exact copies of A's faces
    for cands in (ListCandidates("shared-list"), AccountCandidates()):
        for row in ix.search("acc-b", q, cands, 50, 0.0):
            assert row and all(m.face_id.startswith("b-") for m in row)
    # FaceIdCandidates naming only A's faces gives B nothing.
    assert ix.search("acc-b", q, FaceIdCandidates(tuple(ids_a[:50])), 5, 0.0) == [[]] * 5
    # No account = all accounts (LUNA allows matching without an account).
    top = ix.search(None, q[:1], ListCandidates("shared-list"), 1, 0.0)[0][0]
    assert top.face_id == ids_a[0] and top.similarity > 0.999


def test_face_id_candidates_and_unknown_list(make_index, data3k) -> None:
    ix = make_index()
    ids = fill(ix, data3k)
    res = ix.search(ACC, data3k.gallery[7], FaceIdCandidates((ids[7], ids[100], "nope")), 5, 0.0)
    assert [m.face_id for m in res[0]] == [ids[7], ids[100]]
    assert ix.search(ACC, data3k.gallery[7], ListCandidates("missing"), 5, 0.0) == [[]]


def test_version_and_descriptor_errors(make_index, data3k) -> None:
    ix = make_index(version=None)
    ix.add(ACC, "f1", data3k.gallery[0], 57, {LST})
    assert ix.version == 57
    with pytest.raises(LunaError) as e:
        ix.add(ACC, "f2", data3k.gallery[1], 58, {LST})
    assert e.value.code == 31001 and "f2" not in ix
    with pytest.raises(LunaError) as e:
        ix.search(ACC, data3k.gallery[0], ListCandidates(LST), 1, 0.0, version=58)
    assert e.value.code == 31001
    with pytest.raises(LunaError) as e:
        ix.add(ACC, "f3", np.ones(512, np.float32), 57)
    assert e.value.code == 12034
    with pytest.raises(LunaError) as e:
        ix.add(ACC, "f4", np.full(128, np.nan, np.float32), 57)
    assert e.value.code == 26302
    with pytest.raises(LunaError) as e:
        ix.search(ACC, np.zeros((2, 128), np.float32), ListCandidates(LST), 1, 0.0)
    assert e.value.code == 26302
    assert len(ix) == 1


def test_a_batch_scan_picks_and_orders_each_query_as_a_lone_scan_does() -> None:
    """Several queries share one partition and sort (no cosine bound): every query gets
    exactly the labels, order (ties included) and values its own scan gives it."""
    rng = np.random.default_rng(1)
    for _ in range(200):
        n, q, k = (int(x) for x in (rng.integers(1, 60), rng.integers(2, 8), rng.integers(1, 10)))
        vecs = rng.integers(-3, 4, size=(n, 4)).astype(np.float32)
        queries = np.eye(4, dtype=np.float32)[rng.integers(0, 4, size=q)]  # many ties
        matrix = ExactMatrix.from_arrays(np.arange(100, 100 + n), vecs)
        batch = matrix.search(queries, k, -1.0, frozenset())
        for j in range(q):
            lone = matrix.search(queries[j : j + 1], k, -1.0, frozenset())[0]
            assert np.array_equal(batch[j][0], lone[0]) and np.array_equal(batch[j][1], lone[1])
