"""Verifiers core: per-account verification policies (LUNA `/6/verifiers`).

`version` starts at 1 and grows on every replace, so a verification can tell which policies
it ran with.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from services.common import db, errors, ids
from services.common.scoping import (
    Scope,
    check_length,
    escape_like,
    page_bounds,
    readable,
)
from services.events.policies import validate_verifier_policies


@dataclass(frozen=True)
class Verifier:
    verifier_id: str
    account_id: str
    description: str
    policies: dict[str, Any]
    version: int
    create_time: datetime
    last_update_time: datetime


_COLUMNS = (
    "v.verifier_id::text AS verifier_id, v.account_id::text AS account_id, v.description, "
    "v.policies, v.version, v.create_time, v.last_update_time"
)


def not_found(verifier_id: str) -> errors.LunaError:
    return errors.LunaError(errors.VERIFIER_NOT_FOUND, f"Verifier with id {verifier_id} not found")


def _where(scope: Scope, description: str | None) -> tuple[str, list[Any]]:
    where, scope_params = readable(scope, "v.account_id")
    conditions, params = [where], list(scope_params)
    if description is not None:
        conditions.append("v.description ILIKE %s ESCAPE '\\'")
        params.append(f"%{escape_like(description)}%")
    return " AND ".join(conditions), params


class Verifiers:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def create(
        self, scope: Scope, *, description: str = "", policies: dict[str, Any] | None = None
    ) -> Verifier:
        check_length(description, 128, "description")
        checked = validate_verifier_policies(policies or {})
        row = await db.fetch_one(
            self._pool,
            f"""INSERT INTO verifiers AS v (verifier_id, account_id, description, policies)
                VALUES (%s, %s, %s, %s) RETURNING {_COLUMNS}""",
            (ids.new_id(), scope.account_id, description, Jsonb(checked)),
        )
        assert row is not None
        return Verifier(**row)

    async def get(self, scope: Scope, verifier_id: str) -> Verifier:
        if not ids.is_uuid(verifier_id):
            raise not_found(verifier_id)
        where, params = readable(scope, "v.account_id")
        row = await db.fetch_one(
            self._pool,
            f"SELECT {_COLUMNS} FROM verifiers v WHERE v.verifier_id = %s AND {where}",
            (verifier_id, *params),
        )
        if row is None:
            raise not_found(verifier_id)
        return Verifier(**row)

    async def list(
        self,
        scope: Scope,
        *,
        description: str | None = None,
        page: int = 1,
        page_size: int = 10,
    ) -> list[Verifier]:
        limit, offset = page_bounds(page, page_size)
        where, params = _where(scope, description)
        rows = await db.fetch_all(
            self._pool,
            f"""SELECT {_COLUMNS} FROM verifiers v WHERE {where}
                ORDER BY v.create_time DESC, v.verifier_id DESC LIMIT %s OFFSET %s""",
            (*params, limit, offset),
        )
        return [Verifier(**r) for r in rows]

    async def count(self, scope: Scope, *, description: str | None = None) -> int:
        where, params = _where(scope, description)
        return await db.count(self._pool, f"SELECT count(*) FROM verifiers v WHERE {where}", params)

    async def replace(
        self,
        scope: Scope,
        verifier_id: str,
        *,
        description: str = "",
        policies: dict[str, Any] | None = None,
    ) -> Verifier:
        if not ids.is_uuid(verifier_id):
            raise not_found(verifier_id)
        check_length(description, 128, "description")
        checked = validate_verifier_policies(policies or {})
        row = await db.fetch_one(
            self._pool,
            f"""UPDATE verifiers AS v SET description = %s, policies = %s,
                    version = v.version + 1, last_update_time = now()
                WHERE v.verifier_id = %s AND v.account_id = %s RETURNING {_COLUMNS}""",
            (description, Jsonb(checked), verifier_id, scope.account_id),
        )
        if row is None:
            raise not_found(verifier_id)
        return Verifier(**row)

    async def delete(self, scope: Scope, verifier_id: str) -> None:
        if not ids.is_uuid(verifier_id):
            raise not_found(verifier_id)
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "DELETE FROM verifiers WHERE verifier_id = %s AND account_id = %s",
                (verifier_id, scope.account_id),
            )
        if cur.rowcount == 0:
            raise not_found(verifier_id)
