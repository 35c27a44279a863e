"""The analytical tasks' numeric cores against references computed the obvious (quadratic)
way: clustering equals connected components of the exact all-pairs similarity matrix,
cross-match equals a full sort, ROC's AUC equals the Mann-Whitney statistic."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse.csgraph import connected_components

from bench.matcher.data import generate
from services.matcher.core.similarity import cosine_to_similarity
from services.tasks import analytics


def reference_labels(x: np.ndarray, threshold: float) -> np.ndarray:
    x = analytics.unit_rows(x)
    sim = cosine_to_similarity(x @ x.T)
    _, labels = connected_components(sim >= threshold, directed=False)
    return labels


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    pairs = set(zip(a.tolist(), b.tolist(), strict=True))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.81, 0.95])
def test_exact_clustering_equals_all_pairs_components(threshold: float) -> None:
    data = generate(3000, samples_per_identity=5, n_queries=1, seed=3)
    got = analytics.cluster(data.gallery, threshold)
    assert same_partition(got, reference_labels(data.gallery, threshold))
    # Deterministic, numbered by first appearance.
    assert np.array_equal(got, analytics.cluster(data.gallery, threshold))
    assert got[0] == 0


def test_partition_clustering_matches_exact_on_clustered_data() -> None:
    data = generate(6000, samples_per_identity=6, n_queries=1, seed=5)
    exact = reference_labels(data.gallery, 0.81)
    approx = analytics.cluster(data.gallery, 0.81, exact_max=0, probes=32)
    assert same_partition(approx, exact)
    # Same-identity samples mostly land together (the data has ~1/6 singletons per identity).
    assert len(set(approx.tolist())) < 0.6 * data.gallery.shape[0]


def test_partition_clustering_keeps_dense_groups_whole() -> None:
    # 40 near-copies (every node has 39 neighbours above the threshold) and 20 strangers.
    rng = np.random.default_rng(1)
    centre = rng.standard_normal(128)
    x = centre + 0.01 * rng.standard_normal((40, 128))
    far = rng.standard_normal((20, 128))
    labels = analytics.cluster(np.vstack([x, far]), 0.9, exact_max=0)
    assert len(set(labels[:40].tolist())) == 1
    assert len(set(labels[40:].tolist())) == 20


def test_partition_with_every_cell_probed_is_exact() -> None:
    data = generate(2000, samples_per_identity=4, n_queries=1, seed=9)
    x = analytics.unit_rows(data.gallery)
    a, b = analytics.partition_pairs(x, 0.4, cells=16, probes=16)
    got = set(zip(a.tolist(), b.tolist(), strict=True))
    ea, eb = analytics.pairs_at_least(x, 0.4)
    assert got == set(zip(ea.tolist(), eb.tolist(), strict=True))


def test_clusters_of_orders_largest_first() -> None:
    labels = np.array([0, 1, 0, 2, 1, 0])
    ids = ["f", "e", "d", "c", "b", "a"]
    assert analytics.clusters_of(labels, ids) == [["a", "d", "f"], ["b", "e"], ["c"]]
    assert analytics.clusters_of(np.zeros(0, np.int64), []) == []


def test_top_matches_equal_a_full_sort() -> None:
    rng = np.random.default_rng(2)
    refs, cands = rng.standard_normal((50, 128)), rng.standard_normal((700, 128))
    cands[:50] = refs + 0.3 * rng.standard_normal((50, 128))
    idx, sim = analytics.top_matches(refs, cands, 5, 0.0)
    full = cosine_to_similarity(analytics.unit_rows(refs) @ analytics.unit_rows(cands).T)
    for r in range(50):
        want = np.argsort(-full[r], kind="stable")[:5]
        assert idx[r].tolist() == want.tolist()
        assert np.allclose(sim[r], full[r][want], atol=1e-5)
        assert idx[r][0] == r
    # A threshold drops weaker candidates (index -1).
    idx, sim = analytics.top_matches(refs, cands, 5, 0.9)
    assert (idx[:, 0] >= 0).all() and ((idx == -1) | (sim >= 0.9)).all()
    assert (idx[:, 1:] == -1).mean() > 0.9


def test_hnsw_candidates_find_the_exact_best() -> None:
    data = generate(20000, samples_per_identity=4, n_queries=200, seed=9)
    hnsw = analytics.HnswCandidates.build(data.gallery)
    got, sim = hnsw.top(data.queries, 5, 0.0)
    exact, esim = analytics.top_matches(data.queries, data.gallery, 5, 0.0)
    assert (got[:, 0] == exact[:, 0]).mean() >= 0.99
    assert np.allclose(sim[:, 0], esim[:, 0], atol=1e-5)


def test_roc_of_clean_and_shuffled_labels() -> None:
    data = generate(2000, samples_per_identity=4, n_queries=1, seed=11)
    clean = analytics.roc(data.gallery, data.gallery_identity, key_fprs=[0.001, 0.01])
    assert clean.auc > 0.99
    assert len(clean.roc) == analytics.ROC_BINS + 1
    assert clean.roc[0] == {"FPR": 1.0, "TPR": 1.0, "similarity": 0.0}
    fprs = [p["FPR"] for p in clean.roc]
    assert fprs == sorted(fprs, reverse=True)
    assert clean.eer is not None and abs(clean.eer["FPR"] - (1 - clean.eer["TPR"])) < 0.02
    assert clean.key_points is not None and all(p["FPR"] <= 0.01 for p in clean.key_points)
    assert clean.hit_top["top-1"] is not None and clean.hit_top["top-1"] > 0.95
    tops = [clean.hit_top[f"top-{i}"] for i in range(1, 6)]
    assert tops == sorted(tops)  # type: ignore[type-var]
    shuffled = np.random.default_rng(0).permutation(data.gallery_identity)
    noisy = analytics.roc(data.gallery, shuffled, limit=3)
    assert 0.4 < noisy.auc < 0.6
    assert noisy.hit_top["top-4"] is None and noisy.hit_top["top-5"] is None


def test_roc_auc_equals_mann_whitney() -> None:
    rng = np.random.default_rng(4)
    x = rng.standard_normal((300, 128))
    labels = rng.integers(0, 30, 300)
    x += 0.8 * rng.standard_normal((30, 128))[labels]  # some identity signal
    got = analytics.roc(x, labels)
    u = analytics.unit_rows(x)
    sim = cosine_to_similarity(u @ u.T)
    iu = np.triu_indices(300, 1)
    s, same = sim[iu], (labels[:, None] == labels[None, :])[iu]
    pos, neg = np.floor(s[same] * 1000), np.floor(s[~same] * 1000)
    # Mann-Whitney on the binned scores: ties count half.
    greater = (pos[:, None] > neg[None, :]).mean()
    ties = (pos[:, None] == neg[None, :]).mean()
    assert got.auc == pytest.approx(greater + ties / 2, abs=1e-9)


class _Faces:
    """FacesService.StreamDescriptors over an in-memory set (version 200, ids' order)."""

    def __init__(self, ids: list[str], x: np.ndarray) -> None:
        self.rows = dict(zip(ids, x, strict=True))

    async def StreamDescriptors(self, request):
        from luna.faces.v1 import faces_pb2

        items = [
            faces_pb2.FaceDescriptor(
                face_id=fid, descriptor=np.asarray(self.rows[fid], "<f4").tobytes(), version=200
            )
            for fid in request.face_ids
            if fid in self.rows
        ]
        yield faces_pb2.StreamDescriptorsResponse(descriptors=items)


async def test_clustering_parts_merge_to_the_exact_components() -> None:
    import uuid

    from services.tasks import settings
    from services.tasks.kinds import Deps
    from services.tasks.types.clustering import Clustering, row_blocks

    data = generate(11000, samples_per_identity=5, n_queries=1, seed=8)
    ids = sorted(str(uuid.UUID(int=i + 1)) for i in range(11000))
    # Two planned faces have no descriptor: they are left out, not clustered.
    deps = Deps(faces=_Faces(ids[2:], data.gallery[2:]), types=settings.types())
    kind = Clustering()
    task = {"objects_type": "faces", "threshold": 0.5, "limit": 20000}
    blocks = row_blocks(len(ids))
    assert len(blocks) == 4 and blocks[0][0] == 0 and blocks[-1][1] == len(ids)
    results = []
    for lo, hi in blocks:
        subtask = {"content": {"ids": ids, "rows": [lo, hi]}, "task_content": task,
                   "account_id": str(uuid.uuid4())}  # fmt: skip
        outcome = await kind.run(deps, subtask)
        assert len(outcome.result["links"]) <= hi - lo + len(ids)
        results.append(outcome.result)
    merged = kind.merge({"content": task}, results)
    want = reference_labels(data.gallery[2:], 0.5)
    expected = analytics.clusters_of(want, ids[2:])
    assert merged == {
        "clusters": expected,
        "total_objects": len(ids) - 2,
        "total_clusters": len(expected),
    }
