"""/6/ws: the Sender websocket (LUNA API v6 `ws handshake`)."""

from __future__ import annotations

import asyncio

from aiohttp import WSMsgType, web

from services.gateway import request_ids
from services.gateway.auth import AuthRule
from services.gateway.routing import Ctx, RouteTable
from services.gateway.sender import Filters, Subscription

table = RouteTable()
# Autoping (RFC 6455 ping frames) every this many seconds; a peer that stops answering is
# dropped after the same again.
AUTOPING_S = 10.0


@table.route("GET", "/6/ws", auth=AuthRule(resource="event", action="view"))
async def ws_handshake(ctx: Ctx) -> web.StreamResponse:
    filters = Filters.parse(ctx.request.query)  # bad filters fail before the upgrade
    hub = ctx.request.app["sender_hub"]
    ws = web.WebSocketResponse(heartbeat=AUTOPING_S)
    rid = ctx.request.headers.get(request_ids.HEADER)
    if rid:
        ws.headers[request_ids.HEADER] = rid
    await ws.prepare(ctx.request)
    sub = Subscription(ctx.account_id, filters)
    hub.subscriptions.add(sub)

    async def pump() -> None:
        while True:
            payload = await sub.queue.get()
            await ws.send_str(payload.decode())

    sender = asyncio.ensure_future(pump())
    try:
        async for msg in ws:  # the Sender protocol has no client messages; wait for close
            if msg.type == WSMsgType.ERROR:
                break
    finally:
        hub.subscriptions.discard(sub)
        sender.cancel()
    return ws
