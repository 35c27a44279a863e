"""Faces core: persistent faces and their attributes over the faces service's pool.

Every write runs in one transaction that also queues its FACES_CHANGES messages in the
outbox (services/faces/outbox.py); the messages are published after the commit. Input is
checked before the transaction starts, so a bad request never leaves a partial write.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from luna.faces.v1 import changes_pb2
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from services.common import db, errors, ids
from services.common.scoping import (
    Scope,
    check_length,
    check_uuid,
    page_bounds,
    readable,
    unique_ids,
)
from services.faces import attributes, outbox
from services.faces.arrays import columns
from services.faces.coalesce import Coalescer, each_alone_if_refused
from services.faces.descriptors import AttributeData
from services.faces.where import Where, listing_order

# (account_id, event_id) -> whether that account has the event. The events service owns
# events: this is a call to its API, never a read of its tables.
EventLookup = Callable[[str, str], Awaitable[bool]]
Kind = changes_pb2.FaceChange.Kind

# How long a batch of face creates may run before another may start beside it (coalesce.py).
SPARE_AFTER_S = 0.2

# An attribute source: a temporary attribute id, data given directly, or nothing.
AttributeSource = str | AttributeData | None


@dataclass(frozen=True)
class Face:
    face_id: str
    account_id: str
    event_id: str
    user_data: str
    external_id: str
    avatar: str
    create_time: datetime
    last_update_time: datetime
    has_attribute: bool
    list_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class FaceFilter:
    """GET /6/faces filters; every set field must hold."""

    face_ids: tuple[str, ...] = ()
    external_ids: tuple[str, ...] = ()
    user_data: str | None = None
    list_id: str = ""
    event_id: str = ""
    create_time_gte: datetime | None = None
    create_time_lt: datetime | None = None
    face_id_gte: str = ""
    face_id_lt: str = ""


@dataclass(frozen=True)
class FaceAttribute:
    """GET /6/faces/{id}/attributes: what the face's attribute holds (every descriptor
    version unless one was asked for) and when it was made."""

    face_id: str
    data: AttributeData
    create_time: datetime


@dataclass(frozen=True)
class FaceDescriptor:
    """One descriptor of one face as StreamDescriptors hands it to a matcher loading its
    indexes."""

    face_id: str
    account_id: str
    descriptor: bytes
    version: int
    list_ids: tuple[str, ...]
    face: Face | None = None  # the face record (the matcher answers matches with it)


_COLUMNS = (
    "f.face_id::text AS face_id, f.account_id::text AS account_id, "
    "coalesce(f.event_id::text, '') AS event_id, f.user_data, f.external_id, f.avatar, "
    "f.create_time, f.last_update_time, "
    "EXISTS (SELECT 1 FROM face_attributes a WHERE a.face_id = f.face_id) AS has_attribute"
)

# A face's lists in link order, as a correlated subquery over alias `f`.
_LIST_IDS = (
    "ARRAY(SELECT lf.list_id::text FROM list_faces lf WHERE lf.face_id = f.face_id"
    " ORDER BY lf.link_key)"
)


def _face(row: dict[str, Any], list_ids: Iterable[str] = ()) -> Face:
    return Face(**row, list_ids=tuple(list_ids))


def face_where(scope: Scope, flt: FaceFilter) -> tuple[str, list[Any]]:
    """SQL condition (over alias `f`) and parameters for a scope and a filter."""
    w = Where(scope, "f.account_id")
    w.ids("f.face_id", flt.face_ids, "face_ids")
    if flt.external_ids:
        w.add("f.external_id = ANY(%s::text[])", list(flt.external_ids))
    w.contains("f.user_data", flt.user_data)
    if flt.list_id:
        w.add(
            "f.face_id IN (SELECT lf.face_id FROM list_faces lf WHERE lf.list_id = %s)",
            check_uuid(flt.list_id, "list_id"),
        )
    if flt.event_id:
        w.add("f.event_id = %s", check_uuid(flt.event_id, "event_id"))
    w.since("f.create_time", flt.create_time_gte, flt.create_time_lt)
    w.id_range("f.face_id", flt.face_id_gte, flt.face_id_lt, "face_id")
    return w.sql()


def _batch_size(asked: int, default: int) -> int:
    """A stream's batch size: `default` when unset, else 1..10000."""
    size = asked or default
    if not 1 <= size <= 10000:
        raise errors.bad_query("batch_size")
    return size


