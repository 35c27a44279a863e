"""LUNA 3 event notifications on NATS: what /4 operations publish and /4/ws follows.

Every /4 operation that LUNA 3 reports (extractions and matchings) publishes its
`message_from_ws` under the account's subject, so every gateway replica's subscribers see
events made through any replica.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from aiohttp import web

from services.gateway.backport3.core import Caller

SUBJECT = "luna.backport3.ws"


def subject(account_id: str) -> str:
    return f"{SUBJECT}.{account_id}"


def nats(request: web.Request) -> Any:
    return request.app["bp3_main"].get("nats")


async def publish(
    request: web.Request,
    c: Caller,
    event_type: str,
    source: str,
    *,
    result: Any,
    template: dict[str, Any] | None = None,
    candidate: dict[str, Any] | None = None,
) -> None:
    nc = nats(request)
    if nc is None:
        return
    message: dict[str, Any] = {
        "timestamp": time.time(),
        "event_type": event_type,
        "source": source,
        "authorization": c.authorization,
        "result": result,
    }
    if template is not None:
        message["template"] = template
    if candidate is not None:
        message["candidate"] = candidate
    await nc.publish(subject(c.account_id), orjson.dumps(message))
