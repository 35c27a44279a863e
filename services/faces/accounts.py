"""Accounts core: plain async functions over the faces service's PostgreSQL pool."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import psycopg
from luna.faces.v1.changes_pb2 import FaceChange
from psycopg_pool import AsyncConnectionPool

from services.common import db, errors, ids, permissions
from services.faces import outbox, passwords
from services.faces.faces import account_not_found, delete_locked_faces

Kind = FaceChange.Kind


@dataclass(frozen=True)
class Account:
    account_id: str
    login: str
    account_type: str
    description: str
    create_time: datetime
    last_update_time: datetime


_COLUMNS = "account_id::text, login, account_type, description, create_time, last_update_time"


def _account(row: dict[str, Any]) -> Account:
    """The Account of a row of _COLUMNS (other columns, such as password_hash, left out)."""
    return Account(**{f.name: row[f.name] for f in fields(Account)})


def _check_id(account_id: str) -> None:
    if not ids.is_uuid(account_id):
        raise account_not_found(account_id)


def _check_id_format(account_id: str) -> None:
    if not ids.is_uuid(account_id):
        raise errors.LunaError(errors.ACCOUNT_HEADER_NOT_UUID)


class Accounts:
    def __init__(
        self, pool: AsyncConnectionPool, publisher: outbox.Publisher | None = None
    ) -> None:
        self._pool = pool
        self._publisher = publisher

    async def create(
        self,
        *,
        login: str,
        password: str,
        account_type: str,
        description: str = "",
        account_id: str = "",
        allow_admin: bool = False,
    ) -> Account:
        allowed = permissions.ACCOUNT_TYPES if allow_admin else permissions.CREATABLE_ACCOUNT_TYPES
        if account_type not in allowed:
            raise errors.bad_json(
                "account_type",
                f"value is not a valid enumeration member; permitted: {', '.join(allowed)}",
            )
        if account_id:
            _check_id_format(account_id)
        account_id = account_id or ids.new_id()
        password_hash = await passwords.hash_password(password)
        try:
            row = await db.fetch_one(
                self._pool,
                f"""INSERT INTO accounts (account_id, login, password_hash, account_type,
                                          description)
                    VALUES (%s, %s, %s, %s, %s) RETURNING {_COLUMNS}""",
                (account_id, login, password_hash, account_type, description),
            )
        except psycopg.errors.UniqueViolation as exc:
            if "login" in str(exc):
                raise errors.LunaError(
                    errors.LOGIN_EXISTS, "An account with given email already exists"
                ) from None
            raise errors.LunaError(
                errors.LOGIN_EXISTS, f"An account with id '{account_id}' already exists"
            ) from None
        assert row is not None
        return _account(row)

    async def get(self, account_id: str) -> Account:
        _check_id(account_id)
        row = await db.fetch_one(
            self._pool, f"SELECT {_COLUMNS} FROM accounts WHERE account_id = %s", (account_id,)
        )
        if row is None:
            raise account_not_found(account_id)
        return _account(row)

    async def update(
        self,
        account_id: str,
        *,
        login: str | None = None,
        password: str | None = None,
        account_type: str | None = None,
        description: str | None = None,
    ) -> Account:
        _check_id(account_id)
        changes: dict[str, Any] = {}
        if login is not None:
            changes["login"] = login
        if password is not None:
            changes["password_hash"] = await passwords.hash_password(password)
        if account_type is not None:
            current = await self.get(account_id)
            # An admin stays admin: the API cannot grant or drop operator rights.
            if current.account_type == "admin" or account_type not in (
                permissions.CREATABLE_ACCOUNT_TYPES
            ):
                if account_type != current.account_type:
                    raise errors.LunaError(
                        errors.FORBIDDEN, "Account type of this account cannot be changed"
                    )
            changes["account_type"] = account_type
        if description is not None:
            changes["description"] = description
        if not changes:
            return await self.get(account_id)
        assignments = ", ".join(f"{column} = %s" for column in changes)
        try:
            row = await db.fetch_one(
                self._pool,
                f"""UPDATE accounts SET {assignments}, last_update_time = now()
                    WHERE account_id = %s RETURNING {_COLUMNS}""",
                (*changes.values(), account_id),
            )
        except psycopg.errors.UniqueViolation:
            raise errors.LunaError(
                errors.LOGIN_EXISTS, "An account with given email already exists"
            ) from None
        if row is None:
            raise account_not_found(account_id)
        return _account(row)

    async def delete(self, account_id: str) -> None:
        """Delete the account; its faces and lists go with it, announced on FACES_CHANGES in
        the same transaction so the matcher forgets them too."""
        _check_id(account_id)
        async with self._pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "SELECT face_id::text AS face_id FROM faces WHERE account_id = %s"
                " ORDER BY face_id FOR UPDATE",
                (account_id,),
            )
            face_ids = [row["face_id"] for row in await cur.fetchall()]
            changes = await delete_locked_faces(conn, account_id, face_ids) if face_ids else []
            cur = await conn.execute(
                "SELECT list_id::text AS list_id FROM lists WHERE account_id = %s", (account_id,)
            )
            changes += [
                outbox.change(Kind.KIND_DELETE_LIST, account_id, list_id=row["list_id"])
                for row in await cur.fetchall()
            ]
            # Its temporary attributes go too (the matcher may hold their notices).
            changes.append(outbox.change(Kind.KIND_ATTRIBUTE_DELETE, account_id))
            await outbox.enqueue(conn, changes)
            cur = await conn.execute("DELETE FROM accounts WHERE account_id = %s", (account_id,))
            if cur.rowcount == 0:
                raise account_not_found(account_id)
        if self._publisher is not None:
            await self._publisher.flush()

    async def verify_login(self, login: str, password: str) -> Account:
        row = await db.fetch_one(
            self._pool, f"SELECT {_COLUMNS}, password_hash FROM accounts WHERE login = %s", (login,)
        )
        if row is None or not await passwords.verify_password(row["password_hash"], password):
            raise errors.LunaError(
                errors.AUTH_FAILED, "Account corresponding login/password not found"
            )
        return _account(row)

    async def ensure_admin(self, login: str, password: str) -> Account:
        """Create the operator's admin account once; later starts leave it as it is."""
        row = await db.fetch_one(
            self._pool, f"SELECT {_COLUMNS} FROM accounts WHERE login = %s", (login,)
        )
        if row is not None:
            return _account(row)
        return await self.create(
            login=login, password=password, account_type="admin", allow_admin=True
        )
