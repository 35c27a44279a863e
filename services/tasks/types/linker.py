"""linker (type 1): link faces selected by filters to an existing list or a new one.

Parts hold at most 1000 face ids, as LUNA documents. Linking is a set operation in the faces
service (a face already in the list stays linked once), so a redelivered part is harmless.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.json_format import MessageToDict
from luna.common.v1 import paging_pb2
from luna.events.v1 import events_pb2
from luna.faces.v1 import attributes_pb2, faces_pb2, lists_pb2

from services.common import errors, luna_json
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
)
from services.tasks.store import ItemError
from services.tasks.types import exporter

PART_SIZE = 1000


class Linker(Kind, name="linker"):
    schema = closed(
        required=["objects_type", "filters"],
        properties={
            "create_list": FLAG,
            "list_id": UUID,
            "user_data": {"type": "string", "maxLength": 128},
            **OBJECTS,
        },
    )
    filters_schema = FACES_FILTERS

    async def prepare(self, deps: Deps, account_id: str, content: dict[str, Any]) -> dict:
        if content["objects_type"] == "events":
            from services.tasks.types.exporter import EVENT_FILTERS_CHECK

            EVENT_FILTERS_CHECK.validate(content["filters"])
        else:
            _FACE_FILTERS_CHECK.validate(content["filters"])
        kinds.check_filters_account(account_id, content["filters"])
        if content.get("create_list", 0) == 1:
            if "list_id" in content:
                raise errors.LunaError(
                    errors.BAD_INPUT, "Give either 'list_id' or 'create_list': 1, not both"
                )
        elif "list_id" not in content:
            raise errors.bad_json("content", "list_id is required unless create_list is 1")
        else:
            # 22003 when the list is not this account's.
            await deps.lists.GetList(
                lists_pb2.GetListRequest(scope=kinds.scope(account_id), list_id=content["list_id"])
            )
        if "user_data" in content and content.get("create_list", 0) != 1:
            raise errors.LunaError(
                errors.BAD_INPUT, "'user_data' is only meaningful with 'create_list': 1"
            )
        return content

    async def plan(self, deps: Deps, task: dict[str, Any]) -> list[dict[str, Any]]:
        content, account_id = task["content"], str(task["account_id"])
        key = "face_ids"
        if content["objects_type"] == "events":
            key = "event_ids"
            ids = await exporter.event_ids(deps, account_id, content["filters"])
            parts = [ids[i : i + PART_SIZE] for i in range(0, len(ids), PART_SIZE)]
        elif "face_ids" in content["filters"]:
            parts = await kinds.chunked_face_ids(deps, account_id, content["filters"], PART_SIZE)
        else:
            parts = await _face_id_parts(deps, account_id, content["filters"])
        list_id = content.get("list_id")
        if list_id is None:
            # Created while planning, in the same planner pass that stores the parts.
            reply = await deps.lists.CreateList(
                lists_pb2.CreateListRequest(
                    scope=kinds.scope(account_id), user_data=content.get("user_data", "")
                )
            )
            list_id = reply.list.list_id
        return [{"list_id": list_id, key: ids} for ids in parts] or [{"list_id": list_id, key: []}]

    async def run(self, deps: Deps, subtask: dict[str, Any]) -> Outcome:
        if "event_ids" in subtask["content"]:
            return await _faces_from_events(deps, subtask)
        content, account_id = subtask["content"], str(subtask["account_id"])
        list_id, face_ids = content["list_id"], content["face_ids"]
        scope = kinds.scope(account_id)
        if not face_ids:
            return Outcome({"list_id": list_id, "face_ids": []})
        try:
            await deps.lists.AttachFaces(
                lists_pb2.AttachFacesRequest(scope=scope, list_id=list_id, face_ids=face_ids)
            )
            return Outcome({"list_id": list_id, "face_ids": face_ids})
        except errors.LunaError as err:
            if err.code != errors.FACES_NOT_FOUND:
                raise
        # A face vanished since planning: link the others one by one, report the missing.
        linked, failed = [], []
        for fid in face_ids:
            try:
                await deps.lists.AttachFaces(
                    lists_pb2.AttachFacesRequest(scope=scope, list_id=list_id, face_ids=[fid])
                )
                linked.append(fid)
            except errors.LunaError as err:
                if err.code != errors.FACES_NOT_FOUND:
                    raise
                failed.append(ItemError.of(err, fid))
        return Outcome({"list_id": list_id, "face_ids": linked}, failed)

    # A worker links up to ten waiting parts of the task in one AttachFaces (`bulk`: one call,
    # one transaction, one change message per 1000 faces); each part keeps its 1000 ids, its
    # own outcome and its own record.
    batch_parts = 10

    async def run_many(
        self, deps: Deps, subtasks: list[dict[str, Any]]
    ) -> list[Outcome | errors.LunaError]:
        contents = [s["content"] for s in subtasks]
        lists = {c.get("list_id") for c in contents}
        if len(lists) != 1 or not all("face_ids" in c for c in contents):
            return await super().run_many(deps, subtasks)
        list_id = contents[0]["list_id"]
        face_ids = [f for c in contents for f in c["face_ids"]]
        if face_ids:
            try:
                await deps.lists.AttachFaces(
                    lists_pb2.AttachFacesRequest(
                        scope=kinds.scope(str(subtasks[0]["account_id"])),
                        list_id=list_id,
                        face_ids=face_ids,
                        bulk=True,
                    )
                )
            except errors.LunaError as err:
                if err.code != errors.FACES_NOT_FOUND:
                    raise
                # A face vanished since planning: each part alone names its missing faces.
                return await super().run_many(deps, subtasks)
        done: list[Outcome | errors.LunaError] = [
            Outcome({"list_id": list_id, "face_ids": c["face_ids"]}) for c in contents
        ]
        return done

    def merge(self, task: dict[str, Any], results: list[Any]) -> Any:
        results = [r for r in results if r]
        list_id = results[0]["list_id"] if results else task["content"].get("list_id")
        return {"list_id": list_id, "face_ids": [f for r in results for f in r["face_ids"]]}


async def _face_id_parts(deps: Deps, account_id: str, filters: dict[str, Any]) -> list[list[str]]:
    """The ids the filters select, ascending, in parts: one keyset scan streamed by the faces
    service (paging ListFaces 1000 ids a call made planning 100k faces take seconds)."""
    ids: list[str] = []
    async for batch in deps.faces.StreamFaceIds(
        faces_pb2.StreamFaceIdsRequest(
            scope=kinds.scope(account_id), filter=luna_json.face_filter(filters), batch_size=10000
        )
    ):
        ids.extend(batch.face_ids)
    return [ids[i : i + PART_SIZE] for i in range(0, len(ids), PART_SIZE)]


async def _faces_from_events(deps: Deps, subtask: dict[str, Any]) -> Outcome:
    """A new face per event (its descriptor, samples, user data and external id), linked to
    the list. The face is keyed by (list, event): a redelivered part finds the face it made
    before instead of making a second one."""
    content = subtask["content"]
    list_id, wanted = content["list_id"], content["event_ids"]
    scope = kinds.scope(str(subtask["account_id"]))
    if not wanted:
        return Outcome({"list_id": list_id, "face_ids": []})
    listed = await kinds.events_of(
        deps, scope, wanted, ["event_id", "user_data", "external_id", "face_detections"]
    )
    found = {e.event_id: MessageToDict(e.data) for e in listed}
    descriptors = await deps.events.GetEventDescriptors(
        events_pb2.GetEventDescriptorsRequest(
            scope=scope,
            event_ids=wanted,
            kind=events_pb2.DESCRIPTOR_KIND_FACE,
            version=deps.types.descriptor_version,
            limit=PART_SIZE,
        )
    )
    by_event = {d.event_id: d for d in descriptors.descriptors}
    face_ids, failures = [], []
    for event_id in wanted:
        event = found.get(event_id)
        if event is None:
            failures.append(
                ItemError(errors.EVENT_NOT_FOUND, f"Event with id {event_id} not found", event_id)
            )
            continue
        face_ids.append(await _face_of(deps, scope, list_id, event_id, event, by_event))
    return Outcome({"list_id": list_id, "face_ids": face_ids}, failures)


async def _face_of(
    deps: Deps,
    scope: Any,
    list_id: str,
    event_id: str,
    event: dict[str, Any],
    descriptors: dict[str, Any],
) -> str:
    """The face of the list made from the event: the one made by an earlier delivery, or a new
    one with the event's descriptor (of the linker's version) and samples."""
    existing = await deps.faces.ListFaces(
        faces_pb2.ListFacesRequest(
            scope=scope,
            filter=faces_pb2.FaceFilter(event_id=event_id, list_id=list_id),
            page=paging_pb2.Page(page=1, page_size=1),
        )
    )
    if existing.faces:
        return str(existing.faces[0].face_id)
    request = faces_pb2.CreateFaceRequest(
        scope=scope,
        event_id=event_id,
        user_data=event.get("user_data") or "",
        external_id=event.get("external_id") or "",
        list_ids=[list_id],
    )
    desc = descriptors.get(event_id)
    if desc is not None:
        samples = [d["sample_id"] for d in event.get("face_detections") or () if d.get("sample_id")]
        request.attribute.data.CopyFrom(
            attributes_pb2.AttributeData(
                descriptors=[
                    attributes_pb2.Descriptor(descriptor=desc.descriptor, version=desc.version)
                ],
                descriptor_samples=samples,
            )
        )
    reply = await deps.faces.CreateFace(request)
    return str(reply.face.face_id)


# The path of its errors stays 'content.<field>', as the linker answered before.
_FACE_FILTERS_CHECK = kinds.SchemaCheck(FACES_FILTERS, "content")


kinds.register(Linker())
