"""gc (type 4): remove events chosen by filters, optionally with their samples.

A part first reads what its events reference and checkpoints it, then deletes the events and
the samples. A redelivered part resumes from the checkpoint: deleting what is already gone is
a no-op, and the result still names every event the part removed.
"""

from __future__ import annotations

import re
from typing import Any

import aiohttp
from google.protobuf.json_format import MessageToDict
from luna.common.v1 import paging_pb2
from luna.events.v1 import events_pb2
from luna.faces.v1 import blobs_pb2, faces_pb2

from services.common import errors
from services.tasks import kinds
from services.tasks.kinds import UUID, Deps, Kind, Outcome, closed, one_of
from services.tasks.store import ItemError
from services.tasks.types.exporter import event_ids

PART_SIZE = 1000
DESCRIPTOR_KINDS = {
    "face": events_pb2.DESCRIPTOR_KIND_FACE,
    "body": events_pb2.DESCRIPTOR_KIND_BODY,
}


async def _delete_events(
    deps: Deps, scope: Any, subtask: dict[str, Any], ids: list[str]
) -> Outcome:
    """Delete a part's events (what they reference is checkpointed first, so a redelivered
    part still removes their samples and origins), then their samples and origins if asked."""
    removed = subtask.get("checkpoint")
    if removed is None:
        removed = await _references(deps, scope, ids)
        await deps.store.save_checkpoint(subtask["subtask_id"], removed)
    for i in range(0, len(removed), PART_SIZE):
        await deps.events.DeleteEvents(
            events_pb2.DeleteEventsRequest(
                scope=scope, event_ids=[r["event_id"] for r in removed[i : i + PART_SIZE]]
            )
        )
    failures: list[ItemError] = []
    if subtask["task_content"].get("remove_samples"):
        failures += await _remove_samples(deps, scope, removed)
    if subtask["task_content"].get("remove_image_origins"):
        origins = dict.fromkeys(o for item in removed for o in item["image_origins"])
        for origin in origins:
            failure = await _remove_origin(deps, scope, origin)
            if failure is not None:
                failures.append(failure)
    result = [
        {
            "event_id": r["event_id"],
            "samples": r["face_samples"] + r["body_samples"],
            "image_origins": r["image_origins"],
        }
        for r in removed
    ]
    return Outcome(result, failures)


async def _remove_samples(deps: Deps, scope: Any, removed: list[dict[str, Any]]) -> list[ItemError]:
    """Delete the face and body samples of deleted events (one already gone is no failure)."""
    failures: list[ItemError] = []
    for item in removed:
        for kind, key in (
            (blobs_pb2.BLOB_KIND_FACE_SAMPLE, "face_samples"),
            (blobs_pb2.BLOB_KIND_BODY_SAMPLE, "body_samples"),
        ):
            for sample_id in item[key]:
                try:
                    await deps.blobs.DeleteBlob(
                        blobs_pb2.DeleteBlobRequest(scope=scope, kind=kind, blob_id=sample_id)
                    )
                except errors.LunaError as err:
                    if err.http_status != 404:
                        failures.append(ItemError.of(err, sample_id))
    return failures


