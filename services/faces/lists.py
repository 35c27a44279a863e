"""Lists core: named groups of one account's faces, and their membership.

Membership changes and list deletions are queued in the outbox within their transaction and
published on FACES_CHANGES after the commit (see outbox.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from luna.faces.v1 import changes_pb2
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from services.common import db, errors, ids
from services.common.scoping import (
    MAX_IDS,
    Scope,
    check_length,
    page_bounds,
    unique_ids,
)
from services.faces import outbox
from services.faces.faces import (
    account_not_found,
    delete_locked_faces,
    face_lists,
    faces_not_found,
    lists_not_found,
    lock_own_faces,
)
from services.faces.where import Where, listing_order

Kind = changes_pb2.FaceChange.Kind
# Faces one bulk link may name (the linker task applies up to ten 1000-face parts at once).
BULK_IDS = 10000


@dataclass(frozen=True)
class FaceList:
    list_id: str
    account_id: str
    user_data: str
    create_time: datetime
    last_update_time: datetime


@dataclass(frozen=True)
class ListFilter:
    """GET /6/lists filters; every set field must hold."""

    list_ids: tuple[str, ...] = ()
    user_data: str | None = None
    user_data_eq: str | None = None
    create_time_gte: datetime | None = None
    create_time_lt: datetime | None = None
    last_update_time_gte: datetime | None = None
    last_update_time_lt: datetime | None = None
    list_id_gte: str = ""
    list_id_lt: str = ""


_COLUMNS = (
    "l.list_id::text AS list_id, l.account_id::text AS account_id, l.user_data, "
    "l.create_time, l.last_update_time"
)


def _not_found(list_id: str) -> errors.LunaError:
    return errors.LunaError(errors.LIST_NOT_FOUND, f"List with id '{list_id}' not found")


def list_where(scope: Scope, flt: ListFilter) -> tuple[str, list[Any]]:
    """SQL condition (over alias `l`) and parameters for a scope and a filter."""
    w = Where(scope, "l.account_id")
    w.ids("l.list_id", flt.list_ids, "list_ids")
    w.contains("l.user_data", flt.user_data)
    if flt.user_data_eq is not None:
        w.add("l.user_data = %s", flt.user_data_eq)
    w.since("l.create_time", flt.create_time_gte, flt.create_time_lt)
    w.since("l.last_update_time", flt.last_update_time_gte, flt.last_update_time_lt)
    w.id_range("l.list_id", flt.list_id_gte, flt.list_id_lt, "list_id")
    return w.sql()


async def _lock_own_lists(conn: AsyncConnection, account_id: str, list_ids: list[str]) -> set[str]:
    cur = await conn.execute(
        "SELECT list_id::text AS list_id FROM lists WHERE list_id = ANY(%s::uuid[])"
        " AND account_id = %s ORDER BY list_id FOR UPDATE",
        (list_ids, account_id),
    )
    return {r["list_id"] for r in await cur.fetchall()}


def _id_array(face_ids: list[str]) -> str:
    """Validated uuids as one PostgreSQL array literal: psycopg's list dumper quotes each
    element in Python, which was a quarter of the faces service's time in a 1000-face link."""
    return "{" + ",".join(face_ids) + "}"


async def _share_own_list(conn: AsyncConnection, account_id: str, list_id: str) -> bool:
    """The list is the account's; KEY SHARE keeps it from being deleted until the commit while
    other links into it go on (FOR UPDATE here made a linker's parts into one list queue)."""
    cur = await conn.execute(
        "SELECT 1 FROM lists WHERE list_id = %s AND account_id = %s FOR KEY SHARE",
        (list_id, account_id),
    )
    return await cur.fetchone() is not None


async def _lock_faces(conn: AsyncConnection, account_id: str, id_array: str) -> set[str]:
    """`lock_own_faces` for an id array literal (id order: concurrent callers cannot deadlock;
    the face locks order every change of one face, see outbox.py)."""
    cur = await conn.execute(
        "SELECT face_id::text AS face_id FROM faces WHERE face_id = ANY(%s::uuid[])"
        " AND account_id = %s ORDER BY face_id FOR UPDATE",
        (id_array, account_id),
    )
    return {row["face_id"] for row in await cur.fetchall()}


