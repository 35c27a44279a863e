"""Events core: store already-built events, publish them, query them back.

`save` is the one entry point for both the generate-events pipeline and client-built events
(`POST /6/handlers/{id}/events/raw`): validate every event, insert all of them in one
transaction, then publish each on JetStream `luna.events.<account_id>.<handler_id>` with
Nats-Msg-Id = event_id (so a retried save is dropped by the stream's duplicate window).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from services.common import db, errors, ids, subjects, times
from services.common.scoping import (
    Scope,
    check_uuid,
    escape_like,
    page_bounds,
    readable,
    unique_query_ids,
)
from services.events.event_schema import INPUT_EVENT_SCHEMA, META_MAX_BYTES
from services.events.event_shape import TARGETS, EventRow, build_row, project
from services.events.handlers import DYNAMIC, Handlers
from services.events.tables import Table

log = logging.getLogger("luna.events")

MAX_EVENTS_PER_SAVE = 1000
FACE, BODY = 1, 2
# Publishes one message; (subject, payload, headers). Injected so tests and the app share it.
Publish = Callable[[str, bytes, dict[str, str]], Awaitable[None]]


def subject_for(account_id: str, handler_id: str) -> str:
    return f"{subjects.EVENTS_PREFIX}.{account_id}.{handler_id}"


@dataclass(frozen=True)
class DescriptorIn:
    kind: int
    descriptor: bytes
    version: int


@dataclass(frozen=True)
class EventIn:
    event: dict[str, Any]
    event_id: str = ""
    descriptors: tuple[DescriptorIn, ...] = ()
    # A handler's storage policy may notify the Sender without storing, or store silently.
    store: bool = True
    notify: bool = True


@dataclass(frozen=True)
class StoredEvent:
    event_id: str
    account_id: str
    handler_id: str
    create_time: datetime
    end_time: datetime
    data: dict[str, Any]


@dataclass(frozen=True)
class MetaFilter:
    path: str
    operator: str = "eq"
    type: str = "string"
    values: tuple[str, ...] = ()
    with_null: bool = False


@dataclass(frozen=True)
class Nullable:
    values: tuple[Any, ...] = ()
    with_null: bool = False

    def __bool__(self) -> bool:
        return bool(self.values) or self.with_null


@dataclass(frozen=True)
class EventFilter:
    """Every GET /6/events filter; unset fields do not filter."""

    event_ids: tuple[str, ...] = ()
    event_id_gte: str = ""
    event_id_lt: str = ""
    handler_ids: tuple[str, ...] = ()
    face_ids: tuple[str, ...] = ()
    external_ids: tuple[str, ...] = ()
    create_time_gte: datetime | None = None
    create_time_lt: datetime | None = None
    end_time_gte: datetime | None = None
    end_time_lt: datetime | None = None
    sources: Nullable = Nullable()
    stream_ids: Nullable = Nullable()
    cities: Nullable = Nullable()
    areas: Nullable = Nullable()
    districts: Nullable = Nullable()
    streets: Nullable = Nullable()
    house_numbers: Nullable = Nullable()
    track_ids: Nullable = Nullable()
    user_data: str | None = None
    tags: tuple[str, ...] = ()
    top_matching_candidates_label: str | None = None
    top_similar_object_ids: tuple[str, ...] = ()
    top_similar_external_ids: tuple[str, ...] = ()
    top_similar_object_similarity_gte: float | None = None
    top_similar_object_similarity_lt: float | None = None
    age_gte: int | None = None
    age_lt: int | None = None
    gender: Nullable = Nullable()
    emotions: Nullable = Nullable()
    masks: Nullable = Nullable()
    ethnic_groups: Nullable = Nullable()
    liveness: Nullable = Nullable()
    deepfake: Nullable = Nullable()
    apparent_gender: Nullable = Nullable()
    apparent_age_gte: int | None = None
    apparent_age_lt: int | None = None
    headwear_states: Nullable = Nullable()
    backpack_states: Nullable = Nullable()
    headwear_apparent_colors: Nullable = Nullable()
    sleeve_lengths: Nullable = Nullable()
    upper_clothing_colors: Nullable = Nullable()
    lower_garment_colors: Nullable = Nullable()
    lower_garment_types: Nullable = Nullable()
    shoes_apparent_colors: Nullable = Nullable()
    origin_longitude: float | None = None
    origin_latitude: float | None = None
    longitude_delta: float | None = None
    latitude_delta: float | None = None
    geo_null: bool = False
    meta: tuple[MetaFilter, ...] = ()
    no_default_window: bool = False

    @property
    def by_event_id(self) -> bool:
        return bool(self.event_id_gte or self.event_id_lt)


# Scalar columns filtered by "one of" (Nullable) and the filter field naming them.
_ONE_OF = (
    ("source", "sources", "text"),
    ("stream_id", "stream_ids", "uuid"),
    ("city", "cities", "text"),
    ("area", "areas", "text"),
    ("district", "districts", "text"),
    ("street", "streets", "text"),
    ("house_number", "house_numbers", "text"),
    ("track_id", "track_ids", "text"),
    ("gender", "gender", "smallint"),
    ("emotion", "emotions", "smallint"),
    ("mask", "masks", "smallint"),
    ("ethnic_group", "ethnic_groups", "smallint"),
    ("liveness", "liveness", "smallint"),
    ("deepfake", "deepfake", "smallint"),
    ("apparent_gender", "apparent_gender", "smallint"),
    ("headwear_state", "headwear_states", "smallint"),
    ("backpack_state", "backpack_states", "smallint"),
    ("headwear_apparent_color", "headwear_apparent_colors", "text"),
    ("sleeve_length", "sleeve_lengths", "text"),
    ("lower_garment_type", "lower_garment_types", "text"),
    ("shoes_apparent_color", "shoes_apparent_colors", "text"),
)
# Array columns: the event matches when it has at least one of the values.
_ANY_OF = (
    ("upper_clothing_colors", "upper_clothing_colors"),
    ("lower_garment_colors", "lower_garment_colors"),
)
_RANGES = (
    ("create_time", ">=", "create_time_gte"),
    ("create_time", "<", "create_time_lt"),
    ("end_time", ">=", "end_time_gte"),
    ("end_time", "<", "end_time_lt"),
    ("top_similar_object_similarity", ">=", "top_similar_object_similarity_gte"),
    ("top_similar_object_similarity", "<", "top_similar_object_similarity_lt"),
    ("age", ">=", "age_gte"),
    ("age", "<", "age_lt"),
    ("apparent_age", ">=", "apparent_age_gte"),
    ("apparent_age", "<", "apparent_age_lt"),
)
META_PATH = re.compile(r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$")
META_OPS = {"eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
DEFAULT_WINDOW = timedelta(days=30)


def not_found(event_id: str) -> errors.LunaError:
    return errors.LunaError(errors.EVENT_NOT_FOUND, f"Event with id {event_id} not found")


def meta_condition(mf: MetaFilter) -> tuple[str, list[Any]]:
    """SQL for one `meta.<path>__<op>:<type>` filter over column `e.meta`."""
    name = f"meta.{mf.path}"
    if not META_PATH.match(mf.path) or "__" in mf.path:
        raise errors.bad_query(name)
    path = mf.path.split(".")
    node = "e.meta #> %s::text[]"
    is_null = f"({node} IS NULL OR jsonb_typeof({node}) = 'null')"
    if mf.type == "string":
        value_sql = "(e.meta #>> %s::text[])"
        convert: Callable[[str], Any] = str
        typed_guard = f"jsonb_typeof({node}) = 'string'"
    elif mf.type in ("integer", "numeric"):
        value_sql = (
            f"(CASE WHEN jsonb_typeof({node}) = 'number' THEN (e.meta #>> %s::text[])::numeric END)"
        )
        convert = int if mf.type == "integer" else float
        typed_guard = f"jsonb_typeof({node}) = 'number'"
    else:
        raise errors.bad_query(name)
    value_params = [path, path] if mf.type != "string" else [path]
    try:
        values = [convert(v) for v in mf.values]
    except ValueError:
        raise errors.bad_query(name) from None
    op = mf.operator
    if op in ("like", "nlike"):
        if mf.type != "string" or mf.with_null or len(values) != 1:
            raise errors.bad_query(name)
        neg = "NOT " if op == "nlike" else ""
        return (
            f"({typed_guard} AND {neg}{value_sql} LIKE %s ESCAPE '\\')",
            [path, *value_params, f"%{escape_like(values[0])}%"],
        )
    if op in ("in", "nin"):
        parts, params = [], []
        if values:
            parts.append(f"({typed_guard} AND {value_sql} = ANY(%s))")
            params += [path, *value_params, values]
        if mf.with_null:
            parts.append(is_null)
            params += [path, path]
        if not parts:
            raise errors.bad_query(name)
        cond = "(" + " OR ".join(parts) + ")"
        return (f"NOT COALESCE({cond}, FALSE)" if op == "nin" else cond), params
    if op not in META_OPS:
        raise errors.bad_query(name)
    if mf.with_null:
        if op not in ("eq", "neq"):
            raise errors.bad_query(name)
        return (is_null if op == "eq" else f"NOT {is_null}"), [path, path]
    if len(values) != 1:
        raise errors.bad_query(name)
    cond = f"({typed_guard} AND {value_sql} {META_OPS[op]} %s)"
    return cond, [path, *value_params, values[0]]


@dataclass
class _Where:
    """SQL conditions joined by AND and their parameters, in placeholder order."""

    conditions: list[str]
    params: list[Any]

    def add(self, sql: str, *values: Any) -> None:
        self.conditions.append(sql)
        self.params.extend(values)

    def nullable(self, flt: Nullable, value_sql: str, value: Any, null_sql: str) -> None:
        """`value_sql` for the filter's values OR `null_sql` for its null, as it asks."""
        parts, values = [], []
        if flt.values:
            parts.append(value_sql)
            values.append(value)
        if flt.with_null:
            parts.append(null_sql)
        self.add("(" + " OR ".join(parts) + ")", *values)


