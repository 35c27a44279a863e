"""MatcherService in-process against real NATS (JetStream) and PostgreSQL on random ports, with
the faces service's real servicers on an in-process gRPC server: read-your-writes through the
stream, account isolation, filters, limit/threshold, the HNSW path, snapshot + replay
restarts, the full-load path, and LUNA errors."""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import psycopg
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from luna.common.v1 import account_pb2, error_pb2
from luna.faces.v1 import (
    attributes_pb2,
    attributes_pb2_grpc,
    changes_pb2,
    faces_pb2,
    faces_pb2_grpc,
    lists_pb2,
    lists_pb2_grpc,
)
from luna.matcher.v1 import matcher_pb2, matcher_pb2_grpc
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool

from services.common import db, errors, nats_streams
from services.common.grpc_server import ErrorInterceptor
from services.faces import outbox
from services.faces.attributes import Attributes
from services.faces.faces import Faces
from services.faces.grpc_service import AttributesServicer, FacesServicer, ListsServicer
from services.faces.lists import Lists
from services.faces.outbox import Publisher
from services.launcher.embedded import EmbeddedNats, EmbeddedPostgres
from services.launcher.testing import _with_database, running_nats, running_postgres, temp_database
from services.matcher.app import MatcherState

MIGRATIONS = Path(__file__).resolve().parents[2] / "services" / "faces" / "migrations"
VERSION = 200
DIM = 128
Kind = changes_pb2.FaceChange.Kind


