"""FACES_CHANGES publication through a transactional outbox.

A change writes its FaceChange messages into `faces_outbox` inside its own transaction; after
the commit, `Publisher.flush()` publishes pending rows in `seq` order and deletes them. So:
- nothing is published for a rolled-back change, and nothing is lost if NATS is down or the
  process dies after the commit (the periodic flush picks the rows up later);
- one face's changes keep their commit order: every change locks the face row before it
  inserts its outbox rows, so a later change of the same face gets a larger seq, and one
  publisher at a time (a PostgreSQL advisory lock) publishes in seq order;
- a row published twice (crash between publish and delete) carries the same Nats-Msg-Id and
  is dropped by JetStream's duplicate window.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from luna.faces.v1 import changes_pb2, faces_pb2
from nats.js import JetStreamContext
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from services.common import db, ids, nats_streams, subjects, times
from services.faces.arrays import bytea_array, uuid_array

log = logging.getLogger("luna.faces.outbox")
Kind = changes_pb2.FaceChange.Kind
_LOCK_KEY = int.from_bytes(hashlib.sha256(b"luna.faces.outbox").digest()[:8], "big", signed=True)
_BATCH = 500
_RETRY_S = 0.1  # between tries while a NATS cluster recovers
# Bound on one KIND_*_MANY message: NATS refuses payloads over max_payload (1 MiB by default).
MAX_MANY_BYTES = 256 * 1024


def subject_for(account_id: str) -> str:
    return f"{subjects.FACES_CHANGES_PREFIX}.{account_id}"


def change(
    kind: int,
    account_id: str,
    *,
    face_id: str = "",
    list_id: str = "",
    list_ids: Iterable[str] = (),
    descriptor: bytes = b"",
    descriptor_version: int = 0,
    time: datetime | None = None,
) -> changes_pb2.FaceChange:
    return changes_pb2.FaceChange(
        change_id=ids.new_id(),
        kind=kind,  # type: ignore[arg-type]
        account_id=account_id,
        face_id=face_id,
        descriptor=descriptor,
        descriptor_version=descriptor_version,
        list_ids=list(list_ids),
        list_id=list_id,
        time=times.to_timestamp(time or times.now()),
    )


def upserts(
    account_id: str,
    face_id: str,
    descriptors: dict[int, bytes],
    list_ids: list[str],
    removed_versions: Iterable[int] = (),
) -> list[changes_pb2.FaceChange]:
    """KIND_UPSERT_FACE messages for a face's new attribute state (see changes.proto)."""
    out = [
        change(Kind.KIND_UPSERT_FACE, account_id, face_id=face_id, list_ids=list_ids,
               descriptor_version=v)
        for v in sorted(set(removed_versions) - set(descriptors))
    ]  # fmt: skip
    for version, descriptor in sorted(descriptors.items()):
        out.append(
            change(
                Kind.KIND_UPSERT_FACE,
                account_id,
                face_id=face_id,
                list_ids=list_ids,
                descriptor=descriptor,
                descriptor_version=version,
            )
        )
    if not descriptors and not out:
        # No descriptor at all: version 0, empty descriptor (the face and its lists still count).
        out.append(change(Kind.KIND_UPSERT_FACE, account_id, face_id=face_id, list_ids=list_ids))
    return out


# Kinds whose message carries the face record after the change (see changes.proto).
_WITH_RECORD = frozenset(
    (Kind.KIND_UPSERT_FACE, Kind.KIND_ATTACH, Kind.KIND_DETACH, Kind.KIND_UPDATE_FACE)
)
# Kinds whose message carries one entry per face in `linked` (no face records: see Linked).
_MANY = frozenset((Kind.KIND_ATTACH_MANY, Kind.KIND_DETACH_MANY))


