"""Sharded matcher end to end, in-process against real NATS, PostgreSQL and the faces
servicers (the `world` of test_matcher_service): two shards behind the matcher proxy answer
exactly what one matcher holding every face answers (a numpy scan of the live faces), and a
third shard added under load (warming, then active, then the old owners drop what moved)
keeps every match exact during and after the move; a shard restarts from its partition's
snapshot."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health, health_pb2_grpc
from luna.common.v1 import account_pb2
from luna.faces.v1 import faces_pb2, lists_pb2
from luna.matcher.v1 import matcher_pb2, matcher_pb2_grpc
from matcher import test_matcher_service as service_tests
from matcher.test_matcher_service import World, create_face, create_list, identity, raw, sample

from services.common.grpc_server import ErrorInterceptor
from services.common.stopping import cancel_and_wait
from services.launcher.embedded import pick_free_port
from services.matcher.app import MatcherState
from services.matcher.proxy.app import ProxyServicer
from services.matcher.shard.partition import LEAVING, Shard, ShardMap, ShardMapError
from services.matcher.shard.rebalance import add_shard, remove_shard
from services.matcher.shard.router import Router, Shards

VERSION = 200
# The in-process world of test_matcher_service (PostgreSQL, NATS, the faces servicers).
pg, template, pool = service_tests.pg, service_tests.template, service_tests.pool
nats_server, world = service_tests.nats_server, service_tests.world


class Truth:
    """What the faces service holds: face -> (account, list or '', unit vector)."""

    def __init__(self) -> None:
        self.faces: dict[str, tuple[str, str, np.ndarray]] = {}

    def top(self, vec: np.ndarray, limit: int, account: str | None, list_id: str = "") -> list:
        rows = [
            (f, float(v @ vec))
            for f, (a, lst, v) in self.faces.items()
            if (account is None or a == account) and (not list_id or lst == list_id)
        ]
        return [f for f, _ in sorted(rows, key=lambda r: (-r[1], r[0]))[:limit]]


async def start_shard(
    w: World, monkeypatch: pytest.MonkeyPatch, tmp: Path, shard: int, port: int, map_path: Path
) -> tuple[MatcherState, grpc.aio.Server]:
    monkeypatch.setenv("LUNA_MATCHER_SHARD", str(shard))
    monkeypatch.setenv("LUNA_MATCHER_SHARD_MAP", str(map_path))
    monkeypatch.setenv("LUNA_MATCHER_SNAPSHOT_DIR", str(tmp / f"shard{shard}"))
    state = MatcherState()
    await state.start(w.faces_server_url, w.faces_address)
    server = grpc.aio.server(interceptors=[ErrorInterceptor()])
    matcher_pb2_grpc.add_MatcherServiceServicer_to_server(state.servicer(), server)
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    return state, server


def owned_faces(state: MatcherState) -> set[str]:
    return set(state.syncs[VERSION].ix._faces)


async def stop_shards(shards: list[tuple[MatcherState, grpc.aio.Server]]) -> None:
    while shards:
        state, server = shards.pop()
        await server.stop(None)
        await state.stop(snapshot=False)


@pytest.fixture
async def teardown() -> AsyncIterator[list[Callable[[], Awaitable[object]]]]:
    """Stops what a test started even when it fails: shards or a load left running would keep
    working on the session's event loop, and the servers they use could not stop after."""
    later: list[Callable[[], Awaitable[object]]] = []
    yield later
    for stop in reversed(later):
        with contextlib.suppress(Exception):
            await asyncio.wait_for(stop(), 30)


async def more_accounts(pool: Any, n: int) -> list[account_pb2.AccountScope]:
    made = []
    async with pool.connection() as conn:
        for _ in range(n):
            account_id = str(uuid.uuid4())
            await conn.execute(
                "INSERT INTO accounts (account_id, login, password_hash, account_type)"
                " VALUES (%s, %s, 'x', 'user')",
                (account_id, f"{account_id}@example.com"),
            )
            made.append(account_pb2.AccountScope(account_id=account_id))
    return made


