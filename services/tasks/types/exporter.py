"""exporter (type 8): faces or events selected by filters, as CSV in a ZIP.

Each part reads up to 1000 objects from their owner and stores its CSV rows as the part's
result; collecting concatenates them in part order under one header. Reads have no effects, so
a redelivered part simply reads again.
"""

from __future__ import annotations

import base64
import csv
import io
import zipfile
from collections.abc import AsyncIterator
from typing import Any

import orjson
from google.protobuf.json_format import MessageToDict
from luna.events.v1 import events_pb2
from luna.faces.v1 import blobs_pb2, faces_pb2

from services.common import errors, times
from services.tasks import kinds
from services.tasks.kinds import (
    FACES_FILTERS,
    FLAG,
    OBJECTS,
    UUID,
    Deps,
    Kind,
    Outcome,
    closed,
    one_of,
)
from services.tasks.store import ItemError

PART_SIZE = 1000
FACE_COLUMNS = ["face_id", "user_data", "create_time", "lists", "external_id", "avatar", "event_id"]
DEFAULT_FACE_COLUMNS = ["face_id", "user_data", "create_time", "external_id", "avatar", "event_id"]
EVENT_COLUMNS = [
    "event_id", "create_time", "external_id", "handler_id", "source", "top_match",
    "match_result", "face_detections", "face_id", "attach_result", "gender", "end_time", "age",
    "emotion", "ethnic_group", "tags", "user_data", "city", "area", "district", "street",
    "house_number", "geo_position", "body_detections", "mask", "track_id", "liveness",
]  # fmt: skip
LOCATION = ("city", "area", "district", "street", "house_number")
_LOCATION_FILTERS = ("cities", "areas", "districts", "streets", "house_numbers")
_STRINGS_36 = {"type": "array", "items": {"type": "string", "maxLength": 36}}


def _ints(low: int, high: int) -> dict[str, Any]:
    return {"type": "array", "items": {"type": "integer", "minimum": low, "maximum": high}}


_SIMILARITY = {"type": "number", "minimum": 0, "maximum": 1}
_AGE = {"type": "integer", "minimum": 0, "maximum": 100}
_DEGREES = {"type": "number", "exclusiveMinimum": 0, "maximum": 90}
GEO_POSITION = closed(
    {
        "origin_longitude": {"type": "number", "exclusiveMinimum": -180, "exclusiveMaximum": 180},
        "origin_latitude": {"type": "number", "exclusiveMinimum": -90, "exclusiveMaximum": 90},
        "longitude_delta": _DEGREES,
        "latitude_delta": _DEGREES,
    },
    required=["origin_longitude", "origin_latitude"],
)
# Every event filter the catalogue documents for tasks (tasks-api `events_filters`).
EVENT_FILTERS: dict[str, Any] = closed(
    {
        "account_id": UUID,
        "event_ids": kinds.uuid_array(),
        "event_id__gte": UUID,
        "event_id__lt": UUID,
        "handler_ids": kinds.uuid_array(),
        "face_ids": kinds.uuid_array(),
        "external_ids": _STRINGS_36,
        "create_time__gte": kinds.DATE_TIME,
        "create_time__lt": kinds.DATE_TIME,
        "end_time__gte": kinds.DATE_TIME,
        "end_time__lt": kinds.DATE_TIME,
        "sources": {"type": "array", "items": {"type": "string"}},
        "top_matching_candidates_label": {"type": "string", "maxLength": 36},
        "top_similar_object_ids": kinds.uuid_array(),
        "top_similar_external_ids": _STRINGS_36,
        "top_similar_object_similarity__gte": _SIMILARITY,
        "top_similar_object_similarity__lt": _SIMILARITY,
        "age__gte": _AGE,
        "age__lt": _AGE,
        "gender": {"type": "integer", "enum": [0, 1]},
        "emotions": _ints(1, 7),
        "ethnic_groups": _ints(1, 4),
        "user_data": {"type": "string", "maxLength": 128},
        "tags": _STRINGS_36,
        **{name: {"type": "array", "items": {"type": "string"}} for name in _LOCATION_FILTERS},
        "geo_position": GEO_POSITION,
        "masks": _ints(1, 3),
        "track_ids": {
            "type": "array",
            "items": {"type": "string", "pattern": "^[a-zA-Z0-9_\\-]{1,36}$"},
        },
        "liveness": _ints(0, 2),
    },
)


FACE_FILTERS_CHECK = kinds.SchemaCheck(FACES_FILTERS, "content.filters")
EVENT_FILTERS_CHECK = kinds.SchemaCheck(EVENT_FILTERS, "content.filters")


