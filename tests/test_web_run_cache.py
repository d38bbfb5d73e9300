"""The console's cache of 4P runs: kept per key, made once, expired, dropped by prefix, closed."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from territoria.interfaces.web.run_cache import RunCache


def _now() -> datetime:
    return datetime(2025, 11, 3, 9, 0, tzinfo=UTC)


class _Closable:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


def test_a_run_is_made_once_per_key_and_dropped_by_prefix() -> None:
    cache = RunCache()
    made: list[str] = []

    def make(name: str) -> str:
        made.append(name)
        return name.upper()

    first = cache.get_or_make(("paul", "waste_billing", "2025-S2"), lambda: make("a"), _now)
    again = cache.get_or_make(("paul", "waste_billing", "2025-S2"), lambda: make("b"), _now)
    other = cache.get_or_make(("claire", "ccas_non_take_up", "2025-11"), lambda: make("c"), _now)
    assert (first.value, again.value, other.value) == ("A", "A", "C")
    assert made == ["a", "c"]
    assert first.made_at == _now()
    assert cache.drop(("paul",)) == 1
    assert cache.get(("paul", "waste_billing", "2025-S2")) is None
    assert cache.get(("claire", "ccas_non_take_up", "2025-11")) is not None


def test_runs_expire_and_the_least_recent_leaves_first_and_is_closed() -> None:
    expired = RunCache(ttl=0.0)
    expired.get_or_make(("k",), _Closable, _now)
    assert expired.get(("k",)) is None

    cache = RunCache(capacity=2)
    runs = [cache.get_or_make((i,), _Closable, _now).value for i in range(3)]
    assert [r.closed for r in runs] == [True, False, False]
    assert cache.get((0,)) is None and cache.get((2,)) is not None
    cache.drop(())
    assert all(r.closed for r in runs)


def test_two_requests_for_the_same_run_wait_for_one() -> None:
    cache = RunCache()
    calls: list[int] = []
    gate = threading.Event()

    def slow() -> int:
        calls.append(1)
        gate.wait(5)
        return len(calls)

    results: list[int] = []
    threads = [
        threading.Thread(target=lambda: results.append(cache.get_or_make(("x",), slow, _now).value))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    gate.set()
    for thread in threads:
        thread.join(5)
    assert results == [1, 1] and calls == [1]