class Traffic:
    """Faces written, deleted and matched through a MatcherService (`match`: the proxy's
    stub or a Router), every match checked against the truth (a numpy scan)."""

    def __init__(
        self, w: World, accounts: list[account_pb2.AccountScope], lists: dict[str, str],
        match: Any,
    ) -> None:  # fmt: skip
        self.w, self.accounts, self.lists, self.match = w, accounts, lists, match
        self.truth = Truth()
        self.rng = np.random.default_rng(5)
        self.seq = iter(range(10**6))
        self.moving = True
        self.checks = 0

    async def add_face(self, scope: account_pb2.AccountScope) -> None:
        n = next(self.seq)
        vec = sample(identity(n % 23), 1000 + n)
        in_list = n % 2 == 0
        fid = await create_face(self.w, scope, vec)
        list_id = self.lists[scope.account_id]
        if in_list:
            await self.w.lists.AttachFaces(
                lists_pb2.AttachFacesRequest(scope=scope, list_id=list_id, face_ids=[fid])
            )
        self.truth.faces[fid] = (scope.account_id, list_id if in_list else "", vec)

    async def check(self) -> int:
        """Every account's view and list, and all accounts (see_all), against the truth."""
        checked = 0
        rng, truth = self.rng, self.truth
        probe = sample(identity(int(rng.integers(23))), int(rng.integers(10**6)))
        admin = account_pb2.AccountScope(account_id=self.w.admin.account_id, see_all=True)
        for scope in [*self.accounts, admin]:
            account = None if scope.see_all else scope.account_id
            cands = [matcher_pb2.FaceCandidates(limit=4)]
            if account:
                cands.append(matcher_pb2.FaceCandidates(list_id=self.lists[account], limit=3))
            resp = await self.match(
                matcher_pb2.MatchFacesRequest(
                    scope=scope,
                    references=[matcher_pb2.Reference(id="p", descriptor=raw(probe))],
                    candidates=cands,
                ),
                timeout=30,
            )
            got = [[m.face.face_id for m in c.matches] for c in resp.results[0].candidates]
            want = [truth.top(probe, 4, account)]
            if account:
                want.append(truth.top(probe, 3, account, self.lists[account]))
            assert got == want, (scope, got, want)
            checked += 1
        return checked

    async def load(self) -> None:
        """Until `moving` is cleared: a face added, now and then one deleted, and a check."""
        i = 0
        truth = self.truth
        while self.moving or i < 3:
            i += 1
            await self.add_face(self.accounts[i % len(self.accounts)])
            if i % 4 == 0:
                fid = sorted(truth.faces)[int(self.rng.integers(len(truth.faces)))]
                await self.w.faces.DeleteFace(
                    faces_pb2.DeleteFaceRequest(
                        scope=account_pb2.AccountScope(account_id=truth.faces[fid][0]),
                        face_id=fid,
                    )
                )
                del truth.faces[fid]
            self.checks += await self.check()


