"""additional_extract (type 5): extract missing face descriptors of a version from the faces'
own samples (e.g. after a gc of that version, or for faces enrolled from bare basic
attributes with samples).

Parts are 1000 face ids chosen by the filters; a part reads each face's attribute, and a face
that already has a descriptor of the version is left alone (`missing: true`), which is also
what makes a redelivered part harmless. The descriptor comes from the estimator's Extract on
the face's stored sample and is written back through the faces service with the rest of the
attribute unchanged.
"""

from __future__ import annotations

from typing import Any

from luna.estimator.v1 import estimator_pb2
from luna.faces.v1 import attributes_pb2, blobs_pb2, faces_pb2

from services.common import errors
from services.tasks import kinds
from services.tasks.kinds import UUID, Deps, Kind, Outcome, closed, one_of
from services.tasks.store import ItemError

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
        if filters["objects_type"] != "faces":
            raise errors.LunaError(
                errors.NOT_IMPLEMENTED, "additional_extract of events is not implemented yet"
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
        filters = {k: v for k, v in task["content"]["filters"].items() if k.startswith("face_id__")}
        parts = await kinds.chunked_face_ids(deps, str(task["account_id"]), filters, PART_SIZE)
        return [{"face_ids": p} for p in parts]

    async def run(self, deps: Deps, subtask: dict[str, Any]) -> Outcome:
        version = subtask["task_content"]["options"]["descriptor_version"]
        scope = kinds.scope(str(subtask["account_id"]))
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
    extracted = await deps.estimator.Extract(
        estimator_pb2.ExtractRequest(
            samples=[
                estimator_pb2.Sample(data=blob.blob.data, content_type=blob.blob.content_type)
            ],
            descriptor_version=version,
        )
    )
    descriptor = extracted.descriptors[0]
    if descriptor.version != version:
        raise errors.LunaError(
            errors.UNSUPPORTED_DESCRIPTOR_VERSION, f"Descriptor version {version} is not supported"
        )
    new = attributes_pb2.AttributeData()
    new.CopyFrom(data)
    new.descriptors.append(attributes_pb2.Descriptor(descriptor=descriptor.data, version=version))
    if not new.descriptor_samples:
        new.descriptor_samples.append(samples[0])
    await deps.faces.PutFaceAttribute(
        faces_pb2.PutFaceAttributeRequest(
            scope=scope, face_id=face_id, attribute=faces_pb2.FaceAttributeInput(data=new)
        )
    )
    return {"face_id": face_id, "samples": [samples[0]]}


kinds.register(AdditionalExtract())