def event_where(
    scope: Scope, flt: EventFilter, *, now: datetime | None = None
) -> tuple[str, list[Any]]:
    """SQL condition (over alias `e`) and parameters for a scope and a filter."""
    where, scope_params = readable(scope, "e.account_id")
    w = _Where([where], list(scope_params))
    _where_ids(w, flt)
    _where_times(w, flt, now)
    _where_one_of(w, flt)
    _where_text(w, flt)
    _where_geo(w, flt)
    for mf in flt.meta:
        sql, mparams = meta_condition(mf)
        w.add(sql, *mparams)
    return " AND ".join(w.conditions), w.params


def _where_ids(w: _Where, flt: EventFilter) -> None:
    if flt.event_ids:
        w.add("e.event_id = ANY(%s::uuid[])", unique_query_ids(flt.event_ids, "event_ids"))
    if flt.event_id_gte:
        w.add("e.event_id >= %s", check_uuid(flt.event_id_gte, "event_id__gte"))
    if flt.event_id_lt:
        w.add("e.event_id < %s", check_uuid(flt.event_id_lt, "event_id__lt"))
    if flt.handler_ids:
        w.add("e.handler_id = ANY(%s::uuid[])", unique_query_ids(flt.handler_ids, "handler_ids"))
    if flt.face_ids:
        w.add("e.face_id = ANY(%s::uuid[])", unique_query_ids(flt.face_ids, "face_ids"))
    if flt.external_ids:
        w.add("e.external_id = ANY(%s)", list(flt.external_ids))