# --- infrastructure -----------------------------------------------------------------------
@pytest.fixture(scope="session")
async def pg(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[EmbeddedPostgres]:
    async with running_postgres(tmp_path_factory.mktemp("matcher-pg")) as server:
        yield server


@pytest.fixture(scope="session")
async def template(pg: EmbeddedPostgres) -> AsyncIterator[str]:
    async with temp_database(pg.url, prefix="matcher_template") as url:
        pool = await db.create_pool(url, max_size=2)
        await db.migrate(pool, "faces", MIGRATIONS)
        await pool.close()
        yield url.rsplit("/", 1)[-1] if "://" in url else conninfo_to_dict(url)["dbname"]


@pytest.fixture
async def nats_server(tmp_path: Path) -> AsyncIterator[EmbeddedNats]:
    # One NATS per test: each test's FACES_CHANGES stream starts empty, as a platform's does.
    async with running_nats(tmp_path / "nats") as server:
        yield server


@pytest.fixture
async def pool(pg: EmbeddedPostgres, template: str) -> AsyncIterator[AsyncConnectionPool]:
    name = f"matcher_{uuid.uuid4().hex[:12]}"
    async with await psycopg.AsyncConnection.connect(pg.url, autocommit=True) as conn:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'.encode())
    pool = await db.create_pool(_with_database(pg.url, name), max_size=8)
    yield pool
    await pool.close()
    async with await psycopg.AsyncConnection.connect(pg.url, autocommit=True) as conn:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


@dataclass
class World:
    faces: Any
    lists: Any
    attrs: Any
    a: account_pb2.AccountScope
    b: account_pb2.AccountScope
    admin: account_pb2.AccountScope  # advanced user reading every account
    start_matcher: Callable[..., Any]
    snapshot_dir: Path
    faces_server: Any = None  # the faces service's gRPC server (tests may stop it)
    faces_address: str = ""


@pytest.fixture
async def world(
    pool: AsyncConnectionPool,
    nats_server: EmbeddedNats,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[World]:
    made = [str(uuid.uuid4()) for _ in range(3)]
    async with pool.connection() as conn:
        for account_id, kind in zip(made, ("user", "user", "advanced_user"), strict=True):
            await conn.execute(
                "INSERT INTO accounts (account_id, login, password_hash, account_type)"
                " VALUES (%s, %s, 'x', %s)",
                (account_id, f"{account_id}@example.com", kind),
            )
    nc = await nats_streams.connect(nats_server.url, name="tests-matcher-faces")
    js = nc.jetstream()
    await nats_streams.ensure_streams(js)
    publisher = Publisher(pool, js)
    server = grpc.aio.server(interceptors=[ErrorInterceptor()])
    faces_pb2_grpc.add_FacesServiceServicer_to_server(FacesServicer(Faces(pool, publisher)), server)
    lists_pb2_grpc.add_ListsServiceServicer_to_server(ListsServicer(Lists(pool, publisher)), server)
    attributes_pb2_grpc.add_AttributesServiceServicer_to_server(
        AttributesServicer(Attributes(pool, publisher)), server
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    faces_address = f"127.0.0.1:{port}"
    snapshot_dir = tmp_path / "snapshots"
    monkeypatch.setenv("LUNA_MATCHER_SNAPSHOT_DIR", str(snapshot_dir))
    monkeypatch.setenv("LUNA_MATCHER_SNAPSHOT_INTERVAL", "0")
    states: list[MatcherState] = []
    servers: list[grpc.aio.Server] = []

    async def start_matcher(**env: str) -> tuple[MatcherState, Any]:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        state = MatcherState()
        await state.start(nats_server.url, faces_address)
        srv = grpc.aio.server(interceptors=[ErrorInterceptor()])
        matcher_pb2_grpc.add_MatcherServiceServicer_to_server(state.servicer(), srv)
        mport = srv.add_insecure_port("127.0.0.1:0")
        await srv.start()
        states.append(state)
        servers.append(srv)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{mport}")
        return state, matcher_pb2_grpc.MatcherServiceStub(channel)

    async with grpc.aio.insecure_channel(faces_address) as ch:
        yield World(
            faces=faces_pb2_grpc.FacesServiceStub(ch),
            lists=lists_pb2_grpc.ListsServiceStub(ch),
            attrs=attributes_pb2_grpc.AttributesServiceStub(ch),
            a=account_pb2.AccountScope(account_id=made[0]),
            b=account_pb2.AccountScope(account_id=made[1]),
            admin=account_pb2.AccountScope(account_id=made[2], see_all=True),
            start_matcher=start_matcher,
            snapshot_dir=snapshot_dir,
            faces_server=server,
            faces_address=faces_address,
        )
    for srv in servers:
        await srv.stop(None)
    for state in states:
        await state.stop(snapshot=False)
    await server.stop(None)
    await nc.close()


# --- helpers ------------------------------------------------------------------------------
def identity(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def sample(centre: np.ndarray, seed: int, noise: float = 0.6) -> np.ndarray:
    v = centre + np.random.default_rng(seed).standard_normal(DIM).astype(np.float32) * (
        noise / np.sqrt(DIM)
    )
    return (v / np.linalg.norm(v)).astype(np.float32)


def raw(vec: np.ndarray, version: int = VERSION) -> matcher_pb2.RawDescriptor:
    return matcher_pb2.RawDescriptor(descriptor=vec.astype("<f4").tobytes(), version=version)


async def create_face(
    w: World, scope: account_pb2.AccountScope, vec: np.ndarray | None, **fields: Any
) -> str:
    req = faces_pb2.CreateFaceRequest(scope=scope, **fields)
    if vec is not None:
        req.attribute.data.descriptors.add(descriptor=vec.astype("<f4").tobytes(), version=VERSION)
    return (await w.faces.CreateFace(req)).face.face_id


async def create_list(w: World, scope: account_pb2.AccountScope) -> str:
    return (await w.lists.CreateList(lists_pb2.CreateListRequest(scope=scope))).list.list_id


def by_descriptor(vec: np.ndarray, rid: str = "q") -> matcher_pb2.Reference:
    return matcher_pb2.Reference(id=rid, descriptor=raw(vec))


async def match(
    stub: Any,
    scope: account_pb2.AccountScope,
    refs: list[matcher_pb2.Reference],
    *cands: matcher_pb2.FaceCandidates,
) -> matcher_pb2.MatchFacesResponse:
    return await stub.MatchFaces(
        matcher_pb2.MatchFacesRequest(scope=scope, references=refs, candidates=list(cands))
    )


def ids_of(resp: matcher_pb2.MatchFacesResponse, ref: int = 0, cand: int = 0) -> list[str]:
    return [m.face.face_id for m in resp.results[ref].candidates[cand].matches]


def luna_code(exc: grpc.aio.AioRpcError) -> int:
    for key, value in exc.trailing_metadata() or ():
        if key == errors.ERROR_TRAILER:
            return error_pb2.ErrorDetail.FromString(value).error_code
    raise AssertionError(f"no LUNA error trailer: {exc}")


async def expect_error(code: int, call: Any) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    assert luna_code(info.value) == code, info.value


# --- tests --------------------------------------------------------------------------------
async def test_matchable_when_create_returns_and_gone_when_delete_returns(world: World) -> None:
    w = world
    _, stub = await w.start_matcher()
    person = identity(1)
    waits = []
    for i in range(20):
        fid = await create_face(w, w.a, sample(person, 100 + i), user_data=f"u{i}")
        began = time.perf_counter()
        resp = await match(
            stub,
            w.a,
            [matcher_pb2.Reference(id=fid, face_id=fid)],
            matcher_pb2.FaceCandidates(face_ids=[fid], limit=1),
        )
        waits.append(time.perf_counter() - began)
        assert ids_of(resp) == [fid]
        assert resp.results[0].candidates[0].matches[0].similarity == pytest.approx(1.0, abs=1e-5)
        assert resp.results[0].candidates[0].matches[0].face.user_data == f"u{i}"
        await w.faces.DeleteFace(faces_pb2.DeleteFaceRequest(scope=w.a, face_id=fid))
        resp = await match(
            stub,
            w.a,
            [by_descriptor(sample(person, 100 + i))],
            matcher_pb2.FaceCandidates(limit=30),
        )
        assert fid not in ids_of(resp)
    assert sorted(waits)[len(waits) // 2] < 0.5  # the median match, wait included, is quick


async def test_a_match_begun_behind_the_stream_waits_and_matches_again(world: World) -> None:
    """The match runs while the stream position is read; when the follower had not applied
    that position yet, the first answer is dropped: the face whose create returned is found."""
    w = world
    state, stub = await w.start_matcher()
    sync = state.sync
    person = identity(7)
    gate = asyncio.Event()
    real_apply = sync._apply

    async def held(ix: Any, msgs: Any) -> int:
        await gate.wait()
        return await real_apply(ix, msgs)

    sync._apply = held  # type: ignore[method-assign]
    try:
        fid = await create_face(w, w.a, sample(person, 1), user_data="late")
        stream_last = (await sync.js.stream_info("FACES_CHANGES")).state.last_seq
        assert sync.applied_seq < stream_last  # the follower holds the create back
        pending = asyncio.create_task(
            match(stub, w.a, [by_descriptor(sample(person, 2))], matcher_pb2.FaceCandidates())
        )
        await asyncio.sleep(0.3)
        assert not pending.done()  # the answer without the face was not given
    finally:
        gate.set()
    resp = await pending
    assert ids_of(resp)[:1] == [fid]
    assert resp.results[0].candidates[0].matches[0].face.user_data == "late"


async def test_cached_face_records_follow_every_change(world: World) -> None:
    """Match results come from the record cache after the first match, yet a PATCH, a list
    attach/detach, a list deletion or a face deletion shows in the very next match."""
    w = world
    state, stub = await w.start_matcher()
    person = identity(7)
    fid = await create_face(w, w.a, sample(person, 1), user_data="before")
    lst = await create_list(w, w.a)
    cands = matcher_pb2.FaceCandidates(face_ids=[fid], limit=1)

    async def record() -> faces_pb2.Face:
        resp = await match(stub, w.a, [by_descriptor(sample(person, 2))], cands)
        (found,) = resp.results[0].candidates[0].matches
        return found.face

    assert (await record()).user_data == "before"
    hits = state.sync.records.hits
    assert (await record()).user_data == "before" and state.sync.records.hits == hits + 1
    await w.faces.UpdateFace(faces_pb2.UpdateFaceRequest(scope=w.a, face_id=fid, user_data="x"))
    assert (await record()).user_data == "x"
    await w.lists.AttachFaces(lists_pb2.AttachFacesRequest(scope=w.a, list_id=lst, face_ids=[fid]))
    assert list((await record()).list_ids) == [lst]
    await w.lists.DetachFaces(lists_pb2.DetachFacesRequest(scope=w.a, list_id=lst, face_ids=[fid]))
    assert list((await record()).list_ids) == []
    await w.lists.AttachFaces(lists_pb2.AttachFacesRequest(scope=w.a, list_id=lst, face_ids=[fid]))
    assert list((await record()).list_ids) == [lst]
    await w.lists.DeleteList(lists_pb2.DeleteListRequest(scope=w.a, list_id=lst))
    assert list((await record()).list_ids) == []
    # Another account never gets A's cached record.
    resp = await match(stub, w.b, [by_descriptor(sample(person, 2))], cands)
    assert ids_of(resp) == []
    await w.faces.DeleteFace(faces_pb2.DeleteFaceRequest(scope=w.a, face_id=fid))
    resp = await match(stub, w.a, [by_descriptor(sample(person, 2))], cands)
    assert ids_of(resp) == []


async def test_per_face_link_messages_of_a_previous_version_still_apply(
    world: World, nats_server: EmbeddedNats
) -> None:
    """A stream written before links were one KIND_*_MANY message holds one KIND_ATTACH /
    KIND_DETACH per face: the matcher still applies them (index, lists and records)."""
    w = world
    _, stub = await w.start_matcher()
    person = identity(11)
    fid = await create_face(w, w.a, sample(person, 1))
    lst = await create_list(w, w.a)
    in_list = matcher_pb2.FaceCandidates(list_id=lst, limit=1)
    nc = await nats_streams.connect(nats_server.url, name="tests-matcher-old-faces")
    try:
        for kind, lists in ((Kind.KIND_ATTACH, [lst]), (Kind.KIND_DETACH, [])):
            old = outbox.change(kind, w.a.account_id, face_id=fid, list_id=lst, list_ids=lists)
            old.face.CopyFrom(faces_pb2.Face(face_id=fid, account_id=w.a.account_id))
            old.face.list_ids.extend(lists)
            await nc.jetstream().publish(
                outbox.subject_for(w.a.account_id),
                old.SerializeToString(),
                headers={"Nats-Msg-Id": old.change_id},
            )
            resp = await match(stub, w.a, [by_descriptor(sample(person, 2))], in_list)
            assert ids_of(resp) == ([fid] if lists else [])
            if lists:
                assert list(resp.results[0].candidates[0].matches[0].face.list_ids) == [lst]
    finally:
        await nc.close()


async def test_accounts_are_isolated_unless_see_all(world: World) -> None:
    w = world
    _, stub = await w.start_matcher()
    person = identity(2)
    fa = await create_face(w, w.a, sample(person, 1))
    fb = await create_face(w, w.b, sample(person, 2))
    q = [by_descriptor(sample(person, 3))]
    everyone = matcher_pb2.FaceCandidates(limit=10)
    assert ids_of(await match(stub, w.a, q, everyone)) == [fa]
    assert ids_of(await match(stub, w.b, q, everyone)) == [fb]
    # B names A's face as a candidate or as a reference: invisible / not found.
    got = await match(stub, w.b, q, matcher_pb2.FaceCandidates(face_ids=[fa, fb]))
    assert ids_of(got) == [fb]
    await expect_error(22002, match(stub, w.b, [matcher_pb2.Reference(face_id=fa)], everyone))
    # An advanced user reading every account sees both, or one account with the filter.
    assert set(ids_of(await match(stub, w.admin, q, everyone))) == {fa, fb}
    only_b = account_pb2.AccountScope(
        account_id=w.admin.account_id, see_all=True, filter_account_id=w.b.account_id
    )
    assert ids_of(await match(stub, only_b, q, everyone)) == [fb]


async def test_lists_filters_limit_threshold(world: World) -> None:
    w = world
    _, stub = await w.start_matcher()
    person, other = identity(3), identity(4)
    l1, l2 = await create_list(w, w.a), await create_list(w, w.a)
    t0 = Timestamp()
    t0.GetCurrentTime()
    same = [
        await create_face(
            w,
            w.a,
            sample(person, 10 + i),
            list_ids=[l1] if i < 3 else [l2],
            user_data=f"person {i}",
            external_id=f"ext-{i % 2}",
        )
        for i in range(6)
    ]
    stranger = await create_face(w, w.a, other, list_ids=[l1], user_data="stranger")
    q = [by_descriptor(sample(person, 99))]

    got = await match(stub, w.a, q, matcher_pb2.FaceCandidates(list_id=l1, limit=10))
    assert set(ids_of(got)) == {*same[:3], stranger}
    # Default limit is 3, results best first.
    resp = await match(stub, w.a, q, matcher_pb2.FaceCandidates())
    sims = [m.similarity for m in resp.results[0].candidates[0].matches]
    assert len(sims) == 3 and sims == sorted(sims, reverse=True)
    assert resp.results[0].candidates[0].total_found == 3
    # Threshold drops the stranger (cosine ~0 -> similarity ~0.01).
    resp = await match(stub, w.a, q, matcher_pb2.FaceCandidates(limit=100, threshold=0.3))
    assert set(ids_of(resp)) == set(same)
    assert all(m.similarity >= 0.3 for m in resp.results[0].candidates[0].matches)
    # Filters only PostgreSQL knows, alone and combined with the list.
    got = await match(stub, w.a, q, matcher_pb2.FaceCandidates(user_data="stranger", limit=10))
    assert ids_of(got) == [stranger]
    got = await match(stub, w.a, q, matcher_pb2.FaceCandidates(external_ids=["ext-1"], limit=10))
    assert set(ids_of(got)) == {same[1], same[3], same[5]}
    got = await match(
        stub, w.a, q, matcher_pb2.FaceCandidates(list_id=l2, external_ids=["ext-0"], limit=10)
    )
    assert ids_of(got) == [same[4]]
    got = await match(stub, w.a, q, matcher_pb2.FaceCandidates(create_time_gte=t0, limit=10))
    assert len(ids_of(got)) == 7
    future = Timestamp(seconds=t0.seconds + 3600)
    got = await match(stub, w.a, q, matcher_pb2.FaceCandidates(create_time_gte=future))
    assert ids_of(got) == []
    # face_ids and list together: the intersection.
    got = await match(
        stub, w.a, q, matcher_pb2.FaceCandidates(list_id=l1, face_ids=[same[0], same[4]])
    )
    assert ids_of(got) == [same[0]]
    # Several references x several candidate sets; the result rows follow request order.
    resp = await match(
        stub,
        w.a,
        [*q, by_descriptor(other, "o")],
        matcher_pb2.FaceCandidates(list_id=l1, limit=1),
        matcher_pb2.FaceCandidates(list_id=l2, limit=1),
    )
    assert [r.reference.id for r in resp.results] == ["q", "o"]
    assert ids_of(resp, 1, 0) == [stranger]
    assert ids_of(resp, 0, 1)[0] in same[3:]
    # Attach / detach / delete list follow the stream at once.
    await w.lists.AttachFaces(
        lists_pb2.AttachFacesRequest(scope=w.a, list_id=l2, face_ids=[stranger])
    )
    got = await match(
        stub, w.a, [by_descriptor(other)], matcher_pb2.FaceCandidates(list_id=l2, limit=1)
    )
    assert ids_of(got) == [stranger]
    assert list(got.results[0].candidates[0].matches[0].face.list_ids) == [l1, l2]
    await w.lists.DetachFaces(
        lists_pb2.DetachFacesRequest(scope=w.a, list_id=l2, face_ids=[stranger])
    )
    got = await match(
        stub, w.a, [by_descriptor(other)], matcher_pb2.FaceCandidates(list_id=l2, limit=10)
    )
    assert stranger not in ids_of(got)
    await w.lists.DeleteList(lists_pb2.DeleteListRequest(scope=w.a, list_id=l1))
    got = await match(stub, w.a, q, matcher_pb2.FaceCandidates(list_id=l1, limit=10))
    assert ids_of(got) == []


async def test_references_by_face_attribute_external_id(world: World) -> None:
    w = world
    _, stub = await w.start_matcher()
    person = identity(5)
    f1 = await create_face(w, w.a, sample(person, 1), external_id="alice")
    f2 = await create_face(w, w.a, sample(person, 2), external_id="alice")
    f3 = await create_face(w, w.a, sample(person, 3))
    no_descriptor = await create_face(w, w.a, None, external_id="nobody")
    attr = await w.attrs.CreateAttribute(
        attributes_pb2.CreateAttributeRequest(
            scope=w.a,
            data=attributes_pb2.AttributeData(
                descriptors=[
                    attributes_pb2.Descriptor(
                        descriptor=sample(person, 4).astype("<f4").tobytes(), version=VERSION
                    )
                ]
            ),
            ttl_seconds=60,
        )
    )
    aid = attr.attribute.attribute_id
    cands = matcher_pb2.FaceCandidates(face_ids=[f3], limit=1)
    resp = await match(
        stub,
        w.a,
        [
            matcher_pb2.Reference(id=f1, face_id=f1),
            matcher_pb2.Reference(id=aid, attribute_id=aid),
            matcher_pb2.Reference(id="alice", external_id="alice"),
        ],
        cands,
    )
    # The external id names two faces: one result per face.
    assert [(r.reference.id, r.face_id) for r in resp.results] == [
        (f1, f1),
        (aid, ""),
        ("alice", min(f1, f2)),
        ("alice", max(f1, f2)),
    ]
    assert all(ids_of(resp, i) == [f3] for i in range(4))
    assert all(r.candidates[0].matches[0].similarity > 0.5 for r in resp.results)
    # Not found / no descriptor.
    missing = str(uuid.uuid4())
    await expect_error(22002, match(stub, w.a, [matcher_pb2.Reference(face_id=missing)], cands))
    await expect_error(
        22011, match(stub, w.a, [matcher_pb2.Reference(attribute_id=missing)], cands)
    )
    await expect_error(11041, match(stub, w.a, [matcher_pb2.Reference(external_id="zz")], cands))
    await expect_error(
        11032, match(stub, w.a, [matcher_pb2.Reference(face_id=no_descriptor)], cands)
    )
    # Several attribute references are fetched together; a missing one still gets 22011,
    # and another account's attribute is not visible.
    two = [matcher_pb2.Reference(id=str(i), attribute_id=aid) for i in range(2)]
    resp = await match(stub, w.a, two, cands)
    assert [ids_of(resp, i) for i in range(2)] == [[f3], [f3]]
    await expect_error(
        22011, match(stub, w.a, [*two, matcher_pb2.Reference(attribute_id=missing)], cands)
    )
    await expect_error(22011, match(stub, w.b, two, cands))


async def create_attribute(
    w: World, scope: account_pb2.AccountScope, vec: np.ndarray, ttl: int = 60
) -> str:
    made = await w.attrs.CreateAttribute(
        attributes_pb2.CreateAttributeRequest(
            scope=scope,
            data=attributes_pb2.AttributeData(
                descriptors=[
                    attributes_pb2.Descriptor(
                        descriptor=vec.astype("<f4").tobytes(), version=VERSION
                    )
                ]
            ),
            ttl_seconds=ttl,
        )
    )
    return made.attribute.attribute_id


async def test_attribute_references_resolve_from_the_stream_never_after_delete(
    world: World,
) -> None:
    """A created attribute's notice reaches the matcher, which then matches by its id with
    the faces service stopped; a deleted one is 22011 at once (faces decides)."""
    w = world
    state, stub = await w.start_matcher()
    person = identity(11)
    face = await create_face(w, w.a, sample(person, 1))
    kept = await create_attribute(w, w.a, sample(person, 2))
    gone = await create_attribute(w, w.a, sample(person, 3))
    await w.attrs.DeleteAttribute(
        attributes_pb2.DeleteAttributeRequest(scope=w.a, attribute_id=gone)
    )
    cands = matcher_pb2.FaceCandidates(face_ids=[face], limit=1)
    await expect_error(22011, match(stub, w.a, [matcher_pb2.Reference(attribute_id=gone)], cands))
    await expect_error(22011, match(stub, w.b, [matcher_pb2.Reference(attribute_id=kept)], cands))
    cache = state.sync.attributes
    assert cache.get(kept, w.a.account_id) is not None and cache.get(gone, None) is None
    await w.faces_server.stop(None)
    resp = await match(stub, w.a, [matcher_pb2.Reference(attribute_id=kept)], cands)
    assert ids_of(resp) == [face]
    # Another account's attribute stays invisible without the faces service too: no
    # answer from the cache (the faces service would be asked, and it is down).
    with pytest.raises(grpc.aio.AioRpcError):
        await match(stub, w.b, [matcher_pb2.Reference(attribute_id=kept)], cands)


async def test_bad_input_gets_luna_errors(world: World) -> None:
    w = world
    _, stub = await w.start_matcher()
    good = identity(6)
    c = matcher_pb2.FaceCandidates()
    bad_refs = {
        12034: matcher_pb2.RawDescriptor(descriptor=good[:64].tobytes(), version=VERSION),
        26302: matcher_pb2.RawDescriptor(
            descriptor=np.full(DIM, np.nan, np.float32).tobytes(), version=VERSION
        ),
        31001: matcher_pb2.RawDescriptor(descriptor=good.tobytes(), version=59),
    }
    for code, desc in bad_refs.items():
        await expect_error(code, match(stub, w.a, [matcher_pb2.Reference(descriptor=desc)], c))
    await expect_error(
        12034,
        match(
            stub,
            w.a,
            [matcher_pb2.Reference(descriptor=matcher_pb2.RawDescriptor(descriptor=b"abc"))],
            c,
        ),
    )
    await expect_error(12031, match(stub, w.a, [by_descriptor(good)] * 31, c))
    await expect_error(12031, match(stub, w.a, [by_descriptor(good)], *([c] * 31)))
    await expect_error(12031, match(stub, w.a, [], c))
    await expect_error(
        12031, match(stub, w.a, [by_descriptor(good)], matcher_pb2.FaceCandidates(threshold=1.5))
    )
    await expect_error(
        12031,
        match(stub, w.a, [by_descriptor(good)], matcher_pb2.FaceCandidates(face_ids=["nope"])),
    )
    # No candidate sets at all is allowed (0..30): each reference gets an empty list.
    resp = await match(stub, w.a, [by_descriptor(good)])
    assert len(resp.results) == 1 and not resp.results[0].candidates


async def test_match_raw(world: World) -> None:
    w = world
    _, stub = await w.start_matcher()
    person = identity(7)
    ents = [
        matcher_pb2.RawEntity(id=f"c{i}", descriptor=raw(v))
        for i, v in enumerate([identity(8), sample(person, 1), identity(9)])
    ]
    resp = await stub.MatchRaw(
        matcher_pb2.MatchRawRequest(
            references=[matcher_pb2.RawEntity(id="r", descriptor=raw(sample(person, 2)))],
            candidates=ents,
        )
    )
    row = resp.results[0]
    assert row.reference_id == "r"
    assert row.matches[0].candidate_id == "c1"
    assert row.matches[0].similarity > 0.5 > row.matches[1].similarity
    await expect_error(
        31001,
        stub.MatchRaw(
            matcher_pb2.MatchRawRequest(
                references=[matcher_pb2.RawEntity(id="r", descriptor=raw(person, 57))],
                candidates=ents,
            )
        ),
    )


async def test_hnsw_path_equals_exact(world: World) -> None:
    w = world
    state, stub = await w.start_matcher(LUNA_MATCHER_INDEX_THRESHOLD="60")
    lst = await create_list(w, w.a)
    made = [
        await create_face(w, w.a, sample(identity(1000 + i // 2), i), list_ids=[lst])
        for i in range(90)
    ]
    assert state.sync is not None
    assert state.sync.ix.wait_for_builds(30)
    stats = await stub.GetIndexStats(matcher_pb2.GetIndexStatsRequest())
    modes = {c.list_id: c.mode for c in stats.collections if c.kind == "list"}
    assert modes[lst] == "hnsw" and stats.faces == 90
    for i in range(0, 90, 9):
        q = [by_descriptor(sample(identity(1000 + i // 2), 5000 + i))]
        hnsw = await match(stub, w.a, q, matcher_pb2.FaceCandidates(list_id=lst, limit=2))
        exact = await match(stub, w.a, q, matcher_pb2.FaceCandidates(face_ids=made, limit=2))
        assert ids_of(hnsw) == ids_of(exact)
        assert set(ids_of(hnsw)) == {made[i - i % 2], made[i - i % 2 + 1]}


async def test_match_answers_face_records_while_faces_service_is_stopped(world: World) -> None:
    """Face records travel in FACES_CHANGES / StreamDescriptors and snapshots: with the faces
    service stopped a match (and a restart from a snapshot) still answers every field."""
    w = world
    lst = await create_list(w, w.a)
    people = [identity(300 + i) for i in range(3)]
    early = await create_face(  # before the matcher starts: arrives by the full load
        w, w.a, sample(people[0], 1), user_data="early", external_id="ext-0", list_ids=[lst]
    )
    state, stub = await w.start_matcher()
    late = await create_face(  # after: arrives by FACES_CHANGES
        w, w.a, sample(people[1], 1), user_data="late", external_id="ext-1", list_ids=[lst]
    )
    patched = await create_face(w, w.a, sample(people[2], 1), user_data="v1")
    await w.faces.UpdateFace(
        faces_pb2.UpdateFaceRequest(scope=w.a, face_id=patched, user_data="v2", avatar="a.jpg")
    )
    await w.lists.AttachFaces(
        lists_pb2.AttachFacesRequest(scope=w.a, list_id=lst, face_ids=[patched])
    )
    truth = {
        f: (
            await w.faces.GetFace(faces_pb2.GetFaceRequest(scope=w.a, face_id=f, with_lists=True))
        ).face
        for f in (early, late, patched)
    }
    assert all(list(t.list_ids) == [lst] for t in truth.values())
    await state.sync.wait_applied(timeout=5.0)
    assert state.sync.records.misses == 0
    # the read-your-writes target (STREAM.INFO with only last_seq parsed) is nats-py's
    full = (await state.sync.js.stream_info("FACES_CHANGES")).state.last_seq
    assert await state.sync._last_seq(2.0) == full == state.sync.applied_seq
    await w.faces_server.stop(None)

    async def check(s: Any) -> None:
        for person, face_id in zip(people, (early, late, patched), strict=True):
            resp = await match(
                s,
                w.a,
                [by_descriptor(sample(person, 2))],
                matcher_pb2.FaceCandidates(list_id=lst, limit=1),
            )
            (found,) = resp.results[0].candidates[0].matches
            assert found.face == truth[face_id]
            assert found.face.has_attribute and 0.5 < found.similarity <= 1.0

    await check(stub)
    assert truth[patched].user_data == "v2" and truth[patched].avatar == "a.jpg"
    assert truth[early].external_id == "ext-0" and truth[early].create_time.seconds > 0
    await state.stop()  # writes a snapshot with the records
    state2, stub2 = await w.start_matcher()  # faces still stopped: snapshot + stream only
    assert state2.sync.snapshot_seq > 0 and len(state2.sync.records) == 3
    await check(stub2)
    assert state2.sync.records.misses == 0


async def test_bulk_import_is_matchable_with_records_and_all_or_nothing(world: World) -> None:
    """ImportFaces: rows, lists and FACES_CHANGES (with face records) as CreateFace gives,
    one transaction per batch; bad input leaves nothing behind."""
    w = world
    state, stub = await w.start_matcher()
    lst = await create_list(w, w.a)
    people = [identity(400 + i) for i in range(20)]
    batch = faces_pb2.ImportFacesRequest(scope=w.a, descriptor_version=VERSION, list_ids=[lst])
    for i, p in enumerate(people):
        batch.faces.add(
            descriptor=(sample(p, 1) * 3.0).astype("<f4").tobytes(),  # normalised on store
            user_data=f"u{i}",
            external_id=f"e{i}",
        )
    face_ids = list((await w.faces.ImportFaces(batch)).face_ids)
    assert len(set(face_ids)) == 20
    got = (
        await w.faces.GetFace(
            faces_pb2.GetFaceRequest(scope=w.a, face_id=face_ids[3], with_lists=True)
        )
    ).face
    assert (got.user_data, got.external_id, list(got.list_ids), got.has_attribute) == (
        "u3",
        "e3",
        [lst],
        True,
    )
    attr = await w.faces.GetFaceAttribute(
        faces_pb2.GetFaceAttributeRequest(
            scope=w.a, face_id=face_ids[3], descriptor_version=VERSION
        )
    )
    vec = np.frombuffer(attr.attribute.data.descriptors[0].descriptor, dtype="<f4")
    assert abs(float(np.linalg.norm(vec)) - 1.0) < 1e-5
    for i in (0, 7, 19):
        resp = await match(
            stub,
            w.a,
            [by_descriptor(sample(people[i], 2))],
            matcher_pb2.FaceCandidates(list_id=lst, limit=1),
        )
        (found,) = resp.results[0].candidates[0].matches
        assert found.face.face_id == face_ids[i] and found.face.user_data == f"u{i}"
        assert list(found.face.list_ids) == [lst]
    assert state.sync.records.misses == 0
    before = (await w.faces.CountFaces(faces_pb2.CountFacesRequest(scope=w.a))).count
    bad = faces_pb2.ImportFacesRequest()
    bad.CopyFrom(batch)
    for f in bad.faces:
        f.face_id = str(uuid.uuid4())
    bad.faces[5].descriptor = b"\0" * 12
    await expect_error(12034, w.faces.ImportFaces(bad))
    bad.faces[5].descriptor = bad.faces[4].descriptor
    bad.list_ids[:] = [str(uuid.uuid4())]
    await expect_error(22005, w.faces.ImportFaces(bad))
    bad.list_ids[:] = [lst]
    bad.faces[9].face_id = face_ids[0]  # exists: the whole batch is refused
    await expect_error(22001, w.faces.ImportFaces(bad))
    assert (await w.faces.CountFaces(faces_pb2.CountFacesRequest(scope=w.a))).count == before


async def test_luna_faces_import_file(world: World, tmp_path: Path) -> None:
    """`luna faces import`: a JSON Lines file in batches with a progress bar; a bad line stops
    the import and names the lines of the refused batch."""
    import base64
    import io
    import json

    from services.faces.importer import import_file

    w = world
    lst = await create_list(w, w.a)
    rng = np.random.default_rng(5)
    path = tmp_path / "faces.jsonl"
    with path.open("w") as f:
        for i in range(2500):
            vec = rng.standard_normal(DIM).astype("<f4")
            row = {"descriptor": base64.b64encode(vec.tobytes()).decode(), "user_data": f"u{i}"}
            f.write(json.dumps(row) + "\n")
    out = io.StringIO()
    status = await import_file(
        path,
        account_id=w.a.account_id,
        list_ids=[lst],
        version=VERSION,
        address=w.faces_address,
        batch=1000,
        out=out,
    )
    assert status == 0, out.getvalue()
    assert "2500/2500 faces" in out.getvalue().splitlines()[-1]
    count = await w.faces.CountFaces(
        faces_pb2.CountFacesRequest(scope=w.a, filter=faces_pb2.FaceFilter(list_id=lst))
    )
    assert count.count == 2500
    with path.open("a") as f:
        f.write(json.dumps({"descriptor": base64.b64encode(b"\0" * 8).decode()}) + "\n")
    out = io.StringIO()
    status = await import_file(
        path,
        account_id=w.a.account_id,
        list_ids=[lst],
        version=VERSION,
        address=w.faces_address,
        batch=1000,
        out=out,
    )
    assert status == 1 and "lines 2001..2501: 12034" in out.getvalue()


async def test_restart_from_snapshot_replays_and_full_load(world: World) -> None:
    w = world
    state, stub = await w.start_matcher()
    lst = await create_list(w, w.a)
    people = [identity(200 + i) for i in range(5)]
    faces = [await create_face(w, w.a, sample(p, 1), list_ids=[lst]) for p in people]
    queries = [[by_descriptor(sample(p, 2))] for p in people]
    cands = matcher_pb2.FaceCandidates(list_id=lst, limit=5)

    async def answers(s: Any) -> list[list[tuple[str, float]]]:
        out = []
        for q in queries:
            r = await match(s, w.a, q, cands)
            out.append(
                [
                    (m.face.face_id, round(m.similarity, 5))
                    for m in r.results[0].candidates[0].matches
                ]
            )
        return out

    before = await answers(stub)
    assert [row[0][0] for row in before] == faces
    await state.stop()  # graceful: writes a snapshot at the current stream sequence
    snap = await _snapshot_seq(w.snapshot_dir)
    assert snap > 0
    state1b, stub1b = await w.start_matcher()  # snapshot, nothing to replay
    assert await answers(stub1b) == before
    await state1b.stop()
    # Changes while the matcher is down are replayed from the stream after the snapshot.
    await w.faces.DeleteFace(faces_pb2.DeleteFaceRequest(scope=w.a, face_id=faces[0]))
    late = await create_face(w, w.a, sample(people[0], 3), list_ids=[lst])
    state2, stub2 = await w.start_matcher()
    assert state2.sync is not None and state2.sync.snapshot_seq == snap
    got = await answers(stub2)
    assert got[0][0][0] == late and faces[0] not in {f for row in got for f, _ in row}
    assert [row[0] for row in got[1:]] == [row[0] for row in before[1:]]
    # The same state loaded from scratch (no snapshot) answers identically.
    await state2.stop(snapshot=False)
    for path in w.snapshot_dir.iterdir():
        if path.is_file():
            path.unlink()
    state3, stub3 = await w.start_matcher()
    assert state3.sync is not None and state3.sync.snapshot_seq == 0
    assert await answers(stub3) == got
    # Admin: snapshot now, rebuild.
    snap_reply = await stub3.SaveSnapshot(matcher_pb2.SaveSnapshotRequest())
    assert snap_reply.stream_seq == state3.sync.applied_seq
    rebuilt = await stub3.RebuildIndex(matcher_pb2.RebuildIndexRequest())
    assert rebuilt.faces == 5
    assert await answers(stub3) == got


async def _snapshot_seq(root: Path) -> int:
    from services.matcher.core.snapshot import current_snapshot

    path = current_snapshot(root)
    assert path is not None
    return int(path.name.split("-")[1])


# --- descriptor versions ------------------------------------------------------------------
MFN, MFN_DIM = 201, 192


def identity_mfn(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(MFN_DIM).astype(np.float32)
    return v / np.linalg.norm(v)


async def add_descriptor(
    w: World, scope: account_pb2.AccountScope, face_id: str, vec: np.ndarray, version: int
) -> None:
    """What additional_extract does: the face's attribute with one more version."""
    got = await w.faces.GetFaceAttribute(
        faces_pb2.GetFaceAttributeRequest(scope=scope, face_id=face_id)
    )
    data = attributes_pb2.AttributeData()
    data.CopyFrom(got.attribute.data)
    data.descriptors.add(descriptor=vec.astype("<f4").tobytes(), version=version)
    await w.faces.PutFaceAttribute(
        faces_pb2.PutFaceAttributeRequest(
            scope=scope, face_id=face_id, attribute=faces_pb2.FaceAttributeInput(data=data)
        )
    )


async def test_each_version_has_its_own_index_and_snapshot(world: World) -> None:
    """200 and 201 descriptors live in separate indexes: a 201 reference searches only the
    201 descriptors (faces without one are no candidates, a list of 200-only faces matches
    nothing), the default version is untouched, a version nobody indexes is 31001, and each
    version is snapshotted and restored on its own."""
    w = world
    state, stub = await w.start_matcher()
    assert sorted(state.syncs) == [VERSION, MFN]
    lst = await create_list(w, w.a)
    both = [await create_face(w, w.a, identity(i), list_ids=[lst]) for i in range(3)]
    only200 = await create_face(w, w.a, identity(9), list_ids=[lst])
    for i, fid in enumerate(both):
        await add_descriptor(w, w.a, fid, identity_mfn(50 + i), MFN)
    in_list = matcher_pb2.FaceCandidates(list_id=lst, limit=10)

    def ref201(vec: np.ndarray) -> matcher_pb2.Reference:
        return matcher_pb2.Reference(id="q", descriptor=raw(vec, MFN))

    resp = await match(stub, w.a, [ref201(identity_mfn(51))], in_list)
    assert ids_of(resp)[0] == both[1]
    assert set(ids_of(resp)) == set(both)  # only200 has no 201 descriptor: never a candidate
    resp = await match(stub, w.a, [by_descriptor(identity(9))], in_list)
    assert ids_of(resp)[0] == only200 and len(ids_of(resp)) == 4
    # The request's version may also be given explicitly; face references then use it.
    req = matcher_pb2.MatchFacesRequest(
        scope=w.a,
        references=[matcher_pb2.Reference(id=both[2], face_id=both[2])],
        candidates=[in_list],
        descriptor_version=MFN,
    )
    assert ids_of(await stub.MatchFaces(req))[0] == both[2]
    # A face reference without a descriptor of the version: the documented 22018.
    req.references[0].face_id = only200
    await expect_error(errors.DESCRIPTOR_VERSION_NOT_FOUND, stub.MatchFaces(req))
    # A list holding only 200 faces matches nothing in 201.
    lst200 = await create_list(w, w.a)
    await create_face(w, w.a, identity(20), list_ids=[lst200])
    resp = await match(
        stub, w.a, [ref201(identity_mfn(50))], matcher_pb2.FaceCandidates(list_id=lst200)
    )
    assert ids_of(resp) == []
    # Versions nobody indexes, and a descriptor of the wrong size for its version.
    await expect_error(
        errors.DESCRIPTOR_VERSION_MISMATCH,
        match(stub, w.a, [matcher_pb2.Reference(id="q", descriptor=raw(identity(1), 57))], in_list),
    )
    await expect_error(
        errors.BAD_DESCRIPTOR_LENGTH, match(stub, w.a, [ref201(identity(1))], in_list)
    )
    # Snapshot per version; a restart from the snapshots answers the same.
    assert len(state.syncs[MFN].ix) == 3 and len(state.syncs[VERSION].ix) == 5
    stats = await stub.GetIndexStats(matcher_pb2.GetIndexStatsRequest(descriptor_version=MFN))
    assert (stats.faces, stats.descriptor_version) == (3, MFN)
    stats = await stub.GetIndexStats(matcher_pb2.GetIndexStatsRequest())
    assert (stats.faces, stats.descriptor_version) == (5, VERSION)
    await expect_error(
        errors.DESCRIPTOR_VERSION_MISMATCH,
        stub.GetIndexStats(matcher_pb2.GetIndexStatsRequest(descriptor_version=57)),
    )
    await state.stop()
    assert await _snapshot_seq(w.snapshot_dir / "v201") > 0
    state2, stub2 = await w.start_matcher()
    assert state2.syncs[MFN].snapshot_seq > 0 and len(state2.syncs[MFN].ix) == 3
    resp = await match(stub2, w.a, [ref201(identity_mfn(51))], in_list)
    assert ids_of(resp)[0] == both[1] and set(ids_of(resp)) == set(both)
    # Without snapshots each version loads from the faces service (its own descriptors only).
    await state2.stop(snapshot=False)
    shutil.rmtree(w.snapshot_dir)
    state3, stub3 = await w.start_matcher()
    assert state3.syncs[MFN].snapshot_seq == 0
    assert len(state3.syncs[MFN].ix) == 3 and len(state3.syncs[VERSION].ix) == 5
    resp = await match(stub3, w.a, [ref201(identity_mfn(52))], in_list)
    assert ids_of(resp)[0] == both[2] and set(ids_of(resp)) == set(both)
