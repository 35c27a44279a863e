"""FACES_CHANGES' position: the read-your-writes target of a match. A lone matcher reads it
per match; where a match fans out over matcher shards, the router (the gateway's or the
matcher proxy's, services/matcher/shard/router.py) reads it once for every shard."""

from __future__ import annotations

import asyncio
import logging

import nats.errors
import orjson
from nats.js import JetStreamContext

from services.common import nats_streams

STREAM = "FACES_CHANGES"
log = logging.getLogger("luna.nats")


async def last_seq(js: JetStreamContext, timeout: float) -> int:
    """The stream's last sequence, by JetStream's STREAM.INFO request with only
    `state.last_seq` read from the reply: nats-py's `stream_info` builds the whole info
    and config objects, a third of this round trip that every match makes."""
    try:
        msg = await js._nc.request(f"{js._prefix}.STREAM.INFO.{STREAM}", b"", timeout=timeout)
        state = orjson.loads(msg.data).get("state")
    except nats.errors.NoRespondersError:
        state = None
    if state is None:  # JetStream answered an error, or not at all: nats-py raises it typed
        return int((await js.stream_info(STREAM)).state.last_seq)
    return int(state.get("last_seq", 0))


def read_position(js: JetStreamContext, timeout: float) -> asyncio.Future[int | None] | None:
    """Start reading the stream's last sequence now (a request's read-your-writes target);
    the future gives None when NATS is away or slow: the request is then answered from
    the state applied so far (changes made meanwhile are still in the faces outbox, not
    in the stream, so there is nothing newer to wait for anyway). None: not connected."""
    if not nats_streams.is_connected(js):
        return None
    return asyncio.ensure_future(_position(js, timeout))


async def _position(js: JetStreamContext, timeout: float) -> int | None:
    try:
        return await last_seq(js, max(timeout, 0.5))
    except Exception as exc:
        if not isinstance(exc, TimeoutError) and not nats_streams.is_outage(exc):
            raise
        log.warning("stream position unknown (%s); answering from applied state", exc)
        return None
