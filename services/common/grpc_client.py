"""gRPC client side: channels to sibling services, request-id propagation, error mapping.

Stubs are wrapped rather than intercepted: an aio client interceptor that raises leaves grpc's
InterceptedCall to re-raise from its finalizer, so the mapping lives in a thin proxy instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import grpc
from luna.common.v1 import error_pb2

from services.common import config, errors, logs
from services.common.grpc_server import REQUEST_ID_KEY

StubT = TypeVar("StubT")
GRPC_OPTIONS = [
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    # A name with several addresses (a headless Kubernetes Service, a compose service scaled
    # up) gets calls spread over all of them; the default pick_first would use only one.
    ("grpc.lb_policy_name", "round_robin"),
]


def luna_error_from_rpc(exc: grpc.aio.AioRpcError) -> errors.LunaError:
    """Rebuild the LunaError a service raised from the trailer it attached."""
    for key, value in exc.trailing_metadata() or ():
        if key == errors.ERROR_TRAILER:
            detail = error_pb2.ErrorDetail.FromString(value)
            return errors.LunaError(detail.error_code, detail.detail)
    if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return errors.LunaError(errors.REQUEST_TIMEOUT, f"service unavailable: {exc.details()}")
    return errors.LunaError(errors.INTERNAL, exc.details() or "internal error")


def _metadata(extra: Any) -> tuple[tuple[str, str], ...]:
    return (*tuple(extra or ()), (REQUEST_ID_KEY, logs.request_id.get()))


class _Unary:
    def __init__(self, method: Callable[..., Any]) -> None:
        self._method = method

    async def __call__(self, request: Any, *, metadata: Any = None, **kwargs: Any) -> Any:
        try:
            return await self._method(request, metadata=_metadata(metadata), **kwargs)
        except grpc.aio.AioRpcError as exc:
            raise luna_error_from_rpc(exc) from None


class _Streaming:
    def __init__(self, method: Callable[..., Any]) -> None:
        self._method = method

    async def __call__(self, request: Any, *, metadata: Any = None, **kwargs: Any) -> Any:
        call = self._method(request, metadata=_metadata(metadata), **kwargs)
        try:
            async for item in call:
                yield item
        except grpc.aio.AioRpcError as exc:
            raise luna_error_from_rpc(exc) from None


class LunaStub(Generic[StubT]):
    """Proxy of a generated stub whose calls carry the request id and raise LunaError."""

    def __init__(self, stub: StubT) -> None:
        self._stub = stub

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        method = getattr(self._stub, name)
        wrapped: Any = (
            _Streaming(method)
            if isinstance(method, grpc.aio.UnaryStreamMultiCallable)
            else _Unary(method)
        )
        setattr(self, name, wrapped)
        return wrapped


def stub(stub_class: Callable[[grpc.aio.Channel], StubT], channel: grpc.aio.Channel) -> Any:
    return LunaStub(stub_class(channel))


def channel(service: str, address: str | None = None) -> grpc.aio.Channel:
    """An insecure channel to a sibling service."""
    return grpc.aio.insecure_channel(
        address or config.service_address(service), options=GRPC_OPTIONS
    )
