"""/6/lists and the list's face links."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from luna.common.v1 import paging_pb2
from luna.faces.v1 import lists_pb2

from services.common import times
from services.gateway.auth import AuthRule
from services.gateway.routing import Ctx, RouteTable, json_response

table = RouteTable()

LIST_VIEW = AuthRule(resource="list", action="view")


def list_json(item: lists_pb2.List) -> dict[str, Any]:
    return {
        "list_id": item.list_id,
        "user_data": item.user_data,
        "account_id": item.account_id,
        "create_time": times.to_rfc3339(times.from_timestamp(item.create_time)),
        "last_update_time": times.to_rfc3339(times.from_timestamp(item.last_update_time)),
    }


def list_filter(q: dict[str, Any]) -> lists_pb2.ListFilter:
    flt = lists_pb2.ListFilter(
        list_ids=q.get("list_ids", []),
        list_id_gte=q.get("list_id__gte", ""),
        list_id_lt=q.get("list_id__lt", ""),
    )
    if "user_data" in q:
        flt.user_data = q["user_data"]
    if "user_data__eq" in q:
        flt.user_data_eq = q["user_data__eq"]
    for param, field in (
        ("create_time__gte", flt.create_time_gte),
        ("create_time__lt", flt.create_time_lt),
        ("last_update_time__gte", flt.last_update_time_gte),
        ("last_update_time__lt", flt.last_update_time_lt),
    ):
        if param in q:
            field.CopyFrom(times.to_timestamp(times.parse_rfc3339(q[param])))
    return flt


@table.route(
    "POST",
    "/6/lists",
    auth=AuthRule(resource="list", action="creation"),
    op="createList",
    json_body=True,
)
async def create_list(ctx: Ctx) -> web.Response:
    body: dict[str, Any] = ctx.body or {}
    reply = await ctx.clients.lists.CreateList(
        lists_pb2.CreateListRequest(scope=ctx.scope(), user_data=body.get("user_data", ""))
    )
    lid = reply.list.list_id
    return json_response({"list_id": lid, "url": f"/6/lists/{lid}"}, status=201)


@table.route("GET", "/6/lists", auth=LIST_VIEW, op="getLists")
async def get_lists(ctx: Ctx) -> web.Response:
    q = ctx.query
    reply = await ctx.clients.lists.ListLists(
        lists_pb2.ListListsRequest(
            scope=ctx.listing_scope(),
            filter=list_filter(q),
            page=paging_pb2.Page(page=q.get("page", 1), page_size=q.get("page_size", 10)),
        )
    )
    return json_response({"lists": [list_json(i) for i in reply.lists]})


@table.route(
    "DELETE",
    "/6/lists",
    auth=AuthRule(resource="list", action="deletion"),
    op="deleteLists",
    json_body=True,
)
async def delete_lists(ctx: Ctx) -> web.Response:
    await ctx.clients.lists.DeleteLists(
        lists_pb2.DeleteListsRequest(
            scope=ctx.scope(),
            list_ids=ctx.body["list_ids"],
            with_faces=bool(ctx.query.get("with_faces", 0)),
        )
    )
    return web.Response(status=204)


@table.route("GET", "/6/lists/count", auth=LIST_VIEW, op="getListsCount")
async def count_lists(ctx: Ctx) -> web.Response:
    q = ctx.query
    reply = await ctx.clients.lists.CountLists(
        lists_pb2.CountListsRequest(scope=ctx.listing_scope(), filter=list_filter(q))
    )
    return json_response({"lists_count": reply.count})


async def _get_list(ctx: Ctx) -> lists_pb2.List:
    reply = await ctx.clients.lists.GetList(
        lists_pb2.GetListRequest(scope=ctx.scope(), list_id=ctx.path_id("list_id"))
    )
    return reply.list


@table.route("GET", "/6/lists/{list_id}", auth=LIST_VIEW, op="getList")
async def get_list(ctx: Ctx) -> web.Response:
    return json_response(list_json(await _get_list(ctx)))


@table.route("HEAD", "/6/lists/{list_id}", auth=LIST_VIEW, op="checkList")
async def check_list(ctx: Ctx) -> web.Response:
    await _get_list(ctx)
    return web.Response(status=200)


@table.route(
    "PATCH",
    "/6/lists/{list_id}",
    auth=AuthRule(resource="list", action="modification"),
    op="patchList",
    json_body=True,
)
async def patch_list(ctx: Ctx) -> web.Response:
    await ctx.clients.lists.UpdateList(
        lists_pb2.UpdateListRequest(
            scope=ctx.scope(), list_id=ctx.path_id("list_id"), user_data=ctx.body["user_data"]
        )
    )
    return web.Response(status=204)


@table.route(
    "DELETE",
    "/6/lists/{list_id}",
    auth=AuthRule(resource="list", action="deletion"),
    op="deleteList",
)
async def delete_list(ctx: Ctx) -> web.Response:
    await ctx.clients.lists.DeleteList(
        lists_pb2.DeleteListRequest(
            scope=ctx.scope(),
            list_id=ctx.path_id("list_id"),
            with_faces=bool(ctx.query.get("with_faces", 0)),
        )
    )
    return web.Response(status=204)


@table.route(
    "PATCH",
    "/6/lists/{list_id}/faces",
    auth=AuthRule(resource="list", action="modification"),
    op="linkFaces",
    json_body=True,
)
async def link_faces(ctx: Ctx) -> web.Response:
    body: dict[str, Any] = ctx.body
    if body["action"] == "attach":
        await ctx.clients.lists.AttachFaces(
            lists_pb2.AttachFacesRequest(
                scope=ctx.scope(), list_id=ctx.path_id("list_id"), face_ids=body["face_ids"]
            )
        )
    else:
        await ctx.clients.lists.DetachFaces(
            lists_pb2.DetachFacesRequest(
                scope=ctx.scope(), list_id=ctx.path_id("list_id"), face_ids=body["face_ids"]
            )
        )
    return web.Response(status=204)
