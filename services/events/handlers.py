"""Handlers core: per-account policy sets (LUNA `/6/handlers`).

A static handler (type 0) keeps validated policies with every default filled in, so the
pipeline reads one complete document; a dynamic handler (type 1) keeps none (policies come
with each request); lambda handlers (type 2) need a lambda service this platform lacks.
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
from services.events.policies import validate_handler_policies
from services.events.tables import Table

STATIC, DYNAMIC, LAMBDA = 0, 1, 2


@dataclass(frozen=True)
class Handler:
    handler_id: str
    account_id: str
    description: str
    handler_type: int
    policies: dict[str, Any] | None
    lambda_id: str | None
    create_time: datetime
    last_update_time: datetime


@dataclass(frozen=True)
class HandlerFields:
    """What create and replace take; `policies` is None when the caller sent none."""

    description: str = ""
    handler_type: int = STATIC
    policies: dict[str, Any] | None = None
    lambda_id: str = ""


@dataclass(frozen=True)
class HandlerFilter:
    description: str | None = None
    handler_type: int | None = None


_COLUMNS = (
    "h.handler_id::text AS handler_id, h.account_id::text AS account_id, h.description, "
    "h.handler_type, h.policies, h.lambda_id::text AS lambda_id, h.create_time, "
    "h.last_update_time"
)


def not_found(handler_id: str) -> errors.LunaError:
    return errors.LunaError(errors.HANDLER_NOT_FOUND, f"Handler with id {handler_id} not found")


def checked_fields(fields: HandlerFields) -> tuple[int, dict[str, Any] | None, str | None]:
    """(type, policies to store, lambda id) after LUNA's rules; raises before any write."""
    check_length(fields.description, 128, "description")
    if fields.handler_type not in (STATIC, DYNAMIC, LAMBDA):
        raise errors.bad_json(
            "handler_type", "value is not a valid enumeration member; permitted: 0, 1, 2"
        )
    if fields.handler_type == LAMBDA:
        # Lambda handlers forward requests to a user lambda; there is no lambda service here.
        raise errors.LunaError(errors.NOT_IMPLEMENTED, "Lambda handlers are not supported")
    if fields.lambda_id:
        raise errors.LunaError(
            errors.BAD_INPUT, "lambda_id is only allowed for lambda handlers (handler_type 2)"
        )
    if fields.handler_type == DYNAMIC:
        # A dynamic handler's policies come with each request; any sent here are not kept
        # (a REST body's `policies` arrives filled with schema defaults, so it cannot be
        # told apart from "none" reliably).
        return DYNAMIC, None, None
    return STATIC, validate_handler_policies(fields.policies or {}), None


TABLE = Table("handlers", "h", "handler_id", _COLUMNS, not_found)


def handler_where(scope: Scope, flt: HandlerFilter) -> tuple[str, list[Any]]:
    conditions, params = TABLE.where(scope, flt.description)
    if flt.handler_type is not None:
        conditions.append("h.handler_type = %s")
        params.append(flt.handler_type)
    return " AND ".join(conditions), params


class Handlers:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def create(self, scope: Scope, fields: HandlerFields) -> Handler:
        handler_type, policies, lambda_id = checked_fields(fields)
        row = await db.fetch_one(
            self._pool,
            f"""INSERT INTO handlers AS h
                    (handler_id, account_id, description, handler_type, policies, lambda_id)
                VALUES (%s, %s, %s, %s, %s, %s) RETURNING {_COLUMNS}""",
            (
                ids.new_id(),
                scope.account_id,
                fields.description,
                handler_type,
                Jsonb(policies) if policies is not None else None,
                lambda_id,
            ),
        )
        assert row is not None
        return Handler(**row)

    async def get(self, scope: Scope, handler_id: str) -> Handler:
        return Handler(**await TABLE.get(self._pool, scope, handler_id))

    async def get_own(self, account_id: str, handler_id: str) -> Handler:
        """A handler of exactly this account (what writes such as saving events need)."""
        return await self.get(Scope(account_id), handler_id)

    async def list(
        self, scope: Scope, flt: HandlerFilter, *, page: int = 1, page_size: int = 10
    ) -> list[Handler]:
        bounds = page_bounds(page, page_size)
        rows = await TABLE.page(self._pool, bounds, *handler_where(scope, flt))
        return [Handler(**r) for r in rows]

    async def count(self, scope: Scope, flt: HandlerFilter) -> int:
        return await TABLE.count(self._pool, *handler_where(scope, flt))

    async def replace(self, scope: Scope, handler_id: str, fields: HandlerFields) -> Handler:
        if not ids.is_uuid(handler_id):
            raise not_found(handler_id)
        handler_type, policies, lambda_id = checked_fields(fields)
        row = await db.fetch_one(
            self._pool,
            f"""UPDATE handlers AS h SET description = %s, handler_type = %s,
                    policies = %s, lambda_id = %s, last_update_time = now()
                WHERE h.handler_id = %s AND h.account_id = %s RETURNING {_COLUMNS}""",
            (
                fields.description,
                handler_type,
                Jsonb(policies) if policies is not None else None,
                lambda_id,
                handler_id,
                scope.account_id,
            ),
        )
        if row is None:
            raise not_found(handler_id)
        return Handler(**row)

    async def delete(self, scope: Scope, handler_id: str) -> None:
        await TABLE.delete(self._pool, scope.account_id, handler_id)