def split_many(c: changes_pb2.FaceChange) -> list[changes_pb2.FaceChange]:
    """A KIND_*_MANY message cut into messages of at most MAX_MANY_BYTES (an entry larger
    than that goes alone), each with its own change_id; any other message as it is."""
    if c.kind not in _MANY or c.ByteSize() <= MAX_MANY_BYTES:
        return [c]
    head = changes_pb2.FaceChange()
    head.CopyFrom(c)
    del head.linked[:]
    out: list[changes_pb2.FaceChange] = []
    size = MAX_MANY_BYTES
    for entry in c.linked:
        n = entry.ByteSize() + 8  # the entry's tag and length prefix
        if size + n > MAX_MANY_BYTES and (not out or out[-1].linked):
            part = changes_pb2.FaceChange()
            part.CopyFrom(head)
            part.change_id = ids.new_id()
            out.append(part)
            size = part.ByteSize()
        out[-1].linked.append(entry)
        size += n
    return out


def face_record(row: dict[str, Any], list_ids: Iterable[str]) -> faces_pb2.Face:
    """A FaceChange.face from a row of services.faces.faces._COLUMNS."""
    return faces_pb2.Face(
        face_id=row["face_id"],
        account_id=row["account_id"],
        event_id=row["event_id"],
        user_data=row["user_data"],
        external_id=row["external_id"],
        avatar=row["avatar"],
        create_time=times.to_timestamp(row["create_time"]),
        last_update_time=times.to_timestamp(row["last_update_time"]),
        list_ids=list(list_ids),
        has_attribute=row["has_attribute"],
    )


async def _attach_records(
    conn: AsyncConnection,
    changes: list[changes_pb2.FaceChange],
    known: dict[str, faces_pb2.Face],
) -> None:
    """Set each change's face record: from `known` (the caller has it), else one read of
    every other face inside the transaction, so the record is the committed state."""
    wanted = sorted(
        {c.face_id for c in changes if c.kind in _WITH_RECORD and c.face_id not in known}
    )
    records = dict(known)
    if wanted:
        # Lazy: services.faces.faces imports this module.
        from services.faces.faces import _COLUMNS, _LIST_IDS

        cur = await conn.execute(
            f"SELECT {_COLUMNS}, {_LIST_IDS} AS list_ids FROM faces f"
            " WHERE f.face_id = ANY(%s::uuid[])",
            (wanted,),
        )
        for row in await cur.fetchall():
            records[row["face_id"]] = face_record(row, row["list_ids"])
    for c in changes:
        if c.kind in _WITH_RECORD and c.face_id in records:
            c.face.CopyFrom(records[c.face_id])


async def enqueue(
    conn: AsyncConnection,
    changes: list[changes_pb2.FaceChange],
    known: Iterable[faces_pb2.Face] = (),
) -> None:
    """Insert messages into the outbox; call inside the change's transaction, after the
    change (each message carries the face record as it is then). `known`: records the caller
    already holds, which saves reading them."""
    if not changes:
        return
    await _attach_records(conn, changes, {f.face_id: f for f in known})
    changes = [part for c in changes for part in split_many(c)]
    # One statement for any number of messages; seq follows their order.
    await conn.execute(
        "INSERT INTO faces_outbox (change_id, subject, payload)"
        " SELECT c, s, p FROM unnest(%s::uuid[], %s::text[], %s::bytea[])"
        " WITH ORDINALITY AS x(c, s, p, n) ORDER BY n",
        (
            uuid_array(c.change_id for c in changes),
            [subject_for(c.account_id) for c in changes],
            bytea_array(c.SerializeToString() for c in changes),
        ),
    )


