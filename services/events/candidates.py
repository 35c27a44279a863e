"""Event candidates: LUNA event-candidate filters -> the newest events they name that hold a
descriptor of one version (`EventsService.SelectEventCandidates`, and the generate-events
pipeline's event match policies).

A core of the event store, next to `events.py`: it reads through `Events.list` and
`Events.descriptors` only, so the gRPC adapter and the pipeline both call it instead of the
adapter reaching into the pipeline.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from services.common import errors, times
from services.common.scoping import Scope
from services.events.events import EventFilter, Events, Nullable
from services.events.policies import validate_event_candidate_filters

MAX_EVENT_CANDIDATES = 10_000
_EVENT_PAGE = 1000
_TUPLES = ("event_ids", "handler_ids", "external_ids", "face_ids", "tags")
_NULLABLES = (
    "sources",
    "stream_ids",
    "track_ids",
    "cities",
    "areas",
    "districts",
    "streets",
    "house_numbers",
    "emotions",
    "masks",
    "ethnic_groups",
    "liveness",
    "deepfake",
)
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
_RELATIVE = re.compile(r"^now-(\d+)([smhdwMy])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def resolve_time(value: str, now: datetime | None = None) -> datetime:
    """A candidates' time filter: RFC 3339 or LUNA's relative `now-<N><unit>`."""
    now = now or times.now()
    m = _RELATIVE.match(value)
    if m is None:
        try:
            return times.parse_rfc3339(value)
        except ValueError:
            raise errors.LunaError(errors.BAD_INPUT, f"Bad time filter '{value}'") from None
    n, unit = int(m.group(1)), m.group(2)
    if unit == "M":
        return now - timedelta(days=30 * n)
    if unit == "y":
        return now - timedelta(days=365 * n)
    return now - timedelta(seconds=n * _UNIT_SECONDS[unit])


def event_filter(candidates: dict[str, Any]) -> EventFilter:
    """LUNA event candidates -> the events core filter (validated policies only)."""
    kw: dict[str, Any] = {"no_default_window": True}
    for key, value in candidates.items():
        if key in ("origin", "account_id"):
            continue
        if key in _TUPLES:
            kw[key] = tuple(value)
        elif key in _NULLABLES:
            kw[key] = Nullable(tuple(value))
        elif key in _TIMES:
            kw[key.replace("__", "_")] = resolve_time(value)
        elif key == "gender":
            kw["gender"] = Nullable((value,))
        elif key in _SCALARS:
            v = tuple(value) if isinstance(value, list) else value
            kw[_SCALARS[key]] = v
        else:  # a filter the schema accepts but this mapping forgot: refuse, never ignore
            raise errors.LunaError(
                errors.NOT_IMPLEMENTED, f"Event candidate filter '{key}' is not implemented"
            )
    return EventFilter(**kw)


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


async def select_requested(
    events: Events, scope: Scope, raw_filters: Any, *, kind: int, version: int, limit: int
) -> list[EventCandidate]:
    """`SelectEventCandidates` as a gRPC caller sends it: filters not yet validated, `limit`
    0 for the most (MAX_EVENT_CANDIDATES)."""
    filters = validate_event_candidate_filters(raw_filters, ["filters"])
    limit = limit or MAX_EVENT_CANDIDATES
    if not 1 <= limit <= MAX_EVENT_CANDIDATES:
        raise errors.LunaError(errors.BAD_INPUT, "limit must be in 1..10000")
    return await select_event_candidates(
        events, scope, filters, kind=kind, version=version, limit=limit
    )
