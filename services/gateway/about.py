"""The platform describing itself: version, health, OpenAPI document, settings.

The `/6` routes (routes/system.py), the Tasks API listener, the Sender API listener and
Backport 3 answer these the same way, so the handlers and their pieces live here, below all of
them. The health of PostgreSQL is asked of the services that own it (grpc.health.v1 with the
service name `healthcheck.DATABASE`): the gateway never opens the database itself.
"""

from __future__ import annotations

import asyncio
import html
import time
from collections.abc import Awaitable, Mapping
from typing import Any

import grpc
import yaml
from aiohttp import web
from grpc_health.v1 import health_pb2
from luna.estimator.v1 import estimator_pb2
from luna.events.v1 import events_pb2
from luna.faces.v1 import accounts_pb2
from luna.matcher.v1 import matcher_pb2
from luna.tasks.v1 import tasks_pb2

from services.common import config, errors, grpc_client, healthcheck, version
from services.gateway.clients import Clients
from services.gateway.routing import Ctx, json_response

# LUNA component names for our services, as `/version` and `/healthcheck` name them.
COMPONENTS = {
    "faces": "luna-faces",
    "events": "luna-handlers",
    "estimator": "luna-remote-sdk",
    "matcher": "luna-matcher-proxy",
    "tasks": "luna-tasks",
}
# The services among COMPONENTS that hold a PostgreSQL pool and answer its health.
DATABASE_OWNERS = ("faces", "events", "tasks")
SECRET_MARKERS = ("PASSWORD", "SECRET", "TOKEN")
HEALTH_TIMEOUT_S = 2
OK = {"error_code": 0, "desc": "Success", "detail": "Success"}


def semver(text: str) -> dict[str, int]:
    parts = [int(p) if p.isdigit() else 0 for p in text.split(".")[:3]]
    parts += [0] * (3 - len(parts))
    return {"major": parts[0], "minor": parts[1], "patch": parts[2]}


# ---------------------------------------------------------------------------- version
async def _service_infos(clients: Clients) -> dict[str, Any]:
    c = clients
    calls = {
        "faces": c.accounts.GetInfo(accounts_pb2.GetInfoRequest(), timeout=2),
        "events": c.events.GetInfo(events_pb2.GetInfoRequest(), timeout=2),
        "estimator": c.estimator.GetInfo(estimator_pb2.GetInfoRequest(), timeout=2),
        "matcher": c.matcher.GetInfo(matcher_pb2.GetInfoRequest(), timeout=2),
        "tasks": c.tasks.GetInfo(tasks_pb2.GetInfoRequest(), timeout=2),
    }
    replies = await asyncio.gather(*calls.values(), return_exceptions=True)
    return dict(zip(calls, replies, strict=True))


async def version_handler(ctx: Ctx) -> web.Response:
    result: dict[str, Any] = {
        "LUNA PLATFORM": {"version": version.LUNA_PLATFORM_VERSION, "build": version.VERSION},
        "luna-api": {"api": version.LUNA_API_VERSION, **semver(version.VERSION)},
    }
    for service, reply in (await _service_infos(ctx.clients)).items():
        name = COMPONENTS[service]
        if isinstance(reply, BaseException):
            result[name] = {"error": "unavailable"}
        else:
            result[name] = {
                "api": version.LUNA_API_VERSION,
                **semver(reply.info.version),
                **({"components": dict(reply.info.components)} if reply.info.components else {}),
            }
    return json_response(result)


# ---------------------------------------------------------------------------- health
async def check_service(clients: Clients, service: str) -> errors.LunaError | None:
    """The service's gRPC health (the whole server): None when SERVING."""
    try:
        reply = await clients.health[service].Check(
            health_pb2.HealthCheckRequest(service=""), timeout=HEALTH_TIMEOUT_S
        )
    except Exception as exc:  # any failure is the answer we report
        detail = exc.details() if hasattr(exc, "details") else str(exc)
        return errors.LunaError(errors.REQUEST_TIMEOUT, f"{service}: {detail}")
    if reply.status != health_pb2.HealthCheckResponse.SERVING:
        status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        return errors.LunaError(errors.REQUEST_TIMEOUT, f"{service}: {status}")
    return None


def _luna_error(exc: BaseException) -> errors.LunaError | None:
    """The LUNA error a service attached to a failed call, None when it attached none (the
    service itself did not answer)."""
    if not isinstance(exc, grpc.aio.AioRpcError):
        return None
    if not any(key == errors.ERROR_TRAILER for key, _ in exc.trailing_metadata() or ()):
        return None
    return grpc_client.luna_error_from_rpc(exc)


async def check_database(clients: Clients) -> errors.LunaError | None:
    """PostgreSQL as the services that own it see it: the first database error one of them
    reports (10017), None when those that answer all reach it. A service that does not answer
    is its own component's failure; when none answers, the database's state is unknown."""
    request = health_pb2.HealthCheckRequest(service=healthcheck.DATABASE)
    replies = await asyncio.gather(
        *(clients.health[s].Check(request, timeout=HEALTH_TIMEOUT_S) for s in DATABASE_OWNERS),
        return_exceptions=True,
    )
    answered = False
    for reply in replies:
        if isinstance(reply, BaseException):
            err = _luna_error(reply)
            if err is not None:
                return err
        elif reply.status == health_pb2.HealthCheckResponse.SERVING:
            answered = True
    if answered:
        return None
    return errors.LunaError(
        errors.DATABASE_ERROR,
        f"no service that owns the database answered ({', '.join(DATABASE_OWNERS)})",
    )


