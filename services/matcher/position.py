"""FACES_CHANGES' last sequence: the read-your-writes target of every match.

A match asks JetStream for the stream's last sequence (STREAM.INFO) when it arrives and
counts only once the follower has applied that far (services/matcher/matching.py). Every
match pays this round trip, so its usual form is as light as the matcher's share of it can
be: `PositionReads` keeps one reply subscription per connection and writes the request
straight to the socket when the match arrives (no request inbox, task or flusher turn of
nats-py's `request`), and reads only `state.last_seq` from the answer. Anything unusual (not
connected, a NATS node lost, an error reply, a timeout) goes the general way, `_position`,
which retries on the node a cluster client reconnects to and otherwise answers None, so the
guarantee is the same either way.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import nats.errors
import orjson
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from services.common import nats_streams

log = logging.getLogger("luna.matcher")

STREAM = "FACES_CHANGES"
_RETRY_S = 0.05
# The longest one request is waited for: a read lost with a NATS node is asked again (on the
# node the client reconnects to) within what is left of the match's wait.
_ATTEMPT_S = 1.0
_READS_ATTR = "_luna_position_reads"  # the PositionReads of a connection, on the client


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


class PositionReads:
    """STREAM.INFO requests over one connection, answered on one reply subscription.

    The request is written to the client's transport directly: it leaves before the match's
    search holds the event loop, with no task and no flusher turn. It is only written while
    the client is connected, and the subscription was flushed to the server when opened
    (nats-py writes its subscriptions again on a reconnect before it counts as connected),
    so a reply always has somewhere to arrive. Requests and replies are matched by the
    reply subject: a late answer to an abandoned read resolves nothing."""

    def __init__(self, nc: NATS, prefix: str) -> None:
        self._nc = nc
        self._subject = f"{prefix}.STREAM.INFO.{STREAM}"
        self._inbox = nc.new_inbox() + "."
        self._waiting: dict[str, asyncio.Future[int | None]] = {}
        self._sent = 0
        self._open = False

    async def open(self) -> None:
        await self._nc.subscribe(self._inbox + "*", cb=self._reply)
        await self._nc.flush()  # the server holds the subscription before any request
        self._open = True

    def send(self, timeout: float) -> asyncio.Future[int | None] | None:
        """The read, already on its way: its future gives the last sequence, or None for
        anything but a plain answer within `timeout` (the caller then asks the general way).
        None: it cannot be sent now."""
        nc = self._nc
        transport = nc._transport
        if not self._open or not nc.is_connected or transport is None:
            return None
        self._sent += 1
        reply = f"{self._inbox}{self._sent}"
        loop = asyncio.get_running_loop()
        read: asyncio.Future[int | None] = loop.create_future()
        self._waiting[reply] = read
        timer = loop.call_later(timeout, _give_up, read)
        read.add_done_callback(lambda _: (timer.cancel(), self._waiting.pop(reply, None)))
        transport.write(f"PUB {self._subject} {reply} 0\r\n\r\n".encode())
        return read

    async def _reply(self, msg: Msg) -> None:
        read = self._waiting.pop(msg.subject, None)
        if read is None or read.done():
            return
        state = None
        if msg.data:  # an empty reply is NATS's "no responders" status
            try:
                state = orjson.loads(msg.data).get("state")
            except orjson.JSONDecodeError:
                state = None
        # An error answer (no "state") is for the general path to raise typed.
        read.set_result(int(state.get("last_seq", 0)) if isinstance(state, dict) else None)


def _give_up(read: asyncio.Future[int | None]) -> None:
    if not read.done():
        read.set_result(None)


async def open_position_reads(js: JetStreamContext) -> None:
    """Give the connection of `js` its PositionReads (once; every Sync shares it)."""
    nc = js._nc
    if getattr(nc, _READS_ATTR, None) is None:
        reads = PositionReads(nc, js._prefix)
        setattr(nc, _READS_ATTR, reads)
        await reads.open()


def read_position(js: JetStreamContext, timeout: float) -> asyncio.Future[int | None] | None:
    """Start reading the stream's last sequence now (a request's read-your-writes target);
    the future gives None when NATS is away or slow: the request is then answered from
    the state applied so far (changes made meanwhile are still in the faces outbox, not
    in the stream, so there is nothing newer to wait for anyway). None: not connected to a
    lone server."""
    if not nats_streams.is_connected(js) and not nats_streams.has_other_servers(js):
        return None
    loop = asyncio.get_running_loop()
    began = loop.time()
    reads: PositionReads | None = getattr(js._nc, _READS_ATTR, None)
    sent = reads.send(min(timeout, _ATTEMPT_S)) if reads is not None else None
    if sent is None:
        return asyncio.ensure_future(_position(js, timeout, began))
    out: asyncio.Future[int | None] = loop.create_future()

    def answered(read: asyncio.Future[int | None]) -> None:
        if out.done():  # the match gave up on it
            return
        seq = read.result()
        if seq is not None:
            out.set_result(seq)
            return
        general = asyncio.ensure_future(_position(js, timeout, began))
        general.add_done_callback(lambda g: _settle(out, g))

    sent.add_done_callback(answered)
    return out


def _settle(out: asyncio.Future[Any], general: asyncio.Future[Any]) -> None:
    if out.done():
        if not general.cancelled():
            general.exception()  # retrieved: nobody waits for it any more
    elif general.cancelled():
        out.cancel()
    elif general.exception() is not None:
        out.set_exception(general.exception())  # type: ignore[arg-type]
    else:
        out.set_result(general.result())


async def _position(js: JetStreamContext, timeout: float, began: float | None = None) -> int | None:
    """In a NATS cluster a node's loss is not "NATS is away": another node has acknowledged
    writes this matcher has not seen, so the read is retried on the node the client
    reconnects to, within `timeout` of `began` (now by default), rather than answered from
    a stale state (the first shard of a fanned-out match would otherwise hand every shard a
    position of 0)."""
    loop = asyncio.get_running_loop()
    deadline = (loop.time() if began is None else began) + max(timeout, 0.5)
    while True:
        try:
            if not nats_streams.is_connected(js):
                raise nats_streams.NatsUnavailable("not connected to NATS")
            return await last_seq(js, max(min(deadline - loop.time(), _ATTEMPT_S), 0.05))
        except Exception as exc:
            if not isinstance(exc, TimeoutError) and not nats_streams.is_outage(exc):
                raise
            if nats_streams.has_other_servers(js) and loop.time() + _RETRY_S < deadline:
                await asyncio.sleep(_RETRY_S)
                continue
            log.warning("stream position unknown (%s); answering from applied state", exc)
            return None