EVENT_TIMES = {**times.CREATE_TIMES, "end_time__gte": "end_time_gte", "end_time__lt": "end_time_lt"}
# filter -> EventFilter field of the same meaning, by kind of value.
_ID_LISTS = ("event_ids", "handler_ids", "face_ids", "external_ids", "tags")
_ID_LISTS += ("top_similar_object_ids", "top_similar_external_ids")
_SCALARS = {
    "user_data": "user_data",
    "top_matching_candidates_label": "top_matching_candidates_label",
    "top_similar_object_similarity__gte": "top_similar_object_similarity_gte",
    "top_similar_object_similarity__lt": "top_similar_object_similarity_lt",
    "age__gte": "age_gte",
    "age__lt": "age_lt",
}
_STRING_SETS = {"sources": "sources", "track_ids": "track_ids"}
_STRING_SETS.update({name: name for name in _LOCATION_FILTERS})
_INT_SETS = {name: name for name in ("emotions", "ethnic_groups", "masks", "liveness")}


def event_filter(filters: dict[str, Any]) -> events_pb2.EventFilter:
    """The events service's filter of a task's event filters (every documented one)."""
    flt = events_pb2.EventFilter(
        event_id_gte=filters.get("event_id__gte", ""),
        event_id_lt=filters.get("event_id__lt", ""),
        no_default_window=True,
    )
    for name in _ID_LISTS:
        getattr(flt, name).extend(filters.get(name, []))
    for key, name in _SCALARS.items():
        if key in filters:
            setattr(flt, name, filters[key])
    for key, name in _STRING_SETS.items():
        if key in filters:
            getattr(flt, name).values.extend(filters[key])
    for key, name in _INT_SETS.items():
        if key in filters:
            getattr(flt, name).values.extend(filters[key])
    if "gender" in filters:
        flt.gender.values.append(filters["gender"])
    if "geo_position" in filters:
        geo = filters["geo_position"]
        flt.origin_longitude, flt.origin_latitude = geo["origin_longitude"], geo["origin_latitude"]
        flt.longitude_delta = geo.get("longitude_delta", 0.01)
        flt.latitude_delta = geo.get("latitude_delta", 0.01)
    times.copy_times(filters, flt, EVENT_TIMES)
    return flt


async def stream_event_ids(
    deps: Deps, account_id: str, filters: dict[str, Any], stride: int = 1
) -> AsyncIterator[list[str]]:
    """The ids the filters select, ascending, in batches of one keyset scan in the events
    service (one call, not a page request per 1000 ids); with `stride`, only the first of
    every `stride` ids and the last one."""
    async for batch in deps.events.StreamEventIds(
        events_pb2.StreamEventIdsRequest(
            scope=kinds.scope(account_id),
            filter=event_filter(filters),
            batch_size=10000,
            stride=stride,
        )
    ):
        yield list(batch.event_ids)


async def event_ids(deps: Deps, account_id: str, filters: dict[str, Any]) -> list[str]:
    return [i async for batch in stream_event_ids(deps, account_id, filters) for i in batch]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return str(value)
    return orjson.dumps(value).decode()


def face_row(face: faces_pb2.Face, columns: list[str]) -> list[str]:
    values = {
        "face_id": face.face_id,
        "user_data": face.user_data,
        "create_time": times.to_rfc3339(times.from_timestamp(face.create_time)),
        "lists": list(face.list_ids),
        "external_id": face.external_id,
        "avatar": face.avatar,
        "event_id": face.event_id or None,
    }
    return [_cell(values[c]) for c in columns]


def event_row(event: dict[str, Any], columns: list[str]) -> list[str]:
    location = event.get("location") or {}
    cells = []
    for c in columns:
        if c in LOCATION:
            value = location.get(c)
        elif c == "geo_position":
            geo = location.get("geo_position")
            value = f"{geo['latitude']}, {geo['longitude']}" if geo else None
        else:
            value = event.get(c)
        cells.append(_cell(value))
    return cells


SUFFIX = {"image/jpeg": "jpg", "image/png": "png", "image/bmp": "bmp", "image/tiff": "tiff"}


async def _add_samples(
    deps: Deps,
    scope: Any,
    owner: str,
    samples: dict[str, None],
    images: list[dict[str, str]],
    failures: list[ItemError],
) -> None:
    """The face samples of one face or event, as `images/<owner>/<sample>.<ext>` entries."""
    for sample_id in samples:
        try:
            reply = await deps.blobs.GetBlob(
                blobs_pb2.GetBlobRequest(
                    scope=scope, kind=blobs_pb2.BLOB_KIND_FACE_SAMPLE, blob_id=sample_id
                )
            )
        except errors.LunaError as err:
            if err.http_status != 404:
                raise
            failures.append(ItemError.of(err, sample_id))  # a sample deleted since
            continue
        ext = SUFFIX.get(reply.blob.content_type, "bin")
        images.append(
            {
                "path": f"images/{owner}/{sample_id}.{ext}",
                "data": base64.b64encode(reply.blob.data).decode(),
            }
        )


