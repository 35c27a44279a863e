"""Bulk import of faces with descriptors (FacesService.ImportFaces, `luna faces import`).

The same rows, outbox messages and guarantees as one CreateFace per face (a face, its
attribute and descriptor, its list links, one KIND_UPSERT_FACE with the face record on
FACES_CHANGES, published before the call answers), but a whole batch in one transaction with
set-based statements: one round trip per table instead of several per face, and descriptors
checked and normalised as one matrix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from services.common import descriptors as codec
from services.common import errors, ids
from services.common.descriptors import InvalidDescriptor
from services.common.scoping import Scope, unique_ids
from services.faces import outbox
from services.faces.arrays import bytea_array, uuid_array
from services.faces.descriptors import invalid
from services.faces.faces import account_not_found, check_face_fields, lists_not_found

MAX_BATCH = 10_000
Kind = outbox.Kind


@dataclass(frozen=True)
class ImportItem:
    descriptor: bytes
    face_id: str = ""
    user_data: str = ""
    external_id: str = ""
    avatar: str = ""


def _bad(detail: str) -> errors.LunaError:
    return errors.LunaError(errors.BAD_INPUT, detail)


def normalised_rows(descriptors: Sequence[bytes]) -> list[bytes]:
    """Every descriptor checked (length, finite, non-zero) and L2-normalised, as one matrix."""
    try:
        return codec.normalise_many(descriptors)
    except InvalidDescriptor as exc:
        raise invalid(exc) from None


def _face_ids(items: Sequence[ImportItem]) -> list[str]:
    """Every item's fields checked; its face id, or a new one (all unique)."""
    face_ids: list[str] = []
    for i, item in enumerate(items):
        check_face_fields(
            event_id=None,
            user_data=item.user_data,
            external_id=item.external_id,
            avatar=item.avatar,
        )
        if item.face_id and not ids.is_uuid(item.face_id):
            raise _bad(f"faces.{i}.face_id: '{item.face_id}' is not a valid uuid")
        face_ids.append(item.face_id or ids.new_id())
    if len(set(face_ids)) != len(face_ids):
        raise _bad("faces: face ids must be unique")
    return face_ids


async def import_faces(
    pool: AsyncConnectionPool,
    publisher: outbox.Publisher,
    scope: Scope,
    *,
    version: int,
    list_ids: Sequence[str],
    items: Sequence[ImportItem],
) -> list[str]:
    if not 1 <= len(items) <= MAX_BATCH:
        raise _bad(f"faces: 1..{MAX_BATCH} items required")
    if version <= 0:
        raise _bad("descriptor_version must be positive")
    lists = unique_ids(list_ids, "lists")
    face_ids = _face_ids(items)
    descriptors = normalised_rows([item.descriptor for item in items])
    account = scope.account_id
    try:
        # Two round trips (pipeline mode); the lists are locked only by their update at the
        # end, so concurrent batches into one list overlap up to their commits.
        async with pool.connection() as conn, conn.pipeline() as pipeline, conn.transaction():
            inserted, links = await _insert(
                conn, account, version, lists, items, face_ids, descriptors
            )
            await pipeline.sync()
            for list_id, link in zip(lists, links, strict=True):
                if link.rowcount != len(face_ids):
                    raise lists_not_found(list_id)
            rows = {r["face_id"]: r for r in await inserted.fetchall()}
            if lists:
                await conn.execute(
                    "UPDATE lists SET last_update_time = now() WHERE list_id IN (SELECT list_id"
                    " FROM lists WHERE list_id = ANY(%s::uuid[]) ORDER BY list_id"
                    " FOR NO KEY UPDATE)",
                    (lists,),
                )
            await outbox.enqueue(
                conn,
                [
                    outbox.change(
                        Kind.KIND_UPSERT_FACE,
                        account,
                        face_id=f,
                        list_ids=lists,
                        descriptor=d,
                        descriptor_version=version,
                    )
                    for f, d in zip(face_ids, descriptors, strict=True)
                ],
                [outbox.face_record(rows[f], lists) for f in face_ids],
            )
    except psycopg.errors.ForeignKeyViolation as exc:
        if (exc.diag.constraint_name or "").startswith("list_faces_list_id"):
            raise lists_not_found(lists[0]) from None  # deleted meanwhile
        raise account_not_found(account) from None
    except psycopg.errors.UniqueViolation:
        raise errors.LunaError(
            errors.FACE_EXISTS, "One or more faces of the batch already exist"
        ) from None
    await publisher.flush()
    return face_ids


async def _insert(
    conn: AsyncConnection,
    account: str,
    version: int,
    lists: list[str],
    items: Sequence[ImportItem],
    face_ids: list[str],
    descriptors: list[bytes],
) -> tuple[psycopg.AsyncCursor[Any], list[psycopg.AsyncCursor[Any]]]:
    """The batch's faces, attributes, descriptors and list links, set-based, queued on a
    pipeline: the cursor of the new face rows, and per list the cursor of its links (none
    when the list is not the account's)."""
    id_array = uuid_array(face_ids)
    inserted = await conn.execute(
        """INSERT INTO faces AS f (face_id, account_id, user_data, external_id, avatar)
           SELECT u.face_id, %s, u.user_data, u.external_id, u.avatar
           FROM unnest(%s::uuid[], %s::text[], %s::text[], %s::text[])
                WITH ORDINALITY AS u(face_id, user_data, external_id, avatar, n)
           ORDER BY u.n
           RETURNING f.face_id::text AS face_id, f.account_id::text AS account_id,
                     '' AS event_id, f.user_data, f.external_id, f.avatar,
                     f.create_time, f.last_update_time, true AS has_attribute""",
        (
            account,
            id_array,
            [x.user_data for x in items],
            [x.external_id for x in items],
            [x.avatar for x in items],
        ),
    )
    await conn.execute(
        "INSERT INTO face_attributes (face_id) SELECT unnest(%s::uuid[])", (id_array,)
    )
    await conn.execute(
        "INSERT INTO face_descriptors (face_id, version, descriptor)"
        " SELECT u.face_id, %s, u.descriptor FROM unnest(%s::uuid[], %s::bytea[])"
        " AS u(face_id, descriptor)",
        (version, id_array, bytea_array(descriptors)),
    )
    links = [  # list by list: each face's link order is the request's
        await conn.execute(
            "INSERT INTO list_faces (list_id, face_id) SELECT l.list_id, u.face_id"
            " FROM lists l, unnest(%s::uuid[]) WITH ORDINALITY AS u(face_id, n)"
            " WHERE l.list_id = %s AND l.account_id = %s ORDER BY u.n",
            (id_array, list_id, account),
        )
        for list_id in lists
    ]
    return inserted, links
