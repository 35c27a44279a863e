"""Query values that routes read themselves (the /6 routes' declared parameters are converted
by validation.py from the OpenAPI document): a number within bounds, LUNA's 12012 otherwise."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

from services.common import errors

N = TypeVar("N", int, float)


def number(
    query: Mapping[str, str],
    name: str,
    lo: N,
    hi: N,
    *,
    parse: Callable[[str], N],
    ignore_out_of_range: bool = False,
) -> N | None:
    """`query[name]` parsed and within [lo, hi]; None when absent (or, with
    `ignore_out_of_range`, outside the bounds)."""
    raw = query.get(name)
    if raw is None:
        return None
    try:
        value = parse(raw)
    except ValueError:
        raise errors.bad_query(name) from None
    if not lo <= value <= hi:
        if ignore_out_of_range:
            return None
        raise errors.bad_query(name)
    return value
