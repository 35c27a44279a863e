"""additional_extract (type 5): extract missing face descriptors of a version from the stored
samples of faces or of events (e.g. after a gc of that version, or after a new model).

Parts are 1000 face or event ids chosen by the filters. A face or event that already has a
descriptor of the version is left alone (`missing: true`), which is also what makes a
redelivered part harmless. The descriptor comes from the estimator's Extract on the object's
stored face sample: a face's is written back through the faces service with the rest of its
attribute unchanged; an event's is added to the events service's descriptors of the event
(`PutEventDescriptors`, which keeps one already there). An event whose face sample is not
stored (none recorded, or removed, e.g. by a gc with `remove_samples`) is a task error of that
event (13003), never a silent skip.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.json_format import MessageToDict
from luna.common.v1 import paging_pb2
from luna.estimator.v1 import estimator_pb2
from luna.events.v1 import events_pb2
from luna.faces.v1 import attributes_pb2, blobs_pb2, faces_pb2

from services.common import errors
from services.tasks import kinds
from services.tasks.kinds import UUID, Deps, Kind, Outcome, closed, one_of
from services.tasks.store import ItemError
from services.tasks.types import exporter

PART_SIZE = 1000


class AdditionalExtract(Kind, name="additional_extract"):
    schema = closed(
        required=["extraction_target", "filters"],
        properties={
            "extraction_target": one_of("face_descriptor", "body_descriptor", "basic_attributes"),
            "options": closed(
                {
                    "descriptor_version": {"type": "integer"},
                    "missing": {"type": "boolean"},
                },
            ),
            "filters": closed(
                {
                    "objects_type": one_of("faces", "events"),
                    "account_id": UUID,
                    "face_id__gte": UUID,
                    "face_id__lt": UUID,
                    "handler_id": UUID,
                    "event_id__gte": UUID,
                    "event_id__lt": UUID,
                    "insert_time__gte": kinds.DATE_TIME,
                    "insert_time__lt": kinds.DATE_TIME,
                },
                required=["objects_type"],
            ),
        },
    )

    async def prepare(self, deps: Deps, account_id: str, content: dict[str, Any]) -> dict:
        target, filters = content["extraction_target"], content["filters"]
        options = content.setdefault("options", {})
        if target != "face_descriptor":
            raise errors.LunaError(
                errors.NOT_IMPLEMENTED, f"additional_extract of {target} is not implemented yet"
            )
        if any(k.startswith("insert_time__") for k in filters):
            # Events here record no separate insertion time (as gc's insert_time__lt).
            raise errors.LunaError(
                errors.NOT_IMPLEMENTED, "filters.insert_time__* is not implemented yet"
            )
        wrong = [k for k in filters if k.split("__")[0] in _OTHER_KEYS[filters["objects_type"]]]
        if wrong:
            raise errors.bad_json(
                f"content.filters.{wrong[0]}",
                f"not a filter of objects_type {filters['objects_type']}",
            )
        if "descriptor_version" not in options:
            raise errors.bad_json("content.options", "'descriptor_version' is a required property")
        if not options.setdefault("missing", True):
            raise errors.LunaError(
                errors.NOT_IMPLEMENTED,
                "Required server functionality is not implemented (missing: false)",
            )
        version = options["descriptor_version"]
        allowed = {int(v) for v in deps.types.extractable_versions.split(",") if v.strip()}
        if version not in allowed:
            raise errors.LunaError(
                errors.UNSUPPORTED_DESCRIPTOR_VERSION,
                f"Descriptor version {version} is not supported",
            )
        kinds.check_filters_account(account_id, filters)
        return content

    async def plan(self, deps: Deps, task: dict[str, Any]) -> list[dict[str, Any]]:
        account_id, filters = str(task["account_id"]), task["content"]["filters"]
        if filters["objects_type"] == "events":
            flt = {k: v for k, v in filters.items() if k.startswith("event_id__")}
            if "handler_id" in filters:
                flt["handler_ids"] = [filters["handler_id"]]
            ids = await exporter.event_ids(deps, account_id, flt)
            return [{"event_ids": ids[i : i + PART_SIZE]} for i in range(0, len(ids), PART_SIZE)]
        filters = {k: v for k, v in filters.items() if k.startswith("face_id__")}
        parts = await kinds.chunked_face_ids(deps, account_id, filters, PART_SIZE)
        return [{"face_ids": p} for p in parts]

    async def run(self, deps: Deps, subtask: dict[str, Any]) -> Outcome:
        version = subtask["task_content"]["options"]["descriptor_version"]
        scope = kinds.scope(str(subtask["account_id"]))
        if not subtask["content"]:  # the engine's one empty part of a task that selected none
            return Outcome([])
        if "event_ids" in subtask["content"]:
            return await _extract_events(deps, scope, subtask["content"]["event_ids"], version)
        done, failures = [], []
        for face_id in subtask["content"]["face_ids"]:
            try:
                item = await _extract_one(deps, scope, face_id, version)
            except errors.LunaError as err:
                if err.code in (errors.INTERNAL, errors.REQUEST_TIMEOUT):
                    raise
                failures.append(ItemError.of(err, face_id))
                continue
            if item is not None:
                done.append(item)
        return Outcome(done, failures)

    def merge(self, task: dict[str, Any], results: list[Any]) -> Any:
        return [item for part in results if part for item in part]


# Filters of the other objects_type (a face filter on events would silently select nothing).
_OTHER_KEYS = {"faces": {"event_id", "handler_id"}, "events": {"face_id"}}


async def _extract_events(deps: Deps, scope: Any, event_ids: list[str], version: int) -> Outcome:
    """Descriptors of `version` for the part's events that lack one, each from the event's
    first stored face sample, added in one call; the events done and the errors of those
    without a stored sample."""
    if not event_ids:
        return Outcome([])
    done = await kinds.event_face_descriptors(deps, scope, event_ids, version)
    wanted = [e for e in event_ids if e not in done]
    if not wanted:
        return Outcome([])
    listed = await deps.events.ListEvents(
        events_pb2.ListEventsRequest(
            scope=scope,
            filter=events_pb2.EventFilter(event_ids=wanted, no_default_window=True),
            targets=["event_id", "face_detections"],
            page=paging_pb2.Page(page=1, page_size=PART_SIZE),
            order="asc",
        )
    )
    samples = {
        e.event_id: [
            d["sample_id"]
            for d in MessageToDict(e.data).get("face_detections") or ()
            if d.get("sample_id")
        ]
        for e in listed.events
    }
    items, extracted, failures = [], [], []
    for event_id in wanted:
        if event_id not in samples:  # deleted since planning: nothing to extract
            continue
        try:
            sample_id, descriptor = await _event_descriptor(
                deps, scope, event_id, samples[event_id], version
            )
        except errors.LunaError as err:
            if err.code in (errors.INTERNAL, errors.REQUEST_TIMEOUT):
                raise
            failures.append(ItemError.of(err, event_id))
            continue
        items.append(events_pb2.EventDescriptorItem(event_id=event_id, descriptor=descriptor,
                                                    version=version))  # fmt: skip
        extracted.append({"event_id": event_id, "samples": [sample_id]})
    if items:
        await deps.events.PutEventDescriptors(
            events_pb2.PutEventDescriptorsRequest(
                scope=scope, kind=events_pb2.DESCRIPTOR_KIND_FACE, descriptors=items
            )
        )
    return Outcome(extracted, failures)


async def _event_descriptor(
    deps: Deps, scope: Any, event_id: str, samples: list[str], version: int
) -> tuple[str, bytes]:
    """(sample id, descriptor) of the event's first face sample; 13003 when it has none or
    its sample is no longer stored."""
    if not samples:
        raise errors.LunaError(
            errors.IMAGE_NOT_FOUND, f"Event {event_id} has no stored face sample to extract from"
        )
    try:
        blob = await deps.blobs.GetBlob(
            blobs_pb2.GetBlobRequest(
                scope=scope, kind=blobs_pb2.BLOB_KIND_FACE_SAMPLE, blob_id=samples[0]
            )
        )
    except errors.LunaError as err:
        if err.http_status != 404:
            raise
        raise errors.LunaError(
            errors.IMAGE_NOT_FOUND,
            f"Image with id '{samples[0]}' not found (face sample of event {event_id})",
        ) from None
    return samples[0], await _extract(deps, blob.blob, version)


async def _extract_one(deps: Deps, scope: Any, face_id: str, version: int) -> dict | None:
    """The face's missing descriptor from its sample; None when there is nothing to do."""
    try:
        reply = await deps.faces.GetFaceAttribute(
            faces_pb2.GetFaceAttributeRequest(scope=scope, face_id=face_id)
        )
    except errors.LunaError as err:
        if err.http_status == 404:  # no attribute (or the face is gone): nothing to extract
            return None
        raise
    data = reply.attribute.data
    if any(d.version == version for d in data.descriptors):
        return None
    samples = list(data.descriptor_samples) or list(data.basic_attributes_samples)
    if not samples:
        return None
    blob = await deps.blobs.GetBlob(
        blobs_pb2.GetBlobRequest(
            scope=scope, kind=blobs_pb2.BLOB_KIND_FACE_SAMPLE, blob_id=samples[0]
        )
    )
    descriptor = await _extract(deps, blob.blob, version)
    new = attributes_pb2.AttributeData()
    new.CopyFrom(data)
    new.descriptors.append(attributes_pb2.Descriptor(descriptor=descriptor, version=version))
    if not new.descriptor_samples:
        new.descriptor_samples.append(samples[0])
    await deps.faces.PutFaceAttribute(
        faces_pb2.PutFaceAttributeRequest(
            scope=scope, face_id=face_id, attribute=faces_pb2.FaceAttributeInput(data=new)
        )
    )
    return {"face_id": face_id, "samples": [samples[0]]}


kinds.register(AdditionalExtract())


async def _extract(deps: Deps, sample: blobs_pb2.Blob, version: int) -> bytes:
    """The descriptor of version `version` of one stored face sample."""
    extracted = await deps.estimator.Extract(
        estimator_pb2.ExtractRequest(
            samples=[estimator_pb2.Sample(data=sample.data, content_type=sample.content_type)],
            descriptor_version=version,
        )
    )
    descriptor = extracted.descriptors[0]
    if descriptor.version != version:
        raise errors.LunaError(
            errors.UNSUPPORTED_DESCRIPTOR_VERSION, f"Descriptor version {version} is not supported"
        )
    return descriptor.data