def _where_times(w: _Where, flt: EventFilter, now: datetime | None) -> None:
    """Range filters, and LUNA's default window: without ids or create_time bounds,
    GET /6/events covers the last month."""
    for column, op, attr in _RANGES:
        value = getattr(flt, attr)
        if value is not None:
            w.add(f"e.{column} {op} %s", value)
    explicit_window = flt.event_ids or flt.by_event_id or flt.create_time_gte or flt.create_time_lt
    if not explicit_window and not flt.no_default_window:
        now = now or times.now()
        w.add("e.create_time >= %s AND e.create_time < %s", now - DEFAULT_WINDOW, now)


def _where_one_of(w: _Where, flt: EventFilter) -> None:
    for column, attr, sql_type in _ONE_OF:
        nullable: Nullable = getattr(flt, attr)
        if nullable:
            values = list(nullable.values)
            if sql_type == "uuid":
                values = unique_query_ids(values, attr)
            w.nullable(
                nullable, f"e.{column} = ANY(%s::{sql_type}[])", values, f"e.{column} IS NULL"
            )
    for column, attr in _ANY_OF:
        nullable = getattr(flt, attr)
        if nullable:
            w.nullable(
                nullable,
                f"e.{column} && %s::text[]",
                list(nullable.values),
                f"(e.{column} IS NULL OR cardinality(e.{column}) = 0)",
            )


