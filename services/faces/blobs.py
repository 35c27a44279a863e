"""Blobs core: face/body samples, source images and objects in PostgreSQL bytea, per account.

LUNA keeps these in Image Store buckets; here they are rows of one table, so a sample and the
face that refers to it live in the same database and backups.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from services.common import db, errors, ids
from services.common.scoping import Scope, readable

KINDS = ("face_sample", "body_sample", "image", "object")
# Largest blob: the gateway refuses bigger bodies first; this guards gRPC callers.
MAX_BLOB_BYTES = 64 * 1024 * 1024
MAX_META_KEYS = 64
MAX_META_BYTES = 8 * 1024
MAX_CONTENT_TYPE = 256
MAX_BATCH = 256


@dataclass(frozen=True)
class BlobInput:
    kind: str
    content_type: str
    data: bytes
    meta: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Blob:
    blob_id: str
    account_id: str
    kind: str
    content_type: str
    data: bytes  # empty when read with metadata_only
    meta: dict[str, str]
    create_time: datetime
    size: int


def not_found(kind: str, blob_id: str) -> errors.LunaError:
    """LUNA answers "not found" for missing and for other accounts' blobs alike."""
    if kind == "object":
        return errors.LunaError(errors.OBJECT_NOT_FOUND, f"Object with id '{blob_id}' not found")
    return errors.LunaError(errors.IMAGE_NOT_FOUND, f"Image with id '{blob_id}' not found")


def _check(blob: BlobInput) -> None:
    if blob.kind not in KINDS:
        raise errors.LunaError(errors.BAD_INPUT, f"Unknown blob kind {blob.kind!r}")
    if not blob.data:
        raise errors.LunaError(errors.NO_DATA, "Request does not contain data")
    if len(blob.data) > MAX_BLOB_BYTES:
        raise errors.LunaError(
            errors.BAD_INPUT, f"Blob of {len(blob.data)} bytes exceeds {MAX_BLOB_BYTES} bytes"
        )
    if not blob.content_type or len(blob.content_type) > MAX_CONTENT_TYPE:
        raise errors.LunaError(errors.BAD_INPUT, "Content-Type is missing or too long")
    meta_bytes = sum(len(k) + len(v) for k, v in blob.meta.items())
    if len(blob.meta) > MAX_META_KEYS or meta_bytes > MAX_META_BYTES:
        raise errors.LunaError(
            errors.BAD_INPUT,
            f"Too much metadata: at most {MAX_META_KEYS} keys and {MAX_META_BYTES} bytes",
        )


def _blob(row: dict[str, Any]) -> Blob:
    data = row.get("data")
    return Blob(
        blob_id=row["blob_id"],
        account_id=row["account_id"],
        kind=row["kind"],
        content_type=row["content_type"],
        data=bytes(data) if data is not None else b"",
        meta=dict(row["meta"] or {}),
        create_time=row["create_time"],
        size=int(row["size"]),
    )


class Blobs:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def put(self, scope: Scope, blobs: list[BlobInput]) -> list[str]:
        """Store every blob for scope.account_id in one transaction; ids in input order."""
        if not blobs:
            raise errors.LunaError(errors.NO_DATA, "Request does not contain data")
        if len(blobs) > MAX_BATCH:
            raise errors.LunaError(errors.BAD_INPUT, f"At most {MAX_BATCH} blobs per call")
        for b in blobs:
            _check(b)
        new = [ids.new_id() for _ in blobs]
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            await cur.executemany(
                """INSERT INTO blobs (blob_id, account_id, kind, content_type, data, meta)
                   VALUES (%s, %s, %s, %s, %s, %s)""",
                [
                    (bid, scope.account_id, b.kind, b.content_type, b.data, Jsonb(b.meta))
                    for bid, b in zip(new, blobs, strict=True)
                ],
            )
        return new

    async def get(
        self, scope: Scope, kind: str, blob_id: str, *, metadata_only: bool = False
    ) -> Blob:
        if kind not in KINDS:
            raise errors.LunaError(errors.BAD_INPUT, f"Unknown blob kind {kind!r}")
        if not ids.is_uuid(blob_id):
            raise not_found(kind, blob_id)
        where, params = readable(scope)
        data = "NULL::bytea AS data" if metadata_only else "data"
        row = await db.fetch_one(
            self._pool,
            f"""SELECT blob_id::text, account_id::text, kind, content_type, {data}, meta,
                       create_time, octet_length(data) AS size
                FROM blobs WHERE blob_id = %s AND kind = %s AND {where}""",
            (blob_id, kind, *params),
        )
        if row is None:
            raise not_found(kind, blob_id)
        return _blob(row)

    async def delete(self, scope: Scope, kind: str, blob_id: str) -> None:
        # A delete is a write: only the owner may do it, whatever it may read.
        if kind not in KINDS:
            raise errors.LunaError(errors.BAD_INPUT, f"Unknown blob kind {kind!r}")
        if not ids.is_uuid(blob_id):
            raise not_found(kind, blob_id)
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "DELETE FROM blobs WHERE blob_id = %s AND kind = %s AND account_id = %s",
                (blob_id, kind, scope.account_id),
            )
        if cur.rowcount == 0:
            raise not_found(kind, blob_id)
