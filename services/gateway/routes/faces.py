"""/6/faces and /6/faces/{face_id}/attributes."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from luna.faces.v1 import faces_pb2

from services.common import luna_json
from services.gateway import convert
from services.gateway.auth import AuthRule
from services.gateway.crud import Collection
from services.gateway.routing import Ctx, RouteTable, json_response

table = RouteTable()
FACES = Collection(table, faces_pb2, "face")


def wants_lists(targets: list[str] | None) -> bool:
    return not targets or "lists" in targets


def face_json(ctx: Ctx, face: faces_pb2.Face) -> dict[str, Any]:
    return convert.face_json(face, ctx.query.get("targets"))


def face_filter(ctx: Ctx) -> faces_pb2.FaceFilter:
    """The validated query's filters (shared by get faces and get face count)."""
    return luna_json.face_filter(ctx.query)


def attribute_input(body: dict[str, Any]) -> faces_pb2.FaceAttributeInput:
    if "attribute_id" in body:
        return faces_pb2.FaceAttributeInput(attribute_id=body["attribute_id"])
    return faces_pb2.FaceAttributeInput(data=convert.attribute_data(body))


@table.route("POST", "/6/faces", auth=FACES.auth("creation"), op="createFace", json_body=True)
async def create_face(ctx: Ctx) -> web.Response:
    body: dict[str, Any] = ctx.body or {}
    request = faces_pb2.CreateFaceRequest(
        scope=ctx.scope(),
        event_id=body.get("event_id", ""),
        user_data=body.get("user_data", ""),
        external_id=body.get("external_id", ""),
        avatar=body.get("avatar", ""),
        list_ids=body.get("lists", []),
    )
    if "attribute" in body:
        request.attribute.CopyFrom(attribute_input(body["attribute"]))
    reply = await ctx.clients.faces.CreateFace(request)
    return FACES.created(reply.face.face_id)


FACES.listing(
    "getFaces",
    filter=face_filter,
    render=face_json,
    extra=lambda ctx: {"with_lists": wants_lists(ctx.query.get("targets"))},
)


@table.route("DELETE", "/6/faces", auth=FACES.auth("deletion"), op="deleteFaces", json_body=True)
async def delete_faces(ctx: Ctx) -> web.Response:
    await ctx.clients.faces.DeleteFaces(
        faces_pb2.DeleteFacesRequest(
            scope=ctx.scope(),
            face_ids=ctx.body["face_ids"],
            ignore_missing=bool(ctx.query.get("ignore", 0)),
        )
    )
    return web.Response(status=204)


FACES.count("getFacesCount", filter=face_filter)


@table.route(
    "GET",
    "/6/faces/attributes/count",
    auth=AuthRule(resource="face_attributes", action="view"),
    op="getFacesWithAttributesCount",
)
async def count_face_attributes(ctx: Ctx) -> web.Response:
    reply = await ctx.clients.faces.CountFaceAttributes(
        faces_pb2.CountFaceAttributesRequest(scope=ctx.listing_scope())
    )
    return json_response({"faces_count": reply.count})


FACES.get_and_check(
    ("getFace", "checkFace"),
    render=face_json,
    extra=lambda ctx: {"with_lists": wants_lists(ctx.query.get("targets"))},
)


@table.route(
    "PATCH",
    "/6/faces/{face_id}",
    auth=FACES.auth("modification"),
    op="patchFace",
    json_body=True,
)
async def patch_face(ctx: Ctx) -> web.Response:
    body: dict[str, Any] = ctx.body or {}
    request = faces_pb2.UpdateFaceRequest(scope=ctx.scope(), face_id=ctx.path_id("face_id"))
    if "event_id" in body:
        request.event_id = body["event_id"] or ""  # null clears it
    for name in ("user_data", "external_id", "avatar"):
        if name in body:
            setattr(request, name, body[name])
    await ctx.clients.faces.UpdateFace(request)
    return web.Response(status=204)


FACES.delete("deleteFace")


def face_attribute_json(ctx: Ctx, reply: faces_pb2.GetFaceAttributeResponse) -> web.Response:
    attribute = reply.attribute
    item = {
        "create_time": convert.ts(attribute.create_time),
        **convert.attribute_fields(attribute.data),
    }
    return json_response({"attributes": convert.project(item, ctx.query.get("targets"))})


def face_attribute_samples(ctx: Ctx, reply: faces_pb2.GetFaceAttributeResponse) -> web.Response:
    data = reply.attribute.data
    samples = list(dict.fromkeys((*data.descriptor_samples, *data.basic_attributes_samples)))
    return json_response({"samples": samples})


ATTRIBUTE = "/attributes"
FACE_ATTRIBUTES_VIEW = AuthRule(resource="face_attributes", action="view")
FACES.by_id(
    "PUT",
    ATTRIBUTE,
    "putFaceAttribute",
    "PutFaceAttribute",
    auth=FACES.auth("modification"),
    fields=lambda ctx: {"attribute": attribute_input(ctx.body)},
)
FACES.by_id(
    "GET",
    ATTRIBUTE,
    "getFaceAttribute",
    "GetFaceAttribute",
    auth=FACE_ATTRIBUTES_VIEW,
    fields=lambda ctx: {"descriptor_version": ctx.query.get("descriptor_version", 0)},
    answer=face_attribute_json,
)
FACES.by_id(
    "DELETE",
    ATTRIBUTE,
    "deleteFaceAttribute",
    "DeleteFaceAttribute",
    auth=AuthRule(resource="face_attributes", action="deletion"),
)
FACES.by_id(
    "GET",
    f"{ATTRIBUTE}/samples",
    "getFaceAttributeSamples",
    "GetFaceAttribute",
    auth=FACE_ATTRIBUTES_VIEW,
    answer=face_attribute_samples,
)