def check_face_fields(
    *, event_id: str | None, user_data: str | None, external_id: str | None, avatar: str | None
) -> None:
    if event_id:
        unique_ids([event_id], "event_id")
    if user_data is not None:
        check_length(user_data, 128, "user_data")
    if external_id is not None:
        check_length(external_id, 36, "external_id")
    if avatar is not None:
        check_length(avatar, 256, "avatar")


async def face_lists(conn: AsyncConnection, face_ids: list[str]) -> dict[str, list[str]]:
    """face_id -> its lists in link order."""
    out: dict[str, list[str]] = {f: [] for f in face_ids}
    if not face_ids:
        return out
    cur = await conn.execute(
        "SELECT face_id::text AS face_id, list_id::text AS list_id FROM list_faces"
        " WHERE face_id = ANY(%s::uuid[]) ORDER BY link_key",
        (face_ids,),
    )
    for row in await cur.fetchall():
        out[row["face_id"]].append(row["list_id"])
    return out


async def lock_own_faces(conn: AsyncConnection, account_id: str, face_ids: list[str]) -> set[str]:
    """Lock the given faces of `account_id` (id order, so concurrent callers cannot deadlock);
    returns the ids found. Locking orders every change of one face (see outbox.py)."""
    if not face_ids:
        return set()
    cur = await conn.execute(
        "SELECT face_id::text AS face_id FROM faces WHERE face_id = ANY(%s::uuid[])"
        " AND account_id = %s ORDER BY face_id FOR UPDATE",
        (face_ids, account_id),
    )
    return {row["face_id"] for row in await cur.fetchall()}


def account_not_found(account_id: str) -> errors.LunaError:
    return errors.LunaError(errors.ACCOUNT_NOT_FOUND, f"Account with id '{account_id}' not found")


def face_not_found(face_id: str) -> errors.LunaError:
    return errors.LunaError(errors.FACE_NOT_FOUND, f"Face with id '{face_id}' not found")


def faces_not_found(face_id: str) -> errors.LunaError:
    return errors.LunaError(
        errors.FACES_NOT_FOUND, f"One or more faces not found including face with id '{face_id}'"
    )


def lists_not_found(list_id: str) -> errors.LunaError:
    return errors.LunaError(
        errors.LISTS_NOT_FOUND,
        f"One or more lists not found including list with id '{list_id}'",
    )


async def face_descriptors(conn: AsyncConnection, face_id: str) -> dict[int, bytes]:
    cur = await conn.execute(
        "SELECT version, descriptor FROM face_descriptors WHERE face_id = %s", (face_id,)
    )
    return {row["version"]: bytes(row["descriptor"]) for row in await cur.fetchall()}


async def delete_locked_faces(
    conn: AsyncConnection, account_id: str, face_ids: list[str]
) -> list[changes_pb2.FaceChange]:
    """Delete faces already locked by the caller; returns their KIND_DELETE_FACE changes."""
    lists = await face_lists(conn, face_ids)
    await conn.execute("DELETE FROM faces WHERE face_id = ANY(%s::uuid[])", (face_ids,))
    return [
        outbox.change(Kind.KIND_DELETE_FACE, account_id, face_id=f, list_ids=lists[f])
        for f in face_ids
    ]


async def _queue_attribute(
    conn: AsyncConnection, face_id: str, data: AttributeData
) -> psycopg.AsyncCursor[Any]:
    """Insert a face's attribute; in pipeline mode nothing waits (the returned cursor gets
    the create_time row once the pipeline is synced)."""
    basic = data.basic_attributes
    cur = await conn.execute(
        """INSERT INTO face_attributes (face_id, age, gender, ethnicity, descriptor_samples,
                                        basic_attributes_samples)
           VALUES (%s, %s, %s, %s, %s::uuid[], %s::uuid[]) RETURNING create_time""",
        (
            face_id,
            basic.age if basic else None,
            basic.gender if basic else None,
            (basic.ethnicity or None) if basic else None,
            list(data.descriptor_samples),
            list(data.basic_attributes_samples),
        ),
    )
    if data.descriptors:
        versions, blobs = zip(*sorted(data.descriptors.items()), strict=True)
        await conn.execute(
            "INSERT INTO face_descriptors (face_id, version, descriptor)"
            " SELECT %s, unnest(%s::int[]), unnest(%s::bytea[])",
            (face_id, list(versions), list(blobs)),
        )
    return cur


