"""Synthetic face descriptors shaped like SFace's: clustered identities, not uniform noise.

Each identity is a random unit centre in 128-D; each sample is normalise(centre + noise) with
per-sample noise radius r, so two samples of one identity have cosine ~1/(1 + r^2):
r^2 in [0.3, 0.9] gives intra-class cosine ~0.5-0.8, while random centres give inter-class
cosine ~N(0, 1/128) = 0 +- 0.09 -- SFace's statistics around its 0.363 threshold.
(Uniform random vectors have no near neighbours and make HNSW recall look broken.)

`python -m bench.matcher.data --n 1000000` caches the arrays as .npy for reuse.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DIM = 128
DEFAULT_CACHE = Path(__file__).resolve().parents[2] / "bench" / "results" / "matcher_data"


@dataclass
class FaceData:
    gallery: np.ndarray  # (n, dim) float32 unit rows
    gallery_identity: np.ndarray  # (n,) int64
    queries: np.ndarray  # (q, dim) held-out samples of enrolled identities
    query_identity: np.ndarray  # (q,)


def _samples(
    rng: np.random.Generator, centres: np.ndarray, identity: np.ndarray, chunk: int = 200_000
) -> np.ndarray:
    out = np.empty((identity.shape[0], centres.shape[1]), dtype=np.float32)
    dim = centres.shape[1]
    for start in range(0, identity.shape[0], chunk):
        ids = identity[start : start + chunk]
        r2 = rng.uniform(0.3, 0.9, size=(ids.shape[0], 1)).astype(np.float32)
        noise = rng.standard_normal((ids.shape[0], dim), dtype=np.float32)
        noise *= np.sqrt(r2 / dim)
        x = centres[ids] + noise
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        out[start : start + chunk] = x
    return out


def generate(
    n: int, samples_per_identity: int = 4, n_queries: int = 1000, seed: int = 7, dim: int = DIM
) -> FaceData:
    rng = np.random.default_rng(seed)
    n_ids = max(1, -(-n // samples_per_identity))
    centres = rng.standard_normal((n_ids, dim), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    gallery_identity = np.repeat(np.arange(n_ids, dtype=np.int64), samples_per_identity)[:n]
    gallery = _samples(rng, centres, gallery_identity)
    query_identity = rng.choice(n_ids, size=min(n_queries, n_ids), replace=False).astype(np.int64)
    queries = _samples(rng, centres, query_identity)
    return FaceData(gallery, gallery_identity, queries, query_identity)


def load_or_generate(
    n: int, n_queries: int = 1000, cache_dir: Path = DEFAULT_CACHE, seed: int = 7
) -> FaceData:
    """Generate once, then reuse `<cache_dir>/faces_<n>_<q>_<seed>_*.npy` (memory-mapped)."""
    stem = cache_dir / f"faces_{n}_{n_queries}_{seed}"
    names = ("gallery", "gallery_identity", "queries", "query_identity")
    paths = [Path(f"{stem}_{name}.npy") for name in names]
    if all(p.exists() for p in paths):
        return FaceData(*(np.load(p) for p in paths))
    data = generate(n, n_queries=n_queries, seed=seed)
    cache_dir.mkdir(parents=True, exist_ok=True)
    for p, arr in zip(
        paths, (data.gallery, data.gallery_identity, data.queries, data.query_identity), strict=True
    ):
        tmp = p.with_suffix(".tmp.npy")
        np.save(tmp, arr)
        tmp.rename(p)
    return data


def describe(data: FaceData, pairs: int = 20_000, seed: int = 1) -> dict[str, float]:
    """Intra/inter-class cosine statistics (sanity check against SFace's)."""
    rng = np.random.default_rng(seed)
    g, ident = data.gallery, data.gallery_identity
    a = rng.integers(0, g.shape[0], pairs)
    b = rng.integers(0, g.shape[0], pairs)
    inter = np.einsum("ij,ij->i", g[a], g[b])[ident[a] != ident[b]]
    starts = np.flatnonzero(np.r_[True, ident[1:] != ident[:-1]])
    starts = starts[(starts + 1 < ident.shape[0])]
    starts = starts[ident[np.minimum(starts + 1, ident.shape[0] - 1)] == ident[starts]][:pairs]
    intra = np.einsum("ij,ij->i", g[starts], g[starts + 1])
    return {
        "intra_mean": float(intra.mean()),
        "intra_p5": float(np.percentile(intra, 5)),
        "intra_p95": float(np.percentile(intra, 95)),
        "inter_mean": float(inter.mean()),
        "inter_std": float(inter.std()),
        "inter_p99_9": float(np.percentile(inter, 99.9)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    args = ap.parse_args()
    data = load_or_generate(args.n, args.queries, args.cache_dir)
    print(describe(data))


if __name__ == "__main__":
    main()
