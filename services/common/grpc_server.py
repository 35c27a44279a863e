"""gRPC aio server bootstrap shared by every service.

One place does health, reflection, graceful stop and the mapping of exceptions to gRPC status
plus LUNA error code, so handlers only contain their own logic.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from luna.common.v1 import error_pb2

from services.common import errors, grpc_wrap, logs, metrics
from services.common.scoping import Scope

REQUEST_ID_KEY = "luna-request-id"
log = logging.getLogger("luna.grpc")


@dataclass
class ServiceApp:
    """What a service contributes to the shared server."""

    name: str
    # Full names of the gRPC services it registers, for health and reflection.
    service_names: list[str]
    # Adds servicers to the server; runs after `startup`.
    register: Callable[[grpc.aio.Server], None]
    startup: Callable[[], Awaitable[None]] | None = None
    shutdown: Callable[[], Awaitable[None]] | None = None
    options: list[tuple[str, Any]] = field(default_factory=list)


def service_names(*modules: Any) -> list[str]:
    """Full names of every gRPC service the given `*_pb2` modules define (for health and
    reflection)."""
    return [s.full_name for m in modules for s in m.DESCRIPTOR.services_by_name.values()]


def unary(
    call: Callable[[Any, Any], Awaitable[Any]], reply: Callable[[Any], Any]
) -> Callable[[Any, Any, grpc.aio.ServicerContext], Awaitable[Any]]:
    """A servicer method of the thin-adapter shape, written once: await `call(servicer,
    request)` (the core call with its arguments taken from the request) and answer
    `reply(result)`. Errors are the interceptor's business, as for any handler."""

    async def method(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return reply(await call(self, request))

    return method


def getting(
    store: str, id_field: str, reply: Callable[[Any], Any]
) -> Callable[[Any, Any, grpc.aio.ServicerContext], Awaitable[Any]]:
    """Get<X>: `servicer.<store>`'s row named by the request's `id_field`, if the scope may
    read it."""
    return unary(
        lambda s, r: getattr(s, store).get(Scope.from_pb(r.scope), getattr(r, id_field)), reply
    )


def listing(
    store: str, filter_of: Callable[[Any], Any], reply: Callable[[Any], Any]
) -> Callable[[Any, Any, grpc.aio.ServicerContext], Awaitable[Any]]:
    """List<X> of the stored-resource shape: one page of `servicer.<store>`'s rows that the
    request's scope may read and its filter selects."""
    return unary(
        lambda s, r: getattr(s, store).list(
            Scope.from_pb(r.scope),
            filter_of(r.filter),
            page=r.page.page,
            page_size=r.page.page_size,
        ),
        reply,
    )


def counting(
    store: str, filter_of: Callable[[Any], Any], reply: Callable[[int], Any]
) -> Callable[[Any, Any, grpc.aio.ServicerContext], Awaitable[Any]]:
    """Count<X>: how many of `servicer.<store>`'s rows the scope may read and the filter selects."""
    return unary(
        lambda s, r: getattr(s, store).count(Scope.from_pb(r.scope), filter_of(r.filter)), reply
    )


def _error_trailer(err: errors.LunaError) -> tuple[tuple[str, bytes], ...]:
    detail = error_pb2.ErrorDetail(
        error_code=err.code, desc=err.desc, detail=err.detail, http_status=err.http_status
    )
    return ((errors.ERROR_TRAILER, detail.SerializeToString()),)


async def _abort(context: grpc.aio.ServicerContext, err: errors.LunaError) -> None:
    context.set_trailing_metadata(_error_trailer(err))
    await context.abort(errors.grpc_status_for(err.http_status), err.detail)


def _unexpected(exc: Exception, method: str) -> errors.LunaError:
    """An exception no handler turned into a LunaError: a dependency outage gets its LUNA
    error (the client may retry), anything else is a bug (code 1, logged)."""
    from services.common import db, nats_streams  # here: they import this module's siblings

    if db.is_outage(exc):
        return db.outage_error(exc)
    if nats_streams.is_outage(exc):
        return nats_streams.outage_error(exc)
    log.error("unhandled error in %s", method, exc_info=exc)
    return errors.LunaError(errors.INTERNAL)


async def _map_error(context: grpc.aio.ServicerContext, exc: Exception, method: str) -> None:
    """A LunaError a handler raised becomes the call's status, anything else unexpected too
    (see `_unexpected`)."""
    await _abort(context, exc if isinstance(exc, errors.LunaError) else _unexpected(exc, method))


class ErrorInterceptor(grpc_wrap.CallWrapper):
    """Maps LunaError (and anything unexpected) to a status and carries the request id."""

    def around(self, details: grpc.HandlerCallDetails) -> grpc_wrap.Around:
        return grpc_wrap.Around(
            on_error=_map_error, request_id=logs.request_id, id_key=REQUEST_ID_KEY
        )


class ServedInterceptor(ErrorInterceptor):
    """ErrorInterceptor, and the call's metrics when collected: what `serve` puts around
    every call, in one wrapper."""

    def __init__(self, with_metrics: bool) -> None:
        super().__init__()
        self._with_metrics = with_metrics

    def around(self, details: grpc.HandlerCallDetails) -> grpc_wrap.Around:
        around = super().around(details)
        if not self._with_metrics:
            return around
        return dataclasses.replace(around, observer=metrics.CallMetrics(details.method))


class DatabaseHealthServicer(health.aio.HealthServicer):
    """grpc.health.v1, which in a process holding PostgreSQL pools also answers the name
    `healthcheck.DATABASE`, checked when asked: SERVING when every pool hands out a connection
    that answers, else the call fails with the probe's 10017 in the error trailer. The gateway's
    `/healthcheck` learns the database's state this way, from the services that own it."""

    def __init__(self, pools: Callable[[], Sequence[Any]] | None = None) -> None:
        super().__init__()
        self._pools = pools

    async def Check(
        self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext
    ) -> health_pb2.HealthCheckResponse:
        from services.common import db, healthcheck  # here, as in _unexpected

        pools = (self._pools or db.open_pools)()
        if request.service != healthcheck.DATABASE or not pools:
            return await super().Check(request, context)
        response = health_pb2.HealthCheckResponse
        if self._server_status.get("") != response.SERVING:  # starting or stopping
            return response(status=response.NOT_SERVING)
        for pool in pools:
            await healthcheck.probe_database(pool)
        return response(status=response.SERVING)


async def serve(app: ServiceApp, address: str) -> None:
    """Run `app` on `address` until SIGINT/SIGTERM, then stop gracefully."""
    server = grpc.aio.server(
        interceptors=[ServedInterceptor(with_metrics=metrics.enabled())],
        options=[
            ("grpc.max_receive_message_length", 64 * 1024 * 1024),
            ("grpc.max_send_message_length", 64 * 1024 * 1024),
            ("grpc.so_reuseport", 0),
            *app.options,
        ],
    )
    health_servicer = DatabaseHealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        [*app.service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], server
    )
    for name in ("", *app.service_names):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)

    if app.startup is not None:
        await app.startup()
    app.register(server)
    if server.add_insecure_port(address) == 0:
        raise RuntimeError(f"{app.name}: cannot listen on {address}")
    await server.start()
    for name in ("", *app.service_names):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("%s serving gRPC on %s", app.name, address)
    metrics_http = await metrics.start_for_service(app.name)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()

    log.info("%s stopping", app.name)
    await health_servicer.enter_graceful_shutdown()
    await server.stop(grace=5)
    if metrics_http is not None:
        await metrics_http.cleanup()
    if app.shutdown is not None:
        try:
            # Bounded: a client of a server that is gone (NATS killed with us) may never
            # finish closing, and a process that does not exit is an orphan.
            await asyncio.wait_for(app.shutdown(), SHUTDOWN_TIMEOUT_S)
        except Exception:
            log.exception("%s: shutdown did not complete", app.name)
    log.info("%s stopped", app.name)


SHUTDOWN_TIMEOUT_S = 10.0


async def _serve_and_exit(app: ServiceApp, address: str) -> None:
    await serve(app, address)
    # Exit here rather than in asyncio.run's cleanup, which waits for every leftover task:
    # nats-py's reconnect loop towards a dead server was seen to keep a stopped service alive.
    logging.shutdown()
    os._exit(0)


def run(app: ServiceApp, address: str) -> None:
    logs.setup(app.name)
    asyncio.run(_serve_and_exit(app, address))
