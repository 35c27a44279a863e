"""/6/handlers (static and dynamic handlers, the policies validator) and
/6/handlers/{handler_id}/events/raw (save an event built by the client)."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from luna.common.v1 import paging_pb2
from luna.events.v1 import events_pb2, handlers_pb2

from services.common.pbjson import from_struct, to_struct
from services.gateway.auth import AuthRule
from services.gateway.convert import ts
from services.gateway.routing import Ctx, RouteTable, json_response

table = RouteTable()

HANDLER_VIEW = AuthRule(resource="handler", action="view")


def handler_json(h: handlers_pb2.Handler) -> dict[str, Any]:
    return {
        "handler_id": h.handler_id,
        "account_id": h.account_id,
        "description": h.description,
        "policies": from_struct(h.policies) if h.HasField("policies") else None,
        "handler_type": h.handler_type,
        "lambda_id": h.lambda_id or None,
        "create_time": ts(h.create_time),
        "last_update_time": ts(h.last_update_time),
    }


def handler_fields(body: dict[str, Any]) -> handlers_pb2.HandlerFields:
    handler_type = body.get("handler_type")
    if handler_type is None:
        # Deprecated flag, honoured only when handler_type is absent.
        handler_type = 1 if body.get("is_dynamic") else 0
    fields = handlers_pb2.HandlerFields(
        description=body.get("description", ""),
        handler_type=handler_type,
        lambda_id=body.get("lambda_id", ""),
    )
    if body.get("policies") is not None:
        fields.policies.CopyFrom(to_struct(body["policies"]))
    return fields


def handler_filter(q: dict[str, Any]) -> handlers_pb2.HandlerFilter:
    flt = handlers_pb2.HandlerFilter()
    if "description" in q:
        flt.description = q["description"]
    if "handler_type" in q:
        flt.handler_type = q["handler_type"]
    elif "is_dynamic" in q:
        flt.handler_type = 1 if q["is_dynamic"] else 0
    return flt


@table.route(
    "POST",
    "/6/handlers",
    auth=AuthRule(resource="handler", action="creation"),
    op="createHandler",
    json_body=True,
)
async def create_handler(ctx: Ctx) -> web.Response:
    reply = await ctx.clients.handlers.CreateHandler(
        handlers_pb2.CreateHandlerRequest(scope=ctx.scope(), fields=handler_fields(ctx.body or {}))
    )
    hid = reply.handler.handler_id
    return json_response({"handler_id": hid, "url": f"/6/handlers/{hid}"}, status=201)


@table.route("GET", "/6/handlers", auth=HANDLER_VIEW, op="getHandlers")
async def get_handlers(ctx: Ctx) -> web.Response:
    q = ctx.query
    reply = await ctx.clients.handlers.ListHandlers(
        handlers_pb2.ListHandlersRequest(
            scope=ctx.listing_scope(),
            filter=handler_filter(q),
            page=paging_pb2.Page(page=q.get("page", 1), page_size=q.get("page_size", 10)),
        )
    )
    # LUNA renders this list as a bare array.
    return json_response([handler_json(h) for h in reply.handlers])


@table.route("GET", "/6/handlers/count", auth=HANDLER_VIEW, op="getHandlersCount")
async def count_handlers(ctx: Ctx) -> web.Response:
    q = ctx.query
    reply = await ctx.clients.handlers.CountHandlers(
        handlers_pb2.CountHandlersRequest(scope=ctx.listing_scope(), filter=handler_filter(q))
    )
    return json_response({"handlers_count": reply.count})


@table.route(
    "POST",
    "/6/handlers/validator",
    auth=HANDLER_VIEW,
    op="validateHandlerPolicies",
    json_body=True,
)
async def validate_policies(ctx: Ctx) -> web.Response:
    await ctx.clients.handlers.ValidatePolicies(
        handlers_pb2.ValidatePoliciesRequest(
            scope=ctx.scope(), policies=to_struct(ctx.body["policies"])
        )
    )
    return json_response({})


async def _get_handler(ctx: Ctx) -> handlers_pb2.Handler:
    reply = await ctx.clients.handlers.GetHandler(
        handlers_pb2.GetHandlerRequest(scope=ctx.scope(), handler_id=ctx.path_id("handler_id"))
    )
    return reply.handler


@table.route("GET", "/6/handlers/{handler_id}", auth=HANDLER_VIEW, op="getHandler")
async def get_handler(ctx: Ctx) -> web.Response:
    return json_response(handler_json(await _get_handler(ctx)))


@table.route("HEAD", "/6/handlers/{handler_id}", auth=HANDLER_VIEW, op="checkHandler")
async def check_handler(ctx: Ctx) -> web.Response:
    await _get_handler(ctx)
    return web.Response(status=200)


@table.route(
    "PUT",
    "/6/handlers/{handler_id}",
    auth=AuthRule(resource="handler", action="modification"),
    op="replaceHandler",
    json_body=True,
)
async def replace_handler(ctx: Ctx) -> web.Response:
    await ctx.clients.handlers.ReplaceHandler(
        handlers_pb2.ReplaceHandlerRequest(
            scope=ctx.scope(),
            handler_id=ctx.path_id("handler_id"),
            fields=handler_fields(ctx.body or {}),
        )
    )
    return json_response({})


@table.route(
    "DELETE",
    "/6/handlers/{handler_id}",
    auth=AuthRule(resource="handler", action="deletion"),
    op="deleteHandler",
)
async def delete_handler(ctx: Ctx) -> web.Response:
    await ctx.clients.handlers.DeleteHandler(
        handlers_pb2.DeleteHandlerRequest(scope=ctx.scope(), handler_id=ctx.path_id("handler_id"))
    )
    return web.Response(status=204)


@table.route(
    "POST",
    "/6/handlers/{handler_id}/events/raw",
    auth=AuthRule(resource="event", action="creation"),
    op="saveEvent",
    json_body=True,
)
async def save_event(ctx: Ctx) -> web.Response:
    wait = bool(ctx.query.get("wait_saving", 1))
    reply = await ctx.clients.events.SaveEvents(
        events_pb2.SaveEventsRequest(
            scope=ctx.scope(),
            handler_id=ctx.path_id("handler_id"),
            events=[events_pb2.EventInput(event=to_struct(ctx.body))],
            wait_saving=wait,
            from_client=True,
        )
    )
    eid = reply.event_ids[0]
    # 201: stored; 202: validated and buffered, stored right after (LUNA wait_saving).
    return json_response({"event_id": eid, "url": f"/6/events/{eid}"}, status=201 if wait else 202)
