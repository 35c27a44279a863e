"""The one JSON parser of request input, and the limits every JSON document and query obeys.

Every route parses request JSON (whole bodies, multipart JSON parts) with `loads`, so the same
bounds hold everywhere:

- nesting at most `MAX_DEPTH` levels: deeper documents cannot cross gRPC (a Struct takes three
  protobuf messages per JSON level under protobuf's 100-message decoding limit) and recursive
  code downstream would exhaust Python's stack;
- no NUL character in any string or key: PostgreSQL text cannot hold one;
- strict UTF-8 (orjson refuses lone surrogates, which PostgreSQL cannot store either).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from services.common import errors

MAX_DEPTH = 24
NUL = "\x00"


def _path(parts: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in parts)


def _invalid(parts: tuple[Any, ...], message: str) -> errors.LunaError:
    return errors.bad_json(_path(parts), message)


def loads(raw: bytes | str, where: tuple[Any, ...] = ()) -> Any:
    """Parse request JSON and check it (12002 when not JSON, 12022 when over the limits).

    `where` prefixes error paths, for JSON found inside a larger request (a multipart part).
    """
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc):
            raise _invalid(where, f"nested deeper than {MAX_DEPTH} levels") from None
        raise errors.LunaError(errors.NOT_JSON, "Request does not contain json") from None
    if not _plainly_within_limits(raw):
        check(doc, where)
    return doc


def _plainly_within_limits(raw: bytes | str) -> bool:
    """Whether the text of a parsed document shows it cannot fail `check`, which is cheaper to
    see in the text (a few C scans) than by walking the document: depth is at most the count
    of `{` and `[`, and a NUL can only be written `\\u0000`, since the parser refuses raw
    control characters in strings. Brackets or that escape inside strings (or an escaped
    backslash before `u0000`) only send a harmless document to the full check."""
    if isinstance(raw, str):
        return raw.count("{") + raw.count("[") <= MAX_DEPTH and "\\u0000" not in raw
    return raw.count(b"{") + raw.count(b"[") <= MAX_DEPTH and b"\\u0000" not in raw


def nonempty_array(body: Any, key: str) -> list[Any]:
    """The items of the array at `body[key]`, refused (12022 at `key`) unless it is a
    non-empty array."""
    items = body.get(key) if isinstance(body, Mapping) else None
    if not isinstance(items, list) or not items:
        raise errors.bad_json(key, "non-empty array required")
    return items


def check(doc: Any, where: tuple[Any, ...] = ()) -> None:
    """Refuse a parsed document nested too deep or holding a NUL; iterative, so any depth is
    safe to inspect."""
    stack: list[tuple[Any, tuple[Any, ...], int]] = [(doc, where, 1)]
    while stack:
        value, parts, depth = stack.pop()
        if isinstance(value, str):
            if NUL in value:
                raise _invalid(parts, "string contains a NUL character")
            continue
        if isinstance(value, dict):
            children: Any = value.items()
        elif isinstance(value, list):
            children = enumerate(value)
        else:
            continue
        if depth > MAX_DEPTH:
            raise _invalid(parts, f"nested deeper than {MAX_DEPTH} levels")
        for key, child in children:
            if isinstance(key, str) and NUL in key:
                raise _invalid(parts, "key contains a NUL character")
            if isinstance(child, (str, dict, list)):
                stack.append((child, (*parts, key), depth + 1))


def check_query(query: Mapping[str, str]) -> None:
    """Refuse a NUL anywhere in the query string, declared parameter or not (12012)."""
    for name, value in query.items():
        if NUL in name or NUL in value:
            raise errors.bad_query(name.replace(NUL, ""))
