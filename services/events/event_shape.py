"""From a LUNA event as a handler (or a client) builds it to the stored row.

Input: the save-event body / one generate-events result (detections with samples, face,
matches, face_attributes, body_attributes, aggregate_estimations, ...). Output: the filterable
columns plus `data`, the event as GET /6/events/{event_id} renders it. Estimation names
(strings) become LUNA's integer codes here, so filters and statistics work on numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.common import times
from services.common.luna_json import dig

EMOTIONS = {
    "anger": 1,
    "disgust": 2,
    "fear": 3,
    "happiness": 4,
    "neutral": 5,
    "sadness": 6,
    "surprise": 7,
}
MASKS = {"missing": 1, "medical_mask": 2, "occluded": 3}
ETHNIC_GROUPS = {"african_american": 1, "indian": 2, "asian": 3, "caucasian": 4}
LIVENESS = {"spoof": 0, "real": 1, "unknown": 2}
DEEPFAKE = {"fake": 0, "real": 1}
APPARENT_GENDER = {"female": 0, "male": 1, "unknown": 2, "undefined": 2}
STATES = {"no": 0, "absent": 0, "yes": 1, "present": 1, "unknown": 2, "undefined": 2}

# LUNA `target` values of GET /6/events, in the order events are rendered.
TARGETS = (
    "event_id",
    "account_id",
    "create_time",
    "end_time",
    "external_id",
    "handler_id",
    "stream_id",
    "source",
    "top_match",
    "match_result",
    "face_detections",
    "body_detections",
    "face_id",
    "attach_result",
    "gender",
    "age",
    "emotion",
    "ethnic_group",
    "tags",
    "user_data",
    "location",
    "mask",
    "liveness",
    "deepfake",
    "track_id",
    "body_basic_attributes",
    "upper_body",
    "lower_body",
    "accessories",
    "meta",
)


@dataclass
class EventRow:
    """One `events` row; `columns` maps column name -> value, `data` is the rendered event."""

    event_id: str
    create_time: datetime
    end_time: datetime
    columns: dict[str, Any]
    data: dict[str, Any]


def _code(value: Any, names: dict[str, int], *keys: str) -> int | None:
    """An estimation as its integer code: ints pass, names map, objects are searched for the
    predominant value under `keys` (e.g. {"predominant_emotion": "happiness", ...})."""
    if isinstance(value, dict):
        for key in keys:
            if key in value:
                return _code(value[key], names)
        return None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return round(value)
    if isinstance(value, str):
        return names.get(value.lower())
    return None


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def _face_attribute_sources(raw: dict[str, Any]) -> list[dict[str, Any]]:
    """Where face estimations may sit, most authoritative first."""
    sources = [dig(raw, "aggregate_estimations", "face", "attributes")]
    for det in raw.get("detections") or ():
        sources.append(dig(det, "samples", "face", "detection", "attributes"))
    return [s for s in sources if isinstance(s, dict)]


def _body_attribute_sources(raw: dict[str, Any]) -> list[dict[str, Any]]:
    sources = [raw.get("body_attributes"), dig(raw, "aggregate_estimations", "body", "attributes")]
    for det in raw.get("detections") or ():
        sources.append(dig(det, "samples", "body", "detection", "attributes"))
    return [s for s in sources if isinstance(s, dict)]


def _from_sources(sources: list[dict[str, Any]], key: str) -> Any:
    return _first(*(s.get(key) for s in sources))


def _top_match(matches: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, str | None]:
    best: tuple[float, str, dict[str, Any]] | None = None
    for match in matches:
        for cand in match.get("candidates") or ():
            sim = cand.get("similarity")
            if isinstance(sim, (int, float)) and (best is None or sim > best[0]):
                best = (float(sim), match.get("label", ""), cand)
    if best is None:
        return None, None
    return {"label": best[1], **best[2]}, best[1]


def _object_of(candidate: dict[str, Any]) -> tuple[str | None, str | None]:
    """(object id, external id) of a match candidate: a face or an event."""
    for kind, id_key in (("face", "face_id"), ("event", "event_id")):
        obj = candidate.get(kind)
        if isinstance(obj, dict):
            return obj.get(id_key), obj.get("external_id")
    return _first(candidate.get("face_id"), candidate.get("event_id")), candidate.get("external_id")


def _detections(raw: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    out = []
    for det in raw.get("detections") or ():
        sample = dig(det, "samples", kind)
        if not isinstance(sample, dict):
            continue
        item = {
            "sample_id": sample.get("sample_id"),
            "url": sample.get("url"),
            "detection": sample.get("detection", {}),
            "detect_time": det.get("detect_time"),
            "image_origin": det.get("image_origin"),
        }
        out.append(item)
    return out


def build_row(
    raw: dict[str, Any],
    *,
    event_id: str,
    account_id: str,
    handler_id: str,
    now: datetime,
) -> EventRow:
    """The stored row of one validated input event."""
    create_time = times.parse_rfc3339(raw["create_time"]) if raw.get("create_time") else now
    end_time = times.parse_rfc3339(raw["end_time"]) if raw.get("end_time") else create_time
    location = raw.get("location") or {}
    geo = location.get("geo_position") or {}
    matches = raw.get("matches") or []
    top_match, top_label = _top_match(matches)
    top_object_id, top_external_id = _object_of(top_match) if top_match else (None, None)
    face = raw.get("face") or {}
    face_id = face.get("face_id")
    attach_result = [{"list_id": lid, "face_id": face_id} for lid in face.get("lists") or ()]

    fsrc = _face_attribute_sources(raw)
    basic = _first(
        dig(raw, "face_attributes", "basic_attributes"),
        _from_sources(fsrc, "basic_attributes"),
    )
    basic = basic if isinstance(basic, dict) else {}
    bsrc = _body_attribute_sources(raw)
    body_basic = _from_sources(bsrc, "basic_attributes")
    upper = _from_sources(bsrc, "upper_body")
    lower = _from_sources(bsrc, "lower_body")
    accessories = _from_sources(bsrc, "accessories")

    age = basic.get("age")
    columns: dict[str, Any] = {
        "source": raw.get("source"),
        "stream_id": raw.get("stream_id"),
        "external_id": raw.get("external_id"),
        "user_data": raw.get("user_data", ""),
        "track_id": raw.get("track_id"),
        "tags": list(dict.fromkeys(raw.get("tags") or [])),
        "city": location.get("city"),
        "area": location.get("area"),
        "district": location.get("district"),
        "street": location.get("street"),
        "house_number": location.get("house_number"),
        "longitude": geo.get("longitude"),
        "latitude": geo.get("latitude"),
        "face_id": face_id,
        "top_matching_candidates_label": top_label,
        "match_labels": sorted({m.get("label", "") for m in matches}),
        "top_similar_object_id": top_object_id,
        "top_similar_external_id": top_external_id,
        "top_similar_object_similarity": top_match["similarity"] if top_match else None,
        "gender": _code(basic.get("gender"), {"female": 0, "male": 1}),
        "age": round(age) if isinstance(age, (int, float)) else None,
        "emotion": _code(_from_sources(fsrc, "emotions"), EMOTIONS, "predominant_emotion"),
        "mask": _code(_from_sources(fsrc, "mask"), MASKS, "predominant_mask"),
        "ethnic_group": _code(basic.get("ethnicity"), ETHNIC_GROUPS, "predominant_ethnicity"),
        "liveness": _code(_from_sources(fsrc, "liveness"), LIVENESS, "prediction"),
        "deepfake": _code(_from_sources(fsrc, "deepfake"), DEEPFAKE, "prediction"),
        "apparent_age": _code(dig(body_basic, "apparent_age"), {}, "apparent_age"),
        "apparent_gender": _code(dig(body_basic, "apparent_gender"), APPARENT_GENDER, "gender"),
        "headwear_state": _code(dig(upper, "headwear", "apparent_state"), STATES),
        "headwear_apparent_color": dig(upper, "headwear", "apparent_color"),
        "sleeve_length": dig(upper, "sleeve", "length"),
        "upper_clothing_colors": dig(upper, "upper_clothing", "colors"),
        "lower_garment_colors": dig(lower, "lower_garment", "colors"),
        "lower_garment_type": dig(lower, "lower_garment", "type"),
        "shoes_apparent_color": dig(lower, "shoes", "apparent_color"),
        "backpack_state": _code(dig(accessories, "backpack", "state"), STATES),
        "meta": raw.get("meta"),
    }
    data: dict[str, Any] = {
        "event_id": event_id,
        "account_id": account_id,
        "create_time": times.to_rfc3339(create_time),
        "end_time": times.to_rfc3339(end_time),
        "external_id": columns["external_id"],
        "handler_id": handler_id,
        "stream_id": columns["stream_id"],
        "source": columns["source"],
        "top_match": top_match,
        "match_result": matches,
        "face_detections": _detections(raw, "face"),
        "body_detections": _detections(raw, "body"),
        "face_id": face_id,
        "attach_result": attach_result,
        "gender": columns["gender"],
        "age": columns["age"],
        "emotion": columns["emotion"],
        "ethnic_group": columns["ethnic_group"],
        "tags": columns["tags"],
        "user_data": columns["user_data"],
        "location": {
            "city": columns["city"],
            "area": columns["area"],
            "district": columns["district"],
            "street": columns["street"],
            "house_number": columns["house_number"],
            "geo_position": (
                {"longitude": columns["longitude"], "latitude": columns["latitude"]}
                if columns["longitude"] is not None
                else None
            ),
        },
        "mask": columns["mask"],
        "liveness": columns["liveness"],
        "deepfake": columns["deepfake"],
        "track_id": columns["track_id"],
        "body_basic_attributes": body_basic,
        "upper_body": upper,
        "lower_body": lower,
        "accessories": accessories,
        "meta": columns["meta"],
    }
    return EventRow(event_id, create_time, end_time, columns, data)


def project(data: dict[str, Any], targets: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """The event restricted to LUNA `target` fields (all when empty)."""
    if not targets:
        return data
    return {t: data.get(t) for t in TARGETS if t in targets}
