"""Fixtures of the matcher core tests: clustered SFace-like descriptors (never uniform
noise, on which HNSW looks broken) and IndexSets that are closed after each test."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest

from services.matcher.core import IndexSet, MatcherConfig

DIM = 128


@dataclass
class Clustered:
    gallery: np.ndarray  # (n, DIM)
    identity: np.ndarray  # (n,)
    queries: np.ndarray  # held-out samples of enrolled identities
    query_identity: np.ndarray


def clustered(n: int, per_identity: int = 4, n_queries: int = 100, seed: int = 3) -> Clustered:
    """Identities = random unit centres; samples = centre + noise with intra-class cosine
    ~0.5-0.8 and inter-class ~0 +- 0.09, like SFace descriptors."""
    rng = np.random.default_rng(seed)
    n_ids = -(-n // per_identity)
    centres = rng.standard_normal((n_ids, DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)

    def sample(ids: np.ndarray) -> np.ndarray:
        r2 = rng.uniform(0.3, 0.9, size=(len(ids), 1))
        x = centres[ids] + rng.standard_normal((len(ids), DIM)) * np.sqrt(r2 / DIM)
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    identity = np.repeat(np.arange(n_ids), per_identity)[:n]
    q_ids = rng.choice(n_ids, size=min(n_queries, n_ids), replace=False)
    return Clustered(sample(identity), identity, sample(q_ids), q_ids)


def fid(i: int) -> str:
    return f"00000000-0000-4000-8000-{i:012d}"


def config(threshold: int, **kw: object) -> MatcherConfig:
    base = dict(
        index_threshold=threshold,
        hnsw_m=16,
        hnsw_ef_construction=100,
        hnsw_ef=64,
        delta_max=1_000_000,
        build_threads=1,
    )
    base.update(kw)
    return MatcherConfig(**base)  # type: ignore[arg-type]


@pytest.fixture
def make_index() -> Iterator:
    made: list[IndexSet] = []

    def make(threshold: int = 10_000, version: int | None = 1, **kw: object) -> IndexSet:
        ix = IndexSet(version=version, config=config(threshold, **kw))
        made.append(ix)
        return ix

    yield make
    for ix in made:
        ix.close()


@pytest.fixture(scope="session")
def data3k() -> Clustered:
    return clustered(3000)


@pytest.fixture(scope="session")
def make_data():
    return clustered
