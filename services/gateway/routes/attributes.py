"""/6/attributes: temporary attributes (their JSON helpers, shared with faces, in convert)."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from luna.faces.v1 import attributes_pb2

from services.gateway import convert
from services.gateway.crud import Collection
from services.gateway.routing import Ctx, RouteTable, json_response

table = RouteTable()
ATTRIBUTES = Collection(table, attributes_pb2, "attribute")


def attribute_json(ctx: Ctx, a: attributes_pb2.Attribute) -> dict[str, Any]:
    item = {
        "create_time": convert.ts(a.create_time),
        "attribute_id": a.attribute_id,
        "account_id": a.account_id,
        **convert.attribute_fields(a.data),
    }
    return convert.project(item, ctx.query.get("targets"))


def descriptor_version(ctx: Ctx) -> dict[str, Any]:
    return {"descriptor_version": ctx.query.get("descriptor_version", 0)}


@table.route(
    "POST", "/6/attributes", auth=ATTRIBUTES.auth("creation"), op="createAttribute", json_body=True
)
async def create_attribute(ctx: Ctx) -> web.Response:
    reply = await ctx.clients.attributes.CreateAttribute(
        attributes_pb2.CreateAttributeRequest(
            scope=ctx.scope(),
            data=convert.attribute_data(ctx.body),
            ttl_seconds=ctx.query.get("ttl", 300),
        )
    )
    return ATTRIBUTES.created(reply.attribute.attribute_id)


@table.route("GET", "/6/attributes", auth=ATTRIBUTES.auth("view"), op="getAttributes")
async def get_attributes(ctx: Ctx) -> web.Response:
    reply = await ctx.clients.attributes.GetAttributes(
        attributes_pb2.GetAttributesRequest(
            scope=ctx.listing_scope(),
            attribute_ids=ctx.query["attribute_ids"],
            **descriptor_version(ctx),
        )
    )
    return json_response({"attributes": [attribute_json(ctx, a) for a in reply.attributes]})


ATTRIBUTES.get_and_check(
    ("getAttribute", "checkAttribute"), render=attribute_json, extra=descriptor_version
)
ATTRIBUTES.delete("deleteAttribute")


ATTRIBUTES.by_id(
    "GET",
    "/samples",
    "getAttributeSamples",
    "GetAttributeSamples",
    auth=ATTRIBUTES.auth("view"),
    answer=lambda ctx, reply: json_response({"samples": list(reply.sample_ids)}),
)
