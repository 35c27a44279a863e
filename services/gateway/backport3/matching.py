"""/4/matching: verify, identify, match and search, translated to the matcher's MatchFaces.

Candidates are LUNA 5 faces: a persons list's LUNA 5 list holds its persons' descriptors, a
descriptors list holds them directly, explicit persons become their descriptors' face ids.
Person results keep each person's best descriptor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web
from luna.backport3.v1 import backport3_pb2 as bpb
from luna.faces.v1 import faces_pb2
from luna.matcher.v1 import matcher_pb2 as mpb

from services.common import errors
from services.gateway.backport3 import extract as ex
from services.gateway.backport3 import storage, ws
from services.gateway.backport3.core import (
    FACE_NOT_FOUND,
    LIST_NOT_FOUND,
    OBJECTS_NOT_FOUND,
    Caller,
    caller,
    descriptor_not_found,
    fail,
    json_response,
    q_int,
    q_uuid,
    q_uuids,
)
from services.gateway.backport3.table import Table

table = Table()
PERSONS, DESCRIPTORS = bpb.LIST_KIND_PERSONS, bpb.LIST_KIND_DESCRIPTORS
MANY_FACES = 11012
UNSUPPORTED_PARAM = 36012
# Each person may hold several descriptors; fetch this many faces per wanted person.
FACES_PER_PERSON = 8


@dataclass
class Candidates:
    """Faces to match against, and whether results are persons or descriptors."""

    faces: mpb.FaceCandidates
    persons: bool
    ws_candidate: dict[str, Any]
    empty: bool = False


def _limit(request: web.Request) -> int:
    return q_int(request, "limit", 1, 5, 3)


async def person_candidates(clients: Any, c: Caller, person_ids: list[str]) -> Candidates:
    reply = await clients.backport3.ListPersons(
        bpb.ListPersonsRequest(
            account_id=c.account_id,
            person_ids=person_ids,
            page={"page": 1, "page_size": max(1, len(person_ids))},
        )
    )
    if len(reply.persons) != len(person_ids):
        raise fail(OBJECTS_NOT_FOUND, "One or more person not found", 400)
    faces = [d for p in reply.persons for d in p.descriptor_ids]
    return Candidates(
        mpb.FaceCandidates(face_ids=faces), True, {"person_ids": person_ids}, empty=not faces
    )


async def descriptor_candidates(clients: Any, c: Caller, descriptor_ids: list[str]) -> Candidates:
    count = await clients.faces.CountFaces(
        faces_pb2.CountFacesRequest(
            scope=c.scope, filter=faces_pb2.FaceFilter(face_ids=descriptor_ids)
        )
    )
    if count.count != len(descriptor_ids):
        raise fail(OBJECTS_NOT_FOUND, "One or more descriptor not found", 400)
    return Candidates(
        mpb.FaceCandidates(face_ids=descriptor_ids), False, {"descriptor_ids": descriptor_ids}
    )


async def list_candidates(
    clients: Any, c: Caller, list_id: str, want: int | None = None
) -> Candidates:
    """`want`: the kind the operation needs (36001 for the other one); None takes either."""
    lst = await storage.get_list(clients, c, list_id, status=400)
    if want is not None and lst.kind != want:
        if want == PERSONS:
            detail = f"Expected list of persons. Got list of descriptors. List id '{list_id}'"
        else:
            detail = f"Expected list of descriptors. Got list of persons. List id '{list_id}'"
        raise fail(storage.NOT_PERSONS_LIST, detail)
    ws_candidate = {
        "list_id": list_id,
        "list_data": lst.list_data,
        "list_type": 1 if lst.kind == PERSONS else 0,
    }
    return Candidates(mpb.FaceCandidates(list_id=list_id), lst.kind == PERSONS, ws_candidate)


async def run_match(
    clients: Any, c: Caller, references: list[mpb.Reference], cand: Candidates, limit: int
) -> list[dict[str, Any]]:
    """Best `limit` results over every reference: persons (best descriptor each) or faces."""
    if cand.empty or not references:
        return []
    faces = mpb.FaceCandidates()
    faces.CopyFrom(cand.faces)
    faces.limit = limit * FACES_PER_PERSON if cand.persons else limit
    try:
        reply = await clients.matcher.MatchFaces(
            mpb.MatchFacesRequest(scope=c.scope, references=references, candidates=[faces])
        )
    except errors.LunaError as err:
        if err.code in (FACE_NOT_FOUND, 11032, 22018):
            ref = references[0].face_id if references else ""
            raise descriptor_not_found(ref, 400) from None
        if err.code == LIST_NOT_FOUND:
            err.http_status = 400
        raise
    best: dict[str, tuple[float, Any]] = {}
    for result in reply.results:
        for cr in result.candidates:
            for m in cr.matches:
                fid = m.face.face_id
                if fid not in best or m.similarity > best[fid][0]:
                    best[fid] = (m.similarity, m.face)
    ranked = sorted(best.items(), key=lambda kv: -kv[1][0])
    if not cand.persons:
        return [{"id": fid, "similarity": round(s, 6)} for fid, (s, _) in ranked[:limit]]
    owners = await storage.persons_of(clients, c, [fid for fid, _ in ranked])
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for fid, (sim, face) in ranked:
        pid = owners.get(fid)
        if pid is None or pid in seen:
            continue
        seen.add(pid)
        out.append(
            {
                "person_id": pid,
                "descriptor_id": fid,
                "user_data": face.user_data,
                "external_id": face.external_id,
                "similarity": round(sim, 6),
            }
        )
        if len(out) == limit:
            break
    return out


async def references_of(
    request: web.Request, c: Caller
) -> tuple[list[mpb.Reference], dict[str, str]]:
    """person_id XOR descriptor_id from the query (12016 when neither)."""
    clients = request.app["clients"]
    person_id = q_uuid(request, "person_id")
    descriptor_id = q_uuid(request, "descriptor_id")
    if person_id:
        # "If several are given, the service will choose only one of them": the person.
        p = await storage.get_person(clients, c, person_id, status=400)
        refs = [mpb.Reference(id=d, face_id=d) for d in p.descriptor_ids]
        return refs, {"person_id": person_id}
    if descriptor_id:
        await storage.face_of(clients, c, descriptor_id, status=400)
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
    p = await storage.get_person(clients, c, person_id, status=400)
    await storage.face_of(clients, c, descriptor_id, status=400)
    cand = Candidates(
        mpb.FaceCandidates(face_ids=list(p.descriptor_ids)),
        True,
        {"person_id": person_id},
        empty=not p.descriptor_ids,
    )
    ref = [mpb.Reference(id=descriptor_id, face_id=descriptor_id)]
    found = await run_match(clients, c, ref, cand, 1)
    result = {"candidates": found}
    await ws.publish(
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


@table.route("POST", "/4/matching/identify")
async def identify(request: web.Request) -> web.Response:
    c = await caller(request)
    limit = _limit(request)
    refs, template = await references_of(request, c)
    cand = await _identify_candidates(request, c, PERSONS)
    found = await run_match(request.app["clients"], c, refs, cand, limit)
    result = {"candidates": found}
    await ws.publish(
        request, c, "match", "identify", result=result, template=template,
        candidate=cand.ws_candidate,
    )  # fmt: skip
    return json_response(result, 201)


@table.route("POST", "/4/matching/match")
async def match(request: web.Request) -> web.Response:
    c = await caller(request)
    limit = _limit(request)
    refs, template = await references_of(request, c)
    cand = await _identify_candidates(request, c, DESCRIPTORS)
    found = await run_match(request.app["clients"], c, refs, cand, limit)
    result = {"candidates": found}
    await ws.publish(
        request, c, "match", "match", result=result, template=template,
        candidate=cand.ws_candidate,
    )  # fmt: skip
    return json_response(result, 201)


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


def reference_of(face: ex.Extracted) -> mpb.Reference:
    """The reference of a freshly extracted face: its vector, so the match need not wait for
    the matcher to see the new face."""
    if face.face.HasField("descriptor"):
        d = face.face.descriptor
        raw = mpb.RawDescriptor(descriptor=d.data, version=d.version)
        return mpb.Reference(id=face.descriptor_id, descriptor=raw)
    return mpb.Reference(id=face.descriptor_id, face_id=face.descriptor_id)


def many_faces(faces: list[dict[str, Any]]) -> errors.LunaError:
    err = fail(MANY_FACES, "Too many faces found")
    err.detail = {"faces": faces}  # type: ignore[assignment]  # LUNA 3's many_faces_error
    return err


@table.route("POST", "/4/matching/search")
async def search(request: web.Request) -> web.Response:
    c = await caller(request)
    if "extract_descriptor" in request.query:
        raise fail(UNSUPPORTED_PARAM, "Unsupported param 'extract_descriptor'")
    limit = _limit(request)
    cand = await search_candidates(request, c)
    opts = ex.Options.from_query(request, allow_extract_flag=False)
    extraction = await ex.extract(request, c, opts, store=False)
    if len(extraction.faces) > 1:
        raise many_faces(extraction.faces_json(opts))
    (face,) = extraction.faces
    found = await run_match(request.app["clients"], c, [reference_of(face)], cand, limit)
    # Stored after the match, as LUNA 3 keeps the search descriptor: storing first would make
    # the matcher wait to see the new face before it may answer (read-your-writes).
    if not extraction.from_descriptor:
        await ex.store_faces(request.app["clients"], c, extraction.faces)
    face_json = extraction.faces_json(opts)[0]
    body: dict[str, Any] = {"candidates": found, "face": face_json}
    if extraction.exif is not None:
        body["exif"] = extraction.exif
    await ws.publish(
        request, c, "match", "search", result=body,
        template={"descriptor_id": face.descriptor_id}, candidate=cand.ws_candidate,
    )  # fmt: skip
    return json_response(body, 201)