def _where_text(w: _Where, flt: EventFilter) -> None:
    if flt.user_data is not None:
        w.add("e.user_data ILIKE %s ESCAPE '\\'", f"%{escape_like(flt.user_data)}%")
    if flt.tags:
        w.add("e.tags @> %s::text[]", list(flt.tags))
    if flt.top_matching_candidates_label is not None:
        w.add("%s = ANY(e.match_labels)", flt.top_matching_candidates_label)
    if flt.top_similar_object_ids:
        w.add("e.top_similar_object_id = ANY(%s)", list(flt.top_similar_object_ids))
    if flt.top_similar_external_ids:
        w.add("e.top_similar_external_id = ANY(%s)", list(flt.top_similar_external_ids))


def _where_geo(w: _Where, flt: EventFilter) -> None:
    if flt.origin_longitude is not None or flt.origin_latitude is not None:
        if flt.origin_longitude is None or flt.origin_latitude is None:
            raise errors.bad_query(
                "origin_longitude" if flt.origin_longitude is None else "origin_latitude"
            )
        dlon = 0.01 if flt.longitude_delta is None else flt.longitude_delta
        dlat = 0.01 if flt.latitude_delta is None else flt.latitude_delta
        w.add(
            "e.longitude BETWEEN %s AND %s AND e.latitude BETWEEN %s AND %s",
            flt.origin_longitude - dlon,
            flt.origin_longitude + dlon,
            flt.origin_latitude - dlat,
            flt.origin_latitude + dlat,
        )
    elif flt.geo_null:
        w.add("e.longitude IS NULL")


def check_targets(targets: list[str] | tuple[str, ...]) -> list[str]:
    for t in targets:
        if t not in TARGETS:
            raise errors.bad_query("target")
    return list(targets)


_INSERT_COLUMNS = (
    "source",
    "stream_id",
    "external_id",
    "user_data",
    "track_id",
    "tags",
    "city",
    "area",
    "district",
    "street",
    "house_number",
    "longitude",
    "latitude",
    "face_id",
    "top_matching_candidates_label",
    "match_labels",
    "top_similar_object_id",
    "top_similar_external_id",
    "top_similar_object_similarity",
    "gender",
    "age",
    "emotion",
    "mask",
    "ethnic_group",
    "liveness",
    "deepfake",
    "apparent_age",
    "apparent_gender",
    "headwear_state",
    "headwear_apparent_color",
    "sleeve_length",
    "upper_clothing_colors",
    "lower_garment_colors",
    "lower_garment_type",
    "shoes_apparent_color",
    "backpack_state",
    "meta",
)
_INSERT_SQL = (
    "INSERT INTO events (event_id, account_id, handler_id, create_time, end_time, "
    + ", ".join(_INSERT_COLUMNS)
    + ", data) VALUES ("
    + ", ".join(["%s"] * (len(_INSERT_COLUMNS) + 6))
    + ") ON CONFLICT (event_id) DO NOTHING"
)
_SELECT = (
    "e.event_id::text AS event_id, e.account_id::text AS account_id, "
    "e.handler_id::text AS handler_id, e.create_time, e.end_time, e.data"
)

_TABLE = Table("events", "e", "event_id", _SELECT, not_found)


@dataclass
class _Prepared:
    account_id: str
    handler_id: str
    rows: list[EventRow]
    descriptors: list[list[DescriptorIn]]
    request_id: str = ""
    done: asyncio.Future[None] | None = field(default=None)
    unstored: frozenset[str] = frozenset()  # event ids only published
    silent: frozenset[str] = frozenset()  # event ids only stored


