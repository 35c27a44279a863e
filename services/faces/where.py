"""SQL conditions of the faces stores' filters: AND-joined, parameters in order.

Faces and lists filter the same ways (a scope, an id set, user_data containing a text, time
bounds, an id range for paging by id); each filter adds only the conditions it was given.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.common.scoping import Scope, check_uuid, escape_like, readable, unique_ids


def listing_order(id_column: str, id_gte: str, id_lt: str, time_column: str) -> str:
    """LUNA's order of a listing: by id when the filter bounds the id (paging by id), else
    newest first."""
    return id_column if id_gte or id_lt else f"{time_column} DESC, {id_column} DESC"


class Where:
    def __init__(self, scope: Scope, account_column: str) -> None:
        where, params = readable(scope, account_column)
        self.conditions = [where]
        self.params: list[Any] = list(params)

    def add(self, condition: str, value: Any) -> None:
        self.conditions.append(condition)
        self.params.append(value)

    def ids(self, column: str, values: tuple[str, ...], name: str) -> None:
        """`column` is one of `values` (body ids: 12022 on a bad or repeated one)."""
        if values:
            self.add(f"{column} = ANY(%s::uuid[])", unique_ids(values, name))

    def contains(self, column: str, text: str | None) -> None:
        """`column` contains `text`, case-insensitively (LUNA's user_data filter)."""
        if text is not None:
            self.add(f"{column} ILIKE %s ESCAPE '\\'", f"%{escape_like(text)}%")

    def since(self, column: str, gte: datetime | None, lt: datetime | None) -> None:
        if gte is not None:
            self.add(f"{column} >= %s", gte)
        if lt is not None:
            self.add(f"{column} < %s", lt)

    def id_range(self, column: str, gte: str, lt: str, name: str) -> None:
        """`name`__gte <= `column` < `name`__lt (ids checked as uuids, 12012)."""
        if gte:
            self.add(f"{column} >= %s", check_uuid(gte, f"{name}__gte"))
        if lt:
            self.add(f"{column} < %s", check_uuid(lt, f"{name}__lt"))

    def sql(self) -> tuple[str, list[Any]]:
        return " AND ".join(self.conditions), self.params