async def check_nats(nc: Any) -> errors.LunaError | None:
    """The gateway's own NATS connection: connected and flushing."""
    try:
        if nc is None or not nc.is_connected:
            raise ConnectionError("not connected")
        await nc.flush(timeout=2)
    except Exception as exc:
        return errors.LunaError(errors.REQUEST_TIMEOUT, f"nats: {type(exc).__name__}: {exc}")
    return None


async def health_response(
    checks: Mapping[str, Awaitable[errors.LunaError | None]],
    started: float,
    *,
    with_time_on_error: bool = True,
) -> web.Response:
    """LUNA's healthcheck answer: `{"execution_time"}` when every check passed, else 502 with
    every component's state (`status` 1 for a passed one)."""
    results = await asyncio.gather(*checks.values())
    elapsed = round(time.perf_counter() - started, 4)
    if all(r is None for r in results):
        return json_response({"execution_time": elapsed})
    report = [
        {
            "component": name,
            "error": OK if err is None else err.as_json(),
            "status": 1 if err is None else 0,
        }
        for name, err in zip(checks, results, strict=True)
    ]
    body: dict[str, Any] = {"errors": report}
    if with_time_on_error:
        body["execution_time"] = elapsed
    return json_response(body, status=502)


async def healthcheck_handler(ctx: Ctx) -> web.Response:
    """`{"execution_time"}` when everything answers; else 502 with every component's state."""
    started = time.perf_counter()
    clients = ctx.clients
    checks: dict[str, Awaitable[errors.LunaError | None]] = {
        "luna-db": check_database(clients),
        "nats": check_nats(ctx.request.app.get("nats")),
    }
    checks.update({COMPONENTS[s]: check_service(clients, s) for s in COMPONENTS})
    return await health_response(checks, started)


# ---------------------------------------------------------------------------- spec
HTML_RANGES = frozenset({"text/html", "text/*", "*/*"})


def load_spec(path: Any) -> tuple[dict[str, Any], str]:
    text = path.read_text(encoding="utf-8")
    return yaml.safe_load(text), text


def spec_media_type(accept: str | None) -> str:
    """What to answer for an Accept header: the YAML document, the HTML page, or 415."""
    ranges = {part.split(";", 1)[0].strip().lower() for part in (accept or "").split(",")}
    ranges.discard("")
    if "application/x-yaml" in ranges:
        return "application/x-yaml"
    if not ranges or ranges & HTML_RANGES:
        return "text/html"
    raise errors.LunaError(
        errors.UNSUPPORTED_MEDIA_TYPE,
        "Unsupported media type: Accept one of 'application/x-yaml', 'text/html'",
    )


async def spec_handler(ctx: Ctx) -> web.Response:
    spec: dict[str, Any] = ctx.request.app["spec"]
    if spec_media_type(ctx.request.headers.get("Accept")) == "application/x-yaml":
        return web.Response(text=ctx.request.app["spec_yaml"], content_type="application/x-yaml")
    return web.Response(text=spec_html(spec), content_type="text/html")


def spec_html(spec: dict[str, Any]) -> str:
    info = spec.get("info", {})
    rows = []
    for path, item in spec.get("paths", {}).items():
        for method, op in item.items():
            if not isinstance(op, dict) or method.startswith("x-") or method == "parameters":
                continue
            params = ", ".join(
                html.escape(p.get("name", "")) for p in op.get("parameters", []) if "name" in p
            )
            rows.append(
                f"<tr><td><code>{method.upper()}</code></td><td><code>{html.escape(path)}</code>"
                f"</td><td>{html.escape(op.get('summary', ''))}</td><td>{params}</td></tr>"
            )
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(info.get('title', 'API'))}</title>"
        "<style>body{font-family:sans-serif;margin:2em}td{padding:2px 8px;"
        "border-bottom:1px solid #ddd;vertical-align:top}</style></head><body>"
        f"<h1>{html.escape(info.get('title', 'API'))} {html.escape(str(info.get('version', '')))}"
        "</h1><p>The YAML document: send <code>Accept: application/x-yaml</code>.</p>"
        "<table><tr><th>method</th><th>path</th><th>summary</th><th>parameters</th></tr>"
        + "".join(rows)
        + "</table></body></html>"
    )


# ---------------------------------------------------------------------------- config
def config_values(mask: str = "***") -> dict[str, str]:
    """Every declared setting's value, secrets (and URLs with credentials) masked when set."""
    values: dict[str, str] = {}
    for s in config.declared():
        value = s.get()
        hidden = any(marker in s.name for marker in SECRET_MARKERS) or (
            "://" in value and "@" in value
        )
        values[s.name] = mask if hidden and value else value
    return values


def config_response(request: web.Request) -> web.Response:
    values = config_values()
    if "text/plain" in request.headers.get("Accept", ""):
        return web.Response(text="".join(f"{k}={v}\n" for k, v in values.items()))
    return json_response(values)


async def config_handler(ctx: Ctx) -> web.Response:
    return config_response(ctx.request)