class Events:
    def __init__(
        self, pool: AsyncConnectionPool, handlers: Handlers, publish: Publish | None
    ) -> None:
        self._pool = pool
        self._handlers = handlers
        self._publish = publish
        # Saves answered before their commit (wait_saving=0), awaited at shutdown.
        self._pending: set[asyncio.Task[None]] = set()

    @property
    def pool(self) -> AsyncConnectionPool:
        """The events tables' pool, for the bulk statements beside this core (events_bulk)."""
        return self._pool

    # -- writing -----------------------------------------------------------------------
    async def save(
        self,
        scope: Scope,
        handler_id: str,
        events: list[EventIn],
        *,
        wait_saving: bool = True,
        from_client: bool = False,
        request_id: str = "",
    ) -> list[str]:
        """Store `events` of one handler all or nothing; returns their ids in order.

        Everything that can refuse the request (handler, ids, schema, times) is checked
        before the answer, also when wait_saving is false.
        """
        handler = await self._handlers.get_own(scope.account_id, handler_id)
        if from_client and handler.handler_type != DYNAMIC:
            raise errors.LunaError(
                errors.ONLY_DYNAMIC_HANDLER, "Forbidden. Allowed use only dynamic handler"
            )
        if not events:
            raise errors.LunaError(errors.BAD_INPUT, "No events to save")
        if len(events) > MAX_EVENTS_PER_SAVE:
            raise errors.LunaError(
                errors.BAD_INPUT, f"At most {MAX_EVENTS_PER_SAVE} events per request"
            )
        prepared = self._prepare(scope.account_id, handler.handler_id, events)
        prepared.request_id = request_id
        if wait_saving:
            await self._write(prepared)
        else:
            task = asyncio.create_task(self._write_logged(prepared))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)
        return [r.event_id for r in prepared.rows]

    def _prepare(self, account_id: str, handler_id: str, events: list[EventIn]) -> _Prepared:
        now = times.now()
        rows, descriptors, seen = [], [], set()
        for i, item in enumerate(events):
            prefix = "event" if len(events) == 1 else f"events.{i}"
            raw = INPUT_EVENT_SCHEMA.validate(item.event, prefix=prefix)
            meta = raw.get("meta")
            if meta is not None and len(orjson.dumps(meta)) > META_MAX_BYTES:
                raise errors.bad_json(f"{prefix}.meta", "meta is larger than 2 MB")
            event_id = item.event_id or ids.new_id()
            if not ids.is_uuid(event_id) or event_id in seen:
                raise errors.LunaError(errors.BAD_INPUT, f"Bad event id '{event_id}'")
            seen.add(event_id)
            for key in ("create_time", "end_time"):
                if raw.get(key) is not None:
                    try:
                        times.parse_rfc3339(raw[key])
                    except ValueError:
                        raise errors.bad_json(
                            f"{prefix}.{key}", "invalid datetime format"
                        ) from None
            for d in item.descriptors:
                if d.kind not in (FACE, BODY) or not d.descriptor or d.version <= 0:
                    raise errors.LunaError(errors.BAD_INPUT, "Bad event descriptor")
            rows.append(
                build_row(
                    raw, event_id=event_id, account_id=account_id, handler_id=handler_id, now=now
                )
            )
            descriptors.append(list(item.descriptors))
        pairs = list(zip(rows, events, strict=True))
        return _Prepared(
            account_id,
            handler_id,
            rows,
            descriptors,
            unstored=frozenset(r.event_id for r, e in pairs if not e.store),
            silent=frozenset(r.event_id for r, e in pairs if not e.notify),
        )

    async def _write_logged(self, prepared: _Prepared) -> None:
        try:
            await self._write(prepared)
        except Exception:
            # LUNA: with wait_saving=0 a failed write is not reported to the client.
            log.exception("saving %d buffered event(s) failed", len(prepared.rows))

    async def _write(self, prepared: _Prepared) -> None:
        if len(prepared.unstored) < len(prepared.rows):
            async with self._pool.connection() as conn:
                async with conn.transaction():
                    await self._insert(conn, prepared)
        await self._publish_all(prepared)

    async def _insert(self, conn: AsyncConnection, prepared: _Prepared) -> None:
        async with conn.cursor() as cur:
            await cur.executemany(
                _INSERT_SQL,
                [
                    (
                        r.event_id,
                        prepared.account_id,
                        prepared.handler_id,
                        r.create_time,
                        r.end_time,
                        *(
                            Jsonb(r.columns[c])
                            if c == "meta" and r.columns[c] is not None
                            else r.columns[c]
                            for c in _INSERT_COLUMNS
                        ),
                        Jsonb(r.data),
                    )
                    for r in prepared.rows
                    if r.event_id not in prepared.unstored
                ],
            )
            desc_rows = [
                (r.event_id, d.kind, d.version, d.descriptor)
                for r, ds in zip(prepared.rows, prepared.descriptors, strict=True)
                if r.event_id not in prepared.unstored
                for d in ds
            ]
            if desc_rows:
                await cur.executemany(
                    "INSERT INTO event_descriptors (event_id, kind, version, descriptor) "
                    "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    desc_rows,
                )

    async def _publish_all(self, prepared: _Prepared) -> None:
        if self._publish is None:
            return
        subject = subject_for(prepared.account_id, prepared.handler_id)
        for r in prepared.rows:
            if r.event_id in prepared.silent:
                continue
            headers = {"Nats-Msg-Id": r.event_id}
            if prepared.request_id:
                headers["Luna-Request-Id"] = prepared.request_id
            try:
                await self._publish(subject, orjson.dumps(r.data), headers)
            except Exception:
                # Stored is stored: a lost notification must not turn a saved event into
                # an error the client would retry.
                log.exception("publishing event %s failed", r.event_id)

    async def close(self) -> None:
        """Wait for buffered (wait_saving=0) writes."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    # -- reading -----------------------------------------------------------------------
    async def get(
        self, scope: Scope, event_id: str, targets: list[str] | None = None
    ) -> StoredEvent:
        targets = check_targets(targets or [])
        return _stored(await _TABLE.get(self._pool, scope, event_id), targets)

    async def list(
        self,
        scope: Scope,
        flt: EventFilter,
        *,
        targets: list[str] | None = None,
        page: int = 1,
        page_size: int = 10,
        order: str = "desc",
    ) -> list[StoredEvent]:
        targets = check_targets(targets or [])
        limit, offset = page_bounds(page, page_size)
        if order not in ("", "asc", "desc"):
            raise errors.bad_query("order")
        direction = "ASC" if order == "asc" else "DESC"
        where, params = event_where(scope, flt)
        order_by = (
            f"e.event_id {direction}"
            if flt.by_event_id
            else f"e.create_time {direction}, e.event_id {direction}"
        )
        rows = await db.fetch_all(
            self._pool,
            f"SELECT {_SELECT} FROM events e WHERE {where} ORDER BY {order_by} LIMIT %s OFFSET %s",
            (*params, limit, offset),
        )
        return [_stored(r, targets) for r in rows]

    async def delete(self, account_id: str, event_ids: list[str]) -> list[dict[str, Any]]:
        """Remove events of `account_id`; returns each removed event's id and the samples and
        image origins its detections referenced (events already gone are skipped)."""
        if len(event_ids) > 1000:
            raise errors.LunaError(errors.BAD_INPUT, "At most 1000 events per deletion")
        wanted = [e for e in event_ids if ids.is_uuid(e)]
        rows = await db.fetch_all(
            self._pool,
            "DELETE FROM events WHERE event_id = ANY(%s::uuid[]) AND account_id = %s"
            " RETURNING event_id, data",
            (wanted, account_id),
        )
        removed = []
        for row in rows:
            data = row["data"] or {}
            refs: dict[str, list[str]] = {"face": [], "body": [], "origins": []}
            for kind in ("face", "body"):
                for det in data.get(f"{kind}_detections") or ():
                    if det.get("sample_id"):
                        refs[kind].append(det["sample_id"])
                    origin = det.get("image_origin")
                    if origin and origin not in refs["origins"]:
                        refs["origins"].append(origin)
            removed.append({"event_id": str(row["event_id"]), **refs})
        return removed

    async def delete_descriptors(
        self, account_id: str, kind: int, version: int, event_ids: list[str]
    ) -> list[str]:
        """Remove descriptors of (kind, version) from events of `account_id`; returns the
        events that had one (the events themselves stay)."""
        if kind not in (FACE, BODY):
            raise errors.LunaError(errors.BAD_INPUT, "Descriptor kind must be face or body")
        if len(event_ids) > 1000:
            raise errors.LunaError(errors.BAD_INPUT, "At most 1000 events per deletion")
        wanted = [e for e in event_ids if ids.is_uuid(e)]
        rows = await db.fetch_all(
            self._pool,
            "DELETE FROM event_descriptors d USING events e WHERE d.event_id = e.event_id"
            " AND e.account_id = %s AND d.kind = %s AND d.version = %s"
            " AND d.event_id = ANY(%s::uuid[]) RETURNING d.event_id::text AS event_id",
            (account_id, kind, version, wanted),
        )
        return sorted(r["event_id"] for r in rows)

    async def put_descriptors(
        self, account_id: str, kind: int, items: list[tuple[str, int, bytes]]
    ) -> list[str]:
        """Add (event_id, version, descriptor) descriptors of `kind` to events of `account_id`
        (another account's or a missing event is skipped); an event that has one of that kind
        and version keeps it. Returns the events that got one."""
        if kind not in (FACE, BODY):
            raise errors.LunaError(errors.BAD_INPUT, "Descriptor kind must be face or body")
        if len(items) > 1000:
            raise errors.LunaError(errors.BAD_INPUT, "At most 1000 descriptors per call")
        for event_id, version, descriptor in items:
            if not ids.is_uuid(event_id) or not descriptor or version <= 0:
                raise errors.LunaError(errors.BAD_INPUT, "Bad event descriptor")
        rows = await db.fetch_all(
            self._pool,
            "INSERT INTO event_descriptors (event_id, kind, version, descriptor)"
            " SELECT e.event_id, %s, t.version, t.descriptor FROM unnest(%s::uuid[], %s::int[],"
            " %s::bytea[]) AS t(event_id, version, descriptor) JOIN events e"
            " ON e.event_id = t.event_id AND e.account_id = %s"
            " ON CONFLICT DO NOTHING RETURNING event_id::text AS event_id",
            (
                kind,
                [e for e, _, _ in items],
                [v for _, v, _ in items],
                [d for _, _, d in items],
                account_id,
            ),
        )
        return sorted(r["event_id"] for r in rows)

    async def count(self, scope: Scope, flt: EventFilter) -> int:
        return await _TABLE.count(self._pool, *event_where(scope, flt))

    async def descriptors(
        self,
        scope: Scope,
        *,
        kind: int,
        version: int,
        event_ids: list[str] | None = None,
        event_id_gt: str = "",
        limit: int = 1000,
    ) -> list[tuple[str, bytes, int]]:
        """(event_id, descriptor, version) of visible events, ordered by event_id."""
        if kind not in (FACE, BODY):
            raise errors.LunaError(errors.BAD_INPUT, "Descriptor kind must be face or body")
        limit = limit or 1000
        if not 1 <= limit <= 10000:
            raise errors.bad_query("limit")
        where, params = readable(scope, "e.account_id")
        conditions, values = [where, "d.kind = %s", "d.version = %s"], [*params, kind, version]
        if event_ids:
            conditions.append("d.event_id = ANY(%s::uuid[])")
            values.append(unique_query_ids(event_ids, "event_ids"))
        if event_id_gt:
            conditions.append("d.event_id > %s")
            values.append(check_uuid(event_id_gt, "event_id_gt"))
        rows = await db.fetch_all(
            self._pool,
            "SELECT d.event_id::text AS event_id, d.descriptor, d.version "
            "FROM event_descriptors d JOIN events e ON e.event_id = d.event_id "
            f"WHERE {' AND '.join(conditions)} ORDER BY d.event_id LIMIT %s",
            (*values, limit),
        )
        return [(r["event_id"], bytes(r["descriptor"]), r["version"]) for r in rows]


def _stored(row: dict[str, Any], targets: list[str]) -> StoredEvent:
    """A row read with _SELECT (its columns are StoredEvent's fields), `data` projected."""
    return StoredEvent(**{**row, "data": project(row["data"], targets)})
