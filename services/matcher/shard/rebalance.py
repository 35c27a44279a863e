"""Adding a matcher shard (n -> n+1) without a gap:

    python -m services.matcher.shard.rebalance add --map FILE --id 2 --address ipv4:h:a,h:b

1. The map file gets the next version with the new shard `warming`: the proxies keep routing
   by the ring without it; the shards already there hold what they held.
2. The new shard's replicas (started with LUNA_MATCHER_SHARD=<id> and the same map; started
   before or after step 1) load the keys the new ring gives them from the faces service and
   follow FACES_CHANGES. The tool waits until every replica reports (GetIndexStats) that it
   holds its partition of that version or a later one.
3. The map gets the next version with the shard `active`: the proxies route the moved keys
   to it (a proxy polls the file every LUNA_MATCHER_SHARD_MAP_POLL s); the old owners keep
   them for LUNA_MATCHER_SHARD_PRUNE_DELAY s, then reload their smaller partition (the old
   state serving meanwhile) and drop the moved keys.

The map is a file (a ConfigMap volume in Kubernetes, whose updates are an atomic symlink
swap), written atomically by rename; see docs/DECISIONS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import grpc
from luna.matcher.v1 import matcher_pb2, matcher_pb2_grpc

from services.matcher.shard.partition import ACTIVE, WARMING, Shard, ShardMap


def replicas(target: str) -> list[str]:
    """The addresses behind a gRPC target: `ipv4:a,b` -> [a, b]; anything else as is."""
    if target.startswith("ipv4:"):
        return target[len("ipv4:") :].split(",")
    return [target]


async def holds_version(address: str, version: int, timeout: float = 2.0) -> bool:
    try:
        async with grpc.aio.insecure_channel(address) as channel:
            stats = await matcher_pb2_grpc.MatcherServiceStub(channel).GetIndexStats(
                matcher_pb2.GetIndexStatsRequest(), timeout=timeout
            )
    except grpc.aio.AioRpcError:
        return False
    return stats.shard_map_version >= version


async def wait_ready(addresses: Sequence[str], version: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    waiting = list(addresses)
    while waiting:
        waiting = [a for a in waiting if not await holds_version(a, version)]
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"shard replicas {waiting} do not hold map v{version}")
        await asyncio.sleep(0.5)


async def add_shard(
    path: Path, shard_id: int, address: str, timeout: float = 3600.0
) -> tuple[ShardMap, ShardMap]:
    """Steps 1-3; returns the warming and the final map."""
    current = ShardMap.load(path)
    if current.shard(shard_id) is not None and current.shard(shard_id).state == ACTIVE:  # type: ignore[union-attr]
        raise ValueError(f"shard {shard_id} is already active in map v{current.version}")
    warming = current.with_shard(Shard(shard_id, WARMING, address))
    warming.save(path)
    await wait_ready(replicas(address), warming.version, timeout)
    final = warming.with_shard(Shard(shard_id, ACTIVE, address))
    final.save(path)
    return warming, final


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.matcher.shard.rebalance")
    sub = parser.add_subparsers(dest="command", required=True)
    add = sub.add_parser("add", help="add a shard: warm it up, then switch the proxies over")
    add.add_argument("--map", type=Path, required=True, help="the shard map file")
    add.add_argument("--id", type=int, required=True, help="the new shard's id")
    add.add_argument("--address", required=True, help="gRPC target of its replicas")
    add.add_argument("--timeout", type=float, default=3600.0)
    args = parser.parse_args(argv)
    began = time.monotonic()
    warming, final = asyncio.run(add_shard(args.map, args.id, args.address, args.timeout))
    print(
        f"shard {args.id} warmed up (map v{warming.version}) and active (map v{final.version}) "
        f"after {time.monotonic() - began:.1f}s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