@pytest.mark.timeout(240)
async def test_shards_behind_the_proxy_match_exactly_and_a_new_shard_joins_under_load(
    world: World,
    pool: Any,
    nats_server: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    teardown: list[Callable[[], Awaitable[object]]],
) -> None:
    w = world
    w.faces_server_url = nats_server.url  # type: ignore[attr-defined]
    monkeypatch.setenv("LUNA_MATCHER_SHARD_MAP_POLL", "0.1")
    monkeypatch.setenv("LUNA_MATCHER_SHARD_PRUNE_DELAY", "0.5")
    # Accounts: world's a (spread over the shards by face id), b, and six more.
    accounts = [w.a, w.b, *await more_accounts(pool, 6)]
    spread = w.a.account_id
    ports = [pick_free_port() for _ in range(3)]
    map_path = tmp_path / "shards.json"
    ShardMap.uniform(2, [f"127.0.0.1:{p}" for p in ports[:2]], [spread]).save(map_path)
    shards: list[tuple[MatcherState, grpc.aio.Server]] = []
    teardown.append(lambda: stop_shards(shards))
    for i in (0, 1):
        shards.append(await start_shard(w, monkeypatch, tmp_path, i, ports[i], map_path))
    proxy_shards = Shards(ShardMap.load(map_path), map_path)
    proxy = grpc.aio.server(interceptors=[ErrorInterceptor()])
    matcher_pb2_grpc.add_MatcherServiceServicer_to_server(ProxyServicer(proxy_shards), proxy)
    proxy_port = proxy.add_insecure_port("127.0.0.1:0")
    await proxy.start()
    teardown.append(proxy_shards.close)
    teardown.append(lambda: proxy.stop(None))
    watcher = asyncio.create_task(proxy_shards.watch(0.1))
    teardown.append(lambda: cancel_and_wait(watcher))
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{proxy_port}")
    teardown.append(channel.close)
    stub = matcher_pb2_grpc.MatcherServiceStub(channel)

    lists = {s.account_id: await create_list(w, s) for s in accounts}
    traffic = Traffic(w, accounts, lists, stub.MatchFaces)
    truth, check = traffic.truth, traffic.check
    for scope in accounts:
        for _ in range(12 if scope is w.a else 5):
            await traffic.add_face(scope)
    await check()
    held = [owned_faces(s) for s, _ in shards]
    assert held[0] and held[1] and not held[0] & held[1]
    assert held[0] | held[1] == set(truth.faces)  # each face on exactly one shard
    # A face reference whose face another shard holds resolves too (through the faces service).
    far = next(f for f in held[1] if truth.faces[f][0] == spread)
    resp = await stub.MatchFaces(
        matcher_pb2.MatchFacesRequest(
            scope=w.a,
            references=[matcher_pb2.Reference(id=far, face_id=far)],
            candidates=[matcher_pb2.FaceCandidates(limit=1)],
        )
    )
    assert [m.face.face_id for m in resp.results[0].candidates[0].matches] == [far]

    # --- a third shard joins while faces are written, deleted and matched -----------------
    loader = asyncio.create_task(traffic.load())
    teardown.append(lambda: cancel_and_wait(loader))
    shards.append(await start_shard(w, monkeypatch, tmp_path, 2, ports[2], map_path))
    warming, final = await asyncio.wait_for(add_shard(map_path, 2, f"127.0.0.1:{ports[2]}"), 60)
    assert (warming.version, final.version) == (2, 3)
    for _ in range(200):  # the proxy switches, then the old owners drop what moved
        if proxy_shards.map.version == 3 and all(s.member.map.version == 3 for s, _ in shards):
            break
        await asyncio.sleep(0.1)
    traffic.moving = False
    await asyncio.wait_for(loader, 120)
    assert traffic.checks > 20
    await check()

    held = [owned_faces(s) for s, _ in shards]
    assert held[2], "the new shard holds its partition"
    assert sum(map(len, held)) == len(truth.faces) and set().union(*held) == set(truth.faces)
    for shard_id, faces in enumerate(held):
        part = final.partition(shard_id)
        assert all(part.owns(truth.faces[f][0], f) for f in faces)
    stats = await stub.GetIndexStats(matcher_pb2.GetIndexStatsRequest())
    assert stats.faces == len(truth.faces) and stats.shard_map_version == 3

    # A shard restarts from its own partition's snapshot (no reload from the faces service)
    # and the proxy's channel finds it again.
    state0, server0 = shards[0]
    await server0.stop(None)
    await state0.stop(snapshot=True)
    snapshots = list((tmp_path / "shard0").glob("shard-0-*"))
    assert [p.name for p in snapshots] == [f"shard-0-{final.partition(0).signature}"]
    shards[0] = await start_shard(w, monkeypatch, tmp_path, 0, ports[0], map_path)
    restarted = shards[0][0]
    assert restarted.syncs[VERSION].snapshot_seq > 0  # loaded from the snapshot
    assert owned_faces(restarted) == held[0]
    await check()


