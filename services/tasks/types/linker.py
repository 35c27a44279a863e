"""linker (type 1): link faces selected by filters to an existing list or a new one.

Parts hold at most 1000 face ids, as LUNA documents. Linking is a set operation in the faces
service (a face already in the list stays linked once), so a redelivered part is harmless.
"""

from __future__ import annotations

from typing import Any

from luna.faces.v1 import lists_pb2

from services.common import errors
from services.tasks import kinds
from services.tasks.kinds import FACES_FILTERS, UUID, Deps, Kind, Outcome
from services.tasks.store import ItemError

PART_SIZE = 1000
FACE_NOT_FOUND = 22004


class Linker(Kind):
    task_type = 1
    name = "linker"
    schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["objects_type", "filters"],
        "properties": {
            "create_list": {"type": "integer", "enum": [0, 1]},
            "list_id": UUID,
            "user_data": {"type": "string", "maxLength": 128},
            "objects_type": {"type": "string", "enum": ["faces", "events"]},
            "filters": {"type": "object"},
        },
    }
    filters_schema = FACES_FILTERS

    async def prepare(self, deps: Deps, account_id: str, content: dict[str, Any]) -> dict:
        if content["objects_type"] == "events":
            raise errors.LunaError(
                kinds.NOT_IMPLEMENTED, "linker of events is not implemented by this server yet"
            )
        kinds.Kind.validate(_FiltersOnly(), content["filters"])
        kinds.check_filters_account(account_id, content["filters"])
        if content.get("create_list", 0) == 1:
            if "list_id" in content:
                raise errors.LunaError(
                    errors.BAD_INPUT, "Give either 'list_id' or 'create_list': 1, not both"
                )
        elif "list_id" not in content:
            raise errors.LunaError(
                errors.BAD_JSON,
                "Failed to validate input json. Path: 'content', message: "
                "'list_id is required unless create_list is 1'",
            )
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
        parts = await kinds.chunked_face_ids(deps, account_id, content["filters"], PART_SIZE)
        list_id = content.get("list_id")
        if list_id is None:
            # Created while planning, in the same planner pass that stores the parts.
            reply = await deps.lists.CreateList(
                lists_pb2.CreateListRequest(
                    scope=kinds.scope(account_id), user_data=content.get("user_data", "")
                )
            )
            list_id = reply.list.list_id
        return [{"list_id": list_id, "face_ids": ids} for ids in parts] or [
            {"list_id": list_id, "face_ids": []}
        ]

    async def run(self, deps: Deps, subtask: dict[str, Any]) -> Outcome:
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
            if err.code != FACE_NOT_FOUND:
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
                if err.code != FACE_NOT_FOUND:
                    raise
                failed.append(ItemError.of(err, fid))
        return Outcome({"list_id": list_id, "face_ids": linked}, failed)

    def merge(self, task: dict[str, Any], results: list[Any]) -> Any:
        results = [r for r in results if r]
        list_id = results[0]["list_id"] if results else task["content"].get("list_id")
        return {"list_id": list_id, "face_ids": [f for r in results for f in r["face_ids"]]}


class _FiltersOnly(Kind):
    task_type = 0
    name = "faces filters"
    schema = FACES_FILTERS


kinds.register(Linker())
