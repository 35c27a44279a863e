"""/6/verifiers: verification policies (the verifications themselves come with the pipeline)."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from luna.common.v1 import paging_pb2
from luna.events.v1 import verifiers_pb2

from services.common.pbjson import from_struct, to_struct
from services.gateway.auth import AuthRule
from services.gateway.convert import ts
from services.gateway.routing import Ctx, RouteTable, json_response

table = RouteTable()

VERIFIER_VIEW = AuthRule(resource="verifier", action="view")


def verifier_json(v: verifiers_pb2.Verifier) -> dict[str, Any]:
    return {
        "verifier_id": v.verifier_id,
        "account_id": v.account_id,
        "description": v.description,
        "policies": from_struct(v.policies),
        "create_time": ts(v.create_time),
        "last_update_time": ts(v.last_update_time),
        "version": v.version,
    }


def _filter(q: dict[str, Any]) -> verifiers_pb2.VerifierFilter:
    flt = verifiers_pb2.VerifierFilter()
    if "description" in q:
        flt.description = q["description"]
    return flt


@table.route(
    "POST",
    "/6/verifiers",
    auth=AuthRule(resource="verifier", action="creation"),
    op="createVerifier",
    json_body=True,
)
async def create_verifier(ctx: Ctx) -> web.Response:
    body: dict[str, Any] = ctx.body or {}
    reply = await ctx.clients.verifiers.CreateVerifier(
        verifiers_pb2.CreateVerifierRequest(
            scope=ctx.scope(),
            description=body.get("description", ""),
            policies=to_struct(body.get("policies") or {}),
        )
    )
    vid = reply.verifier.verifier_id
    return json_response({"verifier_id": vid, "url": f"/6/verifiers/{vid}"}, status=201)


@table.route("GET", "/6/verifiers", auth=VERIFIER_VIEW, op="getVerifiers")
async def get_verifiers(ctx: Ctx) -> web.Response:
    q = ctx.query
    reply = await ctx.clients.verifiers.ListVerifiers(
        verifiers_pb2.ListVerifiersRequest(
            scope=ctx.listing_scope(),
            filter=_filter(q),
            page=paging_pb2.Page(page=q.get("page", 1), page_size=q.get("page_size", 10)),
        )
    )
    return json_response([verifier_json(v) for v in reply.verifiers])


@table.route("GET", "/6/verifiers/count", auth=VERIFIER_VIEW, op="getVerifiersCount")
async def count_verifiers(ctx: Ctx) -> web.Response:
    q = ctx.query
    reply = await ctx.clients.verifiers.CountVerifiers(
        verifiers_pb2.CountVerifiersRequest(scope=ctx.listing_scope(), filter=_filter(q))
    )
    return json_response({"verifiers_count": reply.count})


async def _get(ctx: Ctx) -> verifiers_pb2.Verifier:
    reply = await ctx.clients.verifiers.GetVerifier(
        verifiers_pb2.GetVerifierRequest(scope=ctx.scope(), verifier_id=ctx.path_id("verifier_id"))
    )
    return reply.verifier


@table.route("GET", "/6/verifiers/{verifier_id}", auth=VERIFIER_VIEW, op="getVerifier")
async def get_verifier(ctx: Ctx) -> web.Response:
    return json_response(verifier_json(await _get(ctx)))


@table.route("HEAD", "/6/verifiers/{verifier_id}", auth=VERIFIER_VIEW, op="checkVerifier")
async def check_verifier(ctx: Ctx) -> web.Response:
    await _get(ctx)
    return web.Response(status=200)


@table.route(
    "PUT",
    "/6/verifiers/{verifier_id}",
    auth=AuthRule(resource="verifier", action="modification"),
    op="replaceVerifier",
    json_body=True,
)
async def replace_verifier(ctx: Ctx) -> web.Response:
    body: dict[str, Any] = ctx.body or {}
    reply = await ctx.clients.verifiers.ReplaceVerifier(
        verifiers_pb2.ReplaceVerifierRequest(
            scope=ctx.scope(),
            verifier_id=ctx.path_id("verifier_id"),
            description=body.get("description", ""),
            policies=to_struct(body.get("policies") or {}),
        )
    )
    return json_response({"version": reply.verifier.version})


@table.route(
    "DELETE",
    "/6/verifiers/{verifier_id}",
    auth=AuthRule(resource="verifier", action="deletion"),
    op="deleteVerifier",
)
async def delete_verifier(ctx: Ctx) -> web.Response:
    await ctx.clients.verifiers.DeleteVerifier(
        verifiers_pb2.DeleteVerifierRequest(
            scope=ctx.scope(), verifier_id=ctx.path_id("verifier_id")
        )
    )
    return web.Response(status=204)