async def object_rows(
    deps: Deps, scope: Any, faces: bool, ids: list[str], columns: list[str], save_images: bool
) -> tuple[list[tuple[str, list[Any]]], list[dict[str, str]], list[ItemError]]:
    """(id, row) of each face or event of `ids` that exists, in id order, with their face
    samples as zip entries when `save_images`, and the samples that could not be read."""
    rows: list[tuple[str, list[Any]]] = []
    images: list[dict[str, str]] = []
    failures: list[ItemError] = []
    if faces:
        for face in await kinds.faces_of(deps, scope, ids, with_lists=True):
            rows.append((face.face_id, face_row(face, columns)))
            if save_images and face.has_attribute:
                attr = await deps.faces.GetFaceAttribute(
                    faces_pb2.GetFaceAttributeRequest(scope=scope, face_id=face.face_id)
                )
                data = attr.attribute.data
                samples = dict.fromkeys([*data.descriptor_samples, *data.basic_attributes_samples])
                await _add_samples(deps, scope, face.face_id, samples, images, failures)
        return rows, images, failures
    for e in await kinds.events_of(deps, scope, ids):
        event = MessageToDict(e.data)
        rows.append((event["event_id"], event_row(event, columns)))
        if save_images:
            samples = dict.fromkeys(
                d["sample_id"] for d in event.get("face_detections") or () if d.get("sample_id")
            )
            await _add_samples(deps, scope, event["event_id"], samples, images, failures)
    return rows, images, failures


def csv_zip(
    name: str,
    delimiter: str,
    header: list[str],
    results: list[Any],
    errors_json: list[dict[str, Any]],
) -> tuple[str, bytes]:
    """The parts' rows as one CSV file `name` in a zip, with their images and errors.json."""
    text = io.StringIO()
    writer = csv.writer(text, delimiter=delimiter, lineterminator="\n")
    writer.writerow(header)
    for part in results:
        writer.writerows((part or {}).get("rows", []))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, text.getvalue())
        for part in results:
            for image in (part or {}).get("images", []):
                archive.writestr(image["path"], base64.b64decode(image["data"]))
        if errors_json:
            archive.writestr("errors.json", orjson.dumps(errors_json))
    return "application/zip", buf.getvalue()


COLUMNS = {"type": "array", "items": {"type": "string"}, "minItems": 1}
CSV_DELIMITER = {"type": "string", "minLength": 1, "maxLength": 1}


class Exporter(Kind, name="exporter"):
    schema = closed(
        required=["objects_type", "filters"],
        properties={
            **OBJECTS,
            "columns": COLUMNS,
            "descriptor": {
                "type": "object",
                "additionalProperties": False,
                "properties": {"type": one_of("face", "body")},
                "required": ["type"],
            },
            "csv_delimiter": CSV_DELIMITER,
            "save_images": FLAG,
        },
    )

    async def prepare(self, deps: Deps, account_id: str, content: dict[str, Any]) -> dict:
        faces = content["objects_type"] == "faces"
        (FACE_FILTERS_CHECK if faces else EVENT_FILTERS_CHECK).validate(content["filters"])
        kinds.check_filters_account(account_id, content["filters"])
        allowed = FACE_COLUMNS if faces else EVENT_COLUMNS
        columns = content.setdefault("columns", DEFAULT_FACE_COLUMNS if faces else EVENT_COLUMNS)
        bad = [c for c in columns if c not in allowed]
        if bad:
            raise errors.bad_json("content.columns", f"{bad[0]!r} is not one of {allowed}")
        content.setdefault("csv_delimiter", ",")
        content.setdefault("save_images", 0)
        content.setdefault("descriptor", {"type": "face"})
        return content

    async def plan(self, deps: Deps, task: dict[str, Any]) -> list[dict[str, Any]]:
        content, account_id = task["content"], str(task["account_id"])
        if content["objects_type"] == "faces":
            parts = await kinds.chunked_face_ids(deps, account_id, content["filters"], PART_SIZE)
            return [{"face_ids": p} for p in parts] or [{"face_ids": []}]
        ids = await event_ids(deps, account_id, content["filters"])
        return [{"event_ids": ids[i : i + PART_SIZE]} for i in range(0, len(ids), PART_SIZE)] or [
            {"event_ids": []}
        ]

    async def run(self, deps: Deps, subtask: dict[str, Any]) -> Outcome:
        content, task = subtask["content"], subtask["task_content"]
        faces = "face_ids" in content
        ids = content["face_ids"] if faces else content["event_ids"]
        if not ids:
            return Outcome({"rows": []})
        scope = kinds.scope(str(subtask["account_id"]))
        rows, images, failures = await object_rows(
            deps, scope, faces, ids, task["columns"], bool(task.get("save_images"))
        )
        return Outcome({"rows": [row for _, row in rows], "images": images}, failures)

    def collect(
        self, task: dict[str, Any], results: list[Any], errors_json: list[dict[str, Any]]
    ) -> tuple[str, bytes]:
        content = task["content"]
        return csv_zip(
            f"{content['objects_type']}.csv",
            content["csv_delimiter"],
            content["columns"],
            results,
            errors_json,
        )


kinds.register(Exporter())
