"""estimator (type 9): a handler over a batch of images from a network disk, a ZIP by URL or
an FTP server; one result (events, filtered detections, errors) per image.

Each image is one call of the events service's pipeline (the same flow as
`POST /6/handlers/{id}/events`). Its outcome goes to a per-part ledger before the next one
starts, so a redelivered part skips the images already done; only an image in flight when a
worker died can be processed again.
"""

from __future__ import annotations

import asyncio
from typing import Any

from google.protobuf import struct_pb2
from luna.estimator.v1 import estimator_pb2
from luna.events.v1 import handlers_pb2, pipeline_pb2

from services.common import errors, pbjson
from services.tasks import kinds, sources
from services.tasks.kinds import UUID, Deps, Kind, Outcome, closed, one_of
from services.tasks.store import ItemError

_gates: dict[tuple[int, str], asyncio.Semaphore] = {}
# Source reads a worker may have in flight or done ahead, per pipeline slot.
READ_AHEAD = 2


def _gate(concurrency: int, name: str = "pipeline") -> asyncio.Semaphore:
    """A worker-wide semaphore shared by its parts (one per event loop and name)."""
    key = (id(asyncio.get_running_loop()), name)
    if key not in _gates:
        _gates[key] = asyncio.Semaphore(concurrency)
    return _gates[key]


STATIC, DYNAMIC = 0, 1
IMAGE_TYPES = {
    0: estimator_pb2.IMAGE_TYPE_RAW,
    1: estimator_pb2.IMAGE_TYPE_FACE_WARP,
    2: estimator_pb2.IMAGE_TYPE_BODY_WARP,
}
_IMAGE_TYPE = {"type": "integer", "enum": [0, 1, 2]}
_PREFIXES = {"prefix": {"type": "string"}, "postfix": {"type": "string"}}
_BOOLEAN = {"type": "boolean"}


def _source(
    source_type: str, reference: dict[str, Any], required: tuple[str, ...] = (), **more: Any
) -> dict[str, Any]:
    """One kind of image source: its `source_type`, its `reference` (both required), the
    properties only it takes and the `image_type` every source takes."""
    return closed(
        {
            "source_type": {"const": source_type},
            "reference": reference,
            **more,
            "image_type": _IMAGE_TYPE,
        },
        required=["source_type", "reference", *required],
    )


SOURCE_SCHEMA: dict[str, Any] = {
    "oneOf": [
        _source(
            "zip",
            {"type": "string", "format": "uri"},
            authorization={
                "type": "object",
                "additionalProperties": False,
                "properties": {"password": {"type": "string", "maxLength": 128}},
            },
        ),
        _source(
            "network_disk",
            closed(
                {"path": {"type": "string"}, "follow_links": _BOOLEAN, **_PREFIXES},
                required=["path"],
            ),
            recursive=_BOOLEAN,
        ),
        _source(
            "ftp",
            closed(
                {
                    "host": {"type": "string"},
                    "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                    "user": {"type": "string"},
                    "password": {"type": "string"},
                    "max_sessions": {"type": "integer", "minimum": 1, "maximum": 50},
                    "path": {"type": "string"},
                    **_PREFIXES,
                },
                required=["host"],
            ),
            authorization={
                "type": "object",
                "additionalProperties": False,
                "properties": {"user": {"type": "string"}, "password": {"type": "string"}},
            },
            recursive=_BOOLEAN,
        ),
        _source(
            "s3",
            closed(
                {
                    "endpoint": {"type": "string", "format": "uri"},
                    "bucket_name": {"type": "string", "minLength": 1},
                    "prefix": {"type": "string"},
                    "region": {"type": "string"},
                },
                required=["bucket_name"],
            ),
            required=("authorization",),
            authorization=closed(
                {
                    "public_access_key": {"type": "string"},
                    "secret_access_key": {"type": "string"},
                    "signature_version": one_of("s3v2", "s3v4"),
                },
                required=["public_access_key", "secret_access_key"],
            ),
            recursive=_BOOLEAN,
            save_origin=_BOOLEAN,
        ),
    ]
}


