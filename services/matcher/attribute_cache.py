"""Descriptors of temporary attributes the matcher has seen, so an attribute reference (the
documented pipeline: create an attribute from a descriptor, then match by its id) resolves
without a round trip to the faces service.

Where entries come from:
- KIND_ATTRIBUTE_CREATE notices on FACES_CHANGES (faces sends one per created attribute,
  without the outbox: a notice may be lost, or arrive late);
- GetAttribute answers of the faces service, kept only if no attribute delete was applied
  while the answer travelled (`deletes`, as FaceRecords does with its generation).
Why an entry is never stale:
- deletes come through the outbox (KIND_ATTRIBUTE_DELETE, before the delete returns), and a
  match first waits until every change on the stream when it arrived is applied, so a
  delete that returned before the match is applied before the cache is read;
- a notice that arrives after its attribute's delete (another faces replica published it
  late) is refused: deleted ids are remembered until the attribute would have expired, and
  accounts deleted as a whole are remembered for good (account ids are never reused);
- expiry is time-based (faces compares expire_time with its database clock): an entry is
  not used within `margin_s` of its expire_time, so clock skew up to that margin sends the
  reference to the faces service, which decides.
Size: at most `capacity` entries; expired ones go first, then the oldest.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np

MARGIN_S = 2.0


class AttributeCache:
    def __init__(
        self,
        capacity: int = 100_000,
        margin_s: float = MARGIN_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.capacity = capacity
        self.margin_s = margin_s
        self._clock = clock
        self._lock = threading.Lock()  # changes are applied in a worker thread
        # attribute_id -> (account_id, expire_time (epoch s), unit vector)
        self._entries: dict[str, tuple[str, float, np.ndarray]] = {}
        self._deleted: dict[str, float] = {}  # attribute_id -> until when to refuse notices
        self._gone_accounts: set[str] = set()
        self.deletes = 0  # bumped by every applied delete (see put_read)
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def created(self, attribute_id: str, account_id: str, expire: float, vec: np.ndarray) -> None:
        """A KIND_ATTRIBUTE_CREATE notice (with a descriptor of the matcher's version)."""
        with self._lock:
            if attribute_id in self._deleted or account_id in self._gone_accounts:
                return  # a late notice of something already deleted
            self._put(attribute_id, account_id, expire, vec)

    def put_read(
        self, attribute_id: str, account_id: str, expire: float, vec: np.ndarray, deletes: int
    ) -> None:
        """An attribute read from the faces service when `deletes` was the delete count:
        kept only if no delete was applied meanwhile (it might have been this one's)."""
        with self._lock:
            if deletes != self.deletes or account_id in self._gone_accounts:
                return
            if attribute_id in self._deleted:
                return
            self._put(attribute_id, account_id, expire, vec)

    def deleted(self, attribute_id: str, account_id: str) -> None:
        """KIND_ATTRIBUTE_DELETE: one attribute, or (attribute_id empty) an account's all."""
        with self._lock:
            self.deletes += 1
            if not attribute_id:
                self._gone_accounts.add(account_id)
                for key in [k for k, e in self._entries.items() if e[0] == account_id]:
                    del self._entries[key]
                return
            entry = self._entries.pop(attribute_id, None)
            # Refuse its notice until it would have expired anyway (an attribute lives at
            # most a day); without an entry, for the longest lifetime.
            until = entry[1] if entry is not None else self._clock() + 86_400.0
            self._deleted[attribute_id] = until + self.margin_s
            if len(self._deleted) > 4 * self.capacity:
                now = self._clock()
                self._deleted = {k: t for k, t in self._deleted.items() if t > now}

    def get(self, attribute_id: str, account_id: str | None) -> np.ndarray | None:
        """The unit descriptor of a live attribute visible to `account_id` (None: every
        account), or None: not held, someone else's, or within the margin of its expiry."""
        entry = self._entries.get(attribute_id)
        if (
            entry is None
            or (account_id is not None and entry[0] != account_id)
            or entry[1] - self.margin_s <= self._clock()
        ):
            self.misses += 1
            return None
        self.hits += 1
        return entry[2]

    def clear(self) -> None:
        with self._lock:
            self.deletes += 1
            self._entries.clear()

    def _put(self, attribute_id: str, account_id: str, expire: float, vec: np.ndarray) -> None:
        if self.capacity <= 0:
            return
        entries = self._entries
        if attribute_id not in entries and len(entries) >= self.capacity:
            now = self._clock()
            for key in [k for k, e in entries.items() if e[1] - self.margin_s <= now]:
                del entries[key]
            while len(entries) >= self.capacity:  # the oldest notices first
                del entries[next(iter(entries))]
        entries[attribute_id] = (account_id, expire, vec)