class Publisher:
    """Publishes the outbox on JetStream; `flush()` after each commit, `run()` as a safety net."""

    def __init__(
        self, pool: AsyncConnectionPool, js: JetStreamContext | None, wait_s: float = 0.0
    ) -> None:
        self._pool = pool
        self._js = js
        # How long a write waits for FACES_CHANGES when NATS has another node to turn to.
        self._wait_s = wait_s
        self._lock = asyncio.Lock()
        # The flush that has not started yet: every commit that asks for a flush meanwhile
        # shares it (group commit), instead of queueing one flush each behind the lock.
        self._next: asyncio.Task[tuple[int, bool]] | None = None
        self._tasks: set[asyncio.Task[tuple[int, bool]]] = set()

    async def flush(self) -> int:
        """Publish every pending row in seq order; returns how many were published. A NATS
        failure is logged, not raised: the change is committed, the rows stay for later.

        Returns once a flush that started after this call has finished, so the caller's
        committed rows are on the stream (read-your-writes); concurrent callers share one."""
        if self._js is None:
            return 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait_s
        published = 0
        while True:
            if nats_streams.is_connected(self._js):
                done, ok = await asyncio.shield(self._shared())
                published += done
                if ok:
                    return published
            # A JetStream cluster elects a new stream leader (or the client moves to another
            # node) within seconds: answering before the change is on the stream would let a
            # match that follows the answer miss it. A lone server has nowhere else to go, and
            # the write must not hang on it: its rows wait in the outbox for the reconnect.
            if not self._may_wait() or loop.time() >= deadline:
                return published
            await asyncio.sleep(_RETRY_S)

    def _may_wait(self) -> bool:
        return self._wait_s > 0 and nats_streams.has_other_servers(self._js)

    def _shared(self) -> asyncio.Task[tuple[int, bool]]:
        task = self._next
        if task is None:
            task = self._next = asyncio.ensure_future(self._flush_shared())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return task

    async def _flush_shared(self) -> tuple[int, bool]:
        """(rows published, whether the outbox was emptied of what it held)."""
        published = 0
        async with self._lock:
            self._next = None  # started: rows committed from now on need the next flush
            while True:
                try:
                    done, more = await self._flush_batch()
                except Exception as exc:
                    if nats_streams.is_outage(exc) or db.is_outage(exc):
                        log.warning("publishing FACES_CHANGES failed (%s); will retry", exc)
                    else:
                        log.warning("publishing FACES_CHANGES failed; will retry", exc_info=True)
                    return published, False
                published += done
                if not more:
                    return published, True

    async def flush_quietly(self) -> None:
        await self.flush()

    async def notify(self, changes: Iterable[changes_pb2.FaceChange]) -> None:
        """Publish notices that need no outbox (KIND_ATTRIBUTE_CREATE, see changes.proto):
        plain NATS publishes onto the stream's subjects, no ack awaited, so the caller pays
        no round trip; a notice lost costs a reader one lookup, nothing else."""
        if self._js is None or not nats_streams.is_connected(self._js):
            return
        nc = self._js._nc
        try:
            for c in changes:
                await nc.publish(
                    subject_for(c.account_id),
                    c.SerializeToString(),
                    headers={"Nats-Msg-Id": c.change_id},
                )
        except Exception as exc:
            log.info("FACES_CHANGES notice not sent (%s)", exc)

    async def _flush_batch(self) -> tuple[int, bool]:
        assert self._js is not None
        # Pipeline mode: BEGIN, the lock and the read in one round trip, the delete and the
        # commit in a second (a flush runs for every few face creates).
        async with self._pool.connection() as conn, conn.pipeline(), conn.transaction():
            # One publisher at a time across processes keeps seq order on the stream.
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            cur = await conn.execute(
                "SELECT seq, change_id::text AS change_id, subject, payload FROM faces_outbox"
                " ORDER BY seq LIMIT %s",
                (_BATCH,),
            )
            rows = await cur.fetchall()
            done: list[int] = []
            failure: Exception | None = None
            # Pipelined: every message goes out in seq order on the one connection (so the
            # stream keeps that order), then the acks are awaited together; awaiting each ack
            # before the next publish made a 1000-face link wait 1000 round trips. Only the
            # acknowledged prefix is deleted; the rest is sent again (Nats-Msg-Id dedupes).
            try:
                results = await nats_streams.publish_many(
                    self._js,
                    [(r["subject"], bytes(r["payload"]), r["change_id"]) for r in rows],
                )
            except Exception as exc:
                results, failure = [], exc
            for row, result in zip(rows, results, strict=False):
                if isinstance(result, BaseException):
                    failure = failure or result
                    break
                done.append(row["seq"])
            # Committed even after a failure, so what did go out is not sent again needlessly.
            if done:
                await conn.execute("DELETE FROM faces_outbox WHERE seq = ANY(%s)", (done,))
        if failure is not None:
            raise failure
        return len(done), len(rows) == _BATCH

    async def run(self, interval_s: float) -> None:
        """Flush every `interval_s` seconds: publishes what a failed flush left behind."""
        while True:
            await asyncio.sleep(interval_s)
            await self.flush()