class Estimator(Kind, name="estimator"):
    schema = closed(
        required=["handler", "source"],
        properties={
            "handler": closed(
                {
                    "handler_id": UUID,
                    "policies": {"type": "object"},
                    "description": {"type": "string", "maxLength": 128},
                },
            ),
            "source": SOURCE_SCHEMA,
            "filters": {
                "type": "object",
                "additionalProperties": False,
                "properties": {"account_id": UUID},
            },
        },
    )

    async def prepare(self, deps: Deps, account_id: str, content: dict[str, Any]) -> dict:
        kinds.check_filters_account(account_id, content.get("filters", {}))
        handler, source = content["handler"], content["source"]
        scope = kinds.scope(account_id)
        if "handler_id" in handler:
            found = await deps.handlers.GetHandler(
                handlers_pb2.GetHandlerRequest(scope=scope, handler_id=handler["handler_id"])
            )  # 34000 for a handler of another account
            kind = found.handler.handler_type
            if kind == DYNAMIC and "policies" in handler:
                # LUNA: a dynamic handler takes its policies from the task.
                policies = struct_pb2.Struct()
                policies.update(handler["policies"])
                await deps.handlers.ValidatePolicies(
                    handlers_pb2.ValidatePoliciesRequest(scope=scope, policies=policies)
                )
            elif kind == DYNAMIC:
                raise errors.LunaError(
                    errors.BAD_INPUT,
                    f"Handler {handler['handler_id']} is dynamic: give its policies in the task",
                )
            elif kind != STATIC:
                raise errors.LunaError(
                    errors.BAD_INPUT,
                    f"Handler {handler['handler_id']} is not static or dynamic: not supported",
                )
            elif "policies" in handler:
                raise errors.LunaError(
                    errors.BAD_INPUT, "policies cannot be given with a static handler"
                )
        elif "policies" in handler:
            policies = struct_pb2.Struct()
            policies.update(handler["policies"])
            await deps.handlers.ValidatePolicies(
                handlers_pb2.ValidatePoliciesRequest(scope=scope, policies=policies)
            )
        else:
            raise errors.bad_json("content.handler", "handler_id or policies is required")
        kind = source["source_type"]
        source.setdefault("image_type", 0)
        if kind == "network_disk":
            source.setdefault("recursive", True)
            source["reference"].setdefault("follow_links", False)
            deps.sources.check_disk_path(source["reference"]["path"])
        elif kind == "zip":
            await deps.sources.check_url(source["reference"])
        elif kind == "s3":
            source.setdefault("recursive", True)
            source.setdefault("save_origin", True)
            source["authorization"].setdefault("signature_version", "s3v4")
            await deps.sources.check_s3(source["reference"])
        else:
            source.setdefault("recursive", True)
            ref = source["reference"]
            await deps.sources.check_host(ref["host"], int(ref.get("port", 21)))
        return content

    async def plan(self, deps: Deps, task: dict[str, Any]) -> list[dict[str, Any]]:
        content, account_id = task["content"], str(task["account_id"])
        source = content["source"]
        kind = source["source_type"]
        if kind == "network_disk":
            names = await asyncio.to_thread(
                deps.sources.list_disk, source["reference"], source["recursive"]
            )
        elif kind == "zip":
            path = await deps.sources.zip_archive(source["reference"], str(task["task_id"]))
            password = source.get("authorization", {}).get("password")
            names = await asyncio.to_thread(deps.sources.list_zip, path, password)
        elif kind == "s3":
            names = await deps.sources.list_s3(
                source["reference"], source["authorization"], source["recursive"]
            )
        else:
            names = await deps.sources.list_ftp(
                source["reference"], _ftp_auth(source), source["recursive"]
            )
        handler_id = content["handler"].get("handler_id")
        dynamic = handler_id is not None and "policies" in content["handler"]
        if handler_id is None:
            policies = struct_pb2.Struct()
            policies.update(content["handler"]["policies"])
            reply = await deps.handlers.CreateHandler(
                handlers_pb2.CreateHandlerRequest(
                    scope=kinds.scope(account_id),
                    fields=handlers_pb2.HandlerFields(
                        description=content["handler"].get(
                            "description", f"estimator_task_{task['task_id']}"
                        ),
                        handler_type=STATIC,
                        policies=policies,
                    ),
                )
            )
            handler_id = reply.handler.handler_id
        size = deps.types.estimator_part_size
        return [
            {"handler_id": handler_id, "dynamic": dynamic, "files": names[i : i + size]}
            for i in range(0, len(names), size)
        ] or [{"handler_id": handler_id, "dynamic": dynamic, "files": []}]

    async def run(self, deps: Deps, subtask: dict[str, Any]) -> Outcome:
        content, task_content = subtask["content"], subtask["task_content"]
        source = task_content["source"]
        done = await deps.store.part_items(subtask["subtask_id"])
        scope = kinds.scope(str(subtask["account_id"]))
        gate = _gate(deps.types.estimator_concurrency)
        zip_path = None
        if source["source_type"] == "zip":
            zip_path = await deps.sources.zip_archive(source["reference"], str(subtask["task_id"]))

        reads = _gate(deps.types.estimator_concurrency * READ_AHEAD, "reads")

        async def one(name: str) -> None:
            if name in done:
                return
            # Reads run ahead of the pipeline under their own bound: a slow source (S3, FTP)
            # never holds a pipeline slot, and the next image is in memory when a slot frees.
            # A read slot is held until its image has a pipeline slot, which bounds the
            # images waiting in memory.
            async with reads:
                data = await _read_or_failure(deps, source, zip_path, name)
                if not isinstance(data, dict):
                    await gate.acquire()
            if isinstance(data, dict):
                outcome = data
            else:
                try:
                    outcome = await _process(
                        deps,
                        scope,
                        content["handler_id"],
                        task_content["handler"].get("policies") if content.get("dynamic") else None,
                        source,
                        data,
                        name,
                    )
                finally:
                    gate.release()
            await deps.store.add_part_item(subtask["subtask_id"], name, outcome)
            done[name] = outcome

        await asyncio.gather(*(one(n) for n in content["files"]))
        items = [done[n] for n in content["files"]]
        failures = [
            ItemError(e["error_code"], e["detail"], item["filename"])
            for item in items
            for e in item["errors"]
        ]
        return Outcome(items, failures)

    flat = True


