"""Wiring of the tasks service."""

from __future__ import annotations

import grpc
from luna.common.v1 import info_pb2
from luna.tasks.v1 import tasks_pb2, tasks_pb2_grpc

from services.common.grpc_server import ServiceApp
from services.common.version import VERSION


class TasksServicer(tasks_pb2_grpc.TasksServiceServicer):
    async def GetInfo(
        self, request: tasks_pb2.GetInfoRequest, context: grpc.aio.ServicerContext
    ) -> tasks_pb2.GetInfoResponse:
        return tasks_pb2.GetInfoResponse(info=info_pb2.ServiceInfo(name="tasks", version=VERSION))


def make_app() -> ServiceApp:
    def register(server: grpc.aio.Server) -> None:
        tasks_pb2_grpc.add_TasksServiceServicer_to_server(TasksServicer(), server)

    return ServiceApp(
        name="tasks",
        service_names=[tasks_pb2.DESCRIPTOR.services_by_name["TasksService"].full_name],
        register=register,
    )
