"""NATS connection and the platform's JetStream streams (ARCHITECTURE.md §5).

Every stream the platform uses is declared here once, so each service can call
`ensure_streams` at start in any order: creation is idempotent and a changed declaration is
applied as an update.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import socket
from collections.abc import Awaitable, Callable

import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import NotFoundError

from services.common import config, errors, subjects

log = logging.getLogger("luna.nats")

DAY = 24 * 3600.0

REPLICAS = config.declare(
    "LUNA_NATS_REPLICAS",
    1,
    "Copies JetStream keeps of each platform stream (FACES_CHANGES, EVENTS, TASKS_WORK): 1 for "
    "one nats-server, 3 on a 3-node JetStream cluster so losing one node loses no message.",
)


def _stream(
    name: str,
    description: str,
    prefix: str,
    *,
    retention: RetentionPolicy = RetentionPolicy.LIMITS,
    max_age: float | None = None,
) -> StreamConfig:
    """A platform stream: on file, every subject under `prefix`, the oldest message dropped
    when full, publishes deduplicated by message id for two minutes."""
    return StreamConfig(
        name=name,
        description=description,
        subjects=[f"{prefix}.>"],
        retention=retention,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        max_age=max_age,
        duplicate_window=120.0,
    )


# Subjects are all under `luna.`; streams never overlap (a work-queue stream requires that).
STREAMS: tuple[StreamConfig, ...] = (
    _stream(
        "FACES_CHANGES",
        "Changes to faces/lists/attributes; the matcher replays it after a snapshot.",
        subjects.FACES_CHANGES_PREFIX,
        max_age=7 * DAY,
    ),
    _stream(
        "EVENTS",
        "Generated events, for the sender websocket and plugins.",
        subjects.EVENTS_PREFIX,
        max_age=1 * DAY,
    ),
    _stream(
        "TASKS_WORK",
        "Subtasks to process; each message is removed once a worker acks it.",
        subjects.TASKS_WORK_PREFIX,
        retention=RetentionPolicy.WORK_QUEUE,
    ),
)

# Fields the server refuses to change on an existing stream: a mismatch needs an operator.
_IMMUTABLE = ("retention", "storage")
_COMPARED = (
    "subjects",
    "retention",
    "storage",
    "discard",
    "max_age",
    "duplicate_window",
    "num_replicas",
)


def stream_configs() -> list[StreamConfig]:
    """STREAMS with the configured replica count; read at each call so a process started with
    another LUNA_NATS_REPLICAS (the cluster overlay) declares its streams accordingly."""
    replicas = REPLICAS.get_int()
    if replicas < 1:
        raise ValueError(f"LUNA_NATS_REPLICAS must be at least 1, not {replicas}")
    return [dataclasses.replace(s, num_replicas=replicas) for s in STREAMS]


async def connect(url: str, *, name: str | None = None, initial_attempts: int = 10) -> NATS:
    """Connect, failing after `initial_attempts` (about a second apart) so a wrong URL is an
    error rather than a silent hang; once connected, reconnects never give up (a service
    outlives a NATS restart)."""
    nc = NATS()

    async def on_error(exc: Exception) -> None:
        log.warning("nats error: %s", exc)

    async def on_disconnect() -> None:
        if not nc.is_closed:  # our own close() also reports a disconnect
            log.warning("nats disconnected from %s", url)

    callbacks: list[ReconnectCallback] = []
    nc._luna_reconnect_callbacks = callbacks  # type: ignore[attr-defined]

    async def on_reconnect() -> None:
        log.info("nats reconnected to %s", url)
        for callback in callbacks:
            # In the background: nats-py awaits this inside its reconnect loop.
            task = asyncio.ensure_future(callback())
            _running.add(task)
            task.add_done_callback(_callback_done)

    await nc.connect(
        servers=[u.strip() for u in url.split(",")],  # a cluster: every node's URL
        name=name or f"luna-{socket.gethostname()}-{os.getpid()}",
        connect_timeout=5,
        allow_reconnect=True,
        max_reconnect_attempts=max(1, initial_attempts),
        reconnect_time_wait=1,
        ping_interval=20,
        max_outstanding_pings=3,
        error_cb=on_error,
        disconnected_cb=on_disconnect,
        reconnected_cb=on_reconnect,
    )
    # nats-py has one limit for both phases and reads it at each attempt: lift it now.
    nc.options["max_reconnect_attempts"] = -1
    return nc


# A publish waits this long for JetStream's ack; while NATS is down nobody waits at all.
PUBLISH_TIMEOUT_S = 2.0
ReconnectCallback = Callable[[], Awaitable[None]]


class NatsUnavailable(ConnectionError):
    """NATS is not connected right now (it is restarting); the client reconnects by itself."""


def is_outage(exc: BaseException) -> bool:
    """True for errors that mean "NATS is not reachable now"."""
    return isinstance(
        exc,
        NatsUnavailable
        | nats.errors.ConnectionClosedError
        | nats.errors.ConnectionReconnectingError
        | nats.errors.NoServersError
        | nats.errors.StaleConnectionError
        | nats.errors.OutboundBufferLimitError
        | nats.errors.TimeoutError
        | nats.js.errors.NoStreamResponseError
        | nats.js.errors.ServiceUnavailableError,
    )


def outage_error(exc: BaseException) -> errors.LunaError:
    log.warning("nats unavailable: %s: %s", type(exc).__name__, exc)
    return errors.LunaError(errors.QUEUE_UNAVAILABLE, f"Message queue unavailable: {exc}")


def on_reconnect(nc: NATS, callback: ReconnectCallback) -> None:
    """Run `callback` after each reconnect of `nc` (made by `connect`): resume what needs the
    server's state (consumers, pending publications) right away instead of at a timeout."""
    nc._luna_reconnect_callbacks.append(callback)  # type: ignore[attr-defined]


