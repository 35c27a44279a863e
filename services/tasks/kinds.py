"""What every task type provides to the engine, and the registry of types.

A kind validates and completes its content at creation (`prepare`, which may ask the owning
services whether referenced objects exist), cuts the work into parts (`plan`), runs one part
(`run`, with effects that are safe to repeat: a redelivered part must not apply them twice),
and merges the parts' results (`collect`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import orjson
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import best_match
from luna.common.v1 import account_pb2, paging_pb2
from luna.events.v1 import events_pb2
from luna.faces.v1 import faces_pb2

from services.common import errors, ids, luna_json
from services.common.task_types import TASK_TYPES
from services.tasks.store import ItemError

UUID = {"type": "string", "pattern": ids.UUID_PATTERN}
DATE_TIME = {"type": "string", "format": "date-time"}


def uuid_array(max_items: int | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "array", "items": UUID}
    if max_items:
        schema["maxItems"] = max_items
    return schema


def closed(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    """The schema of a JSON object with these properties and no others."""
    schema: dict[str, Any] = {"type": "object", "additionalProperties": False}
    if required:
        schema["required"] = required
    schema["properties"] = properties
    return schema


def one_of(*values: str) -> dict[str, Any]:
    """The schema of a string that is one of `values`."""
    return {"type": "string", "enum": list(values)}


FLAG = {"type": "integer", "enum": [0, 1]}
# The objects a task reads, faces or events, and their filters (each type checks those later).
OBJECTS: dict[str, Any] = {"objects_type": one_of("faces", "events"), "filters": {"type": "object"}}

FACES_FILTERS: dict[str, Any] = closed(
    {
        "account_id": UUID,
        "face_ids": uuid_array(),
        "external_ids": {"type": "array", "items": {"type": "string", "maxLength": 36}},
        "user_data": {"type": "string", "maxLength": 128},
        "create_time__gte": DATE_TIME,
        "create_time__lt": DATE_TIME,
        "face_id__gte": UUID,
        "face_id__lt": UUID,
        "list_id": UUID,
    },
)


@dataclass
class Deps:
    """Stubs to the services that own the data tasks work on."""

    faces: Any = None
    lists: Any = None
    events: Any = None
    handlers: Any = None
    blobs: Any = None
    pipeline: Any = None
    estimator: Any = None
    matcher: Any = None  # cross_match searches a list's candidates through its indexes
    attributes: Any = None  # temporary attributes (cross_match objects)
    # The engine's store, for parts that keep a ledger of their items (estimator).
    store: Any = None
    # What the types read from settings (settings.Types, settings.sources()), from the app.
    types: Any = None
    sources: Any = None


@dataclass
class Outcome:
    result: Any
    errors: list[ItemError] = field(default_factory=list)


class SchemaCheck:
    """A JSON schema whose violations answer 12022 with the path under `prefix`."""

    def __init__(self, schema: dict[str, Any], prefix: str) -> None:
        self._validator = Draft202012Validator(schema, format_checker=FormatChecker())
        self._prefix = prefix

    def validate(self, content: Any) -> dict[str, Any]:
        err = best_match(self._validator.iter_errors(content))
        if err is not None:
            path = ".".join(str(p) for p in err.absolute_path)
            raise errors.bad_json(f"{self._prefix}{'.' if path else ''}{path}", err.message)
        return dict(content)


class Kind(ABC):
    """A task type; `class Linker(Kind, name="linker")` takes its number from NAMES."""

    task_type: ClassVar[int]
    name: ClassVar[str]
    schema: ClassVar[dict[str, Any]]
    _check: ClassVar[SchemaCheck | None] = None

    def __init_subclass__(cls, name: str = "", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if name:
            cls.name, cls.task_type = name, NAMES[name]

    def validate(self, content: Any) -> dict[str, Any]:
        cls = type(self)
        if cls._check is None:
            cls._check = SchemaCheck(self.schema, "content")
        return cls._check.validate(content)

    async def prepare(self, deps: Deps, account_id: str, content: dict[str, Any]) -> dict:
        """Check references and fill defaults; raise LunaError to refuse the task."""
        return content

    @abstractmethod
    async def plan(self, deps: Deps, task: dict[str, Any]) -> list[dict[str, Any]]:
        """Cut the task into parts (their JSON payloads)."""

    @abstractmethod
    async def run(self, deps: Deps, subtask: dict[str, Any]) -> Outcome:
        """Do one part; its effects must be idempotent for a redelivered part."""

    # Parts of one task a worker may apply together (`run_many`): their claim, their outcome
    # and their acks each become one step instead of one per part.
    batch_parts: ClassVar[int] = 1

    async def run_many(
        self, deps: Deps, subtasks: list[dict[str, Any]]
    ) -> list[Outcome | errors.LunaError]:
        """Do several parts of one task; one outcome per part, in order, or the LunaError that
        refused that part (any other exception retries them all)."""
        return [await self.run(deps, s) for s in subtasks]

    def collect(
        self, task: dict[str, Any], results: list[Any], errors_json: list[dict[str, Any]]
    ) -> tuple[str, bytes]:
        """Merge part results into (content type, body); JSON by default."""
        merged = self.merge(task, results)
        return "application/json", orjson.dumps({"result": merged, "errors": errors_json})

    def merge(self, task: dict[str, Any], results: list[Any]) -> Any:
        return results

    # True where the result is the parts' JSON lists concatenated (gc, estimator): the
    # collector has PostgreSQL join their stored text (engine._collect_flat) instead of
    # decoding and encoding every item of every part.
    flat: ClassVar[bool] = False

    def stores_result(self, task: dict[str, Any]) -> bool:
        """False where the task asked not to store a result (gc `store_results: false`)."""
        return True


def scope(account_id: str) -> account_pb2.AccountScope:
    return account_pb2.AccountScope(account_id=str(account_id))


def check_filters_account(account_id: str, filters: dict[str, Any]) -> None:
    """A filter naming another account than the task's would read another account's data."""
    other = filters.get("account_id")
    if other and other != str(account_id):
        raise errors.LunaError(
            errors.BAD_INPUT,
            f"filters.account_id '{other}' differs from the task's account '{account_id}'",
        )


PAGE = 1000
# An id lower bound below every UUID: a listing bounded by id is ordered by id.
FIRST_ID = "00000000-0000-0000-0000-000000000000"


async def face_ids(deps: Deps, account_id: str, filters: dict[str, Any]) -> AsyncIterator[str]:
    """Every face id the filters select, ascending, paged by id so 100k faces cost 100 calls."""
    wanted = filters.get("face_ids")
    chunks: list[list[str]] = (
        [sorted(set(wanted))[i : i + PAGE] for i in range(0, len(set(wanted)), PAGE)]
        if wanted is not None
        else [[]]
    )
    for chunk in chunks:
        if wanted is not None and not chunk:
            continue
        cursor = ""
        while True:
            # The ids come in chunks, not all at once from the filters.
            flt = luna_json.face_filter({k: v for k, v in filters.items() if k != "face_ids"})
            flt.face_ids.extend(chunk)
            lower = max(flt.face_id_gte, cursor) if cursor else flt.face_id_gte
            # face_id >= lower is inclusive: ask for one more and drop the cursor itself.
            flt.face_id_gte = lower or FIRST_ID
            reply = await deps.faces.ListFaces(
                faces_pb2.ListFacesRequest(
                    scope=scope(account_id),
                    filter=flt,
                    page=paging_pb2.Page(page=1, page_size=PAGE),
                )
            )
            got = [f.face_id for f in reply.faces if f.face_id != cursor]
            for fid in got:
                yield fid
            if len(reply.faces) < PAGE or not got:
                break
            cursor = got[-1]


async def faces_of(
    deps: Deps, scope: account_pb2.AccountScope, face_ids: list[str], *, with_lists: bool = False
) -> list[faces_pb2.Face]:
    """The faces of `face_ids` (at most PAGE) that exist, in id order."""
    reply = await deps.faces.ListFaces(
        faces_pb2.ListFacesRequest(
            scope=scope,
            filter=faces_pb2.FaceFilter(face_ids=face_ids, face_id_gte=FIRST_ID),
            page=paging_pb2.Page(page=1, page_size=PAGE),
            with_lists=with_lists,
        )
    )
    return list(reply.faces)


async def events_of(
    deps: Deps, scope: account_pb2.AccountScope, event_ids: list[str], targets: Sequence[str] = ()
) -> list[events_pb2.Event]:
    """The events of `event_ids` (at most PAGE) that exist, in id order; only the fields
    `targets` names, when it names any."""
    reply = await deps.events.ListEvents(
        events_pb2.ListEventsRequest(
            scope=scope,
            filter=events_pb2.EventFilter(event_ids=event_ids, event_id_gte=FIRST_ID),
            targets=targets,
            page=paging_pb2.Page(page=1, page_size=PAGE),
            order="asc",
        )
    )
    return list(reply.events)


async def chunked_face_ids(
    deps: Deps, account_id: str, filters: dict[str, Any], size: int
) -> list[list[str]]:
    parts: list[list[str]] = [[]]
    async for fid in face_ids(deps, account_id, filters):
        if len(parts[-1]) >= size:
            parts.append([])
        parts[-1].append(fid)
    return parts if parts[0] else []


async def event_face_descriptors(
    deps: Deps, scope: account_pb2.AccountScope, event_ids: list[str], version: int
) -> dict[str, bytes]:
    """The face descriptors of `version` the events service keeps for `event_ids`, by event id
    (an event holds at most one of a kind and version, so one call answers them all)."""
    if not event_ids:
        return {}
    request = events_pb2.GetEventDescriptorsRequest(
        scope=scope,
        event_ids=event_ids,
        kind=events_pb2.DESCRIPTOR_KIND_FACE,
        version=version,
        limit=len(event_ids),
    )
    reply = await deps.events.GetEventDescriptors(request)
    return {d.event_id: d.descriptor for d in reply.descriptors}


REGISTRY: dict[int, Kind] = {}
NAMES = TASK_TYPES


def register(kind: Kind) -> Kind:
    REGISTRY[kind.task_type] = kind
    return kind


def kind_for(task_type: int) -> Kind:
    kind = REGISTRY.get(task_type)
    if kind is None:
        raise errors.LunaError(
            errors.NOT_IMPLEMENTED,
            f"Task type {task_type} is not implemented by this server yet",
        )
    return kind
