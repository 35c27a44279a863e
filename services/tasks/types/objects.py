"""Objects of the analytical tasks: faces or events chosen by filters, and their descriptors.

Ids come from the owners' list calls (faces: ListFaces paged by id; events: ListEvents), the
descriptors from their descriptor calls (FacesService.StreamDescriptors,
EventsService.GetEventDescriptors), never from their tables. Only objects that have a
descriptor of the platform's version take part, as in LUNA.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from luna.faces.v1 import attributes_pb2, faces_pb2

from services.common import descriptors as codec
from services.common import errors
from services.tasks import kinds
from services.tasks.kinds import FACES_FILTERS, Deps
from services.tasks.types import exporter

CHUNK = 1000
DIM_BYTES = 4


def descriptor_type_check(descriptor: dict[str, Any] | None) -> None:
    if (descriptor or {}).get("type", "face") != "face":
        raise errors.LunaError(
            errors.NOT_IMPLEMENTED, "Body descriptors are not implemented by this server"
        )


def check_filters(objects_type: str, filters: dict[str, Any], account_id: str) -> None:
    """Filters of the type's documented shape, and never another account's."""
    if objects_type == "faces":
        exporter.FACE_FILTERS_CHECK.validate(filters)
    elif objects_type == "events":
        exporter.EVENT_FILTERS_CHECK.validate(filters)
    elif objects_type == "attributes":
        ATTRIBUTE_FILTERS_CHECK.validate(filters)
    else:
        raise errors.LunaError(
            errors.NOT_IMPLEMENTED,
            f"{objects_type} as analytical task objects are not implemented by this server",
        )
    kinds.check_filters_account(account_id, filters)


# The faces filters without account_id (cross_match's reference/candidate filters).
FACES_FILTERS_NO_ACCOUNT = {
    **FACES_FILTERS,
    "properties": {k: v for k, v in FACES_FILTERS["properties"].items() if k != "account_id"},
}


ATTRIBUTE_FILTERS_CHECK = kinds.SchemaCheck(
    {
        "type": "object",
        "additionalProperties": False,
        "required": ["attribute_ids"],
        "properties": {"attribute_ids": {**kinds.uuid_array(20000), "minItems": 1}},
    },
    "content.filters",
)


async def object_ids(
    deps: Deps, account_id: str, objects_type: str, filters: dict[str, Any], limit: int = 0
) -> list[str]:
    """Ids the filters select (AND-combined), ascending; at most `limit` when given."""
    found: list[str] = []
    if objects_type == "attributes":
        # Expired or unknown attributes have no descriptor and drop out with `descriptors`.
        found = sorted(set(filters["attribute_ids"]))
        return found[:limit] if limit else found
    if objects_type == "faces":
        async for fid in kinds.face_ids(deps, account_id, filters):
            found.append(fid)
            if limit and len(found) >= limit:
                break
        return found
    found = await exporter.event_ids(deps, account_id, filters)
    return found[:limit] if limit else found


async def descriptors(
    deps: Deps, account_id: str, objects_type: str, ids: list[str]
) -> tuple[list[str], np.ndarray]:
    """(ids that have a descriptor, their descriptors as float32 rows), in the order of `ids`."""
    version = deps.types.descriptor_version
    scope = kinds.scope(account_id)
    got: dict[str, bytes] = {}
    for s in range(0, len(ids), CHUNK):
        chunk = ids[s : s + CHUNK]
        if objects_type == "faces":
            request = faces_pb2.StreamDescriptorsRequest(
                scope=scope, face_ids=chunk, descriptor_version=version, batch_size=CHUNK
            )
            async for batch in deps.faces.StreamDescriptors(request):
                for d in batch.descriptors:
                    got[d.face_id] = d.descriptor
        elif objects_type == "attributes":
            reply = await deps.attributes.GetAttributes(
                attributes_pb2.GetAttributesRequest(
                    scope=scope, attribute_ids=chunk, descriptor_version=version
                )
            )
            for attr in reply.attributes:
                for d in attr.data.descriptors:
                    if d.version == version:
                        got[attr.attribute_id] = d.descriptor
        else:
            got.update(await kinds.event_face_descriptors(deps, scope, chunk, version))
    kept = [i for i in ids if i in got]
    if not kept:
        return [], np.zeros((0, 128), dtype=np.float32)
    matrix = codec.unpack_rows([got[i] for i in kept]).astype(np.float32)
    return kept, matrix
