"""Settings of the matcher service; the core's tunables are read here into a `MatcherConfig`
(their defaults are the dataclass's) and handed to the core."""

from __future__ import annotations

from pathlib import Path

from services.common import config
from services.matcher.core.settings import MatcherConfig

DESCRIPTOR_VERSION = config.declare(
    "LUNA_MATCHER_DESCRIPTOR_VERSION",
    200,
    "Descriptor version the matcher indexes and matches (SFace = 200); faces' descriptors of "
    "other versions are ignored and requests with them get LUNA error 31001.",
)
SNAPSHOT_DIR = config.declare(
    "LUNA_MATCHER_SNAPSHOT_DIR",
    "",
    "Directory of matcher snapshots; empty: <LUNA_DATA_DIR>/matcher.",
)
SNAPSHOT_INTERVAL = config.declare(
    "LUNA_MATCHER_SNAPSHOT_INTERVAL",
    300.0,
    "Seconds between periodic snapshots (only written when changes were applied); 0 = never. "
    "A snapshot is also written at graceful shutdown.",
)
SNAPSHOT_CHANGES = config.declare(
    "LUNA_MATCHER_SNAPSHOT_CHANGES",
    200_000,
    "Also snapshot once this many stream changes were applied since the last snapshot.",
)
CONSISTENCY_WAIT = config.declare(
    "LUNA_MATCHER_CONSISTENCY_WAIT",
    2.0,
    "Seconds a match waits at most for the matcher to apply every FACES_CHANGES message "
    "published before the request arrived (read-your-writes); 0 disables the wait.",
)
FILTER_MAX_FACES = config.declare(
    "LUNA_MATCHER_FILTER_MAX_FACES",
    100_000,
    "Candidate filters the index cannot answer (user_data, external_ids, create_time, ...) "
    "are resolved to face ids through the faces service; at most this many per candidate set.",
)
RECORD_CACHE = config.declare(
    "LUNA_MATCHER_RECORD_CACHE",
    100_000,
    "Any value but 0: the matcher keeps every indexed face's record beside its descriptor "
    "(kept current by FACES_CHANGES, saved in snapshots), so matches never read the faces "
    "service; 0: each match reads its faces' records from the faces service.",
)
START_TIMEOUT = config.declare(
    "LUNA_MATCHER_START_TIMEOUT",
    600.0,
    "Seconds the matcher keeps retrying its initial load while the faces service or NATS is "
    "not reachable yet.",
)


def snapshot_dir() -> Path:
    value = SNAPSHOT_DIR.get()
    return Path(value) if value else config.data_dir() / "matcher"


INDEX_THRESHOLD = config.declare(
    "LUNA_MATCHER_INDEX_THRESHOLD",
    MatcherConfig.index_threshold,
    "Candidate sets (lists, account views) with at least this many descriptors are searched in "
    "an HNSW index with exact re-rank; smaller ones by an exact BLAS scan.",
)
HNSW_M = config.declare(
    "LUNA_MATCHER_HNSW_M", MatcherConfig.hnsw_m, "HNSW graph degree M (hnswlib)."
)
HNSW_EF_CONSTRUCTION = config.declare(
    "LUNA_MATCHER_HNSW_EF_CONSTRUCTION",
    MatcherConfig.hnsw_ef_construction,
    "HNSW ef_construction used when building indexes.",
)
HNSW_EF = config.declare(
    "LUNA_MATCHER_HNSW_EF",
    MatcherConfig.hnsw_ef,
    "HNSW search breadth ef; each search fetches max(4*limit, 64) candidates and re-ranks them "
    "exactly.",
)
DELTA_MAX = config.declare(
    "LUNA_MATCHER_DELTA_MAX",
    MatcherConfig.delta_max,
    "Descriptors added to an indexed set are scanned exactly until this many accumulate, then "
    "merged into the HNSW graph in the background.",
)
REBUILD_DELETED_RATIO = config.declare(
    "LUNA_MATCHER_REBUILD_DELETED_RATIO",
    MatcherConfig.rebuild_deleted_ratio,
    "Rebuild an HNSW index in the background once this share of it is deleted.",
)
BUILD_THREADS = config.declare(
    "LUNA_MATCHER_BUILD_THREADS",
    MatcherConfig.build_threads,
    "Threads for background index builds; 0 = all CPU cores.",
)
INDEX_ACCOUNT_VIEWS = config.declare(
    "LUNA_MATCHER_INDEX_ACCOUNT_VIEWS",
    MatcherConfig.index_account_views,
    "1: also build HNSW indexes over all faces of large accounts (matching without a list); "
    "0: such searches scan exactly. Costs ~750 MB per 1M faces.",
)


def core_config() -> MatcherConfig:
    """The core's tunables as the environment sets them now."""
    return MatcherConfig(
        index_threshold=INDEX_THRESHOLD.get_int(),
        hnsw_m=HNSW_M.get_int(),
        hnsw_ef_construction=HNSW_EF_CONSTRUCTION.get_int(),
        hnsw_ef=HNSW_EF.get_int(),
        delta_max=DELTA_MAX.get_int(),
        rebuild_deleted_ratio=REBUILD_DELETED_RATIO.get_float(),
        build_threads=BUILD_THREADS.get_int(),
        index_account_views=INDEX_ACCOUNT_VIEWS.get_bool(),
    )