async def _attach(
    conn: AsyncConnection, account: str, list_id: str, wanted: list[str], id_array: str
) -> tuple[list[str], list[changes_pb2.FaceChange]]:
    """Links the (locked) faces to the list in one statement that also reads what the change
    message needs: each new member's lists and newest descriptor (two set-based reads joined
    once; a subquery per face cost more than the insert). The statement's reads do not see
    its insert, so the list is appended; it is the face's newest link (its face row is
    locked, so no other link of the face can be newer). Returns the faces that were not yet
    members, in request order, and the KIND_ATTACH_MANY message."""
    cur = await conn.execute(
        "WITH added AS (INSERT INTO list_faces (list_id, face_id)"
        " SELECT %(list)s, f FROM unnest(%(ids)s::uuid[]) WITH ORDINALITY AS t(f, n)"
        " ORDER BY n ON CONFLICT DO NOTHING RETURNING face_id)"
        " SELECT a.face_id::text AS face_id, l.lists, d.version, d.descriptor FROM added a"
        " LEFT JOIN (SELECT lf.face_id, array_agg(lf.list_id::text ORDER BY lf.link_key)"
        " AS lists FROM list_faces lf WHERE lf.face_id = ANY(%(ids)s::uuid[])"
        " GROUP BY lf.face_id) l ON l.face_id = a.face_id"
        " LEFT JOIN (SELECT DISTINCT ON (fd.face_id) fd.face_id, fd.version, fd.descriptor"
        " FROM face_descriptors fd WHERE fd.face_id = ANY(%(ids)s::uuid[])"
        " ORDER BY fd.face_id, fd.version DESC) d ON d.face_id = a.face_id",
        {"list": list_id, "ids": id_array},
    )
    rows = {row["face_id"]: row for row in await cur.fetchall()}
    changed = [f for f in wanted if f in rows]
    message = outbox.change(Kind.KIND_ATTACH_MANY, account, list_id=list_id)
    for face_id in changed:
        row = rows[face_id]
        message.linked.add(
            face_id=face_id,
            list_ids=[*(row["lists"] or ()), list_id],
            descriptor=bytes(row["descriptor"] or b""),
            descriptor_version=row["version"] or 0,
        )
    return changed, [message]


async def _detach(
    conn: AsyncConnection, account: str, list_id: str, wanted: list[str], id_array: str
) -> tuple[list[str], list[changes_pb2.FaceChange]]:
    """Unlinks the (locked) faces; the faces that were members, in request order, and one
    KIND_DETACH_MANY message with each face's lists afterwards."""
    cur = await conn.execute(
        "DELETE FROM list_faces WHERE list_id = %s AND face_id = ANY(%s::uuid[])"
        " RETURNING face_id::text AS face_id",
        (list_id, id_array),
    )
    touched = {row["face_id"] for row in await cur.fetchall()}
    changed = [f for f in wanted if f in touched]
    lists = await face_lists(conn, changed)
    message = outbox.change(Kind.KIND_DETACH_MANY, account, list_id=list_id)
    for face_id in changed:
        message.linked.add(face_id=face_id, list_ids=lists[face_id])
    return changed, [message]


