"""Settings of matcher sharding: a shard's identity and the shard map (shards and proxy)."""

from __future__ import annotations

from pathlib import Path

from services.common import config
from services.matcher.shard.partition import ShardMap

SHARD = config.declare(
    "LUNA_MATCHER_SHARD",
    "",
    "This matcher's shard id (0..): it loads and follows only the faces its shard holds. "
    "Empty: not sharded, the matcher holds every face (`luna up`).",
)
SHARDS = config.declare(
    "LUNA_MATCHER_SHARDS",
    1,
    "Number of matcher shards (ids 0..n-1, all active) when no LUNA_MATCHER_SHARD_MAP is set.",
)
SHARD_MAP = config.declare(
    "LUNA_MATCHER_SHARD_MAP",
    "",
    "Path of the JSON shard map (version, shards with id/state/address, spread_accounts, "
    "vnodes) read by shards and the matcher proxy and reloaded when it changes; overrides "
    "LUNA_MATCHER_SHARDS, LUNA_MATCHER_SHARD_ADDRESSES and LUNA_MATCHER_SPREAD_ACCOUNTS.",
)
SHARD_ADDRESSES = config.declare(
    "LUNA_MATCHER_SHARD_ADDRESSES",
    "",
    "Matcher proxy without a map file: gRPC targets of shards 0..n-1 separated by ';' (each "
    "may list replicas, `ipv4:host:a,host:b`, balanced round robin).",
)
SPREAD_ACCOUNTS = config.declare(
    "LUNA_MATCHER_SPREAD_ACCOUNTS",
    "",
    "Accounts (comma-separated ids) too large for one shard: their faces are placed by face "
    "id over every shard and their matches fan out (without a map file).",
)
MAP_POLL = config.declare(
    "LUNA_MATCHER_SHARD_MAP_POLL",
    1.0,
    "Seconds between checks of LUNA_MATCHER_SHARD_MAP for a new version (shards and proxy).",
)
PRUNE_DELAY = config.declare(
    "LUNA_MATCHER_SHARD_PRUNE_DELAY",
    10.0,
    "Seconds a shard keeps serving its old partition after a new map version changed it, "
    "before reloading the new one: the proxies switch over first (keep it above the poll).",
)
PROXY_ATTEMPTS = config.declare(
    "LUNA_MATCHER_PROXY_ATTEMPTS",
    3,
    "Tries of a shard call that finds no replica reachable (UNAVAILABLE) before the proxy "
    "answers the error; the round_robin channel moves to another replica meanwhile.",
)


def map_path() -> Path | None:
    value = SHARD_MAP.get()
    return Path(value) if value else None


def static_map() -> ShardMap:
    """The map the environment describes when no map file is set."""
    addresses = [a.strip() for a in SHARD_ADDRESSES.get().split(";") if a.strip()]
    spread = [a.strip() for a in SPREAD_ACCOUNTS.get().split(",") if a.strip()]
    n = len(addresses) or SHARDS.get_int()
    return ShardMap.uniform(n, addresses, spread)


def current_map() -> ShardMap:
    path = map_path()
    return ShardMap.load(path) if path is not None else static_map()


def shard_id() -> int | None:
    value = SHARD.get().strip()
    return int(value) if value else None
