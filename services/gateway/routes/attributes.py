"""/6/attributes: temporary attributes; plus the attribute JSON helpers faces routes share."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from aiohttp import web
from luna.faces.v1 import attributes_pb2

from services.common import config, errors, ids, times
from services.gateway.auth import AuthRule
from services.gateway.routes.accounts import scope
from services.gateway.routing import Ctx, RouteTable, json_response

table = RouteTable()

BASE64_ERROR = 18001  # "Failed convert data from base64 to bytes"
DEFAULT_DESCRIPTOR_VERSION = config.declare(
    "LUNA_DEFAULT_DESCRIPTOR_VERSION",
    200,
    "Descriptor version assumed for a raw base64 descriptor given without one.",
)
ATTRIBUTE_TARGETS = (
    "create_time",
    "attribute_id",
    "account_id",
    "face_descriptor",
    "face_descriptor_samples",
    "basic_attributes",
    "basic_attributes_samples",
)


def decode_descriptor(value: str, path: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise errors.LunaError(
            BASE64_ERROR, f"Failed convert data from base64 to bytes ('{path}')"
        ) from None


def attribute_data(body: dict[str, Any]) -> attributes_pb2.AttributeData:
    """The wire AttributeData of a validated body with face_descriptors/basic_attributes."""
    data = attributes_pb2.AttributeData(
        descriptor_samples=body.get("face_descriptor_samples", []),
        basic_attributes_samples=body.get("basic_attributes_samples", []),
    )
    for i, item in enumerate(body.get("face_descriptors", [])):
        path = f"face_descriptors.{i}"
        if isinstance(item, str):
            raw, version = decode_descriptor(item, path), DEFAULT_DESCRIPTOR_VERSION.get_int()
        else:
            raw, version = decode_descriptor(item["descriptor"], path), item["version"]
        data.descriptors.append(attributes_pb2.Descriptor(descriptor=raw, version=version))
    basic = body.get("basic_attributes")
    if basic is not None:
        data.basic_attributes.CopyFrom(
            attributes_pb2.BasicAttributes(
                age=basic["age"], gender=basic["gender"], ethnicity=basic["ethnicity"]
            )
        )
    return data


def pick_descriptor(data: attributes_pb2.AttributeData) -> attributes_pb2.Descriptor | None:
    """The descriptor a response shows: the only one the service returned for a requested
    version, else the default version's, else the newest."""
    if not data.descriptors:
        return None
    default = DEFAULT_DESCRIPTOR_VERSION.get_int()
    for d in data.descriptors:
        if d.version == default:
            return d
    return max(data.descriptors, key=lambda d: d.version)


def basic_json(data: attributes_pb2.AttributeData) -> dict[str, int | None] | None:
    if not data.HasField("basic_attributes"):
        return None
    b = data.basic_attributes
    # 0: not estimated (no ethnicity model here), shown as null rather than a made-up class.
    return {"age": b.age, "gender": b.gender, "ethnicity": b.ethnicity or None}


def attribute_fields(data: attributes_pb2.AttributeData) -> dict[str, Any]:
    descriptor = pick_descriptor(data)
    return {
        "face_descriptor": (
            base64.b64encode(descriptor.descriptor).decode() if descriptor else None
        ),
        "face_descriptor_samples": list(data.descriptor_samples),
        "basic_attributes": basic_json(data),
        "basic_attributes_samples": list(data.basic_attributes_samples),
    }


def project(item: dict[str, Any], targets: list[str] | None) -> dict[str, Any]:
    """Keep only `targets` (all fields when not given), in the order of `item`."""
    if not targets:
        return item
    wanted = set(targets)
    return {k: v for k, v in item.items() if k in wanted}


def attribute_json(a: attributes_pb2.Attribute, targets: list[str] | None) -> dict[str, Any]:
    item = {
        "create_time": times.to_rfc3339(times.from_timestamp(a.create_time)),
        "attribute_id": a.attribute_id,
        "account_id": a.account_id,
        **attribute_fields(a.data),
    }
    return project(item, targets)


def attribute_id(ctx: Ctx) -> str:
    value = ctx.request.match_info["attribute_id"]
    if not ids.is_uuid(value):
        raise errors.LunaError(
            errors.BAD_QUERY_PARAM, f"Bad query parameters 'attribute_id': not a UUID: {value}"
        )
    return value


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
            scope=scope(ctx), data=attribute_data(ctx.body), ttl_seconds=ctx.query.get("ttl", 300)
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
            scope=scope(ctx, q.get("account_id", "")),
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
            scope=scope(ctx),
            attribute_id=attribute_id(ctx),
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
        attributes_pb2.DeleteAttributeRequest(scope=scope(ctx), attribute_id=attribute_id(ctx))
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
        attributes_pb2.GetAttributeSamplesRequest(scope=scope(ctx), attribute_id=attribute_id(ctx))
    )
    return json_response({"samples": list(reply.sample_ids)})
