"""Who may see what, as SQL, and the checks every store applies to ids and pages.

Reads honour `see_all` (an admin's view of every account, optionally narrowed to one); writes are
always one account's. Each service applies these to its own tables only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from services.common import errors, ids

MAX_PAGE_SIZE = 1000
MAX_IDS = 1000


@dataclass(frozen=True)
class Scope:
    """luna.common.v1.AccountScope as a core type: whose rows a call may read."""

    account_id: str
    see_all: bool = False
    filter_account_id: str = ""

    @classmethod
    def from_pb(cls, pb: Any) -> Scope:
        """From a luna.common.v1.AccountScope message."""
        return cls(pb.account_id, pb.see_all, pb.filter_account_id)


def readable(scope: Scope, column: str = "account_id") -> tuple[str, tuple[Any, ...]]:
    """Condition limiting rows to what `scope` may read."""
    if scope.see_all:
        if scope.filter_account_id:
            check_uuid(scope.filter_account_id, "account_id")
            return f"{column} = %s", (scope.filter_account_id,)
        return "TRUE", ()
    return f"{column} = %s", (scope.account_id,)


def check_uuid(value: str, name: str) -> str:
    """A filter value must be a UUID; the gateway checks first, this guards gRPC callers."""
    if not ids.is_uuid(value):
        raise errors.bad_query(name)
    return value


def unique_ids(values: Iterable[str], name: str, limit: int = MAX_IDS) -> list[str]:
    """Ids of a request body in request order, each once, all UUIDs, at most `limit`."""
    out = list(dict.fromkeys(values))
    if len(out) > limit:
        raise errors.bad_json(name, f"ensure this value has at most {limit} items")
    for value in out:
        if not ids.is_uuid(value):
            raise errors.bad_json(name, "value is not a valid uuid")
    return out


def unique_query_ids(values: Iterable[str], name: str, limit: int = MAX_IDS) -> list[str]:
    """Ids of a query filter, as `unique_ids` but answered as a bad query parameter."""
    out = list(dict.fromkeys(values))
    if len(out) > limit:
        raise errors.bad_query(name)
    for value in out:
        check_uuid(value, name)
    return out


def page_bounds(page: int, page_size: int) -> tuple[int, int]:
    """(limit, offset) of a LUNA page: page from 1, page_size 1..1000 (0 means the default)."""
    page = page or 1
    page_size = page_size or 10
    if page < 1:
        raise errors.bad_query("page")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise errors.bad_query("page_size")
    return page_size, (page - 1) * page_size


def escape_like(value: str) -> str:
    """`value` as a literal inside an ILIKE pattern (with ESCAPE '\\')."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def check_length(value: str, limit: int, name: str) -> str:
    if len(value) > limit:
        raise errors.bad_json(name, f"ensure this value has at most {limit} characters")
    return value
