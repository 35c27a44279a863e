"""/6/matcher/faces, /6/matcher/raw and /6/matcher/bodies."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from luna.matcher.v1 import matcher_pb2

from services.common import errors, luna_json
from services.common.pbjson import from_struct, to_struct
from services.gateway import descriptor_entities
from services.gateway.auth import AuthRule
from services.gateway.convert import face_json
from services.gateway.routing import Ctx, RouteTable, json_response

table = RouteTable()
# Face matching, whether the descriptors are stored or come in the request.
MATCH_FACES = AuthRule(resource="matching", action="face")

BODY_DESCRIPTOR_VERSION = 107  # LUNA's default body descriptor version

# Reference types naming a stored object by `id`, and the proto field each maps to.
_BY_ID = {"face": "face_id", "attribute": "attribute_id", "face_external_id": "external_id"}
_EVENT_BY_ID = {"event": "event_id", "event_external_id": "event_external_id"}


def descriptor_pb(entity: dict[str, Any], path: str) -> matcher_pb2.RawDescriptor:
    """A descriptor entity's bytes (see services/gateway/descriptor_entities.py)."""
    raw, version = descriptor_entities.entity_bytes(entity, path)
    return matcher_pb2.RawDescriptor(descriptor=raw, version=version)


def reference_pb(item: dict[str, Any], i: int) -> matcher_pb2.Reference:
    kind = item["type"]
    path = f"references.{i}"
    ref = matcher_pb2.Reference(id=str(item.get("id") or ""))
    if kind in _BY_ID:
        if not item.get("id"):
            raise errors.bad_json(f"{path}.id", "field required")
        setattr(ref, _BY_ID[kind], item["id"])
        return ref
    if kind in _EVENT_BY_ID:
        if not item.get("id"):
            raise errors.bad_json(f"{path}.id", "field required")
        setattr(ref, _EVENT_BY_ID[kind], item["id"])
        return ref
    ref.descriptor.CopyFrom(descriptor_pb(item, path))
    return ref


def event_candidates_pb(item: dict[str, Any]) -> matcher_pb2.EventCandidates:
    """candidate_event: its filters are checked by the events service (12022 with the path)."""
    return matcher_pb2.EventCandidates(
        filters=to_struct(item.get("filters") or {}),
        limit=item.get("limit", 3),
        threshold=item.get("threshold", 0.0),
    )


def candidates_pb(item: dict[str, Any]) -> matcher_pb2.FaceCandidates:
    return luna_json.face_candidates(
        item.get("filters") or {},
        limit=item.get("limit", 3),
        threshold=item.get("threshold", 0.0),
    )


def reference_json(item: dict[str, Any], result: matcher_pb2.ReferenceResult) -> dict[str, Any]:
    out: dict[str, Any] = {"type": item["type"], "id": item.get("id")}
    if item["type"] == "face_external_id":
        out["face_id"] = result.face_id
    elif item["type"] == "event_external_id":
        out["event_id"] = result.event_id
    return out


Split = tuple[
    list[matcher_pb2.FaceCandidates], list[matcher_pb2.EventCandidates], list[tuple[str, int]]
]


def _split_candidates(cands_in: list[dict[str, Any]]) -> Split:
    """Face and event candidate sets, plus where each request item's result is found."""
    faces: list[matcher_pb2.FaceCandidates] = []
    events: list[matcher_pb2.EventCandidates] = []
    order: list[tuple[str, int]] = []
    for item in cands_in:
        # The schema's oneOf (by target) leaves defaults to us; the response echoes them.
        item.setdefault("target", "faces")
        item.setdefault("limit", 3)
        item.setdefault("threshold", 0)
        target = item["target"]
        if target == "faces":
            order.append(("face", len(faces)))
            faces.append(candidates_pb(item))
        elif target == "events":
            order.append(("event", len(events)))
            events.append(event_candidates_pb(item))
        else:
            raise errors.LunaError(
                errors.NOT_IMPLEMENTED, f"Matching against {target} is not implemented"
            )
    return faces, events, order


def _candidate_set_json(
    item: dict[str, Any], res: matcher_pb2.ReferenceResult, kind: str, k: int
) -> dict[str, Any]:
    """One candidate set's outcome for one reference, echoing the set as requested."""
    if kind == "face":
        cr = res.candidates[k]
        result = [{"face": face_json(m.face, None), "similarity": m.similarity} for m in cr.matches]
        total = cr.total_found
    else:
        er = res.event_candidates[k]
        result = [{"event": from_struct(m.event), "similarity": m.similarity} for m in er.matches]
        total = er.total_found
    return {
        "filters": item.get("filters", {}),
        "candidates": item,
        "result": result,
        "total_found": total,
    }


@table.route("POST", "/6/matcher/faces", auth=MATCH_FACES, op="matchFaces", json_body=True)
async def match_faces(ctx: Ctx) -> web.Response:
    body: dict[str, Any] = ctx.body
    refs_in: list[dict[str, Any]] = body["references"]
    cands_in: list[dict[str, Any]] = body["candidates"]
    face_sets, event_sets, order = _split_candidates(cands_in)
    request = matcher_pb2.MatchFacesRequest(
        scope=ctx.listing_scope(),
        references=[reference_pb(r, i) for i, r in enumerate(refs_in)],
        candidates=face_sets,
        event_candidates=event_sets,
    )
    reply = await ctx.clients.matcher.MatchFaces(request)
    out = []
    for res in reply.results:
        item = refs_in[res.reference_index]
        out.append(
            {
                "reference": reference_json(item, res),
                "matches": [
                    _candidate_set_json(cands_in[n], res, kind, k)
                    for n, (kind, k) in enumerate(order)
                ],
            }
        )
    return json_response(out)


@table.route("POST", "/6/matcher/raw", auth=MATCH_FACES, op="matchRaw", json_body=True)
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
                errors.HUMAN_DESCRIPTOR_NOT_FOUND,
                f"Human descriptor of version {BODY_DESCRIPTOR_VERSION} is not found for "
                f"object with id '{ref['id']}'.",
            )
    raise errors.LunaError(
        errors.NOT_IMPLEMENTED, "Body matching is not implemented: no body descriptors"
    )
