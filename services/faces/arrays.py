"""PostgreSQL array literals for set-based statements: one text parameter for a whole column
instead of a list that psycopg adapts item by item (that adaptation was a fifth of a bulk
import's CPU). Only for values already validated (uuids) or encoded here (bytes as hex)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def uuid_array(values: Iterable[str]) -> str:
    """A uuid[] (or text[]) literal of validated uuids."""
    return "{" + ",".join(values) + "}"


def bytea_array(values: Iterable[bytes]) -> str:
    """A bytea[] literal (hex format)."""
    return "{" + ",".join(f'"\\\\x{v.hex()}"' for v in values) + "}"


def columns(rows: Iterable[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """Rows of `width` values as columns: the arrays a set-based statement unnests (empty
    ones for no rows)."""
    out: list[list[Any]] = [[] for _ in range(width)]
    for row in rows:
        for column, value in zip(out, row, strict=True):
            column.append(value)
    return out
