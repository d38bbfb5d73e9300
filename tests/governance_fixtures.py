"""Helpers for the governance tests: a frozen clock and ways to find sandbox persons."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from territoria.governance import Governance, ReadRequest, ReadResult


@dataclass
class FrozenClock:
    """A clock tests move by hand (the ledger, consents and retention all read it)."""

    now: datetime = field(default_factory=lambda: datetime(2026, 6, 1, 9, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        self.now += timedelta(microseconds=1)  # strictly increasing, like a real clock
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def persons_in(gov: Governance, *sources: str) -> list[str]:
    """Person keys with a record in every one of these sources, sorted."""
    found: set[str] | None = None
    for source in sources:
        rows = gov.db.query(
            "SELECT DISTINCT person_key FROM id_mentions WHERE source = ?", [source]
        )
        keys = {str(r[0]) for r in rows}
        found = keys if found is None else found & keys
    return sorted(found or ())


def read(gov: Governance, actor: str, purpose: str, view: str, **kw: object) -> ReadResult:
    return gov.read(ReadRequest(actor, purpose, view, **kw))  # type: ignore[arg-type]
