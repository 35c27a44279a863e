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
    page_bounds,
)
from services.events.policies import validate_verifier_policies
from services.events.tables import Table


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


TABLE = Table("verifiers", "v", "verifier_id", _COLUMNS, not_found)


def _where(scope: Scope, description: str | None) -> tuple[str, list[Any]]:
    conditions, params = TABLE.where(scope, description)
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
        return Verifier(**await TABLE.get(self._pool, scope, verifier_id))

    async def list(
        self,
        scope: Scope,
        *,
        description: str | None = None,
        page: int = 1,
        page_size: int = 10,
    ) -> list[Verifier]:
        bounds = page_bounds(page, page_size)
        rows = await TABLE.page(self._pool, bounds, *_where(scope, description))
        return [Verifier(**r) for r in rows]

    async def count(self, scope: Scope, *, description: str | None = None) -> int:
        return await TABLE.count(self._pool, *_where(scope, description))

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
        await TABLE.delete(self._pool, scope.account_id, verifier_id)
