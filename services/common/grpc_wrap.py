"""Server interceptors that put something around every call: the one place that takes a
method handler apart and builds it again around the call, for unary and server-streaming
methods alike (the platform has no client-streaming method).

The wrapped handler is built once per method and kept: a server's handlers are fixed once it
serves, and building them again on every call cost more CPU than a small match itself."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import grpc

Around = Callable[[grpc.aio.ServicerContext], AbstractAsyncContextManager[Any]]


class CallWrapper(grpc.aio.ServerInterceptor):
    """An interceptor whose subclass says, per method, what to enter around each call."""

    def __init__(self) -> None:
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}

    @abstractmethod
    def around(self, details: grpc.HandlerCallDetails) -> Around:
        """For the method of `details` (called once per method: per-call data comes from
        the context): the async context manager (made from the call's context) that each of
        its calls runs in; it may turn the call's exception into a status by aborting."""

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
            wrapped = self._wrapped[method] = self._wrap(handler, handler_call_details)
        return wrapped

    def _wrap(
        self, handler: grpc.RpcMethodHandler, details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler:
        around = self.around(details)
        if handler.unary_unary:
            fn = handler.unary_unary

            async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                async with around(context):
                    return await fn(request, context)

            return grpc.unary_unary_rpc_method_handler(
                unary,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream:
            gen = handler.unary_stream

            async def stream(request: Any, context: grpc.aio.ServicerContext) -> Any:
                async with around(context):
                    async for item in gen(request, context):
                        yield item

            return grpc.unary_stream_rpc_method_handler(
                stream,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler
