"""Server interceptors that put something around every call: the one place that takes a
method handler apart and builds it again around the call, for unary and server-streaming
methods alike (the platform has no client-streaming method).

The wrapped handler is built once per method and kept: a server's handlers are fixed once it
serves, and building them again on every call cost more CPU than a small match itself. What
goes around a call (its request id, its metrics, the mapping of its exception to a status)
is one coroutine with try/finally, not a context manager per concern: a server runs one
interceptor doing all three (grpc_server.serve), since each interceptor and each `async with`
is paid on every call, and the small match is a fraction of a millisecond.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import grpc


class Observer(Protocol):
    """Told how each call of one method ended (metrics.CallMetrics)."""

    def done(self, context: grpc.aio.ServicerContext, started: float, outcome: str) -> None: ...


# Turns a handler's exception into the call's status: it aborts the call (raises AbortError).
ErrorMapper = Callable[[grpc.aio.ServicerContext, Exception, str], Awaitable[None]]


@dataclass(frozen=True)
class Around:
    """What goes around each call of one method; any part may be absent."""

    observer: Observer | None = None
    on_error: ErrorMapper | None = None
    # Set to the call's `id_key` metadata value ("-" without one) for its duration.
    request_id: contextvars.ContextVar[str] | None = None
    id_key: str = ""


class CallWrapper(grpc.aio.ServerInterceptor):
    """An interceptor whose subclass says, per method, what goes around each call."""

    def __init__(self) -> None:
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}

    def around(self, details: grpc.HandlerCallDetails) -> Around:
        """For the method of `details` (called once per method: per-call data comes from
        the context)."""
        return Around()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method = handler_call_details.method
        wrapped = self._wrapped.get(method)
        if wrapped is None:
            handler = await continuation(handler_call_details)
            if handler is None:  # an unknown method: nothing to keep
                return handler
            around = self.around(handler_call_details)
            wrapped = self._wrapped[method] = wrap(handler, method, around)
        return wrapped


def _request_id(context: grpc.aio.ServicerContext, key: str) -> str:
    for k, value in context.invocation_metadata() or ():
        if k == key:
            return value  # type: ignore[no-any-return]
    return "-"


def wrap(handler: grpc.RpcMethodHandler, method: str, around: Around) -> grpc.RpcMethodHandler:
    """`handler` with `around` around each of its calls."""
    observer, on_error, rid, key = (
        around.observer,
        around.on_error,
        around.request_id,
        around.id_key,
    )
    clock = time.perf_counter

    async def failed(context: grpc.aio.ServicerContext, exc: BaseException) -> str:
        """The outcome of a call that raised `exc`; a handler's error becomes the call's
        status here (on_error aborts, which raises) unless the handler aborted itself."""
        if not isinstance(exc, Exception):
            return "CANCELLED"  # cancelled, or the client stopped reading a stream
        if on_error is not None and not isinstance(exc, grpc.aio.AbortError):
            await on_error(context, exc, method)
        return "UNKNOWN"

    def finish(context: grpc.aio.ServicerContext, started: float, outcome: str, token: Any) -> None:
        if observer is not None:
            observer.done(context, started, outcome)
        if token is not None:
            rid.reset(token)  # type: ignore[union-attr]

    if handler.unary_unary:
        fn = handler.unary_unary

        async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            token = rid.set(_request_id(context, key)) if rid is not None else None
            started, outcome = clock(), "UNKNOWN"
            try:
                reply = await fn(request, context)
                outcome = "OK"
                return reply
            except BaseException as exc:
                outcome = await failed(context, exc)
                raise
            finally:
                finish(context, started, outcome, token)

        return grpc.unary_unary_rpc_method_handler(
            unary,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    if handler.unary_stream:
        gen = handler.unary_stream

        async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            token = rid.set(_request_id(context, key)) if rid is not None else None
            started, outcome = clock(), "UNKNOWN"
            try:
                async for item in gen(request, context):
                    yield item
                outcome = "OK"
            except BaseException as exc:
                outcome = await failed(context, exc)
                raise
            finally:
                finish(context, started, outcome, token)

        return grpc.unary_stream_rpc_method_handler(
            stream,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    return handler