class Lists:
    def __init__(self, pool: AsyncConnectionPool, publisher: outbox.Publisher) -> None:
        self._pool = pool
        self._publisher = publisher

    async def create(self, scope: Scope, *, user_data: str = "") -> FaceList:
        check_length(user_data, 128, "user_data")
        try:
            row = await db.fetch_one(
                self._pool,
                f"""INSERT INTO lists AS l (list_id, account_id, user_data)
                    VALUES (%s, %s, %s) RETURNING {_COLUMNS}""",
                (ids.new_id(), scope.account_id, user_data),
            )
        except psycopg.errors.ForeignKeyViolation:
            raise account_not_found(scope.account_id) from None
        assert row is not None
        return FaceList(**row)

    async def get(self, scope: Scope, list_id: str) -> FaceList:
        select = f"SELECT {_COLUMNS} FROM lists l"
        row = await db.fetch_readable(
            self._pool, scope, select, "l.list_id", list_id, _not_found(list_id), "l.account_id"
        )
        return FaceList(**row)

    async def list(
        self, scope: Scope, flt: ListFilter, *, page: int = 1, page_size: int = 10
    ) -> list[FaceList]:
        limit, offset = page_bounds(page, page_size)
        where, params = list_where(scope, flt)
        order = listing_order("l.list_id", flt.list_id_gte, flt.list_id_lt, "l.create_time")
        rows = await db.fetch_all(
            self._pool,
            f"SELECT {_COLUMNS} FROM lists l WHERE {where} ORDER BY {order} LIMIT %s OFFSET %s",
            (*params, limit, offset),
        )
        return [FaceList(**r) for r in rows]

    async def count(self, scope: Scope, flt: ListFilter) -> int:
        where, params = list_where(scope, flt)
        return await db.count(
            self._pool, f"SELECT count(*) AS n FROM lists l WHERE {where}", params
        )

    async def update(self, scope: Scope, list_id: str, *, user_data: str) -> FaceList:
        check_length(user_data, 128, "user_data")
        if not ids.is_uuid(list_id):
            raise _not_found(list_id)
        row = await db.fetch_one(
            self._pool,
            f"""UPDATE lists AS l SET user_data = %s, last_update_time = now()
                WHERE l.list_id = %s AND l.account_id = %s RETURNING {_COLUMNS}""",
            (user_data, list_id, scope.account_id),
        )
        if row is None:
            raise _not_found(list_id)
        return FaceList(**row)

    async def delete(self, scope: Scope, list_id: str, *, with_faces: bool = False) -> int:
        if not ids.is_uuid(list_id):
            raise _not_found(list_id)
        return await self._delete(scope, [list_id], with_faces, single=True)

    async def delete_many(
        self, scope: Scope, list_ids: Iterable[str], *, with_faces: bool = False
    ) -> int:
        return await self._delete(scope, unique_ids(list_ids, "list_ids"), with_faces)

    async def _delete(
        self, scope: Scope, list_ids: list[str], with_faces: bool, single: bool = False
    ) -> int:
        """Delete lists (all or nothing); returns how many faces went with them."""
        account = scope.account_id
        changes: list[changes_pb2.FaceChange] = []
        async with self._pool.connection() as conn, conn.transaction():
            found = await _lock_own_lists(conn, account, list_ids)
            missing = [x for x in list_ids if x not in found]
            if missing:
                if single:
                    raise _not_found(missing[0])
                raise lists_not_found(missing[0])
            deleted_faces: list[str] = []
            if with_faces:
                cur = await conn.execute(
                    "SELECT DISTINCT face_id::text AS face_id FROM list_faces"
                    " WHERE list_id = ANY(%s::uuid[])",
                    (list_ids,),
                )
                members = sorted(r["face_id"] for r in await cur.fetchall())
                # Faces of a list are always its account's; lock them like any face change.
                deleted_faces = sorted(await lock_own_faces(conn, account, members))
                if deleted_faces:
                    changes += await delete_locked_faces(conn, account, deleted_faces)
            await conn.execute("DELETE FROM lists WHERE list_id = ANY(%s::uuid[])", (list_ids,))
            changes += [outbox.change(Kind.KIND_DELETE_LIST, account, list_id=x) for x in list_ids]
            await outbox.enqueue(conn, changes)
        await self._publisher.flush()
        return len(deleted_faces)

    async def attach(
        self, scope: Scope, list_id: str, face_ids: Iterable[str], *, bulk: bool = False
    ) -> list[str]:
        """Link faces; `bulk` (internal callers) takes up to BULK_IDS instead of MAX_IDS."""
        limit = BULK_IDS if bulk else MAX_IDS
        return await self._link(scope, list_id, face_ids, attach=True, limit=limit)

    async def detach(self, scope: Scope, list_id: str, face_ids: Iterable[str]) -> list[str]:
        return await self._link(scope, list_id, face_ids, attach=False)

    async def _link(
        self,
        scope: Scope,
        list_id: str,
        face_ids: Iterable[str],
        *,
        attach: bool,
        limit: int = MAX_IDS,
    ) -> list[str]:
        """Attach or detach faces; returns the faces whose membership changed. The list and
        every face must belong to scope.account_id: another account's list or face is
        "not found", exactly like a missing one."""
        wanted = unique_ids(face_ids, "face_ids", limit)
        if not ids.is_uuid(list_id):
            raise _not_found(list_id)
        account, id_array = scope.account_id, _id_array(wanted)
        async with self._pool.connection() as conn, conn.transaction():
            if not await _share_own_list(conn, account, list_id):
                raise _not_found(list_id)
            found = await _lock_faces(conn, account, id_array)
            missing = [f for f in wanted if f not in found]
            if missing:
                raise faces_not_found(missing[0])
            relink = _attach if attach else _detach
            changed, messages = await relink(conn, account, list_id, wanted, id_array)
            if changed:
                await outbox.enqueue(conn, messages)
                # Last: concurrent links into the list wait for each other only from here to
                # the commit (as a face create does).
                await conn.execute(
                    "UPDATE lists SET last_update_time = now() WHERE list_id = %s", (list_id,)
                )
        await self._publisher.flush()
        return changed
