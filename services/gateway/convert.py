"""Protobuf -> LUNA JSON shapes, one function per resource."""

from __future__ import annotations

from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from luna.faces.v1 import accounts_pb2, tokens_pb2

from services.common import permissions as perms
from services.common import times
from services.gateway.auth import ACCOUNT_TYPE_NAMES, VISIBILITY_NAMES

__all__ = ["ACCOUNT_TYPE_NAMES", "account", "permissions", "token"]


def ts(value: Timestamp, present: bool = True) -> str | None:
    return times.to_rfc3339(times.from_timestamp(value)) if present else None


def account(a: accounts_pb2.Account) -> dict[str, Any]:
    return {
        "account_id": a.account_id,
        "login": a.login,
        "account_type": ACCOUNT_TYPE_NAMES[a.account_type],
        "description": a.description,
        "create_time": ts(a.create_time),
        "last_update_time": ts(a.last_update_time),
    }


def permissions(p: accounts_pb2.Permissions) -> dict[str, Any]:
    return perms.from_pb(p)


def token(t: tokens_pb2.Token) -> dict[str, Any]:
    return {
        "token_id": t.token_id,
        "account_id": t.account_id,
        "description": t.description,
        "expiration_time": ts(t.expiration_time, t.HasField("expiration_time")),
        "permissions": permissions(t.permissions),
        "visibility_area": VISIBILITY_NAMES[t.visibility_area],
        "token": t.token,
        "create_time": ts(t.create_time),
        "last_update_time": ts(t.last_update_time),
    }
