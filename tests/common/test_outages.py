"""Services ride through a PostgreSQL or NATS restart (issue 9, defect 2): while the server is
down a request fails fast with the documented LUNA error (10017 / 2, HTTP 503), never a hang
or a bare 500, and once it is back the same pool / connection serves again by itself."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import grpc
import pytest
from luna.common.v1 import info_pb2
from luna.tasks.v1 import tasks_pb2, tasks_pb2_grpc

from services.common import db, errors, grpc_client, nats_streams
from services.common.grpc_server import ErrorInterceptor
from services.launcher.embedded import EmbeddedNats, EmbeddedPostgres


class _UsesPool(tasks_pb2_grpc.TasksServiceServicer):
    def __init__(self, pool: db.Pool) -> None:
        self.pool = pool

    async def GetInfo(self, request, context):  # type: ignore[override]
        async with self.pool.connection() as conn:
            cur = await conn.execute("select 'up' as state")
            row = await cur.fetchone()
        return tasks_pb2.GetInfoResponse(info=info_pb2.ServiceInfo(name=row["state"]))


async def test_database_outage_answers_10017_fast_and_the_pool_recovers(
    tmp_path: Path, stop_after, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LUNA_DB_POOL_TIMEOUT_S", "1.5")
    pg = stop_after(EmbeddedPostgres(tmp_path / "pg"))
    await pg.start()
    pool = await db.create_pool(pg.url, min_size=2, max_size=4)
    server = grpc.aio.server(interceptors=[ErrorInterceptor()])
    tasks_pb2_grpc.add_TasksServiceServicer_to_server(_UsesPool(pool), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc_client.channel("tasks", f"127.0.0.1:{port}") as ch:
            stub = grpc_client.stub(tasks_pb2_grpc.TasksServiceStub, ch)
            assert (await stub.GetInfo(tasks_pb2.GetInfoRequest())).info.name == "up"
            await pg.stop()
            for _ in range(3):  # broken pooled connections, then no connection at all
                started = time.monotonic()
                with pytest.raises(errors.LunaError) as err:
                    await stub.GetInfo(tasks_pb2.GetInfoRequest())
                assert err.value.code == errors.DATABASE_ERROR
                assert err.value.http_status == 503
                assert time.monotonic() - started < 5.0
            await pg.restart()
            # The same pool serves again without a restart of the service.
            deadline = time.monotonic() + 10
            while True:
                try:
                    reply = await stub.GetInfo(tasks_pb2.GetInfoRequest())
                    break
                except errors.LunaError as exc:
                    assert exc.code == errors.DATABASE_ERROR
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.2)
            assert reply.info.name == "up"
            # Not one broken connection left to fail a later request.
            for _ in range(8):
                assert (await stub.GetInfo(tasks_pb2.GetInfoRequest())).info.name == "up"
    finally:
        await server.stop(None)
        await pool.close()


async def test_nats_outage_publish_fails_fast_and_resumes_after_restart(
    tmp_path: Path, stop_after
) -> None:
    server = stop_after(EmbeddedNats(tmp_path / "nats"))
    await server.start()
    nc = await nats_streams.connect(server.url, name="outage-test")
    reconnected = asyncio.Event()

    async def on_back() -> None:
        reconnected.set()

    nats_streams.on_reconnect(nc, on_back)
    try:
        js = nc.jetstream()
        await nats_streams.ensure_streams(js)
        subject = "luna.faces.changes.test"
        first = await nats_streams.publish(js, subject, b"1", "m-1")
        await server.stop()
        for i in range(5):
            started = time.monotonic()
            with pytest.raises(Exception) as exc:
                await nats_streams.publish(js, subject, b"x", f"down-{i}")
            assert nats_streams.is_outage(exc.value)
            assert nats_streams.outage_error(exc.value).http_status == 503
            assert time.monotonic() - started < 0.5  # not the 5 s ack timeout per message
        await server.restart()
        await asyncio.wait_for(reconnected.wait(), 10)
        # The stream (file storage) survived the restart; publishing goes on from there.
        assert await nats_streams.publish(js, subject, b"2", "m-2") == first + 1
    finally:
        await nc.close()