def _origin(source: dict[str, Any], name: str) -> pipeline_pb2.EventMeta:
    """S3 `save_origin`: the object's URL becomes the events' image origin."""
    meta = pipeline_pb2.EventMeta()
    if source["source_type"] == "s3" and source.get("save_origin", True):
        ref = source["reference"]
        meta.image_origin = f"{sources.s3_endpoint(ref).rstrip('/')}/{ref['bucket_name']}/{name}"
    return meta


def _ftp_auth(source: dict[str, Any]) -> dict[str, Any]:
    ref = source["reference"]
    auth = {"user": ref.get("user", "anonymous"), "password": ref.get("password", "anonymous")}
    auth.update(source.get("authorization", {}))
    return auth


async def _read(deps: Deps, source: dict[str, Any], zip_path: Any, name: str) -> bytes:
    kind = source["source_type"]
    if kind == "network_disk":
        return await asyncio.to_thread(deps.sources.read_disk, source["reference"], name)
    if kind == "zip":
        password = source.get("authorization", {}).get("password")
        return await asyncio.to_thread(deps.sources.read_zip, zip_path, password, name)
    if kind == "s3":
        return await deps.sources.read_s3(source["reference"], source["authorization"], name)
    return await deps.sources.read_ftp(source["reference"], _ftp_auth(source), name)


def _failure(name: str, err: errors.LunaError) -> dict[str, Any]:
    """The outcome of an image that failed; the platform's own failures are raised instead, so
    the part is retried."""
    if err.code in (errors.INTERNAL, errors.REQUEST_TIMEOUT):
        raise err
    return {"filename": name, "result": None, "errors": [err.as_json()]}


async def _read_or_failure(
    deps: Deps, source: dict[str, Any], zip_path: Any, name: str
) -> bytes | dict[str, Any]:
    try:
        return await _read(deps, source, zip_path, name)
    except errors.LunaError as err:
        return _failure(name, err)


async def _process(
    deps: Deps,
    scope: Any,
    handler_id: str,
    policies: dict[str, Any] | None,
    source: dict[str, Any],
    data: bytes,
    name: str,
) -> dict[str, Any]:
    """One image through the handler: its events and filtered detections, or its errors."""
    request = pipeline_pb2.GenerateEventsRequest(
        scope=scope,
        handler_id=handler_id,
        inputs=[
            pipeline_pb2.InputItem(
                image=estimator_pb2.Image(data=data, filename=name), meta=_origin(source, name)
            )
        ],
        image_type=IMAGE_TYPES[source.get("image_type", 0)],
    )
    if policies is not None:
        request.policies.SetInParent()  # `{}` (all defaults) is policies too
        request.policies.update(policies)
    try:
        reply = await deps.pipeline.GenerateEvents(request)
    except errors.LunaError as err:
        return _failure(name, err)
    result = pbjson.from_struct(reply.result)
    return {
        "filename": name,
        "result": {
            "events": result.get("events", []),
            "filtered_detections": result.get("filtered_detections", {"face_detections": []}),
        },
        "errors": [],
    }


kinds.register(Estimator())
