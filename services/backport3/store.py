"""Backport 3's own data: LUNA 3 accounts and tokens, persons, list kinds, handlers.

Every function takes the account it acts for; rows of other accounts are invisible (a
foreign id reads as "not found"). Descriptors and lists are ids of the faces service's faces
and lists; whether they exist there is the caller's check, made through the faces service.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import psycopg
from psycopg_pool import AsyncConnectionPool

from services.backport3 import policies
from services.common import db, errors, ids
from services.common.scoping import escape_like, page_bounds

DESCRIPTORS, PERSONS = 1, 2

Row = dict[str, Any]


def _uuid_or_missing(value: str, error: errors.LunaError) -> str:
    # A malformed id cannot name a row: answer as for an unknown one rather than a DB error.
    if not ids.is_uuid(value):
        raise error
    return value


def person_not_found(person_id: str) -> errors.LunaError:
    return errors.LunaError(errors.PERSON_NOT_FOUND, f"Person with id '{person_id}' not found.")


def list_not_found(list_id: str) -> errors.LunaError:
    return errors.LunaError(errors.LIST_NOT_FOUND, f"List with id '{list_id}' not found")


def token_not_found(token_id: str) -> errors.LunaError:
    return errors.LunaError(errors.TOKEN_NOT_FOUND, f"Token with id '{token_id}' not found")


_PERSON_COLUMNS = """
    p.person_id::text AS person_id, p.account_id::text AS account_id, p.user_data,
    p.external_id, p.create_time,
    coalesce((SELECT array_agg(d.descriptor_id::text ORDER BY d.link_time, d.descriptor_id)
              FROM bp3_person_descriptors d WHERE d.person_id = p.person_id), '{}')
        AS descriptor_ids,
    coalesce((SELECT array_agg(l.list_id::text ORDER BY l.link_time, l.list_id)
              FROM bp3_person_lists l WHERE l.person_id = p.person_id), '{}') AS list_ids
