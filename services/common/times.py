"""Times: UTC everywhere; RFC 3339 with `Z` in JSON, Timestamp on the wire."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp


def now() -> datetime:
    return datetime.now(UTC)


def to_rfc3339(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_rfc3339(value: str) -> datetime:
    """Parse an RFC 3339 date-time; naive values are taken as UTC."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def to_timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(value.astimezone(UTC))
    return ts


def from_timestamp(ts: Timestamp) -> datetime:
    return ts.ToDatetime(tzinfo=UTC)


_EPOCH = datetime(1970, 1, 1)


def timestamp_rfc3339(ts: Timestamp) -> str:
    """`to_rfc3339(from_timestamp(ts))`, the same text at half the cost: JSON renders
    one per record (three per match result), and the aware datetime, its UTC conversion and
    the offset rewrite are all no-ops for a Timestamp, which is UTC by definition."""
    whole = _EPOCH + timedelta(seconds=ts.seconds)  # no fraction: isoformat() shows none
    return f"{whole.isoformat()}.{ts.nanos // 1000:06d}Z"


def from_optional(message: Any, name: str) -> datetime | None:
    """The Timestamp field `name` of `message` as a datetime, None when it is not set."""
    return from_timestamp(getattr(message, name)) if message.HasField(name) else None


# LUNA's create_time bounds: filter (or query) key -> the message's Timestamp field.
CREATE_TIMES = {"create_time__gte": "create_time_gte", "create_time__lt": "create_time_lt"}


def copy_times(filters: Mapping[str, Any], message: Any, fields: Mapping[str, str]) -> None:
    """Each RFC 3339 `filters[key]` into the Timestamp `message.<field>`, for `fields`
    {key: field} (create_time__gte -> create_time_gte)."""
    for key, name in fields.items():
        if key in filters:
            getattr(message, name).CopyFrom(to_timestamp(parse_rfc3339(filters[key])))
