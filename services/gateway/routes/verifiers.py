"""/6/verifiers: verification policies (the verifications themselves come with the pipeline)."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from luna.events.v1 import verifiers_pb2

from services.common.pbjson import from_struct, to_struct
from services.gateway.convert import record_times
from services.gateway.crud import Collection
from services.gateway.routing import Ctx, RouteTable, json_response

table = RouteTable()
VERIFIERS = Collection(table, verifiers_pb2, "verifier")


def verifier_json(ctx: Ctx, v: verifiers_pb2.Verifier) -> dict[str, Any]:
    return {
        "verifier_id": v.verifier_id,
        "account_id": v.account_id,
        "description": v.description,
        "policies": from_struct(v.policies),
        **record_times(v),
        "version": v.version,
    }


def verifier_filter(ctx: Ctx) -> verifiers_pb2.VerifierFilter:
    flt = verifiers_pb2.VerifierFilter()
    if "description" in ctx.query:
        flt.description = ctx.query["description"]
    return flt


def verifier_fields(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "description": body.get("description", ""),
        "policies": to_struct(body.get("policies") or {}),
    }


@table.route(
    "POST", "/6/verifiers", auth=VERIFIERS.auth("creation"), op="createVerifier", json_body=True
)
async def create_verifier(ctx: Ctx) -> web.Response:
    reply = await ctx.clients.verifiers.CreateVerifier(
        verifiers_pb2.CreateVerifierRequest(scope=ctx.scope(), **verifier_fields(ctx.body or {}))
    )
    return VERIFIERS.created(reply.verifier.verifier_id)


# LUNA renders this list as a bare array.
VERIFIERS.listing("getVerifiers", filter=verifier_filter, render=verifier_json, keyed=False)
VERIFIERS.count("getVerifiersCount", filter=verifier_filter)
VERIFIERS.get_and_check(("getVerifier", "checkVerifier"), render=verifier_json)


VERIFIERS.by_id(
    "PUT",
    "",
    "replaceVerifier",
    "ReplaceVerifier",
    auth=VERIFIERS.auth("modification"),
    fields=lambda ctx: verifier_fields(ctx.body or {}),
    answer=lambda ctx, reply: json_response({"version": reply.verifier.version}),
)
VERIFIERS.delete("deleteVerifier")
