"""/6/attributes: temporary attributes (their JSON helpers, shared with faces, in convert)."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from luna.faces.v1 import attributes_pb2

from services.gateway import convert
from services.gateway.auth import AuthRule
from services.gateway.routing import Ctx, RouteTable, json_response

table = RouteTable()
# Old name of convert.DEFAULT_DESCRIPTOR_VERSION, for backport3/extract.py until it switches.
DEFAULT_DESCRIPTOR_VERSION = convert.DEFAULT_DESCRIPTOR_VERSION


def attribute_json(a: attributes_pb2.Attribute, targets: list[str] | None) -> dict[str, Any]:
    item = {
        "create_time": convert.ts(a.create_time),
        "attribute_id": a.attribute_id,
        "account_id": a.account_id,
        **convert.attribute_fields(a.data),
    }
    return convert.project(item, targets)


@table.route(
    "POST",
    "/6/attributes",
    auth=AuthRule(resource="attribute", action="creation"),
    op="createAttribute",
    json_body=True,
)
async def create_attribute(ctx: Ctx) -> web.Response:
    reply = await ctx.clients.attributes.CreateAttribute(
        attributes_pb2.CreateAttributeRequest(
            scope=ctx.scope(),
            data=convert.attribute_data(ctx.body),
            ttl_seconds=ctx.query.get("ttl", 300),
        )
    )
    aid = reply.attribute.attribute_id
    return json_response({"attribute_id": aid, "url": f"/6/attributes/{aid}"}, status=201)


ATTRIBUTE_VIEW = AuthRule(resource="attribute", action="view")


@table.route("GET", "/6/attributes", auth=ATTRIBUTE_VIEW, op="getAttributes")
async def get_attributes(ctx: Ctx) -> web.Response:
    q = ctx.query
    reply = await ctx.clients.attributes.GetAttributes(
        attributes_pb2.GetAttributesRequest(
            scope=ctx.listing_scope(),
            attribute_ids=q["attribute_ids"],
            descriptor_version=q.get("descriptor_version", 0),
        )
    )
    return json_response(
        {"attributes": [attribute_json(a, q.get("targets")) for a in reply.attributes]}
    )


async def _get_one(ctx: Ctx) -> attributes_pb2.Attribute:
    reply = await ctx.clients.attributes.GetAttribute(
        attributes_pb2.GetAttributeRequest(
            scope=ctx.scope(),
            attribute_id=ctx.path_id("attribute_id"),
            descriptor_version=ctx.query.get("descriptor_version", 0),
        )
    )
    return reply.attribute


@table.route("GET", "/6/attributes/{attribute_id}", auth=ATTRIBUTE_VIEW, op="getAttribute")
async def get_attribute(ctx: Ctx) -> web.Response:
    return json_response(attribute_json(await _get_one(ctx), ctx.query.get("targets")))


@table.route("HEAD", "/6/attributes/{attribute_id}", auth=ATTRIBUTE_VIEW, op="checkAttribute")
async def check_attribute(ctx: Ctx) -> web.Response:
    await _get_one(ctx)
    return web.Response(status=200)


@table.route(
    "DELETE",
    "/6/attributes/{attribute_id}",
    auth=AuthRule(resource="attribute", action="deletion"),
    op="deleteAttribute",
)
async def delete_attribute(ctx: Ctx) -> web.Response:
    await ctx.clients.attributes.DeleteAttribute(
        attributes_pb2.DeleteAttributeRequest(
            scope=ctx.scope(), attribute_id=ctx.path_id("attribute_id")
        )
    )
    return web.Response(status=204)


@table.route(
    "GET",
    "/6/attributes/{attribute_id}/samples",
    auth=ATTRIBUTE_VIEW,
    op="getAttributeSamples",
)
async def get_attribute_samples(ctx: Ctx) -> web.Response:
    reply = await ctx.clients.attributes.GetAttributeSamples(
        attributes_pb2.GetAttributeSamplesRequest(
            scope=ctx.scope(), attribute_id=ctx.path_id("attribute_id")
        )
    )
    return json_response({"samples": list(reply.sample_ids)})
