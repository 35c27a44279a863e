"""A writer-preferring readers/writer lock.

Searches (readers) run concurrently -- numpy matmul and hnswlib knn_query release the GIL --
while mutations (writers) need exclusive access: hnswlib's knn_query is not safe against
mark_deleted/add_items, and swap-remove moves rows under a running scan. Writers are preferred
so a steady stream of searches cannot starve deletes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class _Reading:
    """`RWLock.read()`'s context manager: a plain class, not a generator, since every search
    takes it (a @contextmanager costs several times the locking itself)."""

    __slots__ = ("_lock",)

    def __init__(self, lock: RWLock) -> None:
        self._lock = lock

    def __enter__(self) -> None:
        lock = self._lock
        with lock._cond:
            while lock._writer or lock._writers_waiting:
                lock._cond.wait()
            lock._readers += 1

    def __exit__(self, *_exc: object) -> None:
        lock = self._lock
        with lock._cond:
            lock._readers -= 1
            if lock._readers == 0:
                lock._cond.notify_all()


class RWLock:
    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0
        self._reading = _Reading(self)  # stateless: one serves every reader

    def read(self) -> _Reading:
        return self._reading

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            try:
                while self._writer or self._readers:
                    self._cond.wait()
            finally:
                self._writers_waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()
