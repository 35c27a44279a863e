"""Tokens core: JWT tokens with per-resource permissions, stored in PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from services.common import db, errors, ids, permissions, times
from services.common.scoping import Scope, readable
from services.faces import jwt_tokens
from services.faces.where import Where


@dataclass(frozen=True)
class TokenFields:
    description: str
    expiration_time: datetime | None
    permissions: dict[str, Any]
    visibility_area: str


@dataclass(frozen=True)
class Token:
    token_id: str
    account_id: str
    description: str
    expiration_time: datetime | None
    permissions: dict[str, Any]
    visibility_area: str
    token: str
    create_time: datetime
    last_update_time: datetime


_COLUMNS = (
    "token_id::text, account_id::text, description, expiration_time, permissions, "
    "visibility_area, token, create_time, last_update_time"
)


def _token(row: dict[str, Any]) -> Token:
    return Token(**row)


def _check(fields: TokenFields) -> None:
    problem = permissions.validate_permissions(fields.permissions)
    if problem is not None:
        raise errors.bad_json("permissions", problem)
    if fields.visibility_area not in permissions.VISIBILITY_AREAS:
        raise errors.bad_json(
            "visibility_area", "value is not a valid enumeration member; permitted: account, all"
        )
    if fields.expiration_time is not None and fields.expiration_time <= times.now():
        raise errors.bad_json("expiration_time", "expiration time must be in the future")


def _check_token_id(token_id: str) -> None:
    if not ids.is_uuid(token_id):
        raise errors.LunaError(errors.TOKEN_NOT_FOUND, f"Token with id '{token_id}' not found")


class Tokens:
    def __init__(self, pool: AsyncConnectionPool, secret: str) -> None:
        self._pool = pool
        self._secret = secret

    async def create(self, scope: Scope, fields: TokenFields) -> Token:
        _check(fields)
        token_id = ids.new_id()
        jwt = jwt_tokens.issue(self._secret, token_id, scope.account_id, fields.expiration_time)
        row = await db.fetch_one(
            self._pool,
            f"""INSERT INTO tokens (token_id, account_id, description, expiration_time,
                                    permissions, visibility_area, token)
                VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING {_COLUMNS}""",
            (
                token_id,
                scope.account_id,
                fields.description,
                fields.expiration_time,
                Jsonb(fields.permissions),
                fields.visibility_area,
                jwt,
            ),
        )
        assert row is not None
        return _token(row)

    async def list(
        self,
        scope: Scope,
        *,
        page: int = 1,
        page_size: int = 10,
        create_time_gte: datetime | None = None,
        create_time_lt: datetime | None = None,
    ) -> list[Token]:
        w = Where(scope, "account_id")
        w.since("create_time", create_time_gte, create_time_lt)
        where, params = w.sql()
        rows = await db.fetch_all(
            self._pool,
            f"""SELECT {_COLUMNS} FROM tokens WHERE {where}
                ORDER BY create_time DESC, token_id LIMIT %s OFFSET %s""",
            (*params, page_size, (page - 1) * page_size),
        )
        return [_token(r) for r in rows]

    async def get(self, scope: Scope, token_id: str) -> Token:
        _check_token_id(token_id)
        where, params = readable(scope)
        row = await db.fetch_one(
            self._pool,
            f"SELECT {_COLUMNS} FROM tokens WHERE token_id = %s AND {where}",
            (token_id, *params),
        )
        if row is None:
            raise errors.LunaError(errors.TOKEN_NOT_FOUND, f"Token with id '{token_id}' not found")
        return _token(row)

    async def replace(self, scope: Scope, token_id: str, fields: TokenFields) -> Token:
        _check_token_id(token_id)
        _check(fields)
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT account_id::text FROM tokens WHERE token_id = %s AND account_id = %s",
                (token_id, scope.account_id),
            )
            if await cur.fetchone() is None:
                raise errors.LunaError(
                    errors.TOKEN_NOT_FOUND, f"Token with id '{token_id}' not found"
                )
            jwt = jwt_tokens.issue(self._secret, token_id, scope.account_id, fields.expiration_time)
            cur = await conn.execute(
                f"""UPDATE tokens SET description = %s, expiration_time = %s, permissions = %s,
                                      visibility_area = %s, token = %s, last_update_time = now()
                    WHERE token_id = %s AND account_id = %s RETURNING {_COLUMNS}""",
                (
                    fields.description,
                    fields.expiration_time,
                    Jsonb(fields.permissions),
                    fields.visibility_area,
                    jwt,
                    token_id,
                    scope.account_id,
                ),
            )
            row = await cur.fetchone()
        assert row is not None
        return _token(row)

    async def delete(self, scope: Scope, token_id: str) -> None:
        _check_token_id(token_id)
        # Deleting is a write: only the owner may do it, whatever it may read.
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "DELETE FROM tokens WHERE token_id = %s AND account_id = %s",
                (token_id, scope.account_id),
            )
        if cur.rowcount == 0:
            raise errors.LunaError(errors.TOKEN_NOT_FOUND, f"Token with id '{token_id}' not found")

    async def verify(self, jwt: str) -> Token:
        """The live token behind a JWT; refuses forged, replaced, deleted or expired ones."""
        payload = jwt_tokens.decode(self._secret, jwt)
        token_id = payload.get("tokenId") if payload else None
        if not isinstance(token_id, str) or not ids.is_uuid(token_id):
            raise errors.LunaError(errors.TOKEN_CORRUPTED, "Specified token corrupted")
        row = await db.fetch_one(
            self._pool, f"SELECT {_COLUMNS} FROM tokens WHERE token_id = %s", (token_id,)
        )
        if row is None or row["token"] != jwt:
            raise errors.LunaError(
                errors.AUTHORIZATION_FAILED, "Token not found: it was deleted or replaced"
            )
        token = _token(row)
        if token.expiration_time is not None and token.expiration_time <= times.now():
            raise errors.LunaError(errors.AUTHORIZATION_FAILED, "Token expired")
        return token
