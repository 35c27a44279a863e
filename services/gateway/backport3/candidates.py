"""What a /4 match runs against, and the run: LUNA 3 candidates as matcher MatchFaces calls.

Candidates are LUNA 5 faces: a persons list's LUNA 5 list holds its persons' descriptors, a
descriptors list holds them directly, explicit persons become their descriptors' face ids.
Person results keep each person's best descriptor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from luna.backport3.v1 import backport3_pb2 as bpb
from luna.faces.v1 import faces_pb2
from luna.matcher.v1 import matcher_pb2 as mpb

from services.common import errors
from services.gateway.backport3 import extract as ex
from services.gateway.backport3.core import Caller, descriptor_not_found, fail
from services.gateway.backport3.persons import PERSONS, expect_kind, get_list, persons_of

# Each person may hold several descriptors; fetch this many faces per wanted person.
FACES_PER_PERSON = 8


@dataclass
class Candidates:
    """Faces to match against, and whether results are persons or descriptors."""

    faces: mpb.FaceCandidates
    persons: bool
    ws_candidate: dict[str, Any]
    empty: bool = False


def one_person(p: Any, person_id: str) -> Candidates:
    """The descriptors of one person (verify)."""
    return Candidates(
        mpb.FaceCandidates(face_ids=list(p.descriptor_ids)),
        True,
        {"person_id": person_id},
        empty=not p.descriptor_ids,
    )


async def person_candidates(clients: Any, c: Caller, person_ids: list[str]) -> Candidates:
    reply = await clients.backport3.ListPersons(
        bpb.ListPersonsRequest(
            account_id=c.account_id,
            person_ids=person_ids,
            page={"page": 1, "page_size": max(1, len(person_ids))},
        )
    )
    if len(reply.persons) != len(person_ids):
        raise fail(errors.OBJECTS_NOT_FOUND, "One or more person not found", 400)
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
        raise fail(errors.OBJECTS_NOT_FOUND, "One or more descriptor not found", 400)
    return Candidates(
        mpb.FaceCandidates(face_ids=descriptor_ids), False, {"descriptor_ids": descriptor_ids}
    )


async def list_candidates(
    clients: Any, c: Caller, list_id: str, want: int | None = None
) -> Candidates:
    """`want`: the kind the operation needs (36001 for the other one); None takes either."""
    lst = await get_list(clients, c, list_id, status=400)
    if want is not None:
        expect_kind(lst, want)
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
        if err.code in (
            errors.FACE_NOT_FOUND,
            errors.FACE_HAS_NO_ATTRIBUTES,
            errors.DESCRIPTOR_VERSION_NOT_FOUND,
        ):
            ref = references[0].face_id if references else ""
            raise descriptor_not_found(ref, 400) from None
        if err.code == errors.LIST_NOT_FOUND:
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
    owners = await persons_of(clients, c, [fid for fid, _ in ranked])
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


def reference_of(face: ex.Extracted) -> mpb.Reference:
    """The reference of a freshly extracted face: its vector, so the match need not wait for
    the matcher to see the new face."""
    if face.face.HasField("descriptor"):
        d = face.face.descriptor
        raw = mpb.RawDescriptor(descriptor=d.data, version=d.version)
        return mpb.Reference(id=face.descriptor_id, descriptor=raw)
    return mpb.Reference(id=face.descriptor_id, face_id=face.descriptor_id)
