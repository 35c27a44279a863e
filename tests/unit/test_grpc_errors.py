"""The one interceptor: a LunaError raised in a handler reaches the client intact."""

from __future__ import annotations

import grpc
import pytest
from luna.common.v1 import info_pb2
from luna.tasks.v1 import tasks_pb2, tasks_pb2_grpc

from services.common import errors, grpc_client
from services.common.grpc_server import ErrorInterceptor


class _Failing(tasks_pb2_grpc.TasksServiceServicer):
    def __init__(self, exc: Exception | None) -> None:
        self.exc = exc

    async def GetInfo(self, request, context):  # type: ignore[override]
        if self.exc is not None:
            raise self.exc
        return tasks_pb2.GetInfoResponse(info=info_pb2.ServiceInfo(name="t"))


@pytest.mark.parametrize(
    ("exc", "code", "status"),
    [
        (errors.LunaError(22002, "Face with id 'x' not found"), 22002, grpc.StatusCode.NOT_FOUND),
        (errors.LunaError(errors.BAD_JSON, "bad"), 12022, grpc.StatusCode.INVALID_ARGUMENT),
        (RuntimeError("boom"), errors.INTERNAL, grpc.StatusCode.INTERNAL),
    ],
)
async def test_exceptions_map_to_status_and_luna_code(exc, code, status) -> None:
    server = grpc.aio.server(interceptors=[ErrorInterceptor()])
    tasks_pb2_grpc.add_TasksServiceServicer_to_server(_Failing(exc), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as plain:
            with pytest.raises(grpc.aio.AioRpcError) as raw:
                await tasks_pb2_grpc.TasksServiceStub(plain).GetInfo(tasks_pb2.GetInfoRequest())
            assert raw.value.code() == status
        async with grpc_client.channel("tasks", f"127.0.0.1:{port}") as ch:
            with pytest.raises(errors.LunaError) as luna:
                await grpc_client.stub(tasks_pb2_grpc.TasksServiceStub, ch).GetInfo(
                    tasks_pb2.GetInfoRequest()
                )
            assert luna.value.code == code
            if isinstance(exc, errors.LunaError):
                assert luna.value.detail == exc.detail
            else:
                assert "boom" not in luna.value.detail  # internals never leak to clients
    finally:
        await server.stop(None)


async def test_success_passes_through() -> None:
    server = grpc.aio.server(interceptors=[ErrorInterceptor()])
    tasks_pb2_grpc.add_TasksServiceServicer_to_server(_Failing(None), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc_client.channel("tasks", f"127.0.0.1:{port}") as ch:
            reply = await grpc_client.stub(tasks_pb2_grpc.TasksServiceStub, ch).GetInfo(
                tasks_pb2.GetInfoRequest()
            )
        assert reply.info.name == "t"
    finally:
        await server.stop(None)