class GC(Kind, name="gc"):
    schema = closed(
        required=["target"],
        properties={
            "target": one_of("events", "face_descriptors", "event_descriptors"),
            "filters": closed(
                {
                    "account_id": UUID,
                    "create_time__lt": kinds.DATE_TIME,
                    "insert_time__lt": kinds.DATE_TIME,
                    "handler_id": UUID,
                    "descriptor_version": {"type": "integer"},
                    "descriptor_type": one_of("face", "body"),
                },
            ),
            "store_results": {"type": "boolean"},
            "remove_samples": {"type": "boolean"},
            "remove_image_origins": {"type": "boolean"},
        },
    )

    async def prepare(self, deps: Deps, account_id: str, content: dict[str, Any]) -> dict:
        filters = content.setdefault("filters", {})
        if content["target"] != "events":
            need = {"descriptor_version"} | (
                {"descriptor_type"} if content["target"] == "event_descriptors" else set()
            )
            if set(filters) != need:
                raise errors.bad_json(
                    "content.filters", f"target {content['target']} takes exactly {sorted(need)}"
                )
            content.setdefault("store_results", True)
            return content
        kinds.check_filters_account(account_id, filters)
        for key in ("descriptor_version", "descriptor_type"):
            if key in filters:
                raise errors.bad_json(
                    "content.filters", f"{key}' is not allowed for target 'events"
                )
        if "insert_time__lt" in filters:
            # Events here record no separate insertion time; refusing beats guessing.
            raise errors.LunaError(
                errors.NOT_IMPLEMENTED, "filters.insert_time__lt is not implemented yet"
            )
        content.setdefault("store_results", True)
        content.setdefault("remove_samples", False)
        content.setdefault("remove_image_origins", False)
        return content

    async def plan(self, deps: Deps, task: dict[str, Any]) -> list[dict[str, Any]]:
        filters = task["content"]["filters"]
        if task["content"]["target"] == "face_descriptors":
            version = filters["descriptor_version"]
            faces: list[str] = []
            async for batch in deps.faces.StreamDescriptors(
                faces_pb2.StreamDescriptorsRequest(
                    scope=kinds.scope(str(task["account_id"])),
                    descriptor_version=version,
                    batch_size=PART_SIZE,
                )
            ):
                faces.extend(d.face_id for d in batch.descriptors)
            return [
                {"version": version, "face_ids": faces[i : i + PART_SIZE]}
                for i in range(0, len(faces), PART_SIZE)
            ]
        if task["content"]["target"] == "event_descriptors":
            kind = DESCRIPTOR_KINDS[filters["descriptor_type"]]
            found: list[str] = []
            while True:
                reply = await deps.events.GetEventDescriptors(
                    events_pb2.GetEventDescriptorsRequest(
                        scope=kinds.scope(str(task["account_id"])),
                        kind=kind,
                        version=filters["descriptor_version"],
                        event_id_gt=found[-1] if found else "",
                        limit=10000,
                    )
                )
                found.extend(d.event_id for d in reply.descriptors)
                if len(reply.descriptors) < 10000:
                    break
            return [
                {
                    "version": filters["descriptor_version"],
                    "kind": kind,
                    "descriptor_event_ids": found[i : i + PART_SIZE],
                }
                for i in range(0, len(found), PART_SIZE)
            ]
        flt: dict[str, Any] = {}
        if "create_time__lt" in filters:
            flt["create_time__lt"] = filters["create_time__lt"]
        if "handler_id" in filters:
            flt["handler_ids"] = [filters["handler_id"]]
        ids = await event_ids(deps, str(task["account_id"]), flt)
        return [{"event_ids": ids[i : i + PART_SIZE]} for i in range(0, len(ids), PART_SIZE)]

    async def run(self, deps: Deps, subtask: dict[str, Any]) -> Outcome:
        content = subtask["content"] or {}
        scope = kinds.scope(str(subtask["account_id"]))
        if "face_ids" in content:
            # Deleting a version's descriptor twice is a no-op, and every face of the part had
            # one when it was planned: the part's faces are its result on every delivery.
            await deps.faces.DeleteFaceDescriptors(
                faces_pb2.DeleteFaceDescriptorsRequest(
                    scope=scope, version=content["version"], face_ids=content["face_ids"]
                )
            )
            return Outcome(content["face_ids"])
        if "descriptor_event_ids" in content:
            await deps.events.DeleteEventDescriptors(
                events_pb2.DeleteEventDescriptorsRequest(
                    scope=scope,
                    kind=content["kind"],
                    version=content["version"],
                    event_ids=content["descriptor_event_ids"],
                )
            )
            return Outcome(content["descriptor_event_ids"])
        return await _delete_events(deps, scope, subtask, content.get("event_ids", []))

    def collect(
        self, task: dict[str, Any], results: list[Any], errors_json: list[dict[str, Any]]
    ) -> tuple[str, bytes]:
        if not task["content"].get("store_results", True):
            return "", b""
        return super().collect(task, results, errors_json)

    def merge(self, task: dict[str, Any], results: list[Any]) -> Any:
        return [item for part in results if part for item in part]


INTERNAL_IMAGE = re.compile(r"^/6/images/([a-f0-9-]{36})$")


async def _remove_origin(deps: Deps, scope: Any, origin: str) -> ItemError | None:
    """Delete an event's source image: ours through the faces service, an external one with
    an HTTP DELETE (as LUNA does) only where sources may reach; a gone image is fine."""
    match = INTERNAL_IMAGE.match(origin)
    if match:
        try:
            await deps.blobs.DeleteBlob(
                blobs_pb2.DeleteBlobRequest(
                    scope=scope, kind=blobs_pb2.BLOB_KIND_IMAGE, blob_id=match.group(1)
                )
            )
        except errors.LunaError as err:
            if err.http_status != 404:
                return ItemError.of(err, origin)
        return None
    try:
        await deps.sources.check_url(origin)
        timeout = aiohttp.ClientTimeout(total=deps.sources.timeout_s)
        async with (
            aiohttp.ClientSession(timeout=timeout) as http,
            http.delete(origin, allow_redirects=False) as resp,
        ):
            if resp.status >= 400 and resp.status != 404:
                return ItemError(
                    errors.BAD_INPUT, f"DELETE {origin} answered HTTP {resp.status}", origin
                )
    except errors.LunaError as err:
        return ItemError.of(err, origin)
    except (aiohttp.ClientError, TimeoutError) as exc:
        return ItemError(errors.BAD_INPUT, f"DELETE {origin} failed: {exc}", origin)
    return None


async def _references(deps: Deps, scope: Any, ids: list[str]) -> list[dict[str, Any]]:
    """The events of `ids` that still exist, with the samples and image origins they hold."""
    if not ids:
        return []
    reply = await deps.events.ListEvents(
        events_pb2.ListEventsRequest(
            scope=scope,
            filter=events_pb2.EventFilter(
                event_ids=ids, event_id_gte="00000000-0000-0000-0000-000000000000"
            ),
            targets=["event_id", "face_detections", "body_detections"],
            page=paging_pb2.Page(page=1, page_size=PART_SIZE),
            order="asc",
        )
    )
    found = []
    for e in reply.events:
        data = MessageToDict(e.data)
        refs: dict[str, Any] = {
            "event_id": e.event_id,
            "face_samples": [],
            "body_samples": [],
            "image_origins": [],
        }
        for kind in ("face", "body"):
            for det in data.get(f"{kind}_detections") or ():
                if det.get("sample_id"):
                    refs[f"{kind}_samples"].append(det["sample_id"])
                origin = det.get("image_origin")
                if origin and origin not in refs["image_origins"]:
                    refs["image_origins"].append(origin)
        found.append(refs)
    return found


kinds.register(GC())
