"""Wiring of the tasks service: database, NATS (TASKS_WORK), the engine and the servicer."""

from __future__ import annotations

from pathlib import Path

import grpc
from luna.tasks.v1 import tasks_pb2, tasks_pb2_grpc
from nats.aio.client import Client as NATS
from psycopg_pool import AsyncConnectionPool

from services.common import config, db, nats_streams
from services.common.grpc_server import ServiceApp
from services.tasks.engine import Engine
from services.tasks.grpc_service import TasksServicer
from services.tasks.store import TaskStore
from services.tasks.worker import ensure_consumer, make_deps

MIGRATIONS = Path(__file__).with_name("migrations")


def make_app() -> ServiceApp:
    state: dict[str, object] = {}

    async def startup() -> None:
        pool: AsyncConnectionPool = await db.create_pool(config.database_url(), max_size=10)
        await db.migrate(pool, "tasks", MIGRATIONS)
        nc = await nats_streams.connect(config.nats_url(), name="tasks")
        js = nc.jetstream()
        await nats_streams.ensure_streams(js)
        await ensure_consumer(js)
        deps = make_deps()
        deps.store = TaskStore(pool)  # the reporter reads the clustering task it reports
        eng = Engine(pool, deps, js)
        eng.start()  # picks up whatever a previous run left unplanned or uncollected
        state.update(pool=pool, nc=nc, deps=deps, engine=eng, store=TaskStore(pool))

    def register(server: grpc.aio.Server) -> None:
        store, eng = state["store"], state["engine"]
        assert isinstance(store, TaskStore) and isinstance(eng, Engine)
        tasks_pb2_grpc.add_TasksServiceServicer_to_server(
            TasksServicer(store, eng.deps, eng), server
        )

    async def shutdown() -> None:
        eng = state.get("engine")
        if isinstance(eng, Engine):
            await eng.stop()
        nc = state.get("nc")
        if isinstance(nc, NATS):
            await nc.drain()
        pool = state.get("pool")
        if isinstance(pool, AsyncConnectionPool):
            await pool.close()

    return ServiceApp(
        name="tasks",
        service_names=[tasks_pb2.DESCRIPTOR.services_by_name["TasksService"].full_name],
        register=register,
        startup=startup,
        shutdown=shutdown,
    )