async def _store_attribute(conn: AsyncConnection, face_id: str, data: AttributeData) -> datetime:
    row = await (await _queue_attribute(conn, face_id, data)).fetchone()
    assert row is not None
    return row["create_time"]


@dataclass(frozen=True)
class NewFace:
    """One face to create: its fields, lists and attribute (a temporary attribute's id, data
    given directly, or None)."""

    account_id: str
    face_id: str
    event_id: str
    user_data: str
    external_id: str
    avatar: str
    attribute: AttributeSource
    list_ids: tuple[str, ...]


# New faces with their attributes and list links, set-based, in one statement (one command
# of the transaction for any number of faces):
# - the faces; parameters: face ids, account ids, event ids, user data, external ids, avatars;
# - live temporary attributes copied into their attributes inside PostgreSQL (one snapshot: an
#   attribute and its descriptors agree); a face whose attribute is not a live one of its
#   account gets none; parameters: face ids, attribute ids, account ids;
# - the links in the order given (link_key follows it), each made only when the list is the
#   face's account's; parameters: face ids, list ids, account ids (one per link).
# The foreign keys between the CTEs' rows are checked at the statement's end, when all are
# there. One row per face: its record, whether an attribute was copied and what it holds, and
# the lists it was linked to.
_CREATE_FACES = """
WITH f AS (
    INSERT INTO faces (face_id, account_id, event_id, user_data, external_id, avatar)
    SELECT * FROM unnest(%s::uuid[], %s::uuid[], %s::uuid[], %s::text[], %s::text[],
                         %s::text[])
    RETURNING face_id, account_id, event_id, user_data, external_id, avatar, create_time,
              last_update_time
), x AS (
    SELECT * FROM unnest(%s::uuid[], %s::uuid[], %s::uuid[]) AS x(face_id, attribute_id,
                                                                  account_id)
), t AS (
    SELECT x.face_id, ta.attribute_id, ta.age, ta.gender, ta.ethnicity, ta.descriptor_samples,
           ta.basic_attributes_samples
    FROM x JOIN temporary_attributes ta
      ON ta.attribute_id = x.attribute_id AND ta.account_id = x.account_id
     AND ta.expire_time > now()
), a AS (
    INSERT INTO face_attributes (face_id, age, gender, ethnicity, descriptor_samples,
                                 basic_attributes_samples)
    SELECT face_id, age, gender, ethnicity, descriptor_samples, basic_attributes_samples
    FROM t
    RETURNING face_id, age, gender, ethnicity, descriptor_samples::text[] AS ds,
              basic_attributes_samples::text[] AS bs
), d AS (
    INSERT INTO face_descriptors (face_id, version, descriptor)
    SELECT t.face_id, td.version, td.descriptor
    FROM t JOIN temporary_attribute_descriptors td ON td.attribute_id = t.attribute_id
    RETURNING face_id, version, descriptor
), l AS (
    INSERT INTO list_faces (list_id, face_id)
    SELECT l.list_id, y.face_id
    FROM unnest(%s::uuid[], %s::uuid[], %s::uuid[]) WITH ORDINALITY AS y(face_id, list_id,
                                                                        account_id, n)
    JOIN lists l ON l.list_id = y.list_id AND l.account_id = y.account_id
    ORDER BY y.n
    RETURNING face_id, list_id
)
SELECT f.face_id::text AS face_id, f.account_id::text AS account_id,
       coalesce(f.event_id::text, '') AS event_id, f.user_data, f.external_id, f.avatar,
       f.create_time, f.last_update_time,
       a.face_id IS NOT NULL AS copied, a.age, a.gender, a.ethnicity, a.ds, a.bs,
       ARRAY(SELECT d.version FROM d WHERE d.face_id = f.face_id ORDER BY d.version)
           AS versions,
       ARRAY(SELECT d.descriptor FROM d WHERE d.face_id = f.face_id ORDER BY d.version)
           AS descriptors,
       ARRAY(SELECT l.list_id::text FROM l WHERE l.face_id = f.face_id) AS linked
FROM f LEFT JOIN a ON a.face_id = f.face_id"""

