"""The sharding core without network: consistent hashing and what moves when a shard joins,
partitions (what a shard holds under each map state), routing of a match, and the exact
top-k merge of shard answers."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from luna.common.v1 import account_pb2, error_pb2
from luna.matcher.v1 import matcher_pb2

from services.common import errors
from services.matcher.shard.partition import (
    ACTIVE,
    LEAVING,
    WARMING,
    Ring,
    Shard,
    ShardMap,
    ShardMapError,
)
from services.matcher.shard.router import call
from services.matcher.shard.routing import merge, merge_stats, requests_for, targets

KEYS = [str(uuid.UUID(int=i * 7919 + 13)) for i in range(20_000)]


def test_ring_is_balanced_and_a_new_shard_only_takes_keys() -> None:
    two, three = Ring([0, 1]), Ring([0, 1, 2])
    before = [two.owner(k) for k in KEYS]
    after = [three.owner(k) for k in KEYS]
    counts = np.bincount(after, minlength=3) / len(KEYS)
    assert counts.min() > 0.25 and counts.max() < 0.42, counts  # ~1/3 each with 128 vnodes
    moved = [(b, a) for b, a in zip(before, after, strict=True) if b != a]
    assert all(a == 2 for _, a in moved)  # keys only move to the new shard
    assert 0.25 < len(moved) / len(KEYS) < 0.42
    assert Ring([1, 0]).owner(KEYS[0]) == two.owner(KEYS[0])  # order-free, deterministic


def test_partitions_follow_the_states() -> None:
    v1 = ShardMap.uniform(2)
    v2 = v1.with_shard(Shard(2, WARMING))
    v3 = v2.with_shard(Shard(2, ACTIVE))
    for key in KEYS[:3000]:
        old = v1.owner(key)
        new = v3.owner(key)
        assert v2.owner(key) == old  # the proxy routes as before while shard 2 warms up
        # while warming, the old owner still holds the key and the new shard already does
        assert v2.partition(old).owns(key, "")
        assert v2.partition(2).owns(key, "") == (new == 2)
        assert v3.partition(new).owns(key, "")
        assert sum(v3.partition(s).owns(key, "") for s in (0, 1, 2)) == 1
    # what shards 0/1 hold does not change with the warming entry, only with the switch
    assert v1.partition(0).signature == v2.partition(0).signature
    assert v2.partition(0).signature != v3.partition(0).signature
    assert v2.partition(2).signature == v3.partition(2).signature
    # removal is the reverse: a leaving shard is routed to but no longer a target
    v4 = v3.with_shard(Shard(2, LEAVING))
    assert [s.id for s in v4.routed()] == [0, 1, 2]
    assert v4.partition(0).owns(KEYS[0], "") == (v1.owner(KEYS[0]) == 0 or v3.owner(KEYS[0]) == 0)


def test_spread_accounts_are_placed_by_face_id() -> None:
    big = str(uuid.uuid4())
    m = ShardMap.uniform(3, spread_accounts=[big])
    owners = {m.owner(big, f) for f in KEYS[:300]}
    assert owners == {0, 1, 2}
    small = str(uuid.uuid4())
    assert len({m.owner(small, f) for f in KEYS[:300]}) == 1


def test_map_file_round_trip_and_bad_maps(tmp_path: Path) -> None:
    m = ShardMap.uniform(2, ["127.0.0.1:1", "ipv4:127.0.0.1:2,127.0.0.1:3"], ["acc"])
    path = tmp_path / "map.json"
    m.save(path)
    assert ShardMap.load(path) == m
    with pytest.raises(ShardMapError):
        ShardMap(1, (Shard(0), Shard(0)))
    with pytest.raises(ShardMapError):
        ShardMap(1, (Shard(0, WARMING),))
    with pytest.raises(ShardMapError):
        ShardMap(1, (Shard(0, "sleepy"),))
    path.write_text("{not json")
    with pytest.raises(ShardMapError):
        ShardMap.load(path)
    path.write_text('{"version": 1}')
    with pytest.raises(ShardMapError):
        ShardMap.load(path)


def _request(scope: account_pb2.AccountScope, *limits: int, events: bool = False) -> Any:
    req = matcher_pb2.MatchFacesRequest(scope=scope)
    req.references.add(id="q", face_id="f")
    for limit in limits:
        req.candidates.add(limit=limit)
    if events:
        req.event_candidates.add(limit=2)
    return req


def test_routing_one_account_one_shard_else_all() -> None:
    spread = str(uuid.uuid4())
    m = ShardMap.uniform(3, spread_accounts=[spread]).with_shard(Shard(3, WARMING))
    account = KEYS[5]
    owner = m.owner(account)
    assert targets(m, _request(account_pb2.AccountScope(account_id=account), 3)) == [owner]
    assert targets(m, _request(account_pb2.AccountScope(account_id=spread), 3)) == [0, 1, 2]
    see_all = account_pb2.AccountScope(account_id=account, see_all=True)
    assert targets(m, _request(see_all, 3)) == [0, 1, 2]  # never the warming shard
    narrowed = account_pb2.AccountScope(account_id=spread, see_all=True, filter_account_id=account)
    assert targets(m, _request(narrowed, 3)) == [owner]
    # event candidates only: one shard; with face candidates only the first gets them
    assert targets(m, _request(see_all, events=True)) == [0]
    req = _request(see_all, 3, events=True)
    asked = requests_for(req, [0, 1, 2])
    assert len(asked[0].event_candidates) == 1
    assert len(asked[1].event_candidates) == 0 and len(asked[1].candidates) == 1


def _reply(*sets: list[tuple[str, float]], index: int = 0) -> matcher_pb2.MatchFacesResponse:
    out = matcher_pb2.MatchFacesResponse()
    res = out.results.add(reference_index=index, face_id="f")
    res.reference.id = "q"
    for matches in sets:
        cr = res.candidates.add()
        for face_id, sim in matches:
            cr.matches.add(similarity=sim).face.face_id = face_id
        cr.total_found = len(matches)
    return out


def test_merge_is_the_exact_top_k_with_deterministic_ties() -> None:
    rng = np.random.default_rng(1)
    sims = {f"face-{i:03d}": float(s) for i, s in enumerate(rng.random(60))}
    sims["face-900"] = sims["face-901"] = 0.99  # a tie across shards
    shard_of = {f: i % 3 for i, f in enumerate(sims)}
    shard_of["face-900"], shard_of["face-901"] = 2, 0
    req = _request(account_pb2.AccountScope(see_all=True), 5, 2)
    replies = []
    for s in range(3):
        mine = sorted(((f, v) for f, v in sims.items() if shard_of[f] == s), key=lambda x: -x[1])
        replies.append(_reply(mine[:5], mine[:2]))
    merged = merge(req, replies)
    truth = sorted(sims.items(), key=lambda x: (-x[1], x[0]))
    got = [(m.face.face_id, m.similarity) for m in merged.results[0].candidates[0].matches]
    assert got == truth[:5]
    assert got[:2] == [("face-900", 0.99), ("face-901", 0.99)]
    assert [m.face.face_id for m in merged.results[0].candidates[1].matches] == [
        f for f, _ in truth[:2]
    ]
    assert merged.results[0].candidates[0].total_found == 5
    # a face two shards hold (while its partition moves) counts once
    dup = merge(req, [_reply([("a", 0.9), ("b", 0.5)], []), _reply([("a", 0.9)], [])])
    assert [m.face.face_id for m in dup.results[0].candidates[0].matches] == ["a", "b"]
    # limit 0 means LUNA's default of 3
    req0 = _request(account_pb2.AccountScope(see_all=True), 0)
    many = merge(req0, [_reply([(f"x{i}", 0.9 - i / 10) for i in range(4)]), _reply([])])
    assert len(many.results[0].candidates[0].matches) == 3


def test_merge_stats() -> None:
    a = matcher_pb2.GetIndexStatsResponse(faces=3, applied_seq=10, descriptor_version=200)
    b = matcher_pb2.GetIndexStatsResponse(faces=4, applied_seq=8, descriptor_version=200)
    out = merge_stats([a, b])
    assert (out.faces, out.applied_seq, out.descriptor_version) == (7, 8, 200)


def _rpc_error(code: grpc.StatusCode, trailer: errors.LunaError | None = None) -> Exception:
    trailing = grpc.aio.Metadata()
    if trailer is not None:
        detail = error_pb2.ErrorDetail(error_code=trailer.code, detail=trailer.detail)
        trailing.add(errors.ERROR_TRAILER, detail.SerializeToString())
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), trailing, "shard says no")


async def test_a_shard_call_is_tried_again_while_no_replica_answers() -> None:
    tries: list[str] = []

    def shard(fail: int, error: Exception) -> Any:
        async def method(request: str, metadata: Any = None, timeout: Any = None) -> str:
            tries.append(request)
            if len(tries) <= fail:
                raise error
            return "answer"

        return method

    down = _rpc_error(grpc.StatusCode.UNAVAILABLE)
    assert await call(shard(2, down), "q", attempts=3) == "answer"
    assert tries == ["q"] * 3
    tries.clear()
    with pytest.raises(errors.LunaError) as info:
        await call(shard(5, down), "q", attempts=3)
    assert info.value.code == errors.REQUEST_TIMEOUT and len(tries) == 3
    tries.clear()
    # A shard's own LUNA error is the answer: not tried again, passed on unchanged.
    luna = errors.LunaError(errors.DESCRIPTOR_NOT_FOUND, "no descriptor")
    with pytest.raises(errors.LunaError) as info:
        await call(shard(5, _rpc_error(grpc.StatusCode.NOT_FOUND, luna)), "q", attempts=3)
    assert (info.value.code, info.value.detail, len(tries)) == (luna.code, "no descriptor", 1)
