"""Tunables of the matcher core. The matcher app reads them (LUNA_MATCHER_*, declared in
services/matcher/settings.py) and hands a `MatcherConfig` in; the core never reads the
environment."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class MatcherConfig:
    """Tunables of an `IndexSet`; the defaults here are the settings' defaults."""

    # A candidate set with at least this many live descriptors gets an HNSW index; smaller
    # ones are scanned exactly (BLAS), which is both exact and faster below ~30k rows at the
    # ef below (bench data, one thread: 20k rows 0.52 ms exact vs 0.80 ms HNSW; 40k 1.31 vs
    # 1.09): watchlists of a few ten thousand faces are the common case.
    index_threshold: int = 30_000
    # M=32/ef=256: recall@1 0.996 at 1M clustered 128-D descriptors (M=16 needs ef>1000 for
    # 0.99, at twice the search time); see bench/matcher and the matcher README.
    hnsw_m: int = 32
    hnsw_ef_construction: int = 200
    hnsw_ef: int = 256
    # Adds to an indexed set land in an exact "delta" first; once it holds this many rows they
    # are merged into a copy of the graph in the background.
    delta_max: int = 10_000
    # A graph whose tombstoned (deleted) share exceeds this is rebuilt from its live rows.
    rebuild_deleted_ratio: float = 0.2
    # Threads hnswlib may use for background builds (searches always use one thread each).
    build_threads: int = 0
    # Build HNSW indexes for "all faces of an account" too (costs ~750 MB per 1M faces).
    index_account_views: bool = False

    @property
    def effective_build_threads(self) -> int:
        return self.build_threads if self.build_threads > 0 else max(1, os.cpu_count() or 1)