# Columns of _CREATE_FACES's row that are not the face record's.
_CREATED_EXTRA = ("copied", "age", "gender", "ethnicity", "ds", "bs", "versions", "descriptors",
                  "linked")  # fmt: skip


def _attribute_missing(source: str, missing_code: int) -> errors.LunaError:
    detail = (
        f"Attributes with id '{source}' for update not found"
        if missing_code == errors.ATTRIBUTE_FOR_UPDATE_NOT_FOUND
        else f"Attributes with id {source} not found"
    )
    return errors.LunaError(missing_code, detail)


async def _resolve(
    conn: AsyncConnection, account_id: str, source: AttributeSource, missing_code: int
) -> AttributeData | None:
    if source is None or isinstance(source, AttributeData):
        return source
    data = None
    if ids.is_uuid(source):
        data = await attributes.load_live(conn, account_id, source)
    if data is None:
        raise _attribute_missing(source, missing_code)
    return data


class Faces:
    def __init__(
        self,
        pool: AsyncConnectionPool,
        publisher: outbox.Publisher,
        event_exists: EventLookup | None = None,
    ) -> None:
        self._pool = pool
        self._publisher = publisher
        self._event_exists = event_exists
        # One batch at a time, so creates made meanwhile share the next (fewer, larger
        # transactions: at concurrency 8 the CPU of a face falls by about a tenth); a batch
        # waiting on a busy list's lock for long lets a second one start, which keeps creates
        # into other lists going.
        self._creates: Coalescer[NewFace, Face] = Coalescer(
            each_alone_if_refused(self._insert_new), max_running=1, spare_after_s=SPARE_AFTER_S
        )

    async def _check_event(self, scope: Scope, event_id: str) -> None:
        """A face may name only an event of its own account: another account's event id
        (they appear in shared match results) would tie the face to data it cannot see."""
        if self._event_exists is None or not event_id:
            return
        if not await self._event_exists(scope.account_id, event_id):
            raise errors.LunaError(errors.EVENT_NOT_FOUND, f"Event with id {event_id} not found")

    async def create(
        self,
        scope: Scope,
        *,
        event_id: str = "",
        user_data: str = "",
        external_id: str = "",
        avatar: str = "",
        attribute: AttributeSource = None,
        list_ids: Iterable[str] = (),
        face_id: str = "",
        event_pending: bool = False,
    ) -> Face:
        """A new face; `event_pending`: the caller saves event `event_id` right after (the
        events pipeline), so it is not looked up. Concurrent creates share one transaction
        (coalesce.py); the face is on FACES_CHANGES when this returns."""
        check_face_fields(
            event_id=event_id, user_data=user_data, external_id=external_id, avatar=avatar
        )
        if not event_pending:
            await self._check_event(scope, event_id)
        lists = tuple(unique_ids(list_ids, "lists"))
        if isinstance(attribute, str) and not ids.is_uuid(attribute):
            raise _attribute_missing(attribute, errors.ATTRIBUTE_NOT_FOUND)
        face = await self._creates.submit(
            NewFace(
                scope.account_id,
                face_id or ids.new_id(),
                event_id,
                user_data,
                external_id,
                avatar,
                attribute,
                lists,
            )
        )
        await self._publisher.flush()
        return face

    async def _insert_new(self, items: Sequence[NewFace]) -> list[Face]:
        """New faces in one transaction of two round trips (pipeline mode), or the LunaError
        of the first one refused and nothing written."""
        links = [(i.face_id, list_id, i.account_id) for i in items for list_id in i.list_ids]
        try:
            async with (
                self._pool.connection() as conn,
                conn.pipeline() as pipeline,
                conn.transaction(),
            ):
                # 1: the faces, their attributes (temporary ones copied inside PostgreSQL)
                # and their links, each list checked to be the account's by the link itself.
                created = await conn.execute(
                    _CREATE_FACES,
                    [
                        *columns(
                            ((i.face_id, i.account_id, i.event_id or None, i.user_data,
                              i.external_id, i.avatar) for i in items),
                            6,
                        ),
                        *columns(
                            ((i.face_id, i.attribute, i.account_id)
                             for i in items if isinstance(i.attribute, str)),
                            3,
                        ),
                        *columns(links, 3),
                    ],
                )  # fmt: skip
                for item in items:
                    if isinstance(item.attribute, AttributeData):
                        await _queue_attribute(conn, item.face_id, item.attribute)
                await pipeline.sync()
                rows = {r["face_id"]: r for r in await created.fetchall()}
                data: dict[str, AttributeData] = {}
                for item in items:  # the first refusal, in the order of checks of one create
                    row = rows[item.face_id]
                    if isinstance(item.attribute, AttributeData):
                        data[item.face_id] = item.attribute
                    elif row["copied"]:
                        found = zip(row["versions"], map(bytes, row["descriptors"]), strict=True)
                        data[item.face_id] = attributes.data_of_row(row, dict(found))
                    elif item.attribute is not None:
                        raise _attribute_missing(item.attribute, errors.ATTRIBUTE_NOT_FOUND)
                    for list_id in item.list_ids:
                        if list_id not in row["linked"]:
                            raise lists_not_found(list_id)
                    for name in _CREATED_EXTRA:
                        del row[name]
                changes: list[changes_pb2.FaceChange] = []
                for item in items:
                    attribute = data.get(item.face_id)
                    rows[item.face_id]["has_attribute"] = attribute is not None
                    changes += outbox.upserts(
                        item.account_id,
                        item.face_id,
                        attribute.descriptors if attribute else {},
                        list(item.list_ids),
                    )
                # 2: the lists' last_update_time (in id order: concurrent creates into one
                # list wait for each other only from here to the commit), the outbox, the
                # commit.
                lists = sorted({list_id for _, list_id, _ in links})
                if lists:
                    await conn.execute(
                        "UPDATE lists SET last_update_time = now() WHERE list_id IN (SELECT"
                        " list_id FROM lists WHERE list_id = ANY(%s::uuid[]) ORDER BY list_id"
                        " FOR NO KEY UPDATE)",
                        (lists,),
                    )
                await outbox.enqueue(
                    conn,
                    changes,
                    [outbox.face_record(rows[i.face_id], i.list_ids) for i in items],
                )
        except psycopg.errors.ForeignKeyViolation as exc:
            first = items[0]
            if (exc.diag.constraint_name or "").startswith("list_faces_list_id"):
                # A list deleted between the check above and the link.
                raise lists_not_found(first.list_ids[0]) from None
            raise account_not_found(first.account_id) from None
        except psycopg.errors.UniqueViolation:
            raise errors.LunaError(
                errors.FACE_EXISTS, f"Face with id '{items[0].face_id}' already exists"
            ) from None
        return [_face(rows[i.face_id], i.list_ids) for i in items]

    async def import_faces(
        self, scope: Scope, *, version: int, list_ids: Iterable[str], items: list[Any]
    ) -> list[str]:
        """Faces with descriptors in one transaction (services/faces/bulk.py)."""
        from services.faces import bulk  # bulk builds on this module

        return await bulk.import_faces(
            self._pool,
            self._publisher,
            scope,
            version=version,
            list_ids=list(list_ids),
            items=items,
        )

    async def get(self, scope: Scope, face_id: str, *, with_lists: bool = True) -> Face:
        lists = f", {_LIST_IDS} AS list_ids" if with_lists else ""
        select = f"SELECT {_COLUMNS}{lists} FROM faces f"
        row = await db.fetch_readable(
            self._pool, scope, select, "f.face_id", face_id, face_not_found(face_id), "f.account_id"
        )
        return _face(row, row.pop("list_ids", ()))

    async def stream_ids(
        self, scope: Scope, flt: FaceFilter, batch_size: int = 0
    ) -> AsyncIterator[list[str]]:
        """Every id `flt` selects, ascending, `batch_size` at a time, from one server-side
        cursor (a planner's scan; ListFaces paged by id cost a round trip per 1000)."""
        batch_size = _batch_size(batch_size, 10000)
        where, params = face_where(scope, flt)
        async with (
            self._pool.connection() as conn,
            conn.transaction(),
            conn.cursor(name="face_ids") as cur,
        ):
            await cur.execute(
                f"SELECT f.face_id::text AS face_id FROM faces f WHERE {where} ORDER BY f.face_id",
                params,
            )
            while rows := await cur.fetchmany(batch_size):
                yield [r["face_id"] for r in rows]

    async def list(
        self,
        scope: Scope,
        flt: FaceFilter,
        *,
        page: int = 1,
        page_size: int = 10,
        with_lists: bool = True,
    ) -> list[Face]:
        limit, offset = page_bounds(page, page_size)
        where, params = face_where(scope, flt)
        order = listing_order("f.face_id", flt.face_id_gte, flt.face_id_lt, "f.create_time")
        # Lists in the same statement: one round trip instead of two (the matcher reads match
        # records through here on every search).
        lists = f", {_LIST_IDS} AS list_ids" if with_lists else ""
        rows = await db.fetch_all(
            self._pool,
            f"SELECT {_COLUMNS}{lists} FROM faces f WHERE {where} ORDER BY {order} "
            "LIMIT %s OFFSET %s",
            (*params, limit, offset),
        )
        return [_face(r, r.pop("list_ids", ())) for r in rows]

    async def count(self, scope: Scope, flt: FaceFilter) -> int:
        where, params = face_where(scope, flt)
        return await db.count(
            self._pool, f"SELECT count(*) AS n FROM faces f WHERE {where}", params
        )

    async def update(
        self,
        scope: Scope,
        face_id: str,
        *,
        event_id: str | None = None,
        user_data: str | None = None,
        external_id: str | None = None,
        avatar: str | None = None,
    ) -> Face:
        """Patch fields; publishes KIND_UPDATE_FACE (the matcher caches face records)."""
        check_face_fields(
            event_id=event_id, user_data=user_data, external_id=external_id, avatar=avatar
        )
        await self._check_event(scope, event_id or "")
        changes: dict[str, Any] = {}
        if event_id is not None:
            changes["event_id"] = event_id or None
        for name, value in (
            ("user_data", user_data),
            ("external_id", external_id),
            ("avatar", avatar),
        ):
            if value is not None:
                changes[name] = value
        if not ids.is_uuid(face_id):
            raise face_not_found(face_id)
        sets = ", ".join(f"{c} = %s" for c in changes)
        async with self._pool.connection() as conn, conn.transaction():
            if changes:
                # The UPDATE locks the face row before the outbox row: per-face order holds.
                cur = await conn.execute(
                    f"""UPDATE faces AS f SET {sets}, last_update_time = now()
                        WHERE f.face_id = %s AND f.account_id = %s RETURNING {_COLUMNS}""",
                    (*changes.values(), face_id, scope.account_id),
                )
            else:
                cur = await conn.execute(
                    f"SELECT {_COLUMNS} FROM faces f WHERE f.face_id = %s AND f.account_id = %s",
                    (face_id, scope.account_id),
                )
            row = await cur.fetchone()
            if row is None:
                raise face_not_found(face_id)
            lists = (await face_lists(conn, [face_id]))[face_id]
            if changes:
                await outbox.enqueue(
                    conn,
                    [outbox.change(Kind.KIND_UPDATE_FACE, scope.account_id, face_id=face_id)],
                    [outbox.face_record(row, lists)],
                )
        if changes:
            await self._publisher.flush()
        return _face(row, lists)

    @asynccontextmanager
    async def _own_face_locked(self, scope: Scope, face_id: str) -> AsyncIterator[AsyncConnection]:
        """A transaction in which `face_id`, a face the scope's account owns, is locked; the
        face's "not found" when there is no such face."""
        if not ids.is_uuid(face_id):
            raise face_not_found(face_id)
        async with self._pool.connection() as conn, conn.transaction():
            if not await lock_own_faces(conn, scope.account_id, [face_id]):
                raise face_not_found(face_id)
            yield conn

    async def delete(self, scope: Scope, face_id: str) -> None:
        async with self._own_face_locked(scope, face_id) as conn:
            await outbox.enqueue(conn, await delete_locked_faces(conn, scope.account_id, [face_id]))
        await self._publisher.flush()

    async def delete_many(
        self, scope: Scope, face_ids: Iterable[str], *, ignore_missing: bool = False
    ) -> list[str]:
        wanted = unique_ids(face_ids, "face_ids")
        async with self._pool.connection() as conn, conn.transaction():
            found = await lock_own_faces(conn, scope.account_id, wanted)
            missing = [f for f in wanted if f not in found]
            if missing and not ignore_missing:
                raise faces_not_found(missing[0])
            deleted = [f for f in wanted if f in found]
            if deleted:
                await outbox.enqueue(
                    conn, await delete_locked_faces(conn, scope.account_id, deleted)
                )
        await self._publisher.flush()
        return deleted

    async def get_attribute(
        self, scope: Scope, face_id: str, *, descriptor_version: int = 0
    ) -> FaceAttribute:
        face = await self.get(scope, face_id, with_lists=False)
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT age, gender, ethnicity, descriptor_samples::text[] AS ds,"
                " basic_attributes_samples::text[] AS bs, create_time"
                " FROM face_attributes WHERE face_id = %s",
                (face_id,),
            )
            row = await cur.fetchone()
            if row is None:
                raise errors.LunaError(
                    errors.FACE_HAS_NO_ATTRIBUTES,
                    f"Face with id {face_id} does not have attributes yet",
                )
            descriptors = await face_descriptors(conn, face_id)
        if descriptor_version:
            if descriptor_version not in descriptors:
                raise errors.LunaError(
                    errors.DESCRIPTOR_VERSION_NOT_FOUND,
                    f"Descriptor of version {descriptor_version} is not found for object with "
                    f"id '{face.face_id}'.",
                )
            descriptors = {descriptor_version: descriptors[descriptor_version]}
        return FaceAttribute(
            face_id=face_id,
            data=attributes.data_of_row(row, descriptors),
            create_time=row["create_time"],
        )

    async def put_attribute(
        self, scope: Scope, face_id: str, source: AttributeSource
    ) -> FaceAttribute:
        if source is None:
            raise errors.bad_json("", "attribute is required")
        async with self._own_face_locked(scope, face_id) as conn:
            data = await _resolve(
                conn, scope.account_id, source, errors.ATTRIBUTE_FOR_UPDATE_NOT_FOUND
            )
            assert data is not None
            old = await face_descriptors(conn, face_id)
            await conn.execute("DELETE FROM face_attributes WHERE face_id = %s", (face_id,))
            created = await _store_attribute(conn, face_id, data)
            await conn.execute(
                "UPDATE faces SET last_update_time = now() WHERE face_id = %s", (face_id,)
            )
            lists = (await face_lists(conn, [face_id]))[face_id]
            await outbox.enqueue(
                conn,
                outbox.upserts(
                    scope.account_id, face_id, data.descriptors, lists, removed_versions=old
                ),
            )
        await self._publisher.flush()
        return FaceAttribute(face_id, data, created)

    async def delete_attribute(self, scope: Scope, face_id: str) -> None:
        async with self._own_face_locked(scope, face_id) as conn:
            cur = await conn.execute("DELETE FROM face_attributes WHERE face_id = %s", (face_id,))
            if cur.rowcount == 0:
                raise errors.LunaError(
                    errors.FACE_HAS_NO_ATTRIBUTES,
                    f"Face with id {face_id} does not have attributes yet",
                )
            await conn.execute(
                "UPDATE faces SET last_update_time = now() WHERE face_id = %s", (face_id,)
            )
            lists = (await face_lists(conn, [face_id]))[face_id]
            await outbox.enqueue(conn, outbox.upserts(scope.account_id, face_id, {}, lists))
        await self._publisher.flush()

    async def delete_descriptors(
        self, scope: Scope, version: int, face_ids: Iterable[str]
    ) -> list[str]:
        """Remove descriptors of `version` from the given faces of scope.account_id; returns
        the faces that had one. The matcher hears each face's remaining descriptors."""
        wanted = unique_ids(face_ids, "face_ids")
        if len(wanted) > 1000:
            raise errors.LunaError(errors.BAD_INPUT, "At most 1000 faces per call")
        async with self._pool.connection() as conn, conn.transaction():
            own = sorted(await lock_own_faces(conn, scope.account_id, wanted))
            cur = await conn.execute(
                "DELETE FROM face_descriptors WHERE face_id = ANY(%s::uuid[]) AND version = %s"
                " RETURNING face_id::text AS face_id",
                (own, version),
            )
            touched = sorted({r["face_id"] for r in await cur.fetchall()})
            if touched:
                await conn.execute(
                    "UPDATE faces SET last_update_time = now() WHERE face_id = ANY(%s::uuid[])",
                    (touched,),
                )
                cur = await conn.execute(
                    "SELECT face_id::text AS face_id, version, descriptor FROM face_descriptors"
                    " WHERE face_id = ANY(%s::uuid[])",
                    (touched,),
                )
                left: dict[str, dict[int, bytes]] = {f: {} for f in touched}
                for r in await cur.fetchall():
                    left[r["face_id"]][r["version"]] = bytes(r["descriptor"])
                lists = await face_lists(conn, touched)
                changes = []
                for f in touched:
                    changes += outbox.upserts(
                        scope.account_id, f, left[f], lists[f], removed_versions=[version]
                    )
                await outbox.enqueue(conn, changes)
        await self._publisher.flush()
        return touched

    async def count_attributes(self, scope: Scope) -> int:
        where, params = readable(scope, "f.account_id")
        return await db.count(
            self._pool,
            "SELECT count(*) AS n FROM faces f JOIN face_attributes a USING (face_id)"
            f" WHERE {where}",
            params,
        )

    async def stream_descriptors(
        self,
        scope: Scope,
        *,
        list_ids: Iterable[str] = (),
        face_ids: Iterable[str] = (),
        descriptor_version: int = 0,
        batch_size: int = 1000,
    ) -> AsyncIterator[list[FaceDescriptor]]:
        """Every matching descriptor in (face_id, version) order, `batch_size` at a time.

        Keyset pages, each its own short query, so a large database is never held in one
        transaction or in memory; the matcher's replay of FACES_CHANGES covers concurrent
        changes (see faces.proto).
        """
        batch_size = _batch_size(batch_size, 1000)
        w = Where(scope, "f.account_id")
        lists = unique_ids(list_ids, "list_ids")
        faces = unique_ids(face_ids, "face_ids")
        if lists:
            w.add(
                "d.face_id IN (SELECT lf.face_id FROM list_faces lf"
                " WHERE lf.list_id = ANY(%s::uuid[]))",
                lists,
            )
        if faces:
            w.add("d.face_id = ANY(%s::uuid[])", faces)
        if descriptor_version:
            w.add("d.version = %s", descriptor_version)
        where, params = w.sql()
        after: tuple[str, int] = ("00000000-0000-0000-0000-000000000000", -1)
        while True:
            async with self._pool.connection() as conn:
                cur = await conn.execute(
                    f"SELECT {_COLUMNS}, d.version, d.descriptor FROM face_descriptors d"
                    " JOIN faces f ON f.face_id = d.face_id"
                    f" WHERE {where} AND (d.face_id, d.version) > (%s, %s)"
                    " ORDER BY d.face_id, d.version LIMIT %s",
                    (*params, *after, batch_size),
                )
                rows = await cur.fetchall()
                member = await face_lists(conn, list({r["face_id"] for r in rows}))
            if not rows:
                return
            yield [
                FaceDescriptor(
                    face_id=r["face_id"],
                    account_id=r["account_id"],
                    descriptor=bytes(r["descriptor"]),
                    version=r["version"],
                    list_ids=tuple(member[r["face_id"]]),
                    face=_face(
                        {k: v for k, v in r.items() if k not in ("version", "descriptor")},
                        member[r["face_id"]],
                    ),
                )
                for r in rows
            ]
            if len(rows) < batch_size:
                return
            after = (rows[-1]["face_id"], rows[-1]["version"])
