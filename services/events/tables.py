"""The row shapes the handlers and verifiers tables share: one row by id within a scope, pages
newest first, counts, an account's row deleted by id, the description filter. Each core keeps
only its own columns, checks and writes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from services.common import db, errors, ids
from services.common.scoping import Scope, escape_like, readable


@dataclass(frozen=True)
class Table:
    name: str  # the SQL table
    alias: str  # its alias in `columns`
    key: str  # the id column
    columns: str  # the SELECT list a row is read with
    missing: Callable[[str], errors.LunaError]  # the error for an id with no row

    def where(self, scope: Scope, description: str | None) -> tuple[list[str], list[Any]]:
        """Conditions (and parameters) of what `scope` reads, narrowed to descriptions
        containing `description` when given."""
        where, scope_params = readable(scope, f"{self.alias}.account_id")
        conditions, params = [where], list(scope_params)
        if description is not None:
            conditions.append(f"{self.alias}.description ILIKE %s ESCAPE '\\'")
            params.append(f"%{escape_like(description)}%")
        return conditions, params

    async def get(self, pool: db.Pool, scope: Scope, row_id: str) -> dict[str, Any]:
        return await db.fetch_readable(
            pool,
            scope,
            f"SELECT {self.columns} FROM {self.name} {self.alias}",
            f"{self.alias}.{self.key}",
            row_id,
            self.missing(row_id),
            f"{self.alias}.account_id",
        )

    async def page(
        self, pool: db.Pool, bounds: tuple[int, int], where: str, params: list[Any]
    ) -> list[dict[str, Any]]:
        """Rows matching `where`, newest first; `bounds` is page_bounds' (limit, offset)."""
        a = self.alias
        return await db.fetch_all(
            pool,
            f"SELECT {self.columns} FROM {self.name} {a} WHERE {where} "
            f"ORDER BY {a}.create_time DESC, {a}.{self.key} DESC LIMIT %s OFFSET %s",
            (*params, *bounds),
        )

    async def count(self, pool: db.Pool, where: str, params: list[Any]) -> int:
        return await db.count(
            pool, f"SELECT count(*) FROM {self.name} {self.alias} WHERE {where}", params
        )

    async def delete(self, pool: db.Pool, account_id: str, row_id: str) -> None:
        """Delete one row of `account_id`; the not-found error when there is none."""
        if not ids.is_uuid(row_id):
            raise self.missing(row_id)
        async with pool.connection() as conn:
            cur = await conn.execute(
                f"DELETE FROM {self.name} WHERE {self.key} = %s AND account_id = %s",
                (row_id, account_id),
            )
        if cur.rowcount == 0:
            raise self.missing(row_id)
