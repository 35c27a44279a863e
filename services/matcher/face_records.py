"""Face records (faces_pb2.Face) of recent match results, kept so a match need not ask the
faces service for faces it returned a moment ago (that read was a third of a match's time).

Correctness rests on FACES_CHANGES: every change of a face (descriptor, fields, lists,
deletion) carries its face_id and drops its record when the matcher applies it, and a list
deletion drops them all. A match first waits until every change published before it arrived
is applied (read-your-writes), so a record it finds here is current. A record read from the
faces service is stored only if no change was applied while it was being read
(`generation`), so an old read cannot outlive the change that made it old.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable

from luna.faces.v1 import faces_pb2


class FaceRecords:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._lock = threading.Lock()  # changes are applied in a worker thread
        self._records: OrderedDict[str, faces_pb2.Face] = OrderedDict()
        self.generation = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._records)

    def forget(self, face_id: str) -> None:
        with self._lock:
            self.generation += 1
            self._records.pop(face_id, None)

    def clear(self) -> None:
        with self._lock:
            self.generation += 1
            self._records.clear()

    def get_many(
        self, face_ids: Iterable[str], account_id: str | None
    ) -> tuple[dict[str, faces_pb2.Face], list[str]]:
        """(records found visible to `account_id` (None: every account), ids to read)."""
        found: dict[str, faces_pb2.Face] = {}
        missing: list[str] = []
        with self._lock:
            for face_id in face_ids:
                face = self._records.get(face_id)
                if face is None:
                    missing.append(face_id)
                    continue
                self._records.move_to_end(face_id)
                if account_id is None or face.account_id == account_id:
                    found[face_id] = face
            self.hits += len(found)
            self.misses += len(missing)
        return found, missing

    def put_many(self, faces: Iterable[faces_pb2.Face], generation: int) -> None:
        if self.capacity <= 0:
            return
        with self._lock:
            if generation != self.generation:
                return  # a change was applied meanwhile: these reads may predate it
            for face in faces:
                self._records[face.face_id] = face
                self._records.move_to_end(face.face_id)
            while len(self._records) > self.capacity:
                self._records.popitem(last=False)
