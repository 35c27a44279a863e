"""Face records (serialized faces_pb2.Face) of every indexed face, kept beside the descriptors
so a match answers from the matcher's own state and never reads the faces service.

Records arrive with the descriptors: FACES_CHANGES messages carry the face record after the
change (FaceChange.face), StreamDescriptors carries it for the full load, and snapshots store
them next to the index. A delete drops its record; a list deletion removes that list from
the records holding it. A match first waits until every change published before it arrived
is applied (read-your-writes), so a record found here is current.

A face indexed without a record (a snapshot written before records existed) is read from
the faces service once; such a read is stored only if no change was applied while it was
being read (`generation`), so an old read cannot outlive the change that made it old.
Records are kept as bytes: a fraction of the memory of message objects, parsed into the
response by protobuf's C code. A snapshot's records stay as they were read: one blob plus
offsets and a face id -> row table (`_Base`, built with C-level loops), so a restart with a
million records takes a fraction of a second; a record changed after the load moves into
the per-face dict and leaves the base.
"""

from __future__ import annotations

import bisect
import json
import sys
import threading
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from luna.faces.v1 import faces_pb2

FILE = "face_records.bin"
_INDEX = "face_records.npz"
_ACCOUNTS = "face_records.json"


class _Base:
    """The records of a loaded snapshot still untouched: record i is blob[offsets[i]:
    offsets[i + 1]] of accounts[account_of[i]]; `rows` maps the face ids still held here."""

    def __init__(
        self,
        face_ids: list[str],
        offsets: list[int],
        blob: bytes,
        account_of: list[int],
        accounts: list[str],
    ) -> None:
        self.face_ids = face_ids
        self.offsets = offsets
        self.blob = blob
        self.account_of = account_of
        self.accounts = accounts
        self.rows: dict[str, int] = dict(zip(face_ids, range(len(face_ids)), strict=True))

    def record(self, row: int) -> tuple[str, bytes]:
        return (
            self.accounts[self.account_of[row]],
            self.blob[self.offsets[row] : self.offsets[row + 1]],
        )

    def get(self, face_id: str) -> tuple[str, bytes] | None:
        row = self.rows.get(face_id)
        return None if row is None else self.record(row)

    def rows_holding(self, needle: bytes) -> list[int]:
        """Rows still held whose record bytes contain `needle` (a C scan of the blob)."""
        out: list[int] = []
        at = self.blob.find(needle)
        while at >= 0:
            row = bisect.bisect_right(self.offsets, at) - 1
            if self.rows.get(self.face_ids[row]) == row:
                out.append(row)
            at = self.blob.find(needle, self.offsets[row + 1])
        return out


