"""Settings of the matcher core (LUNA_MATCHER_*), read once into a `MatcherConfig`."""

from __future__ import annotations

import os
from dataclasses import dataclass

from services.common.config import setting


@dataclass(frozen=True)
class MatcherConfig:
    """Tunables of an `IndexSet`; `from_env()` reads the declared LUNA_MATCHER_* variables."""

    # A candidate set with at least this many live descriptors gets an HNSW index; smaller
    # ones are scanned exactly (BLAS), which is both exact and faster below ~10k rows.
    index_threshold: int = 10_000
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

    @classmethod
    def from_env(cls) -> MatcherConfig:
        return cls(
            index_threshold=int(
                setting(
                    "LUNA_MATCHER_INDEX_THRESHOLD",
                    "10000",
                    "Candidate sets (lists, account views) with at least this many descriptors "
                    "are searched in an HNSW index with exact re-rank; smaller ones by an exact "
                    "BLAS scan.",
                )
            ),
            hnsw_m=int(setting("LUNA_MATCHER_HNSW_M", "32", "HNSW graph degree M (hnswlib).")),
            hnsw_ef_construction=int(
                setting(
                    "LUNA_MATCHER_HNSW_EF_CONSTRUCTION",
                    "200",
                    "HNSW ef_construction used when building indexes.",
                )
            ),
            hnsw_ef=int(
                setting(
                    "LUNA_MATCHER_HNSW_EF",
                    "256",
                    "HNSW search breadth ef; each search fetches max(4*limit, 64) candidates "
                    "and re-ranks them exactly.",
                )
            ),
            delta_max=int(
                setting(
                    "LUNA_MATCHER_DELTA_MAX",
                    "10000",
                    "Descriptors added to an indexed set are scanned exactly until this many "
                    "accumulate, then merged into the HNSW graph in the background.",
                )
            ),
            rebuild_deleted_ratio=float(
                setting(
                    "LUNA_MATCHER_REBUILD_DELETED_RATIO",
                    "0.2",
                    "Rebuild an HNSW index in the background once this share of it is deleted.",
                )
            ),
            build_threads=int(
                setting(
                    "LUNA_MATCHER_BUILD_THREADS",
                    "0",
                    "Threads for background index builds; 0 = all CPU cores.",
                )
            ),
            index_account_views=setting(
                "LUNA_MATCHER_INDEX_ACCOUNT_VIEWS",
                "0",
                "1: also build HNSW indexes over all faces of large accounts (matching without "
                "a list); 0: such searches scan exactly. Costs ~750 MB per 1M faces.",
            ).lower()
            in ("1", "true", "yes", "on"),
        )


# Read by `luna config` to list these lazily read settings.
SETTINGS = (MatcherConfig.from_env,)
