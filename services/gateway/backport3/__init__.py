"""Backport 3: the LUNA 3 API (`/4`) translated onto the platform's services.

The routes are installed on the main REST app (under /4) and, when LUNA_BACKPORT3_PORT is not
0, served by the gateway process on their own listener too (Backport 3's default port 5140),
which also answers LUNA 3's unprefixed /version and /healthcheck.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from services.common import config, subjects
from services.gateway import metrics as http_metrics
from services.gateway import middleware
from services.gateway.auth import CACHE_TTL
from services.gateway.backport3 import events, handlers, matching, storage, system, ws
from services.gateway.backport3.core import TokenCache

log = logging.getLogger("luna.gateway.backport3")
ROUTES = [
    *system.table.routes,
    *storage.table.routes,
    *matching.table.routes,
    *handlers.table.routes,
    *ws.table.routes,
]
PORT = config.BACKPORT3_PORT
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Headers": "*",
    "Access-Control-Allow-Methods": "*",
    "Access-Control-Max-Age": "86400",
}
# The websocket resources document no Allow header on OPTIONS.
_NO_ALLOW = ("/4/ws", "/api/subscribe")
# Resources without a documented OPTIONS.
_NO_OPTIONS = ("/4/liveness", "/4/docs/spec", "/4/docs/dev", "/4/config", "/4/plugins")


def _options(path: str, methods: list[str]) -> Any:
    allow = ", ".join(sorted({*methods, "OPTIONS"}))

    async def handle(request: web.Request) -> web.Response:
        headers = dict(CORS_HEADERS)
        if path not in _NO_ALLOW:
            headers["Allow"] = allow
        return web.Response(status=200, headers=headers)

    return handle


async def _cors(request: web.Request, response: web.StreamResponse) -> None:
    if request.path.startswith(("/4/", "/api/subscribe")) or request.app.get("bp3_listener"):
        response.headers.setdefault("Access-Control-Allow-Origin", "*")


def install(app: web.Application, extra: list[tuple[str, str, Any]] | None = None) -> None:
    """Add the /4 routes (and their OPTIONS) to `app`."""
    app["bp3_main"] = app
    app["bp3_routes"] = ROUTES
    app["bp3_tokens"] = TokenCache(CACHE_TTL.get_float())
    app[events.HANDLERS_KEY] = events.EventHandlers()
    methods: dict[str, list[str]] = {}
    for method, path, handler in [*ROUTES, *(extra or [])]:
        app.router.add_route(method, path, handler)
        methods.setdefault(path, []).append(method)
    for path, ms in methods.items():
        if path not in _NO_OPTIONS and path != "/healthcheck":
            app.router.add_route("OPTIONS", path, _options(path, ms))
    app.on_response_prepare.append(_cors)


def listener_app(main: web.Application) -> web.Application:
    """Backport 3's own listener, sharing the main app's clients, auth cache and NATS."""
    app = web.Application(
        middlewares=[middleware.luna_middleware], client_max_size=main._client_max_size
    )
    install(app, system.LISTENER_ONLY)
    for key in ("clients", "authenticator", "bp3_tokens"):
        app[key] = main[key]
    # Its own /metrics, describing this listener's requests (as the Sender listener does).
    if http_metrics.install(app) is None:
        app.router.add_get("/metrics", system.metrics_disabled)
    app["bp3_main"] = main
    app["bp3_listener"] = True
    return app


async def start_listener(main: web.Application) -> None:
    """Follow token changes of other gateways and open the listener (runs after NATS is up)."""
    nc = main.get("nats")
    if nc is not None:
        cache: TokenCache = main["bp3_tokens"]

        async def forget(msg: Any) -> None:
            cache.forget(msg.data)

        await nc.subscribe(subjects.AUTH_CHANGED, cb=forget)
    port = PORT.get_int()
    if not port:
        return
    runner = web.AppRunner(listener_app(main), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, config.gateway_host(), port).start()
    main["bp3_runner"] = runner
    log.info("Backport 3 listening on %s:%s", config.gateway_host(), port)


async def stop_listener(main: web.Application) -> None:
    runner = main.get("bp3_runner")
    if runner is not None:
        await runner.cleanup()
