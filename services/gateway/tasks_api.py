"""The Luna Tasks API (`/2/...`, default port 5050) as a second listener of the gateway.

It shares the gateway's gRPC clients, middleware (request ids, LUNA error bodies) and system
handlers, so it needs no process of its own; see docs/DECISIONS.md "Tasks".
"""

from __future__ import annotations

import html
import logging
from collections import defaultdict
from typing import Any

import yaml
from aiohttp import web

from services.common import config, errors, version
from services.gateway import about, listeners, middleware, routing
from services.gateway.routing import Ctx, RouteTable
from services.gateway.tasks_http import TASKS_API, build

log = logging.getLogger("luna.gateway")

TASKS_API_HOST = config.TASKS_API_HOST
TASKS_API_PORT = config.TASKS_API_PORT

table = RouteTable()
tasks_api_table = build(TASKS_API)


def _spec(tables: list[RouteTable]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = defaultdict(dict)
    for t in tables:
        for r in t.routes:
            paths[r.path][r.method.lower()] = {
                "summary": (r.handler.__doc__ or r.handler.__name__).strip().splitlines()[0],
                "operationId": r.handler.__name__,
            }
    return {
        "openapi": "3.0.0",
        "info": {"title": "Luna tasks", "version": f"v.{version.VERSION}"},
        "paths": dict(paths),
    }


table.route("GET", "/version", auth=None)(about.version_handler)
table.route("GET", "/healthcheck", auth=None)(about.healthcheck_handler)
table.route("GET", "/2/config", auth=None)(about.config_handler)


@table.route("GET", "/2/docs/spec", auth=None)
async def get_spec(ctx: Ctx) -> web.Response:
    """The Tasks API's OpenAPI document (YAML) or its HTML rendering."""
    accept = ctx.request.headers.get("Accept", "")
    if (
        "application/x-yaml" not in accept
        and "text/html" not in accept
        and accept
        not in (
            "",
            "*/*",
        )
    ):
        raise errors.LunaError(errors.UNSUPPORTED_MEDIA_TYPE, "Unsupported media type")
    return await about.spec_handler(ctx)


@table.route("GET", "/2/docs/dev", auth=None)
async def get_dev_manual(ctx: Ctx) -> web.Response:
    """A short developer manual of the Tasks API."""
    types = ", ".join(
        sorted(r.path.rsplit("/", 1)[1] for r in tasks_api_table.routes if r.method == "POST")
    )
    return web.Response(
        text="<!doctype html><html><head><meta charset='utf-8'><title>Luna tasks</title></head>"
        "<body><h1>Luna tasks: developer manual</h1>"
        "<p>Create a task with <code>POST /2/tasks/&lt;type&gt;</code> (types: "
        f"{html.escape(types)}) and a body <code>{{account_id, description, content}}</code>; "
        "the answer is 202 with <code>task_id</code>. Poll <code>GET /2/tasks/{task_id}</code> "
        "(task_status 0 pending, 1 in progress, 2 cancelled, 3 failed, 4 collect results, "
        "5 done; progress in count_task_parts_done/count_task_parts_all), then fetch "
        "<code>GET /2/tasks/{task_id}/result</code>. Cancel with PATCH, delete with DELETE; "
        "errors under <code>/2/tasks/{task_id}/errors</code> and <code>/2/tasks/errors</code>."
        "</p><p>The OpenAPI document: <code>GET /2/docs/spec</code>.</p></body></html>",
        content_type="text/html",
    )


def build_tasks_api(main_app: web.Application) -> web.Application:
    app = web.Application(middlewares=[middleware.luna_middleware])
    spec = _spec([tasks_api_table, table])
    app["spec"], app["spec_yaml"] = spec, yaml.safe_dump(spec, sort_keys=False)
    app["clients"] = main_app["clients"]
    authenticator, validator = main_app["authenticator"], main_app["validator"]
    routing.add_routes(app, (tasks_api_table, table), authenticator, validator)
    return app


async def start(main_app: web.Application) -> None:
    """Serve the Tasks API beside the platform API, in the same event loop."""
    port = TASKS_API_PORT.get_int()
    if port == 0:
        return
    app = build_tasks_api(main_app)
    # The health check reads the gateway's NATS connection.
    app["nats"] = main_app.get("nats")
    await listeners.start(main_app, "tasks_api_runner", app, TASKS_API_HOST.get(), port)
    log.info("Luna Tasks API on http://%s:%s", TASKS_API_HOST.get(), port)


async def stop(main_app: web.Application) -> None:
    await listeners.stop(main_app, "tasks_api_runner")
