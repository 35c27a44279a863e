"""Read-your-writes through the matcher proxy: for a fanned-out match the first shard reads
the changes stream's position (once per match, as a lone matcher, and reports it), the
others do not; a shard whose follower is held back is asked again once it has applied that
position, so a face whose create returned is found."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import grpc
import pytest
from luna.common.v1 import account_pb2
from luna.matcher.v1 import matcher_pb2, matcher_pb2_grpc
from matcher import test_matcher_service as service_tests
from matcher.test_matcher_service import World, by_descriptor, create_face, identity, sample
from matcher.test_shard_rebalance import VERSION, start_shard

from services.common import nats_streams
from services.common.grpc_server import ErrorInterceptor
from services.launcher.embedded import pick_free_port
from services.matcher.proxy.app import ProxyServicer, Shards, add_to_server
from services.matcher.shard.partition import ShardMap

pg, template, pool = service_tests.pg, service_tests.template, service_tests.pool
nats_server, world = service_tests.nats_server, service_tests.world


@pytest.mark.timeout(120)
async def test_a_shard_behind_the_proxys_position_waits_and_the_face_is_found(
    world: World, nats_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = world
    w.faces_server_url = nats_server.url  # type: ignore[attr-defined]
    spread = w.a.account_id  # a's faces are spread over both shards: its matches fan out
    ports = [pick_free_port() for _ in range(2)]
    map_path = tmp_path / "shards.json"
    shard_map = ShardMap.uniform(2, [f"127.0.0.1:{p}" for p in ports], [spread])
    shard_map.save(map_path)
    shards = [await start_shard(w, monkeypatch, tmp_path, i, ports[i], map_path) for i in (0, 1)]
    syncs = [state.syncs[VERSION] for state, _ in shards]
    position_reads = [0, 0]
    for i, sync in enumerate(syncs):
        real_read = sync.read_position

        def counted(timeout: float, i: int = i, real_read: Any = real_read) -> Any:
            position_reads[i] += 1
            return real_read(timeout)

        sync.read_position = counted  # type: ignore[method-assign]
    nc = await nats_streams.connect(nats_server.url)
    proxy_shards = Shards(ShardMap.load(map_path), map_path)
    proxy = grpc.aio.server(interceptors=[ErrorInterceptor()])
    servicer = ProxyServicer(proxy_shards)
    add_to_server(servicer, proxy)  # MatchFaces in bytes where one shard answers
    proxy_port = proxy.add_insecure_port("127.0.0.1:0")
    await proxy.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{proxy_port}")
    stub = matcher_pb2_grpc.MatcherServiceStub(channel)

    async def match(scope: account_pb2.AccountScope, vec: Any) -> matcher_pb2.MatchFacesResponse:
        return await stub.MatchFaces(
            matcher_pb2.MatchFacesRequest(
                scope=scope,
                references=[by_descriptor(vec)],
                candidates=[matcher_pb2.FaceCandidates(limit=3)],
            )
        )

    gate = asyncio.Event()
    held = syncs[1]
    real_apply = held._apply

    async def held_back(ix: Any, msgs: Any) -> int:
        await gate.wait()
        return await real_apply(ix, msgs)

    try:
        # Both followers up to date, then shard 1's held back: a face it owns is not applied.
        await create_face(w, w.a, sample(identity(3), 1))
        for sync in syncs:
            assert await sync.wait_applied(5.0)
        position_reads[:] = [0, 0]  # wait_applied reads it: count from here
        held._apply = held_back  # type: ignore[method-assign]
        n = 1
        while True:
            person = identity(100 + n)  # one face per identity: the best match is that face
            fid = await create_face(w, w.a, sample(person, 1), user_data="late")
            if shard_map.owner(spread, fid) == 1:
                break
            n += 1
        stream_last = (await nc.jetstream().stream_info("FACES_CHANGES")).state.last_seq
        assert held.applied_seq < stream_last  # shard 1 holds the create back
        admin = account_pb2.AccountScope(account_id=w.admin.account_id, see_all=True)
        pending = [
            asyncio.create_task(match(w.a, sample(person, 100))),
            asyncio.create_task(match(admin, sample(person, 100))),
        ]
        await asyncio.sleep(0.3)
        assert not any(p.done() for p in pending)  # no answer without the face was given
    finally:
        gate.set()
    for resp in await asyncio.gather(*pending):
        best = resp.results[0].candidates[0].matches[0]
        assert best.face.face_id == fid and best.face.user_data == "late"
    assert position_reads == [2, 0]  # the first shard read it, once per match, for both

    # Up to date: one answer per shard, and still only the first shard reads the position.
    resp = await match(w.a, sample(person, 101))
    assert resp.results[0].candidates[0].matches[0].face.face_id == fid
    assert position_reads == [3, 0]
    # The answer is held to the position the first shard read, as a lone matcher's is.
    assert resp.applied_seq == 0 and resp.stream_position > 0

    # b's faces are on one shard: the match passes through as it came, and that shard
    # reads the position itself (read-your-writes as a lone matcher's).
    owner = shard_map.owner(w.b.account_id)
    other = sample(identity(999), 1)
    fid_b = await create_face(w, w.b, other, user_data="b")
    resp = await match(w.b, sample(identity(999), 2))
    best = resp.results[0].candidates[0].matches[0]
    assert best.face.face_id == fid_b and best.face.user_data == "b"
    assert position_reads == ([4, 0] if owner == 0 else [3, 1])
    assert resp.applied_seq == 0  # the shard's own reply, unchanged

    await channel.close()
    await proxy.stop(None)
    await proxy_shards.close()
    await nc.close()
    for state, server in shards:
        await server.stop(None)
        await state.stop(snapshot=False)
