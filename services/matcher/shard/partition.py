"""The shard map and consistent hashing: which matcher shard holds which faces.

A face's partition key is its account id, so every collection of an account (its account
view and its lists) lives on one shard, and a match within one account is served by that
shard alone. Accounts named in `spread_accounts` (collections larger than one shard) are
keyed by face id instead: their faces are spread over every shard and their matches fan out.

Keys are placed on a consistent-hash ring (`vnodes` points per shard, blake2b), so adding a
shard moves only the keys the new shard takes (about 1/(n+1) of them), all to the new shard.

Every shard entry has a state. `active` shards are routed to and hold their keys. A `warming`
shard loads its keys (from the faces service) while the proxy still routes by the ring
without it; `leaving` is the reverse (routed to, no longer a target). So a map has two rings:
the routing ring (active + leaving) and the target ring (active + warming); a shard holds the
union of what it owns in either, and the proxy routes by the routing ring alone. Adding a
shard is two map versions: the new shard `warming`, then `active` once it serves.
"""

from __future__ import annotations

import bisect
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

ACTIVE, WARMING, LEAVING = "active", "warming", "leaving"
STATES = (ACTIVE, WARMING, LEAVING)
DEFAULT_VNODES = 128


class ShardMapError(ValueError):
    """A shard map that cannot be used (bad JSON, duplicate ids, unknown state, no shard)."""


