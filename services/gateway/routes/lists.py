"""/6/lists and the list's face links."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from luna.faces.v1 import lists_pb2

from services.common import times
from services.gateway import convert
from services.gateway.crud import Collection
from services.gateway.routing import Ctx, RouteTable

table = RouteTable()
LISTS = Collection(table, lists_pb2, "list")
UPDATE_TIMES = {
    "last_update_time__gte": "last_update_time_gte",
    "last_update_time__lt": "last_update_time_lt",
}


def list_json(ctx: Ctx, item: lists_pb2.List) -> dict[str, Any]:
    return {
        "list_id": item.list_id,
        "user_data": item.user_data,
        "account_id": item.account_id,
        **convert.record_times(item),
    }


def list_filter(ctx: Ctx) -> lists_pb2.ListFilter:
    q = ctx.query
    flt = lists_pb2.ListFilter(
        list_ids=q.get("list_ids", []),
        list_id_gte=q.get("list_id__gte", ""),
        list_id_lt=q.get("list_id__lt", ""),
    )
    if "user_data" in q:
        flt.user_data = q["user_data"]
    if "user_data__eq" in q:
        flt.user_data_eq = q["user_data__eq"]
    times.copy_times(q, flt, {**times.CREATE_TIMES, **UPDATE_TIMES})
    return flt


def with_faces(ctx: Ctx) -> dict[str, Any]:
    return {"with_faces": bool(ctx.query.get("with_faces", 0))}


@table.route("POST", "/6/lists", auth=LISTS.auth("creation"), op="createList", json_body=True)
async def create_list(ctx: Ctx) -> web.Response:
    body: dict[str, Any] = ctx.body or {}
    reply = await ctx.clients.lists.CreateList(
        lists_pb2.CreateListRequest(scope=ctx.scope(), user_data=body.get("user_data", ""))
    )
    return LISTS.created(reply.list.list_id)


LISTS.listing("getLists", filter=list_filter, render=list_json)


@table.route("DELETE", "/6/lists", auth=LISTS.auth("deletion"), op="deleteLists", json_body=True)
async def delete_lists(ctx: Ctx) -> web.Response:
    await ctx.clients.lists.DeleteLists(
        lists_pb2.DeleteListsRequest(
            scope=ctx.scope(), list_ids=ctx.body["list_ids"], **with_faces(ctx)
        )
    )
    return web.Response(status=204)


LISTS.count("getListsCount", filter=list_filter)
LISTS.get_and_check(("getList", "checkList"), render=list_json)


LISTS.by_id(
    "PATCH",
    "",
    "patchList",
    "UpdateList",
    auth=LISTS.auth("modification"),
    fields=lambda ctx: {"user_data": ctx.body["user_data"]},
)
LISTS.delete("deleteList", extra=with_faces)


@table.route(
    "PATCH",
    "/6/lists/{list_id}/faces",
    auth=LISTS.auth("modification"),
    op="linkFaces",
    json_body=True,
)
async def link_faces(ctx: Ctx) -> web.Response:
    body: dict[str, Any] = ctx.body
    fields = {"scope": ctx.scope(), "list_id": ctx.path_id("list_id"), "face_ids": body["face_ids"]}
    if body["action"] == "attach":
        await ctx.clients.lists.AttachFaces(lists_pb2.AttachFacesRequest(**fields))
    else:
        await ctx.clients.lists.DetachFaces(lists_pb2.DetachFacesRequest(**fields))
    return web.Response(status=204)
