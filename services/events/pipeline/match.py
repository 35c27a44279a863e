"""match_policy: one entry -> the candidates it names, matched with the event descriptors.

Faces go to MatcherService.MatchFaces (lists, indexes, filters live there). The matcher has no
event candidates, so events are selected by the events core (`services.events.candidates`,
the newest MAX_EVENT_CANDIDATES of them, with their stored descriptors) and compared with
MatcherService.MatchRaw.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from luna.common.v1 import account_pb2
from luna.matcher.v1 import matcher_pb2 as mpb

from services.common import luna_json
from services.common.scoping import Scope
from services.events.candidates import resolve_time, select_event_candidates
from services.events.events import FACE, Events
from services.events.pipeline.render import face_json

MAX_REFERENCES = 30  # MatchFaces takes 1..30 references per call


@dataclass
class Reference:
    key: int  # the unit index
    descriptor: bytes
    version: int


def face_candidates(entry: dict[str, Any]) -> mpb.FaceCandidates:
    return luna_json.face_candidates(
        entry["candidates"],
        limit=entry.get("limit", 3),
        threshold=float(entry.get("threshold", 0.0)),
        when=resolve_time,
    )


def raw_descriptor(descriptor: bytes, version: int) -> mpb.RawDescriptor:
    return mpb.RawDescriptor(descriptor=descriptor, version=version)


def raw_entity(key: str, descriptor: bytes, version: int) -> mpb.RawEntity:
    """A descriptor MatchRaw compares, as a reference or a candidate."""
    return mpb.RawEntity(id=key, descriptor=raw_descriptor(descriptor, version))


async def match_faces(
    matcher: Any, scope: account_pb2.AccountScope, entry: dict[str, Any], refs: list[Reference]
) -> dict[int, list[dict[str, Any]]]:
    """unit index -> LUNA candidates (best first) of one face match policy."""
    cands = face_candidates(entry)
    cand_account = entry["candidates"].get("account_id", "")
    if cand_account and cand_account != scope.account_id:
        scope = account_pb2.AccountScope(
            account_id=scope.account_id, see_all=scope.see_all, filter_account_id=cand_account
        )
    out: dict[int, list[dict[str, Any]]] = {}
    for start in range(0, len(refs), MAX_REFERENCES):
        chunk = refs[start : start + MAX_REFERENCES]
        reply = await matcher.MatchFaces(
            mpb.MatchFacesRequest(
                scope=scope,
                references=[
                    mpb.Reference(id=str(r.key), descriptor=raw_descriptor(r.descriptor, r.version))
                    for r in chunk
                ],
                candidates=[cands],
            )
        )
        for result in reply.results:
            found = result.candidates[0].matches if result.candidates else []
            out[int(result.reference.id)] = [
                {"face": face_json(m.face), "similarity": round(m.similarity, 6)} for m in found
            ]
    return out


async def match_events(
    matcher: Any,
    events: Events,
    scope: account_pb2.AccountScope,
    entry: dict[str, Any],
    refs: list[Reference],
) -> dict[int, list[dict[str, Any]]]:
    """unit index -> LUNA candidates (best first) of one event match policy."""
    c = entry["candidates"]
    core_scope = Scope(scope.account_id)
    if c.get("account_id") and c["account_id"] != scope.account_id and scope.see_all:
        core_scope = Scope(scope.account_id, True, c["account_id"])
    out: dict[int, list[dict[str, Any]]] = {r.key: [] for r in refs}
    if not refs:
        return out
    by_version: dict[int, list[Reference]] = {}
    for r in refs:
        by_version.setdefault(r.version, []).append(r)
    limit, threshold = entry.get("limit", 3), float(entry.get("threshold", 0.0))
    for version, vrefs in by_version.items():
        found = await select_event_candidates(events, core_scope, c, kind=FACE, version=version)
        if not found:
            continue
        events_by_id = {f.event_id: f.event for f in found}
        reply = await matcher.MatchRaw(
            mpb.MatchRawRequest(
                references=[raw_entity(str(r.key), r.descriptor, r.version) for r in vrefs],
                candidates=[raw_entity(f.event_id, f.descriptor, f.version) for f in found],
            )
        )
        for result in reply.results:
            best = sorted(result.matches, key=lambda m: -m.similarity)
            out[int(result.reference_id)] = [
                {"event": events_by_id[m.candidate_id], "similarity": round(m.similarity, 6)}
                for m in best
                if m.similarity >= threshold
            ][:limit]
    return out
