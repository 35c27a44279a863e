"""Settings of the matcher service (the core's own LUNA_MATCHER_* live in core/settings.py)."""

from __future__ import annotations

from pathlib import Path

from services.common import config

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