@pytest.mark.timeout(240)
async def test_a_shard_is_removed_under_load_and_its_faces_move_to_the_others(
    world: World,
    pool: Any,
    nats_server: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    teardown: list[Callable[[], Awaitable[object]]],
) -> None:
    """Three shards -> two (`rebalance remove`): the leaving shard serves its keys while the
    others rebuild theirs with its share, then the routers (here the Router the gateway
    runs) switch; every match is exact throughout, and no face is lost."""
    w = world
    w.faces_server_url = nats_server.url  # type: ignore[attr-defined]
    monkeypatch.setenv("LUNA_MATCHER_SHARD_MAP_POLL", "0.1")
    monkeypatch.setenv("LUNA_MATCHER_SHARD_PRUNE_DELAY", "0.5")
    accounts = [w.a, w.b, *await more_accounts(pool, 6)]
    ports = [pick_free_port() for _ in range(3)]
    map_path = tmp_path / "shards.json"
    ShardMap.uniform(3, [f"127.0.0.1:{p}" for p in ports], [w.a.account_id]).save(map_path)
    shards: list[tuple[MatcherState, grpc.aio.Server]] = []
    teardown.append(lambda: stop_shards(shards))
    for i in range(3):
        shards.append(await start_shard(w, monkeypatch, tmp_path, i, ports[i], map_path))
    router = Router(Shards(ShardMap.load(map_path), map_path))
    teardown.append(router.shards.close)
    watcher = asyncio.create_task(router.shards.watch(0.1))
    teardown.append(lambda: cancel_and_wait(watcher))
    lists = {s.account_id: await create_list(w, s) for s in accounts}
    traffic = Traffic(w, accounts, lists, router.MatchFaces)
    for scope in accounts:
        for _ in range(12 if scope is w.a else 4):
            await traffic.add_face(scope)
    await traffic.check()
    held = [owned_faces(s) for s, _ in shards]
    assert all(held) and sum(map(len, held)) == len(traffic.truth.faces)

    loader = asyncio.create_task(traffic.load())
    teardown.append(lambda: cancel_and_wait(loader))
    leaving, final = await asyncio.wait_for(remove_shard(map_path, 2), 60)
    assert (leaving.version, final.version) == (2, 3)
    assert [s.id for s in final.shards] == [0, 1]
    for _ in range(200):  # the router switches; the remaining shards hold v3
        if router.shards.map.version == 3 and all(s.member.map.version == 3 for s, _ in shards[:2]):
            break
        await asyncio.sleep(0.1)
    assert router.shards.map.version == 3
    # The removed shard is stopped only now, after the router read the map without it.
    state2, server2 = shards.pop()
    await server2.stop(None)
    await state2.stop(snapshot=False)
    traffic.moving = False
    await asyncio.wait_for(loader, 120)
    assert traffic.checks > 20
    await traffic.check()

    held = [owned_faces(s) for s, _ in shards]
    faces = set(traffic.truth.faces)
    assert sum(map(len, held)) == len(faces) and set().union(*held) == faces
    for shard_id, owned in enumerate(held):
        part = final.partition(shard_id)
        assert all(part.owns(traffic.truth.faces[f][0], f) for f in owned)
    stats = await router.index_stats()
    assert stats.faces == len(faces) and stats.shard_map_version == 3
    one = ShardMap.uniform(1, ["127.0.0.1:1"])
    with pytest.raises(ShardMapError):  # the last shard cannot leave
        one.with_shard(Shard(0, LEAVING, "127.0.0.1:1"))