class FaceRecords:
    def __init__(self, capacity: int = 1) -> None:
        # capacity 0 keeps nothing (every match reads records from the faces service: a
        # debugging switch); any other value keeps every indexed face's record.
        self.enabled = capacity != 0
        self._lock = threading.Lock()  # changes are applied in a worker thread
        self._records: dict[str, tuple[str, bytes]] = {}  # face_id -> (account_id, Face bytes)
        self._base: _Base | None = None  # a snapshot's records not changed since its load
        self.generation = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._records) + (len(self._base.rows) if self._base is not None else 0)

    def _get(self, face_id: str) -> tuple[str, bytes] | None:
        rec = self._records.get(face_id)
        if rec is None and self._base is not None:
            return self._base.get(face_id)
        return rec

    def _leave_base(self, face_ids: Iterable[str]) -> None:
        """Caller holds the lock and has written (or dropped) these records in the dict."""
        base = self._base
        if base is not None:
            for face_id in face_ids:
                base.rows.pop(face_id, None)

    def set(self, face: faces_pb2.Face) -> None:
        """The record of a face after a change (FaceChange.face / FaceDescriptor.face)."""
        with self._lock:
            self.generation += 1
            if self.enabled:
                self._records[face.face_id] = (
                    sys.intern(face.account_id),
                    face.SerializeToString(),
                )
            self._leave_base((face.face_id,))

    def set_many(self, faces: Iterable[faces_pb2.Face]) -> None:
        if not self.enabled:
            return
        rows = [(f.face_id, (sys.intern(f.account_id), f.SerializeToString())) for f in faces]
        with self._lock:
            self.generation += 1
            self._records.update(rows)
            self._leave_base(face_id for face_id, _ in rows)

    def forget(self, face_id: str) -> None:
        with self._lock:
            self.generation += 1
            self._records.pop(face_id, None)
            self._leave_base((face_id,))

    def set_lists(self, faces: Iterable[tuple[str, Iterable[str]]]) -> None:
        """(face_id, its lists afterwards) of a link or unlink: the records held get those
        list_ids (a link changes nothing else in a record); missing ones stay missing."""
        with self._lock:
            self.generation += 1
            for face_id, list_ids in faces:
                rec = self._get(face_id)
                if rec is None:
                    continue
                face = faces_pb2.Face.FromString(rec[1])
                del face.list_ids[:]
                face.list_ids.extend(list_ids)
                self._records[face_id] = (rec[0], face.SerializeToString())
                self._leave_base((face_id,))

    def drop_list(self, list_id: str) -> None:
        """A list was deleted: no record names it any more."""
        needle = list_id.encode()
        with self._lock:
            self.generation += 1
            held = list(self._records.items())
            base = self._base
            if base is not None:
                held += [
                    (base.face_ids[row], base.record(row)) for row in base.rows_holding(needle)
                ]
            for face_id, (account, raw) in held:
                if needle not in raw:  # a byte scan in C; parse only the few that hold it
                    continue
                face = faces_pb2.Face.FromString(raw)
                kept = [x for x in face.list_ids if x != list_id]
                if len(kept) != len(face.list_ids):
                    del face.list_ids[:]
                    face.list_ids.extend(kept)
                    self._records[face_id] = (account, face.SerializeToString())
                    self._leave_base((face_id,))

    def clear(self) -> None:
        with self._lock:
            self.generation += 1
            self._records.clear()
            self._base = None

    def get_many(
        self, face_ids: Iterable[str], account_id: str | None
    ) -> tuple[dict[str, bytes], list[str]]:
        """(records found visible to `account_id` (None: every account), ids to read)."""
        found: dict[str, bytes] = {}
        missing: list[str] = []
        records = self._records
        base = self._base
        for face_id in face_ids:
            # dict reads are atomic under the GIL; writers replace whole entries (a record
            # leaving the base is written into the dict first).
            rec = records.get(face_id)
            if rec is None and base is not None:
                rec = base.get(face_id)
            if rec is None:
                missing.append(face_id)
            elif account_id is None or rec[0] == account_id:
                found[face_id] = rec[1]
        self.hits += len(found)
        self.misses += len(missing)
        return found, missing

    def put_many(self, faces: Iterable[faces_pb2.Face], generation: int) -> None:
        """Records read from the faces service, kept unless a change came meanwhile."""
        if not self.enabled:
            return
        rows = [(f.face_id, (sys.intern(f.account_id), f.SerializeToString())) for f in faces]
        with self._lock:
            if generation != self.generation:
                return  # a change was applied meanwhile: these reads may predate it
            self._records.update(rows)

    # --- snapshots -------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        """Write every record into a snapshot directory (called under the index write lock,
        so the records match the index state the snapshot holds, or are newer: replaying
        the stream from the snapshot's sequence is idempotent)."""
        with self._lock:
            items = list(self._records.items())
            base = self._base
            if base is not None:
                items += [(f, base.record(row)) for f, row in base.rows.items()]
        accounts = sorted({acc for _, (acc, _) in items})
        acc_idx = {a: i for i, a in enumerate(accounts)}
        np.savez(
            directory / _INDEX,
            ids=np.array([f.encode() for f, _ in items], dtype="S36"),
            lengths=np.fromiter((len(r[1]) for _, r in items), dtype=np.uint32, count=len(items)),
            accounts=np.fromiter(
                (acc_idx[r[0]] for _, r in items), dtype=np.int32, count=len(items)
            ),
        )
        (directory / _ACCOUNTS).write_text(json.dumps(accounts), encoding="utf-8")
        with open(directory / FILE, "wb") as out:
            out.writelines(r[1] for _, r in items)

    def load(self, directory: Path) -> bool:
        """Replace the records with a snapshot's; False when it has none (older format)."""
        if not (directory / FILE).exists():
            return False
        accounts = [sys.intern(a) for a in json.loads((directory / _ACCOUNTS).read_text())]
        with np.load(directory / _INDEX) as z:
            face_ids = z["ids"].astype(np.str_).tolist()  # ASCII uuids, decoded in C
            offsets = np.concatenate(([0], np.cumsum(z["lengths"], dtype=np.int64))).tolist()
            account_of = z["accounts"].tolist()
        base = _Base(face_ids, offsets, (directory / FILE).read_bytes(), account_of, accounts)
        with self._lock:
            self.generation += 1
            if self.enabled:
                self._records = {}
                self._base = base
        return True
