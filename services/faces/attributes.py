"""Temporary attributes core: descriptors and basic attributes that live for a TTL.

Expiry is enforced on every read (`expire_time > now()`), so an expired attribute is gone at
once for clients; `purge_expired` (run periodically by the app) only reclaims the space.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from services.common import db, errors, ids, times
from services.common.scoping import Scope, readable, unique_ids
from services.faces import outbox
from services.faces.arrays import columns, uuid_array
from services.faces.coalesce import Coalescer, each_alone_if_refused
from services.faces.descriptors import AttributeData, BasicAttributes

Kind = outbox.Kind

DEFAULT_TTL_S = 300
MAX_TTL_S = 86400

# Default of LUNA_FACES_UNLINK_RETENTION_S (declared by the app's background work).
UNLINK_RETENTION_S = 7 * 24 * 3600


@dataclass(frozen=True)
class Attribute:
    attribute_id: str
    account_id: str
    data: AttributeData
    create_time: datetime
    expire_time: datetime


def check_ttl(ttl_s: int) -> int:
    ttl_s = ttl_s or DEFAULT_TTL_S
    if not 1 <= ttl_s <= MAX_TTL_S:
        raise errors.bad_query("ttl")
    return ttl_s


def _not_found(attribute_id: str) -> errors.LunaError:
    return errors.LunaError(
        errors.ATTRIBUTE_NOT_FOUND, f"Attributes with id {attribute_id} not found"
    )


_SELECT = (
    "SELECT t.attribute_id::text AS attribute_id, t.account_id::text AS account_id, t.age,"
    " t.gender, t.ethnicity, t.descriptor_samples::text[] AS ds,"
    " t.basic_attributes_samples::text[] AS bs, t.create_time, t.expire_time"
    " FROM temporary_attributes t"
)


async def _descriptors(
    conn: AsyncConnection, attribute_ids: list[str], version: int = 0
) -> dict[str, dict[int, bytes]]:
    out: dict[str, dict[int, bytes]] = {a: {} for a in attribute_ids}
    if not attribute_ids:
        return out
    extra, params = ("", ()) if not version else (" AND version = %s", (version,))
    cur = await conn.execute(
        "SELECT attribute_id::text AS attribute_id, version, descriptor"
        " FROM temporary_attribute_descriptors WHERE attribute_id = ANY(%s::uuid[])" + extra,
        (attribute_ids, *params),
    )
    for row in await cur.fetchall():
        out[row["attribute_id"]][row["version"]] = bytes(row["descriptor"])
    return out


def data_of_row(row: dict[str, Any], descriptors: dict[int, bytes]) -> AttributeData:
    """AttributeData of a row with age, gender, ethnicity, ds (descriptor samples) and bs
    (basic attributes samples): a temporary attribute's or a face's."""
    basic = (
        BasicAttributes(row["age"], row["gender"], row["ethnicity"] or 0)
        if row["age"] is not None
        else None
    )
    return AttributeData(
        descriptors=descriptors,
        descriptor_samples=tuple(row["ds"]),
        basic_attributes=basic,
        basic_attributes_samples=tuple(row["bs"]),
    )


async def load_live(
    conn: AsyncConnection, account_id: str, attribute_id: str
) -> AttributeData | None:
    """An unexpired attribute of `account_id`, for making a face from it; None otherwise."""
    cur = await conn.execute(
        f"{_SELECT} WHERE t.attribute_id = %s AND t.account_id = %s AND t.expire_time > now()",
        (attribute_id, account_id),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    return data_of_row(row, (await _descriptors(conn, [attribute_id]))[attribute_id])


def attribute_change(
    kind: int,
    account_id: str,
    attribute_id: str = "",
    *,
    descriptor: bytes = b"",
    descriptor_version: int = 0,
    expire_time: datetime | None = None,
) -> Any:
    """A FACES_CHANGES message about a temporary attribute (see changes.proto)."""
    c = outbox.change(
        kind, account_id, descriptor=descriptor, descriptor_version=descriptor_version
    )
    c.attribute_id = attribute_id
    if expire_time is not None:
        c.expire_time.CopyFrom(times.to_timestamp(expire_time))
    return c


@dataclass(frozen=True)
class _NewAttribute:
    attribute_id: str
    account_id: str
    data: AttributeData
    ttl_s: int


# New temporary attributes and their descriptors, set-based, in one statement (its own
# transaction: the descriptors' foreign keys are checked at its end, when the attributes are
# there). Samples travel as uuid[] literals (one text each: a list of lists would not unnest
# row by row). Parameters: the attributes' columns, then the descriptors'.
_INSERT_ATTRIBUTES = """
WITH a AS (
    INSERT INTO temporary_attributes (attribute_id, account_id, age, gender, ethnicity,
                                      descriptor_samples, basic_attributes_samples,
                                      expire_time)
    SELECT attribute_id, account_id, age, gender, ethnicity, ds::uuid[], bs::uuid[],
           now() + make_interval(secs => ttl)
    FROM unnest(%s::uuid[], %s::uuid[], %s::smallint[], %s::smallint[], %s::smallint[],
                %s::text[], %s::text[], %s::int[])
         AS x(attribute_id, account_id, age, gender, ethnicity, ds, bs, ttl)
    RETURNING attribute_id::text AS attribute_id, create_time, expire_time
), d AS (
    INSERT INTO temporary_attribute_descriptors (attribute_id, version, descriptor)
    SELECT * FROM unnest(%s::uuid[], %s::int[], %s::bytea[])
)
SELECT * FROM a"""


def _basic_columns(basics: list[BasicAttributes | None]) -> list[list[int | None]]:
    """Ages, genders and ethnicities (NULL where there are no basic attributes, and for an
    ethnicity that was not estimated)."""
    return [
        [b.age if b else None for b in basics],
        [b.gender if b else None for b in basics],
        [(b.ethnicity or None) if b else None for b in basics],
    ]


class Attributes:
    def __init__(
        self, pool: AsyncConnectionPool, publisher: outbox.Publisher | None = None
    ) -> None:
        self._pool = pool
        # Creates are announced on FACES_CHANGES (a notice: the matcher then resolves an
        # attribute reference without asking us) and deletes through the outbox.
        self._publisher = publisher
        self._creates: Coalescer[_NewAttribute, Attribute] = Coalescer(
            each_alone_if_refused(self._insert), max_running=1
        )

    async def create(self, scope: Scope, data: AttributeData, *, ttl_s: int = 0) -> Attribute:
        """Store `data` (already checked by descriptors.checked) for `ttl_s` seconds.
        Concurrent creates share one transaction (coalesce.py)."""
        ttl_s = check_ttl(ttl_s)
        if data.empty:
            raise errors.bad_json("", "face_descriptors or basic_attributes is required")
        attribute = await self._creates.submit(
            _NewAttribute(ids.new_id(), scope.account_id, data, ttl_s)
        )
        if self._publisher is not None and data.descriptors:
            await self._publisher.notify(
                attribute_change(
                    Kind.KIND_ATTRIBUTE_CREATE,
                    scope.account_id,
                    attribute.attribute_id,
                    descriptor=d,
                    descriptor_version=v,
                    expire_time=attribute.expire_time,
                )
                for v, d in sorted(data.descriptors.items())
            )
        return attribute

    async def _insert(self, items: Sequence[_NewAttribute]) -> list[Attribute]:
        """Attributes in one statement: one command, one round trip (db.autocommit)."""
        descriptors = [
            (i.attribute_id, version, blob)
            for i in items
            for version, blob in sorted(i.data.descriptors.items())
        ]
        try:
            async with db.autocommit(self._pool) as conn:
                cur = await conn.execute(
                    _INSERT_ATTRIBUTES,
                    [
                        [i.attribute_id for i in items],
                        [i.account_id for i in items],
                        *_basic_columns([i.data.basic_attributes for i in items]),
                        [uuid_array(i.data.descriptor_samples) for i in items],
                        [uuid_array(i.data.basic_attributes_samples) for i in items],
                        [i.ttl_s for i in items],
                        *columns(descriptors, 3),
                    ],
                )  # fmt: skip
                rows = {r["attribute_id"]: r for r in await cur.fetchall()}
        except psycopg.errors.ForeignKeyViolation:
            raise errors.LunaError(
                errors.ACCOUNT_NOT_FOUND, f"Account with id '{items[0].account_id}' not found"
            ) from None
        return [
            Attribute(
                i.attribute_id,
                i.account_id,
                i.data,
                rows[i.attribute_id]["create_time"],
                rows[i.attribute_id]["expire_time"],
            )
            for i in items
        ]

    async def get_many(
        self, scope: Scope, attribute_ids: Iterable[str], *, descriptor_version: int = 0
    ) -> list[Attribute]:
        """The live attributes among `attribute_ids`, in the order asked."""
        wanted = unique_ids(attribute_ids, "attribute_ids")
        if not wanted:
            return []
        where, params = readable(scope, "t.account_id")
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                f"{_SELECT} WHERE t.attribute_id = ANY(%s::uuid[]) AND t.expire_time > now()"
                f" AND {where}",
                (wanted, *params),
            )
            rows = {r["attribute_id"]: r for r in await cur.fetchall()}
            descriptors = await _descriptors(conn, list(rows), descriptor_version)
        return [
            Attribute(
                attribute_id=a,
                account_id=rows[a]["account_id"],
                data=data_of_row(rows[a], descriptors[a]),
                create_time=rows[a]["create_time"],
                expire_time=rows[a]["expire_time"],
            )
            for a in wanted
            if a in rows
        ]

    async def get(
        self, scope: Scope, attribute_id: str, *, descriptor_version: int = 0
    ) -> Attribute:
        if not ids.is_uuid(attribute_id):
            raise _not_found(attribute_id)
        found = await self.get_many(scope, [attribute_id], descriptor_version=descriptor_version)
        if not found:
            raise _not_found(attribute_id)
        attribute = found[0]
        if descriptor_version and descriptor_version not in attribute.data.descriptors:
            raise errors.LunaError(
                errors.DESCRIPTOR_VERSION_NOT_FOUND,
                f"Descriptor of version {descriptor_version} is not found for object with id "
                f"'{attribute_id}'.",
            )
        return attribute

    async def delete(self, scope: Scope, attribute_id: str) -> None:
        if not ids.is_uuid(attribute_id):
            raise _not_found(attribute_id)
        async with self._pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "DELETE FROM temporary_attributes WHERE attribute_id = %s AND account_id = %s"
                " AND expire_time > now()",
                (attribute_id, scope.account_id),
            )
            if cur.rowcount and self._publisher is not None:
                await outbox.enqueue(
                    conn,
                    [attribute_change(Kind.KIND_ATTRIBUTE_DELETE, scope.account_id, attribute_id)],
                )
        if cur.rowcount == 0:
            raise _not_found(attribute_id)
        if self._publisher is not None:
            await self._publisher.flush()  # on the stream before the delete returns

    async def purge_expired(self, unlink_retention_s: float = UNLINK_RETENTION_S) -> int:
        """Delete expired attributes and unlink records older than `unlink_retention_s`;
        returns attributes deleted."""
        async with self._pool.connection() as conn:
            cur = await conn.execute("DELETE FROM temporary_attributes WHERE expire_time <= now()")
            await conn.execute(
                "DELETE FROM list_face_unlinks WHERE unlink_time < now() - %s",
                (timedelta(seconds=unlink_retention_s),),
            )
        return cur.rowcount
