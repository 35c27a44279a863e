"""/6/matcher/faces, /6/matcher/raw and /6/matcher/bodies."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from aiohttp import web
from luna.matcher.v1 import matcher_pb2

from services.common import errors, times
from services.gateway.auth import AuthRule
from services.gateway.routes.accounts import scope
from services.gateway.routes.faces import face_json
from services.gateway.routing import Ctx, RouteTable, json_response

table = RouteTable()

NOT_IMPLEMENTED = 12029
XPK_INVALID = 12035
HUMAN_DESCRIPTOR_NOT_FOUND = 23007
BODY_DESCRIPTOR_VERSION = 107  # LUNA's default body descriptor version

# Reference types naming a stored object by `id`, and the proto field each maps to.
_BY_ID = {"face": "face_id", "attribute": "attribute_id", "face_external_id": "external_id"}


def _json_error(path: str, message: str) -> errors.LunaError:
    return errors.LunaError(
        errors.BAD_JSON, f"Failed to validate input json. Path: '{path}', message: '{message}'"
    )


def descriptor_pb(entity: dict[str, Any], path: str) -> matcher_pb2.RawDescriptor:
    """A descriptor entity's bytes. `raw_descriptor` and `sdk_descriptor` are base64 of packed
    little-endian float32 -- the very bytes /6/sdk returns as `sdk_descriptor` here; VisionLabs'
    XPK container is not documented, so it is refused with its LUNA error."""
    kind = entity.get("type", "raw_descriptor")
    if kind == "xpk_file":
        raise errors.LunaError(XPK_INVALID, "Failed to parse xpk file")
    if "descriptor" not in entity:
        raise _json_error(f"{path}.descriptor", "field required")
    value = entity["descriptor"]
    if not isinstance(value, str):
        raise _json_error(f"{path}.descriptor", "str type expected")
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise _json_error(f"{path}.descriptor", "value is not valid base64") from None
    return matcher_pb2.RawDescriptor(descriptor=data, version=int(entity.get("version") or 0))


def reference_pb(item: dict[str, Any], i: int) -> matcher_pb2.Reference:
    kind = item["type"]
    path = f"references.{i}"
    ref = matcher_pb2.Reference(id=str(item.get("id") or ""))
    if kind in _BY_ID:
        if not item.get("id"):
            raise _json_error(f"{path}.id", "field required")
        setattr(ref, _BY_ID[kind], item["id"])
        return ref
    if kind in ("event", "event_external_id"):
        raise errors.LunaError(NOT_IMPLEMENTED, "Matching by events is not implemented yet")
    ref.descriptor.CopyFrom(descriptor_pb(item, path))
    return ref


def candidates_pb(item: dict[str, Any], i: int) -> matcher_pb2.FaceCandidates:
    if item.get("target", "faces") != "faces":
        raise errors.LunaError(
            NOT_IMPLEMENTED, f"Matching against {item['target']} is not implemented yet"
        )
    f = item.get("filters") or {}
    out = matcher_pb2.FaceCandidates(
        list_id=f.get("list_id", ""),
        face_ids=f.get("face_ids", []),
        external_ids=f.get("external_ids", []),
        event_id=f.get("event_id", ""),
        face_id_gte=f.get("face_id__gte", ""),
        face_id_lt=f.get("face_id__lt", ""),
        limit=item.get("limit", 3),
        threshold=item.get("threshold", 0.0),
    )
    if "user_data" in f:
        out.user_data = f["user_data"]
    for key, field in (
        ("create_time__gte", "create_time_gte"),
        ("create_time__lt", "create_time_lt"),
    ):
        if key in f:
            getattr(out, field).CopyFrom(times.to_timestamp(times.parse_rfc3339(f[key])))
    return out


def reference_json(item: dict[str, Any], result: matcher_pb2.ReferenceResult) -> dict[str, Any]:
    out: dict[str, Any] = {"type": item["type"], "id": item.get("id")}
    if item["type"] == "face_external_id":
        out["face_id"] = result.face_id
    return out


@table.route(
    "POST",
    "/6/matcher/faces",
    auth=AuthRule(resource="matching", action="face"),
    op="matchFaces",
    json_body=True,
)
async def match_faces(ctx: Ctx) -> web.Response:
    body: dict[str, Any] = ctx.body
    refs_in: list[dict[str, Any]] = body["references"]
    cands_in: list[dict[str, Any]] = body["candidates"]
    request = matcher_pb2.MatchFacesRequest(
        scope=scope(ctx, ctx.query.get("account_id", "")),
        references=[reference_pb(r, i) for i, r in enumerate(refs_in)],
        candidates=[candidates_pb(c, i) for i, c in enumerate(cands_in)],
    )
    reply = await ctx.clients.matcher.MatchFaces(request)
    out = []
    for res in reply.results:
        item = refs_in[res.reference_index]
        out.append(
            {
                "reference": reference_json(item, res),
                "matches": [
                    {
                        "filters": cands_in[k].get("filters", {}),
                        "candidates": cands_in[k],
                        "result": [
                            {"face": face_json(m.face, None), "similarity": m.similarity}
                            for m in cr.matches
                        ],
                        "total_found": cr.total_found,
                    }
                    for k, cr in enumerate(res.candidates)
                ],
            }
        )
    return json_response(out)


@table.route(
    "POST",
    "/6/matcher/raw",
    auth=AuthRule(resource="matching", action="face"),
    op="matchRaw",
    json_body=True,
)
async def match_raw(ctx: Ctx) -> web.Response:
    body: dict[str, Any] = ctx.body

    def entities(name: str) -> list[matcher_pb2.RawEntity]:
        return [
            matcher_pb2.RawEntity(
                id=str(e.get("id") or i), descriptor=descriptor_pb(e, f"{name}.{i}")
            )
            for i, e in enumerate(body[name])
        ]

    reply = await ctx.clients.matcher.MatchRaw(
        matcher_pb2.MatchRawRequest(
            references=entities("references"), candidates=entities("candidates")
        )
    )
    return json_response(
        {
            "matches": [
                {
                    "reference_id": r.reference_id,
                    "matches": [
                        {"candidate_id": m.candidate_id, "similarity": m.similarity}
                        for m in r.matches
                    ],
                }
                for r in reply.results
            ]
        }
    )


@table.route(
    "POST",
    "/6/matcher/bodies",
    auth=AuthRule(resource="matching", action="body"),
    op="matchBodies",
    json_body=True,
)
async def match_bodies(ctx: Ctx) -> web.Response:
    # No body (human) descriptors are ever extracted here, so every reference lacks one: the
    # documented "Human descriptor ... is not found" for an object, else not implemented.
    for ref in ctx.body["references"]:
        if isinstance(ref, dict) and ref.get("id"):
            raise errors.LunaError(
                HUMAN_DESCRIPTOR_NOT_FOUND,
                f"Human descriptor of version {BODY_DESCRIPTOR_VERSION} is not found for "
                f"object with id '{ref['id']}'.",
            )
    raise errors.LunaError(NOT_IMPLEMENTED, "Body matching is not implemented: no body descriptors")
