"""/6/handlers (static and dynamic handlers, the policies validator) and
/6/handlers/{handler_id}/events/raw (save an event built by the client)."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from luna.events.v1 import events_pb2, handlers_pb2

from services.common.pbjson import from_struct, to_struct
from services.gateway.auth import AuthRule
from services.gateway.convert import record_times
from services.gateway.crud import Collection
from services.gateway.routing import Ctx, RouteTable, json_response

table = RouteTable()
HANDLERS = Collection(table, handlers_pb2, "handler")


def handler_json(ctx: Ctx, h: handlers_pb2.Handler) -> dict[str, Any]:
    return {
        "handler_id": h.handler_id,
        "account_id": h.account_id,
        "description": h.description,
        "policies": from_struct(h.policies) if h.HasField("policies") else None,
        "handler_type": h.handler_type,
        "lambda_id": h.lambda_id or None,
        **record_times(h),
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


def handler_filter(ctx: Ctx) -> handlers_pb2.HandlerFilter:
    q = ctx.query
    flt = handlers_pb2.HandlerFilter()
    if "description" in q:
        flt.description = q["description"]
    if "handler_type" in q:
        flt.handler_type = q["handler_type"]
    elif "is_dynamic" in q:
        flt.handler_type = 1 if q["is_dynamic"] else 0
    return flt


@table.route(
    "POST", "/6/handlers", auth=HANDLERS.auth("creation"), op="createHandler", json_body=True
)
async def create_handler(ctx: Ctx) -> web.Response:
    reply = await ctx.clients.handlers.CreateHandler(
        handlers_pb2.CreateHandlerRequest(scope=ctx.scope(), fields=handler_fields(ctx.body or {}))
    )
    return HANDLERS.created(reply.handler.handler_id)


# LUNA renders this list as a bare array.
HANDLERS.listing("getHandlers", filter=handler_filter, render=handler_json, keyed=False)
HANDLERS.count("getHandlersCount", filter=handler_filter)


@table.route(
    "POST",
    "/6/handlers/validator",
    auth=HANDLERS.auth("view"),
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


HANDLERS.get_and_check(("getHandler", "checkHandler"), render=handler_json)


HANDLERS.by_id(
    "PUT",
    "",
    "replaceHandler",
    "ReplaceHandler",
    auth=HANDLERS.auth("modification"),
    fields=lambda ctx: {"fields": handler_fields(ctx.body or {})},
    answer=lambda ctx, reply: json_response({}),
)
HANDLERS.delete("deleteHandler")


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
