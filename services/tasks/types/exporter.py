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
from typing import Any

import orjson
from google.protobuf.json_format import MessageToDict
from luna.common.v1 import paging_pb2
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
# Event filters this server can pass to the events service; others are refused, not ignored.
EVENT_FILTERS: dict[str, Any] = closed(
    {
        "account_id": UUID,
        "event_ids": kinds.uuid_array(),
        "event_id__gte": UUID,
        "event_id__lt": UUID,
        "handler_ids": kinds.uuid_array(),
        "face_ids": kinds.uuid_array(),
        "external_ids": {"type": "array", "items": {"type": "string", "maxLength": 36}},
        "create_time__gte": kinds.DATE_TIME,
        "create_time__lt": kinds.DATE_TIME,
        "end_time__gte": kinds.DATE_TIME,
        "end_time__lt": kinds.DATE_TIME,
    },
)


FACE_FILTERS_CHECK = kinds.SchemaCheck(FACES_FILTERS, "content.filters")
EVENT_FILTERS_CHECK = kinds.SchemaCheck(EVENT_FILTERS, "content.filters")


EVENT_TIMES = {**kinds.CREATE_TIMES, "end_time__gte": "end_time_gte", "end_time__lt": "end_time_lt"}


def event_filter(filters: dict[str, Any]) -> events_pb2.EventFilter:
    flt = events_pb2.EventFilter(
        event_ids=filters.get("event_ids", []),
        event_id_gte=filters.get("event_id__gte", ""),
        event_id_lt=filters.get("event_id__lt", ""),
        handler_ids=filters.get("handler_ids", []),
        face_ids=filters.get("face_ids", []),
        external_ids=filters.get("external_ids", []),
    )
    kinds.copy_times(
        filters,
        flt,
        {**kinds.CREATE_TIMES, "end_time__gte": "end_time_gte", "end_time__lt": "end_time_lt"},
    )
    return flt


async def event_ids(deps: Deps, account_id: str, filters: dict[str, Any]) -> list[str]:
    found: list[str] = []
    cursor = ""
    while True:
        flt = event_filter(filters)
        lower = max(flt.event_id_gte, cursor) if cursor else flt.event_id_gte
        flt.event_id_gte = lower or "00000000-0000-0000-0000-000000000000"
        reply = await deps.events.ListEvents(
            events_pb2.ListEventsRequest(
                scope=kinds.scope(account_id),
                filter=flt,
                targets=["event_id"],
                page=paging_pb2.Page(page=1, page_size=PART_SIZE),
                order="asc",
            )
        )
        got = [e.event_id for e in reply.events if e.event_id != cursor]
        found.extend(got)
        if len(reply.events) < PART_SIZE or not got:
            return found
        cursor = got[-1]


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
        reply = await deps.faces.ListFaces(
            faces_pb2.ListFacesRequest(
                scope=scope,
                filter=faces_pb2.FaceFilter(
                    face_ids=ids, face_id_gte="00000000-0000-0000-0000-000000000000"
                ),
                page=paging_pb2.Page(page=1, page_size=PART_SIZE),
                with_lists=True,
            )
        )
        for face in reply.faces:
            rows.append((face.face_id, face_row(face, columns)))
            if save_images and face.has_attribute:
                attr = await deps.faces.GetFaceAttribute(
                    faces_pb2.GetFaceAttributeRequest(scope=scope, face_id=face.face_id)
                )
                data = attr.attribute.data
                samples = dict.fromkeys([*data.descriptor_samples, *data.basic_attributes_samples])
                await _add_samples(deps, scope, face.face_id, samples, images, failures)
        return rows, images, failures
    reply = await deps.events.ListEvents(
        events_pb2.ListEventsRequest(
            scope=scope,
            filter=events_pb2.EventFilter(
                event_ids=ids, event_id_gte="00000000-0000-0000-0000-000000000000"
            ),
            page=paging_pb2.Page(page=1, page_size=PART_SIZE),
            order="asc",
        )
    )
    for e in reply.events:
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
