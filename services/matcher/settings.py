"""Settings of the matcher service; the core's tunables are read here into a `MatcherConfig`
(their defaults are the dataclass's) and handed to the core."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from services.common import config
from services.matcher.core.settings import MatcherConfig

DESCRIPTOR_VERSION = config.declare(
    "LUNA_MATCHER_DESCRIPTOR_VERSION",
    200,
    "Default descriptor version the matcher indexes and matches (SFace = 200): a request "
    "naming no version uses it; a version neither this nor an extra one gets LUNA error 31001.",
)
EXTRA_DESCRIPTOR_VERSIONS = config.declare(
    "LUNA_MATCHER_EXTRA_DESCRIPTOR_VERSIONS",
    "201",
    "Further descriptor versions the matcher indexes (comma-separated; MobileFaceNet = 201), "
    "each in its own index and snapshot directory (<snapshot dir>/v<version>); a match is "
    "served by the index of its version only.",
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
ATTRIBUTE_CACHE = config.declare(
    "LUNA_MATCHER_ATTRIBUTE_CACHE",
    100_000,
    "Temporary attributes whose descriptors the matcher keeps (from FACES_CHANGES notices "
    "and earlier reads) to resolve attribute references without asking the faces service; "
    "0 = ask every time.",
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


def descriptor_versions() -> list[int]:
    """The default version first, then the extra ones (deduplicated)."""
    extra = [int(v) for v in EXTRA_DESCRIPTOR_VERSIONS.get().split(",") if v.strip()]
    return list(dict.fromkeys([DESCRIPTOR_VERSION.get_int(), *extra]))


def version_snapshot_dir(root: Path, version: int, default: int) -> Path:
    """The default version keeps the root (snapshots written before versions still load)."""
    return root if version == default else root / f"v{version}"


# The LUNA_MATCHER_* setting of each MatcherConfig field; defaults are the dataclass's.
_CORE_SETTINGS = {
    "index_threshold": (
        "LUNA_MATCHER_INDEX_THRESHOLD",
        "Candidate sets (lists, account views) with at least this many descriptors are searched "
        "in an HNSW index with exact re-rank; smaller ones by an exact BLAS scan.",
    ),
    "hnsw_m": ("LUNA_MATCHER_HNSW_M", "HNSW graph degree M (hnswlib)."),
    "hnsw_ef_construction": (
        "LUNA_MATCHER_HNSW_EF_CONSTRUCTION",
        "HNSW ef_construction used when building indexes.",
    ),
    "hnsw_ef": (
        "LUNA_MATCHER_HNSW_EF",
        "HNSW search breadth ef; each search fetches max(4*limit, 64) candidates and re-ranks "
        "them exactly.",
    ),
    "delta_max": (
        "LUNA_MATCHER_DELTA_MAX",
        "Descriptors added to an indexed set are scanned exactly until this many accumulate, "
        "then merged into the HNSW graph in the background.",
    ),
    "rebuild_deleted_ratio": (
        "LUNA_MATCHER_REBUILD_DELETED_RATIO",
        "Rebuild an HNSW index in the background once this share of it is deleted.",
    ),
    "build_threads": (
        "LUNA_MATCHER_BUILD_THREADS",
        "Threads for background index builds; 0 = all CPU cores.",
    ),
    "index_account_views": (
        "LUNA_MATCHER_INDEX_ACCOUNT_VIEWS",
        "1: also build HNSW indexes over all faces of large accounts (matching without a "
        "list); 0: such searches scan exactly. Costs ~750 MB per 1M faces.",
    ),
}
CORE = {
    field: config.declare(name, getattr(MatcherConfig, field), doc)
    for field, (name, doc) in _CORE_SETTINGS.items()
}
_READ = {
    "int": config.Setting.get_int,
    "float": config.Setting.get_float,
    "bool": config.Setting.get_bool,
}


def core_config() -> MatcherConfig:
    """The core's tunables as the environment sets them now (each read as its field's type)."""
    types = {f.name: str(f.type) for f in fields(MatcherConfig)}
    return MatcherConfig(**{field: _READ[types[field]](s) for field, s in CORE.items()})