"""
_LIST_COLUMNS = (
    "list_id::text AS list_id, account_id::text AS account_id, kind, list_data, create_time"
)
_TOKEN_COLUMNS = (
    "token_id::text AS token_id, account_id::text AS account_id, token_data, create_time"
)
_ACCOUNT_COLUMNS = (
    "account_id::text AS account_id, email, organization_name, suspended, create_time"
)


class Store:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    async def _row(self, sql: str, params: tuple[Any, ...], missing: errors.LunaError) -> Row:
        """The one row `sql` reads or returns; `missing` when there is none."""
        row = await db.fetch_one(self.pool, sql, params)
        if row is None:
            raise missing
        return row

    async def _set(
        self,
        table: str,
        columns: str,
        key: tuple[str, str, errors.LunaError],
        account_id: str,
        **values: Any,
    ) -> Row:
        """Set `values` on the account's row whose `key` (column, id, error when missing) is
        given; the row as it is now."""
        column, row_id, missing = key
        assigned = ", ".join(f"{name} = %s" for name in values)
        return await self._row(
            f"UPDATE {table} SET {assigned} WHERE {column} = %s AND account_id = %s "
            f"RETURNING {columns}",
            (*values.values(), _uuid_or_missing(row_id, missing), account_id),
            missing,
        )

    async def _page(
        self,
        source: str,
        columns: str,
        where: str,
        args: Sequence[Any],
        order: str,
        page: int,
        page_size: int,
    ) -> tuple[list[Row], int]:
        """One page of `source`'s rows matching `where`, and how many match in all."""
        limit, offset = page_bounds(page, page_size)
        rows = await db.fetch_all(
            self.pool,
            f"SELECT {columns} FROM {source} WHERE {where} ORDER BY {order} LIMIT %s OFFSET %s",
            (*args, limit, offset),
        )
        return rows, await db.count(self.pool, f"SELECT count(*) FROM {source} WHERE {where}", args)

    # ------------------------------------------------------------------ accounts, tokens
    async def create_account(
        self, account_id: str, email: str, organization_name: str
    ) -> tuple[Row, Row]:
        token_id = ids.new_id()
        async with self.pool.connection() as conn, conn.transaction():
            try:
                account = await (
                    await conn.execute(
                        f"INSERT INTO bp3_accounts (account_id, email, organization_name) "
                        f"VALUES (%s, %s, %s) RETURNING {_ACCOUNT_COLUMNS}",
                        (account_id, email, organization_name),
                    )
                ).fetchone()
            except psycopg.errors.UniqueViolation:
                raise errors.LunaError(
                    errors.LOGIN_EXISTS, "An account with given email already exists"
                ) from None
            token = await (
                await conn.execute(
                    f"INSERT INTO bp3_tokens (token_id, account_id) VALUES (%s, %s) "
                    f"RETURNING {_TOKEN_COLUMNS}",
                    (token_id, account_id),
                )
            ).fetchone()
        assert account is not None and token is not None
        return account, token

    async def get_account(self, account_id: str) -> Row:
        return await self._row(
            f"SELECT {_ACCOUNT_COLUMNS} FROM bp3_accounts WHERE account_id = %s",
            (account_id,),
            # A LUNA 5 account that never registered through /4 has no LUNA 3 fields.
            errors.LunaError(errors.AUTH_FAILED, "Account corresponding login/password not found"),
        )

    async def create_token(self, account_id: str, token_data: str) -> Row:
        row = await db.fetch_one(
            self.pool,
            f"INSERT INTO bp3_tokens (token_id, account_id, token_data) "
            f"VALUES (%s, %s, %s) RETURNING {_TOKEN_COLUMNS}",
            (ids.new_id(), account_id, token_data),
        )
        assert row is not None
        return row

    async def list_tokens(
        self, account_id: str, page: int, page_size: int
    ) -> tuple[list[Row], int]:
        return await self._page(
            "bp3_tokens",
            _TOKEN_COLUMNS,
            "account_id = %s",
            (account_id,),
            "create_time, token_id",
            page,
            page_size,
        )

    async def get_token(self, account_id: str, token_id: str) -> Row:
        missing = token_not_found(token_id)
        return await self._row(
            f"SELECT {_TOKEN_COLUMNS} FROM bp3_tokens WHERE token_id = %s AND account_id = %s",
            (_uuid_or_missing(token_id, missing), account_id),
            missing,
        )

    async def update_token(self, account_id: str, token_id: str, token_data: str) -> Row:
        return await self._set(
            "bp3_tokens",
            _TOKEN_COLUMNS,
            ("token_id", token_id, token_not_found(token_id)),
            account_id,
            token_data=token_data,
        )

    async def delete_tokens(self, account_id: str, token_ids: list[str]) -> None:
        wanted = list(dict.fromkeys(token_ids))
        for token_id in wanted:
            _uuid_or_missing(token_id, token_not_found(token_id))
        async with self.pool.connection() as conn, conn.transaction():
            rows = await (
                await conn.execute(
                    "DELETE FROM bp3_tokens WHERE account_id = %s AND token_id = ANY(%s::uuid[]) "
                    "RETURNING token_id::text AS token_id",
                    (account_id, wanted),
                )
            ).fetchall()
            gone = {r["token_id"] for r in rows}
            missing = [t for t in wanted if t not in gone]
            if missing:
                # All or nothing: leaving the transaction by raising rolls the deletes back.
                raise token_not_found(missing[0])

    async def verify_token(self, token_id: str) -> tuple[Row, Row]:
        if not ids.is_uuid(token_id):
            raise errors.LunaError(
                errors.NOT_UUID4, "Token is not UUID4, format: xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"
            )
        async with self.pool.connection() as conn:
            row = await (
                await conn.execute(
                    "SELECT t.token_id::text AS token_id, t.account_id::text AS account_id, "
                    "t.token_data, t.create_time, a.email, a.organization_name, a.suspended, "
                    "a.create_time AS account_create_time "
                    "FROM bp3_tokens t JOIN bp3_accounts a USING (account_id) "
                    "WHERE t.token_id = %s",
                    (token_id,),
                )
            ).fetchone()
        if row is None:
            raise errors.LunaError(errors.AUTH_FAILED, "Token not found")
        token = {k: row[k] for k in ("token_id", "account_id", "token_data", "create_time")}
        account = {
            "account_id": row["account_id"],
            "email": row["email"],
            "organization_name": row["organization_name"],
            "suspended": row["suspended"],
            "create_time": row["account_create_time"],
        }
        return token, account

    # ------------------------------------------------------------------ persons
    async def create_person(self, account_id: str, user_data: str, external_id: str) -> Row:
        person_id = ids.new_id()
        async with self.pool.connection() as conn:
            await conn.execute(
                "INSERT INTO bp3_persons (person_id, account_id, user_data, external_id) "
                "VALUES (%s, %s, %s, %s)",
                (person_id, account_id, user_data, external_id),
            )
            return await self._person(conn, account_id, person_id)

    async def _person(self, conn: Any, account_id: str, person_id: str) -> Row:
        _uuid_or_missing(person_id, person_not_found(person_id))
        row = await (
            await conn.execute(
                f"SELECT {_PERSON_COLUMNS} FROM bp3_persons p "
                "WHERE p.person_id = %s AND p.account_id = %s",
                (person_id, account_id),
            )
        ).fetchone()
        if row is None:
            raise person_not_found(person_id)
        return row

    async def get_person(self, account_id: str, person_id: str) -> Row:
        async with self.pool.connection() as conn:
            return await self._person(conn, account_id, person_id)

    async def list_persons(
        self,
        account_id: str,
        *,
        user_data: str | None,
        external_id: str | None,
        list_id: str,
        person_ids: list[str],
        page: int,
        page_size: int,
    ) -> tuple[list[Row], int]:
        where = ["p.account_id = %s"]
        args: list[Any] = [account_id]
        if user_data is not None:
            where.append("p.user_data ILIKE %s ESCAPE '\\'")
            args.append(f"%{escape_like(user_data)}%")
        if external_id is not None:
            where.append("p.external_id = %s")
            args.append(external_id)
        if list_id:
            where.append(
                "EXISTS (SELECT 1 FROM bp3_person_lists pl "
                "WHERE pl.person_id = p.person_id AND pl.list_id = %s)"
            )
            args.append(list_id)
        if person_ids:
            where.append("p.person_id = ANY(%s::uuid[])")
            args.append([p for p in person_ids if ids.is_uuid(p)])
        return await self._page(
            "bp3_persons p",
            _PERSON_COLUMNS,
            " AND ".join(where),
            args,
            "p.create_time DESC, p.person_id",
            page,
            page_size,
        )

    async def update_person(
        self, account_id: str, person_id: str, user_data: str | None, external_id: str | None
    ) -> Row:
        async with self.pool.connection() as conn, conn.transaction():
            await self._person(conn, account_id, person_id)
            await conn.execute(
                "UPDATE bp3_persons SET user_data = coalesce(%s, user_data), "
                "external_id = coalesce(%s, external_id) WHERE person_id = %s",
                (user_data, external_id, person_id),
            )
            return await self._person(conn, account_id, person_id)

    async def delete_person(self, account_id: str, person_id: str) -> Row:
        async with self.pool.connection() as conn, conn.transaction():
            person = await self._person(conn, account_id, person_id)
            await conn.execute("DELETE FROM bp3_persons WHERE person_id = %s", (person_id,))
        return person

    async def link_descriptor(
        self, account_id: str, person_id: str, descriptor_id: str, attach: bool
    ) -> Row:
        async with self.pool.connection() as conn, conn.transaction():
            await conn.execute(
                "SELECT 1 FROM bp3_persons WHERE person_id = %s FOR UPDATE",
                (_uuid_or_missing(person_id, person_not_found(person_id)),),
            )
            await self._person(conn, account_id, person_id)
            if attach:
                owner = await (
                    await conn.execute(
                        "SELECT person_id::text AS person_id FROM bp3_person_descriptors "
                        "WHERE descriptor_id = %s",
                        (descriptor_id,),
                    )
                ).fetchone()
                if owner is not None:
                    # LUNA 3 answers the same conflict whether this or another person holds it.
                    raise errors.LunaError(
                        errors.ALREADY_ATTACHED,
                        "This descriptor is already attached to the person.",
                    )
                await conn.execute(
                    "INSERT INTO bp3_person_descriptors (descriptor_id, person_id) VALUES (%s, %s)",
                    (descriptor_id, person_id),
                )
                # Attached: no longer a candidate for collection.
                await conn.execute(
                    "DELETE FROM bp3_descriptors WHERE descriptor_id = %s", (descriptor_id,)
                )
            else:
                cur = await conn.execute(
                    "DELETE FROM bp3_person_descriptors "
                    "WHERE descriptor_id = %s AND person_id = %s",
                    (descriptor_id, person_id),
                )
                if cur.rowcount == 0:
                    raise errors.LunaError(
                        errors.NOT_ATTACHED, "Face was not linked to the person."
                    )
            return await self._person(conn, account_id, person_id)

    async def link_persons_to_list(
        self, account_id: str, list_id: str, person_ids: list[str], attach: bool
    ) -> list[Row]:
        wanted = list(dict.fromkeys(person_ids))
        async with self.pool.connection() as conn, conn.transaction():
            lst = await self._lists(conn, account_id, [list_id])
            if lst[0]["kind"] != PERSONS:
                raise errors.LunaError(
                    errors.NOT_PERSONS_LIST,
                    f"Expected list of persons. Got list of descriptors. List id '{list_id}'",
                )
            persons = [await self._person(conn, account_id, p) for p in wanted]
            if attach:
                await conn.execute(
                    "INSERT INTO bp3_person_lists (person_id, list_id) "
                    "SELECT unnest(%s::uuid[]), %s ON CONFLICT DO NOTHING",
                    (wanted, list_id),
                )
            else:
                await conn.execute(
                    "DELETE FROM bp3_person_lists WHERE list_id = %s "
                    "AND person_id = ANY(%s::uuid[])",
                    (list_id, wanted),
                )
        return persons

    async def persons_of_descriptors(
        self, account_id: str, descriptor_ids: list[str]
    ) -> dict[str, str]:
        valid = [d for d in descriptor_ids if ids.is_uuid(d)]
        if not valid:
            return {}
        async with self.pool.connection() as conn:
            rows = await (
                await conn.execute(
                    "SELECT d.descriptor_id::text AS descriptor_id, d.person_id::text AS person_id "
                    "FROM bp3_person_descriptors d JOIN bp3_persons p USING (person_id) "
                    "WHERE p.account_id = %s AND d.descriptor_id = ANY(%s::uuid[])",
                    (account_id, valid),
                )
            ).fetchall()
        return {r["descriptor_id"]: r["person_id"] for r in rows}

    # ------------------------------------------------------------------ descriptor TTL
    async def track_descriptors(
        self, account_id: str, descriptor_ids: list[str], ttl_s: float
    ) -> None:
        """(Re)start the TTL of descriptors; those attached to a person are not tracked."""
        valid = [d for d in dict.fromkeys(descriptor_ids) if ids.is_uuid(d)]
        if not valid or ttl_s <= 0:
            return
        async with self.pool.connection() as conn:
            await conn.execute(
                "INSERT INTO bp3_descriptors (descriptor_id, account_id, expire_time) "
                "SELECT d, %s, now() + make_interval(secs => %s) FROM unnest(%s::uuid[]) d "
                "WHERE NOT EXISTS (SELECT 1 FROM bp3_person_descriptors p "
                "                  WHERE p.descriptor_id = d) "
                "ON CONFLICT (descriptor_id) DO UPDATE SET expire_time = EXCLUDED.expire_time",
                (account_id, ttl_s, valid),
            )

    async def expired_descriptors(self, limit: int) -> list[Row]:
        return await db.fetch_all(
            self.pool,
            "SELECT descriptor_id::text AS descriptor_id, account_id::text AS account_id "
            "FROM bp3_descriptors WHERE expire_time < now() ORDER BY expire_time LIMIT %s",
            (limit,),
        )

    async def claim_expired(self, descriptor_id: str) -> bool:
        """Stop tracking a descriptor if it is still expired (not attached or re-armed since)."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "DELETE FROM bp3_descriptors WHERE descriptor_id = %s AND expire_time < now()",
                (descriptor_id,),
            )
        return cur.rowcount == 1

    async def untrack_descriptor(self, descriptor_id: str) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(
                "DELETE FROM bp3_descriptors WHERE descriptor_id = %s", (descriptor_id,)
            )

    # ------------------------------------------------------------------ lists
    async def create_list(self, account_id: str, list_id: str, kind: int, list_data: str) -> Row:
        row = await db.fetch_one(
            self.pool,
            f"INSERT INTO bp3_lists (list_id, account_id, kind, list_data) "
            f"VALUES (%s, %s, %s, %s) RETURNING {_LIST_COLUMNS}",
            (list_id, account_id, kind, list_data),
        )
        assert row is not None
        return row

    async def _lists(self, conn: Any, account_id: str, list_ids: list[str]) -> list[Row]:
        for list_id in list_ids:
            _uuid_or_missing(list_id, list_not_found(list_id))
        rows = await (
            await conn.execute(
                f"SELECT {_LIST_COLUMNS} FROM bp3_lists "
                "WHERE account_id = %s AND list_id = ANY(%s::uuid[])",
                (account_id, list_ids),
            )
        ).fetchall()
        found = {r["list_id"]: r for r in rows}
        for list_id in list_ids:
            if list_id not in found:
                raise list_not_found(list_id)
        return [found[list_id] for list_id in list_ids]

    async def get_lists(self, account_id: str, list_ids: list[str]) -> list[Row]:
        async with self.pool.connection() as conn:
            return await self._lists(conn, account_id, list_ids)

    async def list_lists(
        self, account_id: str, kind: int, page: int, page_size: int
    ) -> tuple[list[Row], int]:
        return await self._page(
            "bp3_lists",
            _LIST_COLUMNS,
            "account_id = %s AND kind = %s",
            (account_id, kind),
            "create_time DESC, list_id",
            page,
            page_size,
        )

    async def update_list(self, account_id: str, list_id: str, list_data: str) -> Row:
        return await self._set(
            "bp3_lists",
            _LIST_COLUMNS,
            ("list_id", list_id, list_not_found(list_id)),
            account_id,
            list_data=list_data,
        )

    async def delete_lists(self, account_id: str, list_ids: list[str]) -> None:
        wanted = list(dict.fromkeys(list_ids))
        async with self.pool.connection() as conn, conn.transaction():
            await self._lists(conn, account_id, wanted)
            await conn.execute(
                "DELETE FROM bp3_lists WHERE account_id = %s AND list_id = ANY(%s::uuid[])",
                (account_id, wanted),
            )

    # ------------------------------------------------------------------ handlers
    async def get_handler(self, account_id: str, handler_type: int) -> Row:
        defaults = orjson.dumps(policies.defaults(handler_type)).decode()
        async with self.pool.connection() as conn:
            await conn.execute(
                "INSERT INTO bp3_handlers (account_id, type, handler_id, policies) "
                "VALUES (%s, %s, %s, %s::jsonb) ON CONFLICT (account_id, type) DO NOTHING",
                (account_id, handler_type, ids.new_id(), defaults),
            )
            row = await (
                await conn.execute(
                    "SELECT handler_id::text AS handler_id, account_id::text AS account_id, "
                    "type, policies, version, create_time, last_update_time "
                    "FROM bp3_handlers WHERE account_id = %s AND type = %s",
                    (account_id, handler_type),
                )
            ).fetchone()
        assert row is not None
        return row

    async def update_handler(
        self, account_id: str, handler_type: int, changes: dict[str, Any]
    ) -> Row:
        checked = policies.validate(handler_type, changes)
        if "list_id" in checked:
            lists = await self.get_lists(account_id, [checked["list_id"]])
            if handler_type == policies.EXTRACTOR and lists[0]["kind"] != PERSONS:
                raise errors.LunaError(
                    errors.NOT_PERSONS_LIST,
                    "Expected list of persons. Got list of descriptors. "
                    f"List id '{checked['list_id']}'",
                )
        await self.get_handler(account_id, handler_type)
        async with self.pool.connection() as conn:
            await conn.execute(
                "UPDATE bp3_handlers SET policies = policies || %s::jsonb, "
                "version = version + 1, last_update_time = now() "
                "WHERE account_id = %s AND type = %s",
                (orjson.dumps(checked).decode(), account_id, handler_type),
            )
        return await self.get_handler(account_id, handler_type)
