"""The gateway's EVENTS follower (the Sender's feed), kept alive across NATS restarts.

The follower is an ordered consumer from "now", which lives in the server's memory only. After
a NATS restart nats-py notices it is gone only after missed heartbeats (10 s and more) and then
re-creates it from the last stream sequence it delivered, which for a follower that delivered
nothing yet is sequence 1: the whole stream (a day of events) replayed to every websocket
subscriber. So on each reconnect the follower is replaced by a fresh one from "now" instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from nats.aio.client import Client as NATS

from services.common import nats_streams

log = logging.getLogger("luna.gateway.events")


def refollow_on_reconnect(hub: Any, nc: NATS) -> None:
    """Make every `hub.follow(js)` subscription (the one made at start included) be replaced
    by a fresh `hub.follow` after each reconnect of `nc`."""
    follow = hub.follow
    current: dict[str, Any] = {}

    async def tracked(js: Any) -> Any:
        current["sub"] = await follow(js)
        return current["sub"]

    async def again() -> None:
        old = current.pop("sub", None)
        if old is None:
            return  # not following (yet)
        with contextlib.suppress(Exception):  # the server forgot it already
            await old.unsubscribe()
        for attempt in range(1, 31):  # JetStream may still be recovering its streams
            try:
                await tracked(nc.jetstream())
            except Exception as exc:
                log.warning("following EVENTS again failed (%s); retrying", exc)
                await asyncio.sleep(min(2.0, 0.2 * attempt))
                continue
            log.info("following EVENTS again after a NATS reconnect")
            return

    hub.follow = tracked
    nats_streams.on_reconnect(nc, again)
