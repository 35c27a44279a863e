"""A handler's HTTP callbacks (storage_policy.callbacks, type `http`).

After the events of a request are saved, each enabled callback whose filters hold for some of
them gets one POST with those events in the generate-events format (`{"events": [...]}`), as
JSON or msgpack per `params.content_type`, with `params.headers`, optional Basic
`authorization` and `params.timeout`. Delivery is fire-and-forget, as in LUNA: the request
that generated the events does not wait for, or fail with, a third-party endpoint; failures
are logged. Shutdown waits briefly for deliveries in flight.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import aiohttp
import msgpack
import orjson

from services.events.pipeline.filters import Facts, holds

log = logging.getLogger("luna.events.callbacks")

HTTP = "http"
WS_NOTIFICATION = "luna-ws-notification"
SHUTDOWN_WAIT_S = 5.0


def ws_notification_wanted(callbacks: Sequence[dict[str, Any]], facts: Facts) -> bool:
    """Whether an enabled `luna-ws-notification` callback asks the Sender to get this event."""
    return any(
        cb["type"] == WS_NOTIFICATION and cb.get("enable", 1) and holds(cb.get("filters"), facts)
        for cb in callbacks
    )


class CallbackSender:
    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def send(
        self, callbacks: Sequence[dict[str, Any]], events: Sequence[tuple[dict[str, Any], Facts]]
    ) -> None:
        for cb in callbacks:
            if cb["type"] != HTTP or not cb.get("enable", 1) or not cb.get("url"):
                continue
            chosen = [event for event, facts in events if holds(cb.get("filters"), facts)]
            if chosen:
                task = asyncio.create_task(self._post(cb, {"events": chosen}))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _post(self, cb: dict[str, Any], body: dict[str, Any]) -> None:
        params = cb.get("params") or {}
        content_type = params.get("content_type", "application/json")
        data = (
            msgpack.packb(body, use_bin_type=True)
            if content_type == "application/msgpack"
            else orjson.dumps(body)
        )
        headers = {**params.get("headers", {}), "Content-Type": content_type}
        if auth := cb.get("authorization"):
            headers["Authorization"] = aiohttp.encode_basic_auth(auth["login"], auth["password"])
        try:
            if self._session is None:
                self._session = aiohttp.ClientSession()
            async with self._session.post(
                cb["url"],
                data=data,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=float(params.get("timeout", 60)) or None),
            ) as resp:
                if resp.status >= 300:
                    log.warning("callback %s answered %s", cb["url"], resp.status)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("callback %s failed: %r", cb["url"], exc)

    async def close(self) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=SHUTDOWN_WAIT_S)
        for task in list(self._tasks):
            task.cancel()
        if self._session is not None:
            await self._session.close()
