"""Results of the 4P apps' runs kept for a while, so that paging a worklist does not run it again.

A billing run or a non-take-up screening reads a whole population through the governed batch
read (one ledger record naming every person read) and takes seconds. The console keeps its
result, per worker process, under a key that always starts with the acting agent and the
purpose (an agent never sees a run made by another, nor under another purpose), for
``ttl`` seconds (15 minutes by default) or until a write that changes it (a dispute decided)
drops it. The page says when the run was made and which ledger record it is.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

__all__ = ["CachedRun", "RunCache"]

T = TypeVar("T")


@dataclass
class CachedRun(Generic[T]):
    """One run's result, when it was made, and the lock its users take to read it."""

    value: T
    made_at: datetime
    expires: float
    lock: threading.RLock = field(default_factory=threading.RLock)


class RunCache:
    """A small, time-limited, per-process store of run results (least recently used first out)."""

    def __init__(self, ttl: float = 900.0, capacity: int = 16) -> None:
        self.ttl = ttl
        self.capacity = capacity
        self._runs: OrderedDict[tuple[Hashable, ...], CachedRun[Any]] = OrderedDict()
        self._lock = threading.Lock()
        self._making: dict[tuple[Hashable, ...], threading.Lock] = {}

    def get(self, key: tuple[Hashable, ...]) -> CachedRun[Any] | None:
        """The run kept under ``key`` if it has not expired."""
        with self._lock:
            found = self._runs.get(key)
            if found is None:
                return None
            if found.expires <= time.monotonic():
                self._evict(key)
                return None
            self._runs.move_to_end(key)
            return found

    def get_or_make(
        self, key: tuple[Hashable, ...], make: Callable[[], T], now: Callable[[], datetime]
    ) -> CachedRun[T]:
        """The kept run, or a new one made once (two requests for the same key wait for one)."""
        with self._lock:
            making = self._making.setdefault(key, threading.Lock())
        with making:
            found = self.get(key)
            if found is not None:
                return found
            value = make()
            run: CachedRun[T] = CachedRun(value, now(), time.monotonic() + self.ttl)
            with self._lock:
                self._evict(key)
                self._runs[key] = run
                while len(self._runs) > self.capacity:
                    self._evict(next(iter(self._runs)))
            return run

    def drop(self, prefix: tuple[Hashable, ...]) -> int:
        """Forget every run whose key starts with ``prefix``; returns how many."""
        with self._lock:
            keys = [k for k in self._runs if k[: len(prefix)] == prefix]
            for key in keys:
                self._evict(key)
            return len(keys)

    def _evict(self, key: tuple[Hashable, ...]) -> None:
        run = self._runs.pop(key, None)
        close = getattr(run.value, "close", None) if run is not None else None
        if callable(close):
            with run.lock:  # type: ignore[union-attr]
                close()
