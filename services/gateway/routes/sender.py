"""/6/ws: the Sender websocket (LUNA API v6 `ws handshake`)."""

from __future__ import annotations

from aiohttp import web

from services.gateway.auth import AuthRule
from services.gateway.routing import Ctx, RouteTable
from services.gateway.sender import Filters, Subscription, stream_to

table = RouteTable()
# Autoping (RFC 6455 ping frames) every this many seconds; a peer that stops answering is
# dropped after the same again.
AUTOPING_S = 10.0


@table.route("GET", "/6/ws", auth=AuthRule(resource="event", action="view"))
async def ws_handshake(ctx: Ctx) -> web.StreamResponse:
    filters = Filters.parse(ctx.request.query)  # bad filters fail before the upgrade
    hub = ctx.request.app["sender_hub"]
    return await stream_to(ctx.request, hub, Subscription(ctx.account_id, filters), AUTOPING_S)
