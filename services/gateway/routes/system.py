"""/version, /healthcheck, /6/docs/spec, /6/config: the platform describing itself."""

from __future__ import annotations

import asyncio
import html
import time
from typing import Any

import psycopg
import yaml
from aiohttp import web
from grpc_health.v1 import health_pb2
from luna.estimator.v1 import estimator_pb2
from luna.events.v1 import events_pb2
from luna.faces.v1 import accounts_pb2
from luna.matcher.v1 import matcher_pb2
from luna.tasks.v1 import tasks_pb2

from services.common import config, errors, version
from services.gateway.routing import Ctx, RouteTable, json_response

table = RouteTable()

# LUNA component names for our services, as `/version` and `/healthcheck` name them.
COMPONENTS = {
    "faces": "luna-faces",
    "events": "luna-handlers",
    "estimator": "luna-remote-sdk",
    "matcher": "luna-matcher-proxy",
    "tasks": "luna-tasks",
}
SECRET_MARKERS = ("PASSWORD", "SECRET", "TOKEN")


def _semver(text: str) -> dict[str, int]:
    parts = [int(p) if p.isdigit() else 0 for p in text.split(".")[:3]]
    parts += [0] * (3 - len(parts))
    return {"major": parts[0], "minor": parts[1], "patch": parts[2]}


async def _service_infos(ctx: Ctx) -> dict[str, Any]:
    c = ctx.clients
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
        "luna-api": {"api": version.LUNA_API_VERSION, **_semver(version.VERSION)},
    }
    for service, reply in (await _service_infos(ctx)).items():
        name = COMPONENTS[service]
        if isinstance(reply, BaseException):
            result[name] = {"error": "unavailable"}
        else:
            result[name] = {
                "api": version.LUNA_API_VERSION,
                **_semver(reply.info.version),
                **({"components": dict(reply.info.components)} if reply.info.components else {}),
            }
    return json_response(result)


VERSION_OPS = {"/version": "getVersionUnprefixed", "/6/version": "getVersion"}
HEALTH_OPS = {"/healthcheck": "getHealthRedirect", "/6/healthcheck": "getHealth"}

for path in ("/version", "/6/version"):
    table.route("GET", path, auth=None, op=VERSION_OPS[path])(version_handler)


async def _check_service(ctx: Ctx, service: str) -> errors.LunaError | None:
    try:
        reply = await ctx.clients.health[service].Check(
            health_pb2.HealthCheckRequest(service=""), timeout=2
        )
    except Exception as exc:  # any failure is the answer we report
        detail = exc.details() if hasattr(exc, "details") else str(exc)
        return errors.LunaError(errors.REQUEST_TIMEOUT, f"{service}: {detail}")
    if reply.status != health_pb2.HealthCheckResponse.SERVING:
        status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        return errors.LunaError(errors.REQUEST_TIMEOUT, f"{service}: {status}")
    return None


async def _check_postgres() -> errors.LunaError | None:
    try:
        async with await psycopg.AsyncConnection.connect(
            config.database_url(), connect_timeout=2
        ) as conn:
            await conn.execute("SELECT 1")
    except Exception as exc:
        return errors.LunaError(errors.DATABASE_ERROR, f"{type(exc).__name__}: {exc}")
    return None


async def _check_nats(ctx: Ctx) -> errors.LunaError | None:
    nc = ctx.request.app.get("nats")
    try:
        if nc is None or not nc.is_connected:
            raise ConnectionError("not connected")
        await nc.flush(timeout=2)
    except Exception as exc:
        return errors.LunaError(errors.REQUEST_TIMEOUT, f"nats: {type(exc).__name__}: {exc}")
    return None


async def healthcheck_handler(ctx: Ctx) -> web.Response:
    """`{"execution_time"}` when everything answers; else 502 with every component's state."""
    started = time.perf_counter()
    checks: dict[str, Any] = {"luna-db": _check_postgres(), "nats": _check_nats(ctx)}
    checks.update({COMPONENTS[s]: _check_service(ctx, s) for s in COMPONENTS})
    results = await asyncio.gather(*checks.values())
    elapsed = round(time.perf_counter() - started, 4)
    if all(r is None for r in results):
        return json_response({"execution_time": elapsed})
    ok = {"error_code": 0, "desc": "Success", "detail": "Success"}
    report = [
        {
            "component": name,
            "error": ok if err is None else err.as_json(),
            "status": 1 if err is None else 0,
        }
        for name, err in zip(checks, results, strict=True)
    ]
    return json_response({"errors": report, "execution_time": elapsed}, status=502)


for path in ("/healthcheck", "/6/healthcheck"):
    table.route("GET", path, auth=None, op=HEALTH_OPS[path])(healthcheck_handler)


SPEC_OPS = {"/6/docs/spec": "getSpec", "/docs/spec": "getSpecUnprefixed"}
HTML_RANGES = frozenset({"text/html", "text/*", "*/*"})


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
    return web.Response(text=_spec_html(spec), content_type="text/html")


for path in SPEC_OPS:
    table.route("GET", path, auth=None, op=SPEC_OPS[path])(spec_handler)


def _spec_html(spec: dict[str, Any]) -> str:
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


@table.route("GET", "/6/config", auth=None, op="getConfig")
async def config_handler(ctx: Ctx) -> web.Response:
    values: dict[str, str] = {}
    for s in config.declared():
        value = config.setting(s.name, s.default, s.doc)
        hidden = any(marker in s.name for marker in SECRET_MARKERS) or (
            "://" in value and "@" in value
        )
        values[s.name] = "***" if hidden and value else value
    if "text/plain" in ctx.request.headers.get("Accept", ""):
        return web.Response(text="".join(f"{k}={v}\n" for k, v in values.items()))
    return json_response(values)


def load_spec(path: Any) -> tuple[dict[str, Any], str]:
    text = path.read_text(encoding="utf-8")
    return yaml.safe_load(text), text