def is_connected(js: JetStreamContext) -> bool:
    return bool(js._nc.is_connected)


def has_other_servers(js: JetStreamContext) -> bool:
    """Whether the client knows more than one server (a cluster gossips its nodes' URLs), so
    that a failed publish may succeed on another node or a newly elected leader soon."""
    return len(js._nc.servers) > 1


_running: set[asyncio.Future[None]] = set()


def _callback_done(task: asyncio.Future[None]) -> None:
    _running.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.warning("after nats reconnect: %s", task.exception())


def _differs(have: StreamConfig, want: StreamConfig) -> list[str]:
    diffs = []
    for field in _COMPARED:
        a, b = getattr(have, field), getattr(want, field)
        if field == "subjects":
            a, b = sorted(a or []), sorted(b or [])
        elif field == "num_replicas":
            a, b = a or 1, b or 1  # the server omits the default of one replica
        elif field in ("max_age", "duplicate_window"):
            # The server answers in ns converted to float seconds; compare to the ms.
            a, b = round(a or 0.0, 3), round(b or 0.0, 3)
        if a != b:
            diffs.append(field)
    return diffs


async def ensure_streams(js: JetStreamContext) -> None:
    """Create every stream in STREAMS, or update one whose declaration changed (a cluster
    changes the replica count of an existing stream in place)."""
    for want in stream_configs():
        try:
            info = await js.stream_info(want.name or "")
        except NotFoundError:
            await js.add_stream(want)
            log.info("created stream %s", want.name)
            continue
        diffs = _differs(info.config, want)
        if not diffs:
            continue
        frozen = [f for f in diffs if f in _IMMUTABLE]
        if frozen:
            raise RuntimeError(
                f"stream {want.name} exists with different {', '.join(frozen)}; "
                "the server cannot change that in place (delete the stream to recreate it)"
            )
        await js.update_stream(want)
        log.info("updated stream %s (%s)", want.name, ", ".join(diffs))


async def publish(js: JetStreamContext, subject: str, payload: bytes, msg_id: str) -> int:
    """Publish with `Nats-Msg-Id` so a retry within the stream's duplicate window is dropped
    by the server; returns the stream sequence (the original one for a duplicate).

    Raises NatsUnavailable at once while disconnected: nats-py would buffer the message and
    wait the whole ack timeout for every publish (seconds per request while NATS restarts)."""
    if not is_connected(js):
        raise NatsUnavailable("not connected to NATS")
    ack = await js.publish(
        subject, payload, timeout=PUBLISH_TIMEOUT_S, headers={"Nats-Msg-Id": msg_id}
    )
    return int(ack.seq)


async def publish_many(
    js: JetStreamContext, messages: list[tuple[str, bytes, str]]
) -> list[int | BaseException]:
    """Publish (subject, payload, msg_id) messages in order on the one connection, then await
    their acks together: one round trip for the batch instead of one per message. Each result
    is the stream sequence or the exception of that message; a prefix of successes is what is
    known to be stored. Fails fast while disconnected and waits at most PUBLISH_TIMEOUT_S."""
    if not is_connected(js):
        raise NatsUnavailable("not connected to NATS")
    acks = [
        await js.publish_async(subject, payload, headers={"Nats-Msg-Id": msg_id})
        for subject, payload, msg_id in messages
    ]
    _, pending = await asyncio.wait(acks, timeout=PUBLISH_TIMEOUT_S) if acks else ((), ())
    for future in pending:
        future.cancel()
    results: list[int | BaseException] = []
    for future in acks:
        if future in pending:
            results.append(NatsUnavailable("no ack from NATS in time"))
        elif future.exception() is not None:
            results.append(future.exception())  # type: ignore[arg-type]
        else:
            results.append(int(future.result().seq))
    return results


def work_consumer_config(
    durable: str,
    filter_subject: str,
    *,
    ack_wait_s: float = 60.0,
    max_deliver: int = 10,
) -> ConsumerConfig:
    """Durable pull consumer for TASKS_WORK: explicit ack, redelivery after `ack_wait_s`.

    Work-queue streams allow one consumer per subject, so all workers share this durable.
    """
    return ConsumerConfig(
        durable_name=durable,
        filter_subject=filter_subject,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=ack_wait_s,
        max_deliver=max_deliver,
    )
