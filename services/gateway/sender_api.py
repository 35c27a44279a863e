"""The Luna Sender API (v2) on its own listener (LUNA's port 5080), inside the gateway process.

It shares the gateway's `Hub`, so events generated through `/6` reach subscribers of both
`/6/ws` and `/2/ws`. Events published here go out on core NATS (`luna.sender.…`) and every
gateway's hub delivers them, so a publisher and a subscriber on different gateways still meet.
Like LUNA's Sender it has no credentials of its own: `Luna-Account-Id` names the account, so
the listener belongs on an internal network (the REST `/6/ws` is the authenticated way in).
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import Gauge

from services.common import config, errors, ids, logs, version
from services.gateway import about, listeners, middleware, request_ids
from services.gateway import metrics as http_metrics
from services.gateway.routing import json_response
from services.gateway.sender import (
    GENERAL_SUBJECT,
    Filters,
    GeneralFilters,
    GeneralSubscription,
    Hub,
    Subscription,
    stream_to,
    user_subject,
)
from services.gateway.validation import RequestValidator

SENDER_PORT = config.SENDER_PORT
AUTOPING = config.declare(
    "LUNA_SENDER_AUTOPING_S",
    10.0,
    "Seconds between the Sender websockets' ping frames; a peer silent as long again is dropped.",
)
API_VERSION = 2
SPEC_PATH = Path(__file__).with_name("openapi") / "luna-sender-v2.yaml"
MANUAL_PATH = Path(__file__).with_name("sender_manual.md")
ACCOUNT_HEADER = "Luna-Account-Id"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _account_id(request: web.Request, *, subscribing: bool) -> str:
    value = request.headers.get(ACCOUNT_HEADER)
    if value is None:
        if subscribing:
            raise errors.LunaError(
                errors.SUBSCRIBE_WITHOUT_ACCOUNT,
                f"Cannot subscribe for events without '{ACCOUNT_HEADER}' header set",
            )
        raise errors.LunaError(
            errors.REQUIRED_QUERY_PARAM, f"Required parameters '{ACCOUNT_HEADER}' not found"
        )
    if not ids.is_uuid(value):
        raise errors.LunaError(errors.ACCOUNT_HEADER_NOT_UUID)
    return value


def _hub(request: web.Request) -> Hub:
    hub: Hub = request.app["sender_hub"]
    return hub


async def ws_handshake(request: web.Request) -> web.StreamResponse:
    account_id = _account_id(request, subscribing=True)
    filters = Filters.parse(request.query)  # bad filters fail before the upgrade
    return await stream_to(
        request, _hub(request), Subscription(account_id, filters), AUTOPING.get_float()
    )


async def ws_general_handshake(request: web.Request) -> web.StreamResponse:
    filters = GeneralFilters.parse(request.query)
    return await stream_to(
        request, _hub(request), GeneralSubscription(filters), AUTOPING.get_float()
    )


async def _body(request: web.Request, operation_id: str) -> Any:
    validator: RequestValidator = request.app["validator"]
    raw = await request.read()
    if raw:
        validator.validate_content_type(operation_id, request.headers.get("Content-Type"))
    return validator.parse_json_body(operation_id, raw)


async def _publish(request: web.Request, subject: str, batch: dict[str, Any]) -> web.Response:
    nc = request.app["nats"]()
    if nc is None or not nc.is_connected:
        raise errors.LunaError(errors.REQUEST_TIMEOUT, "nats: not connected")
    rid = logs.request_id.get()
    await nc.publish(subject, orjson.dumps(batch), headers={request_ids.HEADER: rid})
    await nc.flush(timeout=5)  # handed to NATS before we answer
    return json_response({}, status=201)


async def publish_events(request: web.Request) -> web.Response:
    account_id = _account_id(request, subscribing=False)
    body = await _body(request, "publishEvents")
    return await _publish(request, user_subject(account_id), body)


async def publish_general_events(request: web.Request) -> web.Response:
    body = await _body(request, "publishGeneralEvents")
    return await _publish(request, GENERAL_SUBJECT, body)


async def get_version(request: web.Request) -> web.Response:
    return json_response({"Version": {"api": API_VERSION, **about.semver(version.VERSION)}})


async def get_health(request: web.Request) -> web.Response:
    started = time.perf_counter()
    return await about.health_response({"nats": about.check_nats(request.app["nats"]())}, started)


async def get_spec(request: web.Request) -> web.Response:
    accept = request.headers.get("Accept", "")
    if "application/x-yaml" in accept:
        return web.Response(text=request.app["spec_yaml"], content_type="application/x-yaml")
    if not accept or "text/html" in accept or "*/*" in accept:
        return web.Response(text=about.spec_html(request.app["spec"]), content_type="text/html")
    raise errors.LunaError(
        errors.UNSUPPORTED_MEDIA_TYPE,
        "Unsupported media type: 'Accept' must be 'application/x-yaml' or 'text/html'",
    )


async def get_dev_manual(request: web.Request) -> web.Response:
    raise web.HTTPFound("/docs/dev/index.html")


def render_manual(markdown: str) -> str:
    """A small Markdown subset (headings, paragraphs, lists, code blocks, `code`) as HTML."""
    out: list[str] = []
    in_code = in_list = False
    paragraph: list[str] = []

    def inline(text: str) -> str:
        return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))

    def flush() -> None:
        nonlocal in_list
        if paragraph:
            out.append(f"<p>{inline(' '.join(paragraph))}</p>")
            paragraph.clear()
        if in_list:
            out.append("</ul>")
            in_list = False

    for line in markdown.splitlines():
        if line.startswith("```"):
            flush()
            out.append("</pre>" if in_code else "<pre>")
            in_code = not in_code
        elif in_code:
            out.append(html.escape(line))
        elif m := re.match(r"^(#{1,4}) (.*)", line):
            flush()
            level = len(m.group(1))
            out.append(f"<h{level}>{inline(m.group(2))}</h{level}>")
        elif line.startswith("- "):
            if paragraph:
                out.append(f"<p>{inline(' '.join(paragraph))}</p>")
                paragraph.clear()
            if not in_list:
                out.append("<ul>")
                in_list = True
            out.append(f"<li>{inline(line[2:])}</li>")
        elif not line.strip():
            flush()
        elif in_list:
            out[-1] = out[-1][: -len("</li>")] + " " + inline(line.strip()) + "</li>"
        else:
            paragraph.append(line.strip())
    flush()
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Luna Sender: development "
        "manual</title><style>body{font-family:sans-serif;margin:2em;max-width:60em}"
        "pre{background:#f4f4f4;padding:1em}</style></head><body>"
        + "\n".join(out)
        + "</body></html>"
    )


async def get_manual_page(request: web.Request) -> web.Response:
    return web.Response(text=request.app["manual_html"], content_type="text/html")


async def get_config(request: web.Request) -> web.Response:
    return about.config_response(request)


async def get_plugins(request: web.Request) -> web.Response:
    # The Sender loads no plugins; the list is the true one.
    return json_response({"plugins": []})


ROUTES: tuple[tuple[str, str, Handler], ...] = (
    ("GET", "/2/version", get_version),
    ("GET", "/version", get_version),
    ("GET", "/2/ws", ws_handshake),
    ("GET", "/2/ws/general", ws_general_handshake),
    ("POST", "/2/events", publish_events),
    ("POST", "/2/general_events", publish_general_events),
    ("GET", "/2/docs/spec", get_spec),
    ("GET", "/docs/spec", get_spec),
    ("GET", "/2/docs/dev", get_dev_manual),
    ("GET", "/docs/dev/index.html", get_manual_page),
    ("GET", "/2/config", get_config),
    ("GET", "/2/plugins", get_plugins),
    ("GET", "/2/healthcheck", get_health),
    ("GET", "/healthcheck", get_health),
)


def build_sender_app(hub: Hub, nats: Callable[[], Any]) -> web.Application:
    """The Sender listener's application; `nats()` gives the gateway's NATS connection."""
    from services.gateway.app import MAX_BODY

    app = web.Application(
        middlewares=[middleware.luna_middleware], client_max_size=MAX_BODY.get_int()
    )
    spec, spec_yaml = about.load_spec(SPEC_PATH)
    app["spec"], app["spec_yaml"] = spec, spec_yaml
    app["validator"] = RequestValidator(spec)
    app["manual_html"] = render_manual(MANUAL_PATH.read_text(encoding="utf-8"))
    app["sender_hub"], app["nats"] = hub, nats
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)
    collected = http_metrics.install(app)
    if collected is not None:
        subscribers = Gauge(
            "sender_subscriptions",
            "Open websocket subscriptions of this gateway (both listeners), by kind.",
            ["kind"],
            registry=collected.exposition.registry,
        )
        subscribers.labels("events").set_function(lambda: len(hub.subscriptions))
        subscribers.labels("general").set_function(lambda: len(hub.general))
    return app


def attach(rest_app: web.Application) -> None:
    """Start the Sender listener with the REST one (after its NATS connection is up), stop it
    before the REST application drains NATS."""

    async def start(app: web.Application) -> None:
        if app.get("nats") is not None:  # published events reach /6/ws subscribers too
            await app["sender_hub"].follow_published(app["nats"])
        port = SENDER_PORT.get_int()
        if not port:
            return
        sender = build_sender_app(app["sender_hub"], lambda: app.get("nats"))
        await listeners.start(app, "sender_runner", sender, config.gateway_host(), port)

    async def stop(app: web.Application) -> None:
        await listeners.stop(app, "sender_runner")

    rest_app.on_startup.append(start)
    rest_app.on_shutdown.append(stop)
