"""Wiring of the tasks service: database, NATS (TASKS_WORK), the engine and the servicer."""

from __future__ import annotations

from pathlib import Path

import grpc
from luna.tasks.v1 import tasks_pb2, tasks_pb2_grpc

from services.common import service_main
from services.common.grpc_server import ServiceApp
from services.tasks import settings
from services.tasks.engine import Engine
from services.tasks.grpc_service import TasksServicer
from services.tasks.store import TaskStore
from services.tasks.types import load_all
from services.tasks.worker import ensure_consumer, make_deps

MIGRATIONS = Path(__file__).with_name("migrations")


def make_app() -> ServiceApp:
    resources = service_main.Resources()
    state: dict[str, object] = {}

    async def startup() -> None:
        load_all()  # the task types' imports at start, not in the first request or plan
        pool = await resources.database("tasks", MIGRATIONS)
        js = (await resources.nats("tasks")).jetstream()
        work = settings.work()
        await ensure_consumer(js, work)
        deps = make_deps()
        deps.store = TaskStore(pool)  # the reporter reads the clustering task it reports
        eng = Engine(pool, deps, js, work)
        eng.start()  # picks up whatever a previous run left unplanned or uncollected
        resources.on_close(eng.stop)
        state.update(engine=eng, store=TaskStore(pool))

    def register(server: grpc.aio.Server) -> None:
        store, eng = state["store"], state["engine"]
        assert isinstance(store, TaskStore) and isinstance(eng, Engine)
        tasks_pb2_grpc.add_TasksServiceServicer_to_server(
            TasksServicer(store, eng.deps, eng), server
        )

    return service_main.service_app("tasks", [tasks_pb2], register, startup, resources)
