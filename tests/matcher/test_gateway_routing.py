"""The gateway routes matches to the matcher shards itself when it has the shard map (no
proxy hop): a REST `POST /6/matcher/faces` over an account spread on two shards answers the
exact top k of the live faces (faces of both shards in one answer), keeps read-your-writes
for a create and a delete that just returned, and the gateway follows a new map version.
In-process against real NATS, PostgreSQL and the faces servicers (test_matcher_service's
world) and the real gateway application."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from aiohttp.test_utils import TestClient, TestServer
from luna.common.v1 import info_pb2
from luna.faces.v1 import accounts_pb2_grpc, faces_pb2
from matcher import test_matcher_service as service_tests
from matcher.test_matcher_service import World, create_face, identity, sample
from matcher.test_shard_rebalance import VERSION, owned_faces, start_shard

from services.common import errors
from services.common.grpc_server import ErrorInterceptor
from services.faces.accounts import Accounts
from services.faces.grpc_service import AccountsServicer
from services.faces.tokens import Tokens
from services.gateway import about
from services.gateway.app import build_app
from services.gateway.clients import routes_matches
from services.launcher.embedded import pick_free_port
from services.matcher.shard.partition import ShardMap
from services.matcher.shard.router import Router

pg, template, pool = service_tests.pg, service_tests.template, service_tests.pool
nats_server, world = service_tests.nats_server, service_tests.world


@pytest.fixture
async def accounts_address(pool: Any) -> AsyncIterator[str]:
    """The faces service's AccountsService alone: what the gateway's authentication asks."""

    async def changed(kind: str, account_id: str) -> None:
        return None

    server = grpc.aio.server(interceptors=[ErrorInterceptor()])
    accounts_pb2_grpc.add_AccountsServiceServicer_to_server(
        AccountsServicer(Accounts(pool), Tokens(pool, "test-secret"), info_pb2.ServiceInfo(),
                         changed),
        server,
    )  # fmt: skip
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield f"127.0.0.1:{port}"
    await server.stop(None)


@pytest.mark.timeout(180)
async def test_a_rest_match_fans_out_from_the_gateway_over_two_shards(
    world: World,
    nats_server: Any,
    accounts_address: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    w = world
    w.faces_server_url = nats_server.url  # type: ignore[attr-defined]
    spread = w.a.account_id  # its faces are spread over both shards: every match fans out
    ports = [pick_free_port() for _ in range(2)]
    map_path = tmp_path / "shards.json"
    shard_map = ShardMap.uniform(2, [f"127.0.0.1:{p}" for p in ports], [spread])
    shard_map.save(map_path)
    monkeypatch.setenv("LUNA_MATCHER_SHARD_MAP_POLL", "0.1")
    shards = [await start_shard(w, monkeypatch, tmp_path, i, ports[i], map_path) for i in (0, 1)]
    monkeypatch.delenv("LUNA_MATCHER_SHARD")  # the gateway is no shard
    # The gateway: the shard map, NATS (as it runs), accounts for auth;
    # LUNA_MATCHER_ADDRESS names nothing that listens, so no answer can come from elsewhere.
    monkeypatch.setenv("LUNA_NATS_URL", nats_server.url)
    monkeypatch.setenv("LUNA_FACES_ADDRESS", accounts_address)
    monkeypatch.setenv("LUNA_MATCHER_ADDRESS", f"127.0.0.1:{pick_free_port()}")
    for port_setting in ("LUNA_BACKPORT3_PORT", "LUNA_SENDER_PORT", "LUNA_TASKS_API_PORT"):
        monkeypatch.setenv(port_setting, str(pick_free_port()))
    app = build_app()
    vecs: dict[str, np.ndarray] = {}
    for n in range(24):
        vec = sample(identity(n % 6), 500 + n)
        vecs[await create_face(w, w.a, vec)] = vec
    held = [owned_faces(s) for s, _ in shards]
    assert held[0] and held[1] and held[0] | held[1] == set(vecs)

    async with TestClient(TestServer(app)) as client:
        clients = app["clients"]
        assert isinstance(clients.matcher, Router)
        headers = {"Luna-Account-Id": spread}

        async def rest_match(vec: np.ndarray, limit: int) -> list[dict[str, Any]]:
            packed = base64.b64encode(vec.astype("<f4").tobytes()).decode()
            body = {
                "references": [{"type": "raw_descriptor", "version": VERSION,
                                "descriptor": packed}],
                "candidates": [{"filters": {}, "limit": limit}],
            }  # fmt: skip
            async with client.post("/6/matcher/faces", json=body, headers=headers) as r:
                assert r.status == 200, await r.text()
                return (await r.json())[0]["matches"][0]["result"]  # type: ignore[no-any-return]

        def exact(vec: np.ndarray, limit: int) -> list[str]:
            rows = sorted(vecs, key=lambda f: (-float(vecs[f] @ vec), f))
            return rows[:limit]

        for seed in range(6):
            probe = sample(identity(seed), 9000 + seed)
            got = [m["face"]["face_id"] for m in await rest_match(probe, 8)]
            assert got == exact(probe, 8)
        got = [m["face"]["face_id"] for m in await rest_match(probe, 30)]
        assert got == exact(probe, 30) and set(got) == held[0] | held[1]  # both shards' faces

        # Read-your-writes: a face whose create returned is its own best match, on whichever
        # shard holds it; a face whose delete returned is gone.
        for n in range(4):
            vec = sample(identity(100 + n), 1)
            fid = await create_face(w, w.a, vec)
            vecs[fid] = vec
            (best, *_) = await rest_match(vec, 3)
            assert best["face"]["face_id"] == fid and best["similarity"] > 0.99
            await w.faces.DeleteFace(faces_pb2.DeleteFaceRequest(scope=w.a, face_id=fid))
            del vecs[fid]
            assert fid not in [m["face"]["face_id"] for m in await rest_match(vec, 3)]

        # The gateway follows the map file as the proxy does (a new version within a poll).
        assert clients.matcher.shards.map.version == 1
        ShardMap(2, shard_map.shards, shard_map.spread_accounts).save(map_path)
        for _ in range(100):
            if clients.matcher.shards.map.version == 2:
                break
            await asyncio.sleep(0.05)
        assert clients.matcher.shards.map.version == 2
        probe = sample(identity(3), 7777)
        assert [m["face"]["face_id"] for m in await rest_match(probe, 5)] == exact(probe, 5)

        # /healthcheck's matcher component: every routed shard answers SERVING.
        assert await about.check_service(clients, "matcher") is None
        server1 = shards[1][1]
        await server1.stop(None)
        failed = await about.check_service(clients, "matcher")
        assert failed is not None and failed.code == errors.REQUEST_TIMEOUT

    for state, server in shards:
        await server.stop(None)
        await state.stop(snapshot=False)


def test_the_gateway_routes_only_with_a_shard_map_and_unless_told_not_to(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("LUNA_MATCHER_SHARD_MAP", "LUNA_MATCHER_SHARD_ADDRESSES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("LUNA_GATEWAY_ROUTE_MATCHES", raising=False)
    assert not routes_matches()  # one matcher (`luna up`): LUNA_MATCHER_ADDRESS
    monkeypatch.setenv("LUNA_MATCHER_SHARD_ADDRESSES", "127.0.0.1:1;127.0.0.1:2")
    assert routes_matches()
    monkeypatch.setenv("LUNA_GATEWAY_ROUTE_MATCHES", "0")  # through a proxy instead
    assert not routes_matches()
