"""The one interceptor: a LunaError raised in a handler reaches the client intact."""

from __future__ import annotations

import grpc
import pytest
from luna.common.v1 import info_pb2
from luna.tasks.v1 import tasks_pb2, tasks_pb2_grpc

from services.common import errors, grpc_client, logs
from services.common.grpc_server import REQUEST_ID_KEY, ErrorInterceptor, ServedInterceptor


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
@pytest.mark.parametrize(
    "interceptor",
    [ErrorInterceptor, lambda: ServedInterceptor(with_metrics=True)],
    ids=["errors", "served"],  # alone, and as `serve` runs it: with the metrics, in one wrapper
)
async def test_exceptions_map_to_status_and_luna_code(exc, code, status, interceptor) -> None:
    server = grpc.aio.server(interceptors=[interceptor()])
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


class _Echo(tasks_pb2_grpc.TasksServiceServicer):
    async def GetInfo(self, request, context):  # type: ignore[override]
        return tasks_pb2.GetInfoResponse(info=info_pb2.ServiceInfo(name=logs.request_id.get()))


@pytest.mark.parametrize("with_metrics", [False, True])
async def test_each_call_carries_its_own_request_id(with_metrics: bool) -> None:
    """The wrapped handler is built once per method; the request id is still each call's."""
    interceptor = ServedInterceptor(with_metrics=with_metrics)
    server = grpc.aio.server(interceptors=[interceptor])
    tasks_pb2_grpc.add_TasksServiceServicer_to_server(_Echo(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            stub = tasks_pb2_grpc.TasksServiceStub(ch)
            got = []
            for rid in ("1536751345,aaaa", "1536751345,bbbb", None):
                metadata = ((REQUEST_ID_KEY, rid),) if rid else None
                reply = await stub.GetInfo(tasks_pb2.GetInfoRequest(), metadata=metadata)
                got.append(reply.info.name)
        assert got == ["1536751345,aaaa", "1536751345,bbbb", "-"]
        assert list(interceptor._wrapped) == ["/luna.tasks.v1.TasksService/GetInfo"]
    finally:
        await server.stop(None)
