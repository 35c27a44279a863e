"""Keeps the matcher's IndexSet equal to the faces service's descriptors.

Start: load the latest snapshot (it records the FACES_CHANGES sequence it reflects) and replay
the stream from the next sequence; without a usable snapshot, note the stream's last sequence
first, stream every descriptor from FacesService.StreamDescriptors, then replay from the noted
sequence + 1. Every change kind is idempotent and last-writer-wins per face, so replaying
changes the loaded state already reflects is harmless. Then keep following the stream.

Reads wait for the stream (`wait_applied`): a request first reads the stream's last sequence
and waits until the follower has applied it, so a face is matchable as soon as its create
returned and gone as soon as its delete returned (faces publishes before it answers).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import nats.js.errors
from luna.common.v1 import account_pb2
from luna.faces.v1 import changes_pb2, faces_pb2
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from services.common import descriptors as codec
from services.common import errors, subjects
from services.common.stopping import cancel_and_wait
from services.matcher.attribute_cache import AttributeCache
from services.matcher.core import IndexSet, MatcherConfig
from services.matcher.core.descriptors import dim_of, unpack_unit
from services.matcher.core.snapshot import (
    SnapshotError,
    current_snapshot,
    load_snapshot,
    save_snapshot,
)
from services.matcher.face_records import FaceRecords
from services.matcher.position import STREAM, last_seq, open_position_reads, read_position

log = logging.getLogger("luna.matcher.sync")

Kind = changes_pb2.FaceChange.Kind
_BATCH = 5000
# A batch of at most this many changes is applied on the event loop: each is a few dict and
# delta-matrix updates (tens of microseconds), less than the thread hop that keeps a large
# replay off the loop, and under a steady write load (two messages per face created) that hop
# was most of the follower's CPU.
_INLINE = 16
# Messages that link or unlink many faces (see _apply_many).
_MANY = frozenset((Kind.KIND_ATTACH_MANY, Kind.KIND_DETACH_MANY))
_ATTRIBUTES = frozenset((Kind.KIND_ATTRIBUTE_CREATE, Kind.KIND_ATTRIBUTE_DELETE))
_SAME: Any = object()  # rebuild(): keep the partition
# Catching up by single gets while no consumer can be made (Sync._catch_up_by_get).
_CATCH_UP_MAX = 1000
_CATCH_UP_TIMEOUT_S = 1.0
# How long a match waits for a follower that does not move before reading by sequence.
_STALL_S = 0.75


class _Got:
    """A change read by sequence, with what `_apply_msgs` reads of a delivered Msg."""

    __slots__ = ("data", "metadata")

    def __init__(self, data: bytes, seq: int) -> None:
        self.data = data
        self.metadata = SimpleNamespace(sequence=SimpleNamespace(stream=seq))


class Sync:
    """Owns the live IndexSet, the stream follower and the snapshots."""

    def __init__(
        self,
        js: JetStreamContext,
        faces: Any,  # LunaStub of FacesService
        *,
        snapshot_root: Path,
        version: int,
        config: MatcherConfig,
        records: FaceRecords | None = None,
        attributes: AttributeCache | None = None,
        resume_js: JetStreamContext | None = None,
    ) -> None:
        self.js = js
        # Re-following after a NATS node's loss asks for a consumer while JetStream may still
        # be electing its metadata leader; a short request timeout retries soon after the
        # election instead of up to a whole default timeout (5 s) later.
        self.resume_js = resume_js or js
        self.records = records if records is not None else FaceRecords()
        # Temporary attributes' descriptors seen on the stream (attribute references).
        self.attributes = attributes if attributes is not None else AttributeCache()
        self.faces = faces
        self.snapshot_root = snapshot_root
        self.version = version
        self.config = config
        self.ix = IndexSet(version=version, dim=dim_of(version), config=self.config)
        self.applied_seq = 0
        self.snapshot_seq = 0
        self.changes_since_snapshot = 0
        self.skipped = 0  # changes with unusable descriptors (logged)
        self._progress = asyncio.Condition()
        self._sub: Subscription | None = None
        self._follow_task: asyncio.Task[None] | None = None
        self._snapshot_lock = asyncio.Lock()
        self._rebuild_lock = asyncio.Lock()
        self._apply_lock = asyncio.Lock()  # the follower and a catch-up apply one at a time
        self._catch_up: asyncio.Task[None] | None = None
        # A matcher shard's partition (services/matcher/shard): `owns(account_id, face_id)`
        # says which faces this Sync loads and applies; None (one matcher) holds every face.
        self.partition: Any = None

    # --- start ---------------------------------------------------------------------------
    async def start(self, retry_for: float = 600.0) -> str:
        """Initial load + replay; returns how the state was obtained ("snapshot"/"faces")."""
        how = "faces"
        loaded = await self._try_snapshot()
        if loaded is not None:
            ix, seq, records = loaded
            if await self._replayable_from(seq):
                self._swap(ix, seq, records)
                self.snapshot_seq = seq
                how = "snapshot"
            else:
                ix.close()
                loaded = None
        if loaded is None:
            ix, seq, records = await self._retrying(self._full_load, retry_for)
            self._swap(ix, seq, records)
        await self._start_follow()
        await open_position_reads(self.js)
        await self.wait_applied(timeout=None)
        log.info(
            "matcher loaded %d faces from %s; applied stream sequence %d",
            len(self.ix),
            how,
            self.applied_seq,
        )
        return how

    async def _retrying(self, fn: Any, retry_for: float) -> Any:
        """The faces service may start after us (`luna up` starts services in parallel)."""
        deadline = time.monotonic() + retry_for
        while True:
            try:
                return await fn()
            except errors.LunaError as exc:
                if exc.code != errors.REQUEST_TIMEOUT or time.monotonic() > deadline:
                    raise
                log.info("faces service not reachable yet; retrying the initial load")
                await asyncio.sleep(0.5)

    def _new_records(self) -> FaceRecords:
        return FaceRecords(1 if self.records.enabled else 0)

    async def _try_snapshot(self) -> tuple[IndexSet, int, FaceRecords] | None:
        path = current_snapshot(self.snapshot_root)
        if path is None:
            return None
        records = self._new_records()
        try:
            ix, seq = await asyncio.to_thread(load_snapshot, self.snapshot_root, self.config)
            if not await asyncio.to_thread(records.load, path):
                # Written before records were kept: matches read missing ones once.
                log.info("snapshot %s holds no face records", path)
        except (SnapshotError, OSError, ValueError, KeyError) as exc:
            log.warning(
                "snapshot under %s unusable (%s); loading from faces", self.snapshot_root, exc
            )
            return None
        if ix.version is not None and ix.version != self.version:
            log.warning("snapshot holds version %s, want %s; reloading", ix.version, self.version)
            ix.close()
            return None
        return ix, seq, records

    async def _replayable_from(self, seq: int) -> bool:
        """The stream still holds every message after `seq` (nothing expired or reset)."""
        state = (await self.js.stream_info(STREAM)).state
        if state.last_seq < seq:
            log.warning(
                "stream at %d is behind snapshot %d (stream reset); reloading", state.last_seq, seq
            )
            return False
        if state.messages and state.first_seq > seq + 1:
            log.warning(
                "stream starts at %d, snapshot at %d: changes expired; reloading",
                state.first_seq,
                seq,
            )
            return False
        return True

    async def _full_load(self, partition: Any = _SAME) -> tuple[IndexSet, int, FaceRecords]:
        """Every descriptor and face record from the faces service (of `partition`'s faces
        only, when sharded); returns (IndexSet, sequence to replay after, records)."""
        partition = self.partition if partition is _SAME else partition
        noted = (await self.js.stream_info(STREAM)).state.last_seq
        ix = IndexSet(version=self.version, dim=dim_of(self.version), config=self.config)
        ix.hold_builds()  # one build per list at the end, not a merge per delta_max rows
        records = self._new_records()
        try:
            request = faces_pb2.StreamDescriptorsRequest(
                scope=account_pb2.AccountScope(see_all=True),
                descriptor_version=self.version,
                batch_size=_BATCH,
            )
            async for batch in self.faces.StreamDescriptors(request):
                items = batch.descriptors
                if partition is not None:
                    items = [d for d in items if partition.owns(d.account_id, d.face_id)]
                await asyncio.to_thread(self._add_batch, ix, items, records)
        except BaseException:
            ix.close()
            raise
        ix.release_builds()
        return ix, noted, records

    def _add_batch(
        self,
        ix: IndexSet,
        items: Sequence[faces_pb2.FaceDescriptor],
        records: FaceRecords | None = None,
    ) -> None:
        target = records if records is not None else self.records
        target.set_many(d.face for d in items if d.HasField("face"))
        # add_many needs one account and one list set per call: group the batch.
        groups: dict[tuple[str, tuple[str, ...]], list[faces_pb2.FaceDescriptor]] = defaultdict(
            list
        )
        for d in items:
            if d.version != self.version or len(d.descriptor) != ix.dim * 4:
                self.skipped += 1
                log.warning(
                    "face %s: unusable descriptor (version %d, %d bytes) skipped",
                    d.face_id,
                    d.version,
                    len(d.descriptor),
                )
                continue
            groups[(d.account_id, tuple(sorted(d.list_ids)))].append(d)
        for (account_id, lists), group in groups.items():
            vecs = codec.unpack_rows([d.descriptor for d in group], ix.dim)
            try:
                ix.add_many(
                    account_id,
                    [d.face_id for d in group],
                    vecs,
                    self.version,
                    lists,
                )
            except errors.LunaError:
                for d in group:  # find and skip the bad one(s)
                    self._apply_one(
                        ix,
                        Kind.KIND_UPSERT_FACE,
                        d.account_id,
                        d.face_id,
                        d.descriptor,
                        d.version,
                        list(d.list_ids),
                        "",
                        d.face if d.HasField("face") else None,
                        records,
                    )

    def _swap(self, ix: IndexSet, seq: int, records: FaceRecords) -> None:
        old, self.ix = self.ix, ix
        self.applied_seq = seq
        self.records = records
        if old is not ix:
            old.close()

    # --- follow --------------------------------------------------------------------------
    async def _start_follow(self, js: JetStreamContext | None = None) -> None:
        cfg = ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=self.applied_seq + 1
        )
        self._sub = await (js or self.js).subscribe(
            f"{subjects.FACES_CHANGES_PREFIX}.>",
            stream=STREAM,
            ordered_consumer=True,
            config=cfg,
        )
        self._follow_task = asyncio.create_task(self._follow(self._sub, self.ix))

    async def resume_follow(self, attempts: int = 60) -> None:
        """Follow the stream again from the last applied change: after a NATS restart the
        server no longer knows our (in-memory, ordered) consumer."""
        async with self._rebuild_lock:
            for attempt in range(attempts):
                await self._stop_follow()
                try:
                    await self._start_follow(self.resume_js)
                except Exception as exc:
                    log.warning("re-following FACES_CHANGES failed (%s); retrying", exc)
                    await self._start_catch_up()
                    await asyncio.sleep(min(1.0, 0.1 * (attempt + 1)))
                    continue
                log.info("following FACES_CHANGES again from %d", self.applied_seq + 1)
                return
            log.error("FACES_CHANGES not followed again after %d attempts", attempts)

    async def _stop_follow(self) -> None:
        task, sub = self._follow_task, self._sub
        self._follow_task = self._sub = None
        await cancel_and_wait(task)
        if sub is not None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _follow(self, sub: Subscription, ix: IndexSet) -> None:
        # Ends when _stop_follow unsets _follow_task, not only by cancellation: next_msg's
        # wait_for drops a cancellation that meets a buffered message (Python 3.11), which is
        # every read while the follower has a backlog (services/common/stopping.py).
        me = asyncio.current_task()
        while self._follow_task is me:
            try:
                first = await sub.next_msg(timeout=30.0)
            except TimeoutError:
                continue
            batch = [first]
            # Whatever is already buffered goes in the same thread hop.
            for _ in range(min(sub.pending_msgs, _BATCH - 1)):
                batch.append(await sub.next_msg(timeout=1.0))
            await self._apply_and_advance(ix, batch)

    async def _apply_and_advance(self, ix: IndexSet, batch: Sequence[Any]) -> None:
        # Changes at or below applied_seq are skipped (_apply_msgs), so a change both a
        # catch-up and the follower bring is applied once.
        async with self._apply_lock:
            if ix is not self.ix:
                # Read for a state a rebuild has since swapped out: applying it would move
                # applied_seq past changes the new state has not seen.
                return
            try:
                last = await self._apply(ix, batch)
            except Exception:
                # A bug here must not stop the follower for good; the message is skipped.
                log.exception("applying FACES_CHANGES failed")
                last = batch[-1].metadata.sequence.stream
            async with self._progress:
                self.applied_seq = max(self.applied_seq, last)
                self.changes_since_snapshot += len(batch)
                self._progress.notify_all()

    def _start_catch_up(self) -> asyncio.Task[None]:
        """One catch-up by single gets at a time, however many matches wait."""
        if self._catch_up is None or self._catch_up.done():
            self._catch_up = asyncio.ensure_future(self._catch_up_by_get())
        return self._catch_up

    async def _catch_up_by_get(self, most: int = _CATCH_UP_MAX) -> None:
        """Read the changes the follower lacks one by one (STREAM.MSG.GET) and apply them.

        Used while no consumer can be made after a NATS node's loss, and when a match has
        waited _STALL_S for a follower that does not move (its consumer lived on the lost node
        and nats-py's reset of it failed: no reconnect tells us). A consumer needs JetStream's
        metadata leader, whose election took 6 s when the lost node held it, but the stream's
        own leader still takes writes and answers position reads and gets. So matches keep
        read-your-writes through that election instead of answering stale after their
        wait."""
        js = self.resume_js
        try:
            target = await last_seq(js, _CATCH_UP_TIMEOUT_S)
        except Exception:
            return
        got: list[_Got] = []
        seq = self.applied_seq + 1
        while seq <= target and len(got) < most:
            try:
                raw = await js.get_msg(STREAM, seq)
            except nats.js.errors.NotFoundError:
                seq += 1  # removed by the stream's limits: nothing to apply
                continue
            except Exception:
                break
            got.append(_Got(raw.data or b"", seq))
            seq += 1
        if got:
            await self._apply_and_advance(self.ix, got)

    async def _apply(self, ix: IndexSet, msgs: Sequence[Any]) -> int:
        """Apply a batch; the last stream sequence it reflects. A small one on the loop (see
        _INLINE), a large one in a thread."""
        if len(msgs) <= _INLINE:
            return self._apply_msgs(ix, msgs)
        applying = asyncio.get_running_loop().run_in_executor(None, self._apply_msgs, ix, msgs)
        try:
            return await asyncio.shield(applying)
        except asyncio.CancelledError:
            # A thread cannot be stopped: keep _apply_lock until it is done with `ix`, so a
            # rebuild never swaps out and closes an index a thread still writes to.
            while not applying.done():
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait({applying})
            raise

    def _apply_msgs(self, ix: IndexSet, msgs: Sequence[Any]) -> int:
        last = self.applied_seq
        for msg in msgs:
            seq = msg.metadata.sequence.stream
            if seq <= last:
                continue  # a redelivery after an ordered-consumer reset
            ch = changes_pb2.FaceChange.FromString(msg.data)
            if ch.kind in _ATTRIBUTES:
                self._apply_attribute(ix, ch)
                last = seq
                continue
            if self.partition is not None:
                ch = self._mine(ch)
                if ch is None:
                    last = seq
                    continue
            if ch.kind in _MANY:
                self._apply_many(ix, ch)
                last = seq
                continue
            self._apply_one(
                ix,
                ch.kind,
                ch.account_id,
                ch.face_id,
                ch.descriptor,
                ch.descriptor_version,
                list(ch.list_ids),
                ch.list_id,
                ch.face if ch.HasField("face") else None,
            )
            last = seq
        return last

    def _apply_attribute(self, ix: IndexSet, ch: changes_pb2.FaceChange) -> None:
        """KIND_ATTRIBUTE_CREATE (a notice: cached when it holds our version's descriptor)
        and KIND_ATTRIBUTE_DELETE (one attribute, or an account's all)."""
        if ch.kind == Kind.KIND_ATTRIBUTE_DELETE:
            self.attributes.deleted(ch.attribute_id, ch.account_id)
            return
        if ch.descriptor_version != self.version or not ch.attribute_id:
            return
        try:
            vec = unpack_unit(ch.descriptor, ix.dim)
        except errors.LunaError:
            return  # the faces service answers a reference to it with the documented error
        expire = ch.expire_time.seconds + ch.expire_time.nanos / 1e9
        self.attributes.created(ch.attribute_id, ch.account_id, expire, vec)

    def _mine(self, ch: changes_pb2.FaceChange) -> changes_pb2.FaceChange | None:
        """The part of a change that is this shard's: None for another shard's face; a link
        message with only this shard's entries. A list deletion is everyone's."""
        owns = self.partition.owns
        if ch.kind in _MANY:
            kept = [e for e in ch.linked if owns(ch.account_id, e.face_id)]
            if len(kept) == len(ch.linked):
                return ch
            mine = changes_pb2.FaceChange()
            mine.CopyFrom(ch)
            del mine.linked[:]
            mine.linked.extend(kept)
            return mine
        if ch.face_id and not owns(ch.account_id, ch.face_id):
            return None
        return ch

    def _apply_many(self, ix: IndexSet, ch: changes_pb2.FaceChange) -> None:
        """KIND_ATTACH_MANY / KIND_DETACH_MANY: what KIND_ATTACH / KIND_DETACH does for each
        entry, the faces the index holds (all of them, usually) changed in one call. Held
        records get the entries' list_ids (the messages carry no records)."""
        self.records.set_lists((e.face_id, e.list_ids) for e in ch.linked)
        if ch.kind == Kind.KIND_DETACH_MANY:
            ix.detach(ch.list_id, [e.face_id for e in ch.linked])
            return
        ix.attach(ch.list_id, [e.face_id for e in ch.linked if e.face_id in ix])
        for e in ch.linked:  # a face the index does not hold is indexed from its entry
            if e.face_id in ix or not e.descriptor or e.descriptor_version != self.version:
                continue
            try:
                ix.add(
                    ch.account_id,
                    e.face_id,
                    codec.unpack(e.descriptor),
                    self.version,
                    list(e.list_ids),
                )
            except errors.LunaError as exc:
                self.skipped += 1
                ix.remove(e.face_id)
                log.warning("face %s: change skipped: %s", e.face_id, exc.detail)

    def _apply_one(
        self,
        ix: IndexSet,
        kind: int,
        account_id: str,
        face_id: str,
        descriptor: bytes,
        version: int,
        list_ids: list[str],
        list_id: str,
        face: faces_pb2.Face | None = None,
        records: FaceRecords | None = None,
    ) -> None:
        records = records if records is not None else self.records
        if kind == Kind.KIND_DELETE_LIST:
            records.drop_list(list_id)
        elif face is not None:
            records.set(face)
        elif face_id:
            records.forget(face_id)  # deleted, or a publisher without records
        try:
            if kind == Kind.KIND_UPSERT_FACE:
                if version not in (0, self.version):
                    return  # another model's descriptor: not ours to index
                if descriptor:
                    ix.add(account_id, face_id, codec.unpack(descriptor), version, list_ids)
                else:
                    ix.remove(face_id)
            elif kind == Kind.KIND_DELETE_FACE:
                ix.remove(face_id)
            elif kind == Kind.KIND_ATTACH:
                if face_id in ix:
                    ix.attach(list_id, [face_id])
                elif descriptor and version == self.version:
                    ix.add(account_id, face_id, codec.unpack(descriptor), version, list_ids)
            elif kind == Kind.KIND_DETACH:
                ix.detach(list_id, [face_id])
            elif kind == Kind.KIND_DELETE_LIST:
                ix.delete_list(list_id)
        except errors.LunaError as exc:
            # A descriptor we cannot index (wrong length, NaN): skip it, never stop following.
            self.skipped += 1
            ix.remove(face_id)
            log.warning("face %s: change skipped: %s", face_id, exc.detail)

    # --- reads ---------------------------------------------------------------------------
    async def _last_seq(self, timeout: float) -> int:
        return await last_seq(self.js, timeout)

    def read_position(self, timeout: float) -> asyncio.Future[int | None] | None:
        """See `position.read_position`."""
        return read_position(self.js, timeout)

    async def wait_applied(self, timeout: float | None) -> bool:
        """Wait until everything the stream holds now is applied; False after `timeout`
        (or when the stream's position cannot be read in time: see `read_position`)."""
        if timeout is not None:
            pending = self.read_position(timeout)
            target = None if pending is None else await pending
            if target is None:
                return False
        else:
            target = (await self.js.stream_info(STREAM)).state.last_seq
        return await self.wait_for(target, timeout)

    async def wait_for(self, target: int, timeout: float | None) -> bool:
        """Wait until the follower has applied stream sequence `target`; False after
        `timeout` (the request is answered anyway)."""
        if self.applied_seq >= target:
            return True

        async def reached() -> None:
            async with self._progress:
                await self._progress.wait_for(lambda: self.applied_seq >= target)

        async def unstick() -> None:
            while self.applied_seq < target:
                await asyncio.sleep(_STALL_S)
                if self.applied_seq < target:
                    await asyncio.shield(self._start_catch_up())

        helper = asyncio.ensure_future(unstick())
        try:
            await asyncio.wait_for(reached(), timeout)
        except TimeoutError:
            log.warning(
                "matcher behind the stream (%d < %d) after %.1fs; answering anyway",
                self.applied_seq,
                target,
                timeout or 0.0,
            )
            return False
        finally:
            helper.cancel()
        return True

    # --- snapshots and admin ---------------------------------------------------------------
    async def snapshot(self, force: bool = False) -> tuple[Path | None, int]:
        """Write a snapshot when changes were applied since the last one (or `force`)."""
        async with self._snapshot_lock:
            # Read the sequence before writing: the snapshot then holds at least what the
            # sequence says, and replaying a change it already holds is harmless.
            seq = self.applied_seq
            if not force and seq == self.snapshot_seq and self.changes_since_snapshot == 0:
                return None, seq
            pending = self.changes_since_snapshot
            path = await asyncio.to_thread(
                save_snapshot, self.ix, self.snapshot_root, seq, self.records.save
            )
            self.snapshot_seq = seq
            self.changes_since_snapshot = max(0, self.changes_since_snapshot - pending)
            log.info("snapshot %s written (stream sequence %d, %d faces)", path, seq, len(self.ix))
            return path, seq

    async def run_snapshots(self, interval: float, max_changes: int) -> None:
        """Periodic snapshots: every `interval` seconds, or sooner after `max_changes`."""
        last = time.monotonic()
        while True:
            await asyncio.sleep(1.0)
            due = interval > 0 and time.monotonic() - last >= interval
            if due or (max_changes > 0 and self.changes_since_snapshot >= max_changes):
                try:
                    await self.snapshot()
                except Exception:
                    log.exception("periodic snapshot failed")
                last = time.monotonic()

    async def rebuild(self, partition: Any = _SAME, snapshot_root: Path | None = None) -> int:
        """Reload every descriptor from the faces service; searches use the old state until
        the new one is swapped in, and then wait for it to catch up with the stream. A shard
        whose partition changed passes the new one (and its snapshot directory): the old
        state keeps following the stream with the old partition until the swap."""
        async with self._rebuild_lock:
            ix, seq, records = await self._full_load(partition)
            await self._stop_follow()
            async with self._apply_lock, self._progress:
                self._swap(ix, seq, records)
                if partition is not _SAME:
                    self.partition = partition
                if snapshot_root is not None:
                    self.snapshot_root = snapshot_root
                    self.changes_since_snapshot += 1  # the next periodic snapshot writes it
            await self._start_follow()
            await self.wait_applied(timeout=None)
            return len(self.ix)

    async def close(self) -> None:
        await self._stop_follow()
        self.ix.close()
