"""What the retention engine keeps: its tables, the records it returns, and the digest that
lets an elimination be verified later.

Why apart from the engine (``retention.py``): these are the stable, documented shapes (the
statuses of the archivists' workflow, the *bordereau d'élimination*, the elimination record) that
the CLI, the API and the register export read, independently of how the engine computes them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = [
    "ELIMINATION_COLUMNS",
    "HIDDEN_STATUSES",
    "REQUEST_COLUMNS",
    "SCHEMA",
    "EliminationRecord",
    "EliminationRequest",
    "RecordStatus",
    "RequestKind",
    "RetentionPlan",
    "SourceRetention",
    "ids_digest",
]

RecordStatus = Literal["active", "archived", "to_sort", "pending_elimination", "eliminated"]
RequestKind = Literal["eliminate", "sort"]
HIDDEN_STATUSES: tuple[RecordStatus, ...] = (
    "archived",
    "to_sort",
    "pending_elimination",
    "eliminated",
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS gov_retention (
    source TEXT NOT NULL, record_id TEXT NOT NULL, status TEXT NOT NULL, since TEXT NOT NULL,
    request_id TEXT, PRIMARY KEY (source, record_id)
);
CREATE INDEX IF NOT EXISTS gov_retention_request ON gov_retention (request_id);
CREATE TABLE IF NOT EXISTS gov_elimination_requests (
    request_id TEXT PRIMARY KEY, source TEXT NOT NULL, kind TEXT NOT NULL,
    count BIGINT NOT NULL, oldest TEXT, newest TEXT, reference TEXT NOT NULL,
    as_of TEXT NOT NULL, created_at TEXT NOT NULL, status TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS gov_eliminations (
    elimination_id TEXT PRIMARY KEY, request_id TEXT NOT NULL UNIQUE, source TEXT NOT NULL,
    count BIGINT NOT NULL, kept BIGINT NOT NULL, visa TEXT NOT NULL, approved_by TEXT NOT NULL,
    approved_at TEXT NOT NULL, digest TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS gov_retention_lock (name TEXT PRIMARY KEY, version BIGINT NOT NULL)
"""
REQUEST_COLUMNS = (
    "request_id, source, kind, count, oldest, newest, reference, as_of, created_at, status"
)
ELIMINATION_COLUMNS = (
    "elimination_id, request_id, source, count, kept, visa, approved_by, approved_at, digest"
)


@dataclass(frozen=True)
class SourceRetention:
    """Where a source stands at ``as_of``.

    ``active`` counts the records that stay active (``undated`` is part of it), ``due`` the
    active records whose DUA has ended, ``already`` the records in each other status;
    ``missing_id`` the raw rows without a record id (they cannot be tracked and stay readable).
    """

    source: str
    duration: str
    final_fate: str
    date_field: str | None
    active: int
    due: int
    undated: int
    already: dict[str, int]
    missing_id: int = 0


@dataclass(frozen=True)
class RetentionPlan:
    """What :meth:`RetentionEngine.apply` would do at ``as_of``; ``due``: source → record ids."""

    as_of: str
    sources: list[SourceRetention]
    due: dict[str, list[str]]
    untracked: list[str] = field(default_factory=list)
    record_dates: dict[str, dict[str, str]] = field(default_factory=dict, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (the records' dates stay out: the bordereau carries only their range)."""
        return {
            "as_of": self.as_of,
            "sources": [asdict(s) for s in self.sources],
            "due": {s: list(ids) for s, ids in self.due.items()},
            "untracked": list(self.untracked),
        }


@dataclass(frozen=True)
class EliminationRequest:
    """A *bordereau d'élimination* (or a list to sort) waiting for the archives' visa."""

    request_id: str
    source: str
    record_ids: tuple[str, ...]
    count: int
    oldest: str | None
    newest: str | None
    reference: str
    created_at: str
    status: Literal["pending", "approved"]
    kind: RequestKind = "eliminate"
    as_of: str = ""


@dataclass(frozen=True)
class EliminationRecord:
    """The proof of an elimination: who approved it, under which visa, and of which records."""

    elimination_id: str
    request_id: str
    source: str
    count: int
    visa: str
    approved_by: str
    approved_at: str
    digest: str
    kept: int = 0


def ids_digest(record_ids: Iterable[str]) -> str:
    """SHA-256 of the sorted record ids joined by newlines (what an elimination record keeps)."""
    return hashlib.sha256("\n".join(sorted(record_ids)).encode("utf-8")).hexdigest()
