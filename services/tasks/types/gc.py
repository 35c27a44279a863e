"""gc (type 4): remove events chosen by filters, optionally with their samples.

Parts are event id ranges (planned from one streamed scan of the ids); a part is one filtered
DeleteEventsWhere whose receipt is the part, then the samples. A redelivered part gets the
receipt of what its first delivery removed: removing gone samples is a no-op, and the result
still names every event the part removed.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import aiohttp
import orjson
from luna.events.v1 import events_pb2
from luna.faces.v1 import blobs_pb2, faces_pb2

from services.common import errors, times
from services.tasks import kinds
from services.tasks.kinds import UUID, Deps, Kind, Outcome, closed, one_of
from services.tasks.store import ItemError, RawJson
from services.tasks.types.exporter import event_filter, stream_event_ids

PART_SIZE = 1000
# Events per part: one filtered delete each, so a part costs one statement, not one per event.
EVENTS_PART_SIZE = 10000
DESCRIPTOR_KINDS = {
    "face": events_pb2.DESCRIPTOR_KIND_FACE,
    "body": events_pb2.DESCRIPTOR_KIND_BODY,
}


async def _delete_events(deps: Deps, scope: Any, subtask: dict[str, Any]) -> Outcome:
    """Delete a part's events with one filtered delete in the events service, then their
    samples and origins if asked. The delete carries the part as its receipt: a redelivered
    part is told what its first delivery removed, so it still removes their samples and origins
    and its result still names every event."""
    content = subtask["content"]
    filters = {k: v for k, v in content.items() if k != "event_ids"}
    if "event_ids" in content:  # a part planned as an id list (before range parts)
        filters["event_ids"] = content["event_ids"]
    reply = await deps.events.DeleteEventsWhere(
        events_pb2.DeleteEventsWhereRequest(
            scope=scope,
            filter=event_filter(filters),
            receipt=f"tasks:{subtask['task_id']}:{subtask['subtask_id']}",
        )
    )
    flags = subtask["task_content"]
    if not (flags.get("remove_samples") or flags.get("remove_image_origins")):
        # The items are the part's result as they are: stored without decoding them.
        return Outcome(RawJson(reply.events_json))
    removed = orjson.loads(reply.events_json)
    failures: list[ItemError] = []
    if flags.get("remove_samples"):
        failures += await _remove_samples(deps, scope, removed, set(reply.body_sample_ids))
    if flags.get("remove_image_origins"):
        origins = dict.fromkeys(o for item in removed for o in item["image_origins"])
        for origin in origins:
            failure = await _remove_origin(deps, scope, origin)
            if failure is not None:
                failures.append(failure)
    return Outcome(removed, failures)


# Sample deletions a part keeps in flight (one DeleteBlob each; a part may hold 10000 events).
SAMPLE_DELETES = 16


async def _remove_samples(
    deps: Deps, scope: Any, removed: list[dict[str, Any]], body: set[str]
) -> list[ItemError]:
    """Delete the face and body samples of deleted events, SAMPLE_DELETES at a time (one
    already gone is no failure); the failures in the events' order."""
    samples = [
        (blobs_pb2.BLOB_KIND_BODY_SAMPLE if sample_id in body else blobs_pb2.BLOB_KIND_FACE_SAMPLE,
         sample_id)
        for item in removed
        for sample_id in item["samples"]
    ]  # fmt: skip
    gate = asyncio.Semaphore(SAMPLE_DELETES)

    async def delete(kind: int, sample_id: str) -> ItemError | None:
        async with gate:
            try:
                await deps.blobs.DeleteBlob(
                    blobs_pb2.DeleteBlobRequest(scope=scope, kind=kind, blob_id=sample_id)
                )
            except errors.LunaError as err:
                if err.http_status != 404:
                    return ItemError.of(err, sample_id)
        return None

    outcomes = await asyncio.gather(*(delete(kind, sample_id) for kind, sample_id in samples))
    return [failure for failure in outcomes if failure is not None]


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
        return await _event_ranges(deps, task)

    async def run(self, deps: Deps, subtask: dict[str, Any]) -> Outcome:
        content = subtask["content"] or {}
        scope = kinds.scope(str(subtask["account_id"]))
        if not content:
            # The engine's one empty part of a task that selected nothing: it must delete
            # nothing (an unfiltered DeleteEventsWhere would remove every event of the account).
            return Outcome([])
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
        return await _delete_events(deps, scope, subtask)

    # A worker deletes up to five waiting ranges of a task at once (one claim, one record,
    # one pull for all; each range stays one DELETE with its own receipt).
    batch_parts = 5

    async def run_many(
        self, deps: Deps, subtasks: list[dict[str, Any]]
    ) -> list[Outcome | errors.LunaError]:
        done = await asyncio.gather(*(self.run(deps, s) for s in subtasks), return_exceptions=True)
        for outcome in done:
            if isinstance(outcome, BaseException) and not isinstance(outcome, errors.LunaError):
                raise outcome  # retried as a whole; the ranges already deleted answer receipts
        return list(done)  # type: ignore[arg-type]

    flat = True

    def stores_result(self, task: dict[str, Any]) -> bool:
        return bool(task["content"].get("store_results", True))


async def _event_ranges(deps: Deps, task: dict[str, Any]) -> list[dict[str, Any]]:
    """Parts of at most EVENTS_PART_SIZE events as id ranges with the task's filters, from one
    scan of the ids in the events service that streams only the part bounds. Events created
    after the task are never in it (create_time__lt is at most the task's creation)."""
    filters = task["content"]["filters"]
    flt: dict[str, Any] = {}
    created = times.to_rfc3339(task["create_time"])
    flt["create_time__lt"] = min(
        [created, filters.get("create_time__lt", created)], key=times.parse_rfc3339
    )
    if "handler_id" in filters:
        flt["handler_ids"] = [filters["handler_id"]]
    # The first id of every EVENTS_PART_SIZE ids and the last id: the last one closes the
    # final part (which holds one more event when the last id also starts a run of its own,
    # rather than being a part of one event).
    found = [
        i
        async for batch in stream_event_ids(deps, str(task["account_id"]), flt, EVENTS_PART_SIZE)
        for i in batch
    ]
    if not found:
        return []
    starts, ends = found[:-1] or found, [*found[1:-1], _successor(found[-1])]
    return [
        {**flt, "event_id__gte": lo, "event_id__lt": hi}
        for lo, hi in zip(starts, ends, strict=True)
    ]


def _successor(event_id: str) -> str:
    """The uuid right after `event_id` (an exclusive bound that keeps it)."""
    return str(uuid.UUID(int=uuid.UUID(event_id).int + 1))


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


kinds.register(GC())
