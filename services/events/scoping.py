"""Who may see what, as SQL, for this service's tables: reads honour see_all, writes are
always one account's. (A sibling of services/faces/scoping.py; services share no internals.)"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from services.common import errors, ids

MAX_PAGE_SIZE = 1000
MAX_IDS = 1000


@dataclass(frozen=True)
class Scope:
    """luna.common.v1.AccountScope as a core type."""

    account_id: str
    see_all: bool = False
    filter_account_id: str = ""


def readable(scope: Scope, column: str = "account_id") -> tuple[str, tuple[Any, ...]]:
    """Condition limiting rows to what `scope` may read."""
    if scope.see_all:
        if scope.filter_account_id:
            check_uuid(scope.filter_account_id, "account_id")
            return f"{column} = %s", (scope.filter_account_id,)
        return "TRUE", ()
    return f"{column} = %s", (scope.account_id,)


def check_uuid(value: str, name: str) -> str:
    if not ids.is_uuid(value):
        raise errors.LunaError(errors.BAD_QUERY_PARAM, f"Bad query parameters '{name}'")
    return value


def unique_ids(values: Iterable[str], name: str, limit: int = MAX_IDS) -> list[str]:
    """Ids in request order, each once, all UUIDs, at most `limit`."""
    out = list(dict.fromkeys(values))
    if len(out) > limit:
        raise errors.LunaError(errors.BAD_QUERY_PARAM, f"Bad query parameters '{name}'")
    for value in out:
        check_uuid(value, name)
    return out


def page_bounds(page: int, page_size: int) -> tuple[int, int]:
    """(limit, offset) of a LUNA page: page from 1, page_size 1..1000 (0 means the default)."""
    page = page or 1
    page_size = page_size or 10
    if page < 1:
        raise errors.LunaError(errors.BAD_QUERY_PARAM, "Bad query parameters 'page'")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise errors.LunaError(errors.BAD_QUERY_PARAM, "Bad query parameters 'page_size'")
    return page_size, (page - 1) * page_size


def escape_like(value: str) -> str:
    """`value` as a literal inside an ILIKE pattern (with ESCAPE '\\')."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def check_description(value: str) -> str:
    if len(value) > 128:
        raise errors.LunaError(
            errors.BAD_JSON,
            "Failed to validate input json. Path: 'description', message: "
            "'ensure this value has at most 128 characters'",
        )
    return value
