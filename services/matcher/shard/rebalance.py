"""Adding or removing a matcher shard without a gap; each takes two map versions.

    python -m services.matcher.shard.rebalance add --map FILE --id 2 --address ipv4:h:a,h:b
    python -m services.matcher.shard.rebalance remove --map FILE --id 2

Adding (n -> n+1):
1. The map file gets the next version with the new shard `warming`: the routers (gateways,
   proxies) keep routing by the ring without it; the shards already there hold what they held.
2. The new shard's replicas (started with LUNA_MATCHER_SHARD=<id> and the same map; started
   before or after step 1) load the keys the new ring gives them from the faces service and
   follow FACES_CHANGES. The tool waits until every replica reports (GetIndexStats) that it
   holds its partition of that version or a later one.
3. The map gets the next version with the shard `active`: the routers route the moved keys
   to it (a router polls the file every LUNA_MATCHER_SHARD_MAP_POLL s); the old owners keep
   them for LUNA_MATCHER_SHARD_PRUNE_DELAY s, then reload their smaller partition (the old
   state serving meanwhile) and drop the moved keys.

Removing (n -> n-1), the same protocol the other way:
1. The next version has the shard `leaving`: routers still send it its keys; every other
   shard now also holds the keys the ring without it gives them, and after
   LUNA_MATCHER_SHARD_PRUNE_DELAY s rebuilds that larger partition from the faces service
   while its old state keeps serving.
2. The tool waits until every replica of every remaining shard reports that version.
3. The next version drops the shard: routers send its keys to their new owners within a
   poll; the removed shard keeps serving what it holds (a router on an older version may
   still ask it) until its replicas are stopped, which the tool says when it is safe.

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

from services.matcher.shard import settings
from services.matcher.shard.partition import ACTIVE, LEAVING, WARMING, Shard, ShardMap


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


async def remove_shard(
    path: Path, shard_id: int, timeout: float = 3600.0
) -> tuple[ShardMap, ShardMap]:
    """Steps 1-3 of a removal; returns the leaving and the final map."""
    current = ShardMap.load(path)
    shard = current.shard(shard_id)
    if shard is None:
        raise ValueError(f"shard {shard_id} is not in map v{current.version}")
    if shard.state == WARMING:
        raise ValueError(f"shard {shard_id} is still warming in map v{current.version}")
    leaving = current.with_shard(Shard(shard_id, LEAVING, shard.address))  # refuses the last
    leaving.save(path)
    remaining = [a for s in leaving.shards if s.id != shard_id for a in replicas(s.address)]
    await wait_ready(remaining, leaving.version, timeout)
    final = leaving.without_shard(shard_id)
    final.save(path)
    return leaving, final


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.matcher.shard.rebalance")
    sub = parser.add_subparsers(dest="command", required=True)
    add = sub.add_parser("add", help="add a shard: warm it up, then switch the proxies over")
    add.add_argument("--map", type=Path, required=True, help="the shard map file")
    add.add_argument("--id", type=int, required=True, help="the new shard's id")
    add.add_argument("--address", required=True, help="gRPC target of its replicas")
    add.add_argument("--timeout", type=float, default=3600.0)
    rm = sub.add_parser(
        "remove", help="remove a shard: its keys move to the others, then the routers switch"
    )
    rm.add_argument("--map", type=Path, required=True, help="the shard map file")
    rm.add_argument("--id", type=int, required=True, help="the shard to remove")
    rm.add_argument("--timeout", type=float, default=3600.0)
    args = parser.parse_args(argv)
    began = time.monotonic()
    if args.command == "add":
        warming, final = asyncio.run(add_shard(args.map, args.id, args.address, args.timeout))
        print(
            f"shard {args.id} warmed up (map v{warming.version}) and active "
            f"(map v{final.version}) after {time.monotonic() - began:.1f}s"
        )
        return 0
    leaving, final = asyncio.run(remove_shard(args.map, args.id, args.timeout))
    print(
        f"shard {args.id} leaving (map v{leaving.version}), its keys held by the other shards, "
        f"and dropped (map v{final.version}) after {time.monotonic() - began:.1f}s; stop its "
        f"replicas once every router has read v{final.version} "
        f"(LUNA_MATCHER_SHARD_MAP_POLL: {settings.MAP_POLL.get_float()} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
