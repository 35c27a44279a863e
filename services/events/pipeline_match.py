"""match_policy: one entry -> the candidates it names, matched with the event descriptors.

Faces go to MatcherService.MatchFaces (lists, indexes, filters live there). The matcher has no
event candidates, so events are selected here with the events core's filter (the newest
MAX_EVENT_CANDIDATES of them), their stored descriptors read in-process and compared with
MatcherService.MatchRaw.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from luna.common.v1 import account_pb2
from luna.matcher.v1 import matcher_pb2 as mpb

from services.common import errors, times
from services.common.scoping import Scope
from services.events.events import FACE, EventFilter, Events, Nullable
from services.events.pipeline_filters import resolve_time
from services.events.pipeline_render import face_json

MAX_REFERENCES = 30  # MatchFaces takes 1..30 references per call
MAX_EVENT_CANDIDATES = 10_000
_EVENT_PAGE = 1000
_TUPLES = ("event_ids", "handler_ids", "external_ids", "face_ids", "tags")
_NULLABLES = {
    "sources": "sources",
    "stream_ids": "stream_ids",
    "track_ids": "track_ids",
    "cities": "cities",
    "areas": "areas",
    "districts": "districts",
    "streets": "streets",
    "house_numbers": "house_numbers",
    "emotions": "emotions",
    "masks": "masks",
    "ethnic_groups": "ethnic_groups",
    "liveness": "liveness",
    "deepfake": "deepfake",
}
_TIMES = ("create_time__gte", "create_time__lt", "end_time__gte", "end_time__lt")
_SCALARS = {
    "event_id__gte": "event_id_gte",
    "event_id__lt": "event_id_lt",
    "user_data": "user_data",
    "top_matching_candidates_label": "top_matching_candidates_label",
    "top_similar_object_ids": "top_similar_object_ids",
    "top_similar_external_ids": "top_similar_external_ids",
    "top_similar_object_similarity__gte": "top_similar_object_similarity_gte",
    "top_similar_object_similarity__lt": "top_similar_object_similarity_lt",
    "age__gte": "age_gte",
    "age__lt": "age_lt",
}


@dataclass
class Reference:
    key: int  # the unit index
    descriptor: bytes
    version: int


def event_filter(candidates: dict[str, Any]) -> EventFilter:
    """LUNA event candidates -> the events core filter (validated policies only)."""
    kw: dict[str, Any] = {"no_default_window": True}
    for key, value in candidates.items():
        if key in ("origin", "account_id"):
            continue
        if key in _TUPLES:
            kw[key] = tuple(value)
        elif key in _NULLABLES:
            kw[_NULLABLES[key]] = Nullable(tuple(value))
        elif key in _TIMES:
            kw[key.replace("__", "_")] = resolve_time(value)
        elif key == "gender":
            kw["gender"] = Nullable((value,))
        elif key in _SCALARS:
            v = tuple(value) if isinstance(value, list) else value
            kw[_SCALARS[key]] = v
        else:  # a filter the schema accepts but this mapping forgot: refuse, never ignore
            raise errors.LunaError(12029, f"Event candidate filter '{key}' is not implemented")
    return EventFilter(**kw)


def face_candidates(entry: dict[str, Any]) -> mpb.FaceCandidates:
    c = entry["candidates"]
    fc = mpb.FaceCandidates(
        list_id=c.get("list_id", ""),
        face_ids=c.get("face_ids", []),
        external_ids=c.get("external_ids", []),
        face_id_gte=c.get("face_id__gte", ""),
        face_id_lt=c.get("face_id__lt", ""),
        limit=entry.get("limit", 3),
        threshold=float(entry.get("threshold", 0.0)),
    )
    if "user_data" in c:
        fc.user_data = c["user_data"]
    for key, attr in (
        ("create_time__gte", "create_time_gte"),
        ("create_time__lt", "create_time_lt"),
    ):
        if key in c:
            getattr(fc, attr).CopyFrom(times.to_timestamp(resolve_time(c[key])))
    return fc


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
                    mpb.Reference(
                        id=str(r.key),
                        descriptor=mpb.RawDescriptor(descriptor=r.descriptor, version=r.version),
                    )
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


def _event_json(data: dict[str, Any]) -> dict[str, Any]:
    keys = ("event_id", "handler_id", "account_id", "source", "external_id", "user_data")
    out = {k: data.get(k) for k in keys}
    out.update(tags=data.get("tags") or [], create_time=data.get("create_time"))
    out["face_id"] = data.get("face_id")
    return out


@dataclass
class EventCandidate:
    event_id: str
    descriptor: bytes
    version: int
    event: dict[str, Any]  # the event as a match result shows it


async def select_event_candidates(
    events: Events,
    scope: Scope,
    filters: dict[str, Any],
    *,
    kind: int,
    version: int,
    limit: int = MAX_EVENT_CANDIDATES,
) -> list[EventCandidate]:
    """The newest `limit` events `filters` (validated LUNA event candidate filters) name that
    hold a descriptor of `version`, newest first."""
    flt = event_filter(filters)
    found: dict[str, dict[str, Any]] = {}
    page = 1
    while len(found) < limit:
        batch = await events.list(scope, flt, page=page, page_size=_EVENT_PAGE)
        found.update({e.event_id: _event_json(e.data) for e in batch})
        if len(batch) < _EVENT_PAGE:
            break
        page += 1
    ids = list(found)[:limit]
    have: dict[str, tuple[bytes, int]] = {}
    for start in range(0, len(ids), _EVENT_PAGE):
        rows = await events.descriptors(
            scope, kind=kind, version=version, event_ids=ids[start : start + _EVENT_PAGE]
        )
        have.update({eid: (d, v) for eid, d, v in rows})
    return [EventCandidate(i, *have[i], found[i]) for i in ids if i in have]


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
                references=[
                    mpb.RawEntity(
                        id=str(r.key),
                        descriptor=mpb.RawDescriptor(descriptor=r.descriptor, version=r.version),
                    )
                    for r in vrefs
                ],
                candidates=[
                    mpb.RawEntity(
                        id=f.event_id,
                        descriptor=mpb.RawDescriptor(descriptor=f.descriptor, version=f.version),
                    )
                    for f in found
                ],
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