def _point(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


class Ring:
    """A consistent-hash ring over shard ids."""

    def __init__(self, shard_ids: Iterable[int], vnodes: int = DEFAULT_VNODES) -> None:
        self.shard_ids = tuple(sorted(set(shard_ids)))
        if not self.shard_ids:
            raise ShardMapError("a ring needs at least one shard")
        points = sorted(
            (_point(f"shard-{s}#{v}"), s) for s in self.shard_ids for v in range(vnodes)
        )
        self._points = [p for p, _ in points]
        self._owners = [s for _, s in points]

    def owner(self, key: str) -> int:
        i = bisect.bisect_right(self._points, _point(key))
        return self._owners[i % len(self._owners)]


@dataclass(frozen=True)
class Shard:
    id: int
    state: str = ACTIVE
    # gRPC target of the shard's replicas (`host:port`, `ipv4:a,b`, `dns:///name`); the proxy's.
    address: str = ""


@dataclass(frozen=True)
class ShardMap:
    version: int
    shards: tuple[Shard, ...]
    spread_accounts: frozenset[str] = field(default_factory=frozenset)
    vnodes: int = DEFAULT_VNODES

    def __post_init__(self) -> None:
        ids = [s.id for s in self.shards]
        if len(set(ids)) != len(ids):
            raise ShardMapError(f"duplicate shard ids in {ids}")
        bad = [s.state for s in self.shards if s.state not in STATES]
        if bad:
            raise ShardMapError(f"unknown shard state(s) {bad}; known: {', '.join(STATES)}")
        if not [s for s in self.shards if s.state != WARMING]:
            raise ShardMapError("the map routes to no shard (every shard is warming)")
        if not [s for s in self.shards if s.state != LEAVING]:
            raise ShardMapError("the map targets no shard (every shard is leaving)")

    # --- building --------------------------------------------------------------------------
    @classmethod
    def uniform(
        cls, n: int, addresses: Iterable[str] = (), spread_accounts: Iterable[str] = ()
    ) -> ShardMap:
        """n active shards 0..n-1 (version 1); addresses in shard order when given."""
        addrs = list(addresses) or [""] * n
        if len(addrs) != n:
            raise ShardMapError(f"{len(addrs)} addresses for {n} shards")
        return cls(
            1,
            tuple(Shard(i, ACTIVE, a) for i, a in enumerate(addrs)),
            frozenset(spread_accounts),
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ShardMap:
        try:
            return cls(
                version=int(data["version"]),
                shards=tuple(
                    Shard(int(s["id"]), str(s.get("state", ACTIVE)), str(s.get("address", "")))
                    for s in data["shards"]
                ),
                spread_accounts=frozenset(map(str, data.get("spread_accounts", ()))),
                vnodes=int(data.get("vnodes", DEFAULT_VNODES)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, ShardMapError):
                raise
            raise ShardMapError(f"bad shard map: {exc!r}") from exc

    @classmethod
    def load(cls, path: Path) -> ShardMap:
        try:
            return cls.from_json(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            raise ShardMapError(f"shard map {path}: {exc}") from exc

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "vnodes": self.vnodes,
            "spread_accounts": sorted(self.spread_accounts),
            "shards": [{"id": s.id, "state": s.state, "address": s.address} for s in self.shards],
        }

    def save(self, path: Path) -> None:
        """Atomically (rename), so a reader never sees half a map."""
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=1))
        tmp.replace(path)

    def with_shard(self, shard: Shard) -> ShardMap:
        """The next version with `shard` added or replaced."""
        rest = tuple(s for s in self.shards if s.id != shard.id)
        return ShardMap(
            self.version + 1,
            tuple(sorted((*rest, shard), key=lambda s: s.id)),
            self.spread_accounts,
            self.vnodes,
        )

    def without_shard(self, shard_id: int) -> ShardMap:
        """The next version without shard `shard_id`."""
        return ShardMap(
            self.version + 1,
            tuple(s for s in self.shards if s.id != shard_id),
            self.spread_accounts,
            self.vnodes,
        )

    # --- placement -------------------------------------------------------------------------
    @cached_property
    def routing_ring(self) -> Ring:
        return Ring((s.id for s in self.shards if s.state != WARMING), self.vnodes)

    @cached_property
    def target_ring(self) -> Ring:
        return Ring((s.id for s in self.shards if s.state != LEAVING), self.vnodes)

    def key(self, account_id: str, face_id: str) -> str:
        return face_id if account_id in self.spread_accounts else account_id

    def owner(self, account_id: str, face_id: str = "") -> int:
        """The shard the proxy asks about this face (routing ring)."""
        return self.routing_ring.owner(self.key(account_id, face_id))

    def routed(self) -> tuple[Shard, ...]:
        return tuple(s for s in self.shards if s.state != WARMING)

    def shard(self, shard_id: int) -> Shard | None:
        return next((s for s in self.shards if s.id == shard_id), None)

    def partition(self, shard_id: int) -> Partition:
        return Partition(self, shard_id)


class Partition:
    """What one shard holds under a map: the keys it owns in the routing or the target ring."""

    def __init__(self, shard_map: ShardMap, shard_id: int) -> None:
        self.map = shard_map
        self.shard_id = shard_id
        # Consistent hashing only takes keys away from a shard when shards are added, so of
        # two rings holding this shard, the one with more shards owns a subset of the other's
        # keys: only the rings minimal by inclusion count (see `signature`).
        rings = {
            tuple(r.shard_ids): r
            for r in (shard_map.routing_ring, shard_map.target_ring)
            if shard_id in r.shard_ids
        }
        minimal = [ids for ids in rings if not any(set(o) < set(ids) for o in rings if o != ids)]
        self._rings = [rings[ids] for ids in sorted(minimal)]

    @property
    def signature(self) -> str:
        """Equal for two maps under which this shard holds exactly the same keys (snapshots
        are kept per signature; a changed signature means reloading the partition)."""
        text = json.dumps(
            [
                self.shard_id,
                self.map.vnodes,
                sorted(self.map.spread_accounts),
                [list(r.shard_ids) for r in self._rings],
            ]
        )
        return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()

    def owns(self, account_id: str, face_id: str) -> bool:
        key = self.map.key(account_id, face_id)
        return any(r.owner(key) == self.shard_id for r in self._rings)

    def __repr__(self) -> str:
        return f"Partition(shard {self.shard_id} of map v{self.map.version}, {self.signature})"
