"""A matcher process as one shard: its partition on each Sync, its snapshot directory per
partition, and the shard map watched for new versions.

A map version that changes what this shard holds (its partition's signature) is applied after
LUNA_MATCHER_SHARD_PRUNE_DELAY seconds, so the proxies (polling faster) switch their routing
first: each Sync then rebuilds the new partition from the faces service while the old state
keeps serving and following the stream (Sync.rebuild), and swaps. Snapshots live in
`<snapshot dir>/shard-<id>-<signature>`, so a restart loads only a snapshot of the partition
it holds now; the directories of earlier partitions are removed.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from pathlib import Path
from typing import Any

from services.matcher.shard import settings
from services.matcher.shard.partition import Partition, ShardMap, ShardMapError

log = logging.getLogger("luna.matcher.shard")


class ShardMember:
    def __init__(self, shard_id: int, shard_map: ShardMap, map_path: Path | None) -> None:
        self.shard_id = shard_id
        self.map = shard_map
        self.map_path = map_path
        self.partition = shard_map.partition(shard_id)
        self._bases: dict[int, Path] = {}  # id(sync) -> snapshot root without the shard part
        self._syncs: list[Any] = []
        self.changes_applied = 0

    @classmethod
    def from_settings(cls) -> ShardMember | None:
        """None when this matcher is no shard (LUNA_MATCHER_SHARD empty)."""
        shard_id = settings.shard_id()
        if shard_id is None:
            return None
        return cls(shard_id, settings.current_map(), settings.map_path())

    def root(self, base: Path, partition: Partition | None = None) -> Path:
        return base / f"shard-{self.shard_id}-{(partition or self.partition).signature}"

    def attach(self, sync: Any) -> None:
        """Before `sync.start()`: load, follow and snapshot this shard's partition only."""
        base = Path(sync.snapshot_root)
        self._bases[id(sync)] = base
        self._syncs.append(sync)
        sync.partition = self.partition
        sync.snapshot_root = self.root(base)
        self._remove_others(base, sync.snapshot_root)
        log.info("matcher shard %d: %r", self.shard_id, self.partition)

    def _remove_others(self, base: Path, keep: Path) -> None:
        if not base.is_dir():
            return
        for path in base.glob(f"shard-{self.shard_id}-*"):
            if path != keep and path.is_dir():
                shutil.rmtree(path, ignore_errors=True)

    # --- map changes -------------------------------------------------------------------------
    def _read_map(self) -> ShardMap | None:
        if self.map_path is None:
            return None
        try:
            return ShardMap.load(self.map_path)
        except ShardMapError as exc:
            log.warning("shard map unreadable, keeping version %d: %s", self.map.version, exc)
            return None

    async def watch(self) -> None:
        """Poll the map file; apply a version that changes this shard's partition after the
        prune delay (the newest version seen by then)."""
        if self.map_path is None:
            return
        seen_at: float | None = None
        removed_in = 0
        while True:
            await asyncio.sleep(settings.MAP_POLL.get_float())
            new = self._read_map()
            if new is None or new.version <= self.map.version:
                seen_at = None
                continue
            if new.shard(self.shard_id) is None:
                # Removed from the map (rebalance remove): routers still on an older version
                # may ask this shard until they poll, so it keeps what it holds until stopped.
                if removed_in != new.version:
                    removed_in = new.version
                    log.info("shard %d is not in map v%d: serving as is until stopped",
                             self.shard_id, new.version)  # fmt: skip
                continue
            partition = new.partition(self.shard_id)
            if partition.signature == self.partition.signature:
                # Routing changed elsewhere; what we hold did not (the same faces).
                self.map, self.partition = new, partition
                for sync in self._syncs:
                    sync.partition = partition
                continue
            if seen_at is None:
                seen_at = time.monotonic()
                log.info("shard map v%d changes shard %d's partition", new.version, self.shard_id)
            if time.monotonic() - seen_at < settings.PRUNE_DELAY.get_float():
                continue
            try:
                await self.apply(new)
            except Exception:
                # The old partition keeps serving; the next poll tries again.
                log.exception("shard %d: switching to map v%d failed", self.shard_id, new.version)
                continue
            seen_at = None

    async def apply(self, new: ShardMap) -> None:
        """Rebuild every Sync's index for the new map's partition, then switch."""
        partition = new.partition(self.shard_id)
        began = time.monotonic()
        for sync in self._syncs:
            base = self._bases[id(sync)]
            old_root = sync.snapshot_root
            faces = await sync.rebuild(partition, self.root(base, partition))
            if Path(old_root) != sync.snapshot_root:
                shutil.rmtree(old_root, ignore_errors=True)
            log.info("shard %d: version %d holds %d faces", self.shard_id, sync.version, faces)
        self.map, self.partition = new, partition
        self.changes_applied += 1
        log.info(
            "shard %d switched to map v%d in %.1fs", self.shard_id, new.version,
            time.monotonic() - began,
        )  # fmt: skip
