"""/4/matching: verify, identify, match and search, translated to the matcher's MatchFaces."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from luna.matcher.v1 import matcher_pb2 as mpb

from services.common import errors
from services.gateway.backport3 import extract as ex
from services.gateway.backport3.candidates import (
    Candidates,
    descriptor_candidates,
    list_candidates,
    one_person,
    person_candidates,
    reference_of,
    run_match,
)
from services.gateway.backport3.core import (
    Caller,
    caller,
    fail,
    json_response,
    q_int,
    q_uuid,
    q_uuids,
)
from services.gateway.backport3.events import record_event
from services.gateway.backport3.persons import DESCRIPTORS, PERSONS, face_of, get_person
from services.gateway.backport3.table import Table

table = Table()


def _limit(request: web.Request) -> int:
    return q_int(request, "limit", 1, 5, 3)


async def references_of(
    request: web.Request, c: Caller
) -> tuple[list[mpb.Reference], dict[str, str]]:
    """person_id XOR descriptor_id from the query (12016 when neither)."""
    clients = request.app["clients"]
    person_id = q_uuid(request, "person_id")
    descriptor_id = q_uuid(request, "descriptor_id")
    if person_id:
        # "If several are given, the service will choose only one of them": the person.
        p = await get_person(clients, c, person_id, status=400)
        refs = [mpb.Reference(id=d, face_id=d) for d in p.descriptor_ids]
        return refs, {"person_id": person_id}
    if descriptor_id:
        await face_of(clients, c, descriptor_id, status=400)
        return [mpb.Reference(id=descriptor_id, face_id=descriptor_id)], {
            "descriptor_id": descriptor_id
        }
    raise fail(
        errors.NO_ONE_QUERY_PARAM, "No one parameters '[person_id, descriptor_id]' not found"
    )


@table.route("POST", "/4/matching/verify")
async def verify(request: web.Request) -> web.Response:
    c = await caller(request)
    descriptor_id = q_uuid(request, "descriptor_id", required=True)
    person_id = q_uuid(request, "person_id", required=True)
    clients = request.app["clients"]
    p = await get_person(clients, c, person_id, status=400)
    await face_of(clients, c, descriptor_id, status=400)
    cand = one_person(p, person_id)
    ref = [mpb.Reference(id=descriptor_id, face_id=descriptor_id)]
    found = await run_match(clients, c, ref, cand, 1)
    result = {"candidates": found}
    await record_event(
        request,
        c,
        "match",
        "verify",
        result=result,
        template={"descriptor_id": descriptor_id},
        candidate={"person_id": person_id},
    )
    return json_response(result, 201)


async def _identify_candidates(request: web.Request, c: Caller, want: int) -> Candidates:
    clients = request.app["clients"]
    list_id = q_uuid(request, "list_id")
    if list_id:
        return await list_candidates(clients, c, list_id, want)
    if want == PERSONS:
        person_ids = q_uuids(request, "person_ids")
        if person_ids:
            return await person_candidates(clients, c, person_ids)
        raise fail(errors.NO_ONE_QUERY_PARAM, "No one parameters '[list_id, person_ids]' not found")
    descriptor_ids = q_uuids(request, "descriptor_ids")
    if descriptor_ids:
        return await descriptor_candidates(clients, c, descriptor_ids)
    raise fail(errors.NO_ONE_QUERY_PARAM, "No one parameters '[list_id, descriptor_ids]' not found")


async def _match_list(request: web.Request, want: int, source: str) -> web.Response:
    """identify (against persons) and match (against descriptors)."""
    c = await caller(request)
    limit = _limit(request)
    refs, template = await references_of(request, c)
    cand = await _identify_candidates(request, c, want)
    found = await run_match(request.app["clients"], c, refs, cand, limit)
    result = {"candidates": found}
    await record_event(
        request, c, "match", source, result=result, template=template,
        candidate=cand.ws_candidate,
    )  # fmt: skip
    return json_response(result, 201)


@table.route("POST", "/4/matching/identify")
async def identify(request: web.Request) -> web.Response:
    return await _match_list(request, PERSONS, "identify")


@table.route("POST", "/4/matching/match")
async def match(request: web.Request) -> web.Response:
    return await _match_list(request, DESCRIPTORS, "match")


async def search_candidates(request: web.Request, c: Caller) -> Candidates:
    clients = request.app["clients"]
    list_id = q_uuid(request, "list_id")
    if list_id:
        return await list_candidates(clients, c, list_id)
    descriptor_ids = q_uuids(request, "descriptor_ids")
    if descriptor_ids:
        return await descriptor_candidates(clients, c, descriptor_ids)
    person_ids = q_uuids(request, "person_ids")
    if person_ids:
        return await person_candidates(clients, c, person_ids)
    raise fail(
        errors.NO_ONE_QUERY_PARAM,
        "No one parameters '[list_id, person_ids, descriptor_id]' not found",
    )


def many_faces(faces: list[dict[str, Any]]) -> errors.LunaError:
    err = fail(errors.TOO_MANY_FACES, "Too many faces found")
    err.detail = {"faces": faces}  # type: ignore[assignment]  # LUNA 3's many_faces_error
    return err


@table.route("POST", "/4/matching/search")
async def search(request: web.Request) -> web.Response:
    c = await caller(request)
    if "extract_descriptor" in request.query:
        raise fail(errors.UNSUPPORTED_PARAM, "Unsupported param 'extract_descriptor'")
    limit = _limit(request)
    cand = await search_candidates(request, c)
    opts = ex.Options.from_query(request, allow_extract_flag=False)
    extraction = await ex.extract(request, c, opts, store=False)
    if len(extraction.faces) > 1:
        raise many_faces(extraction.faces_json(opts))
    (face,) = extraction.faces
    found = await run_match(request.app["clients"], c, [reference_of(face)], cand, limit)
    # LUNA 3 keeps the search descriptor.
    await ex.store_after_match(request.app["clients"], c, extraction)
    body = extraction.response(opts, candidates=found)
    await record_event(
        request, c, "match", "search", result=body,
        template={"descriptor_id": face.descriptor_id}, candidate=cand.ws_candidate,
    )  # fmt: skip
    return json_response(body, 201)
