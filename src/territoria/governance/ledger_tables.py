"""How the audit ledger is stored: its tables, its chained columns and what differs by engine.

Why a module of its own: the writer (``ledger.py``) and the verifier (``ledger_verify.py`` and the
modules it uses) must agree exactly on the columns that are hashed, on the canonical text the
engine builds from them and on the head row; declaring them once, with the per-engine differences
as data (``Dialect``), keeps the two sides from drifting apart.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from territoria.backends.tables import Row, TableDB

__all__ = [
    "CHAINED",
    "COLUMNS",
    "GENESIS",
    "PATTERN",
    "POSTGRES",
    "SCHEMA",
    "SEPARATOR",
    "SQLITE",
    "Dialect",
    "LedgerHead",
    "Query",
]

GENESIS = "0" * 64
SEPARATOR = "\x1f"
# The hashed columns, in chain order; prev_hash and hash follow them in the table.
CHAINED = (
    "seq", "at", "kind", "actor", "service", "role", "purpose", "legal_basis", "view",
    "persons", "fields", "decision", "rule", "reason", "defer_until",
)  # fmt: skip
COLUMNS = (*CHAINED, "prev_hash", "hash")

# audit_subjects is clustered by seq (WITHOUT ROWID on SQLite: one b-tree instead of a table and
# its primary key index), so the verifier reads a page's index rows in record order, and the
# (person_key, seq) index serves the resident's view. Measured on SQLite with 200 000 records, a
# single (person_key, seq) b-tree instead writes ~1.2 fewer pages per append (single appends
# ~10 % faster) but the verifier must then sort the index by seq: ~0.7 µs more per record, the
# 500 000 records/s target out of reach on two cores.
SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_ledger (
    seq {seq_type} PRIMARY KEY, at TEXT NOT NULL, kind TEXT NOT NULL, actor TEXT NOT NULL,
    service TEXT NOT NULL, role TEXT NOT NULL, purpose TEXT NOT NULL, legal_basis TEXT NOT NULL,
    view TEXT NOT NULL, persons TEXT NOT NULL, fields TEXT NOT NULL, decision TEXT NOT NULL,
    rule TEXT NOT NULL, reason TEXT NOT NULL, defer_until TEXT,
    prev_hash TEXT NOT NULL, hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_subjects (
    seq BIGINT NOT NULL, person_key TEXT NOT NULL, PRIMARY KEY (seq, person_key)
){clustered};
CREATE INDEX IF NOT EXISTS audit_subjects_person ON audit_subjects (person_key, seq);
CREATE TABLE IF NOT EXISTS audit_head (
    id BIGINT PRIMARY KEY, count BIGINT NOT NULL, hash TEXT NOT NULL, at TEXT NOT NULL
)
"""
# The engine builds each record's canonical text (printf/format with this pattern: NULL as '')
# and hands it over as UTF-8 bytes: one value per record, neither decoded nor encoded in Python.
PATTERN = SEPARATOR.join("%s" for _ in CHAINED)
_ARGS = f"CAST(? AS TEXT), {', '.join(CHAINED)}"

Query = Callable[[str, Sequence[Any]], list[Row]]


def _sqlite_reader(db: TableDB) -> Callable[[], Query] | None:
    """How a worker process opens its own read-only session on the same file (``None``: none)."""
    files = [str(row[2]) for row in db.query("PRAGMA database_list") if row[1] == "main"]
    if not files or not files[0]:  # an in-memory or temporary database: no file to share
        return None
    uri = f"{Path(files[0]).as_uri()}?mode=ro"

    def open_reader() -> Query:
        conn = sqlite3.connect(uri, uri=True, timeout=30)
        return lambda sql, params: conn.execute(sql, tuple(params)).fetchall()

    return open_reader


def _encoded(texts: Sequence[Any]) -> tuple[Any, ...]:
    """Texts as UTF-8 bytes (anything else left as is, for the diagnosis to name)."""
    return tuple([text.encode() if isinstance(text, str) else text for text in texts])


def _no_reader(db: TableDB) -> Callable[[], Query] | None:
    """No worker sessions: a ``TableDB`` offers no way to open a second connection to the same
    PostgreSQL schema, so PostgreSQL ledgers are verified in the caller's session."""
    return None


@dataclass(frozen=True)
class Dialect:
    """What differs between the engines, as data."""

    seq_type: str  # SQLite: INTEGER PRIMARY KEY makes seq the rowid (pages read in table order)
    clustered: str  # how audit_subjects is stored in seq order
    lock_head: str  # SQLite's BEGIN IMMEDIATE already serialises appenders; PostgreSQL locks
    canonical: str  # each record's canonical text
    # The canonical texts of a page as bytes. SQLite hands over bytes (a BLOB); PostgreSQL sends
    # text faster than bytea (hex-encoded in its text protocol), so Python encodes it.
    as_bytes: Callable[[Sequence[Any]], tuple[Any, ...]]
    # A page's index rows ({where}) in (seq, person_key) order: their keys joined as in a persons
    # array, their seqs joined by commas, and whether a key holds a quote. SQLite reads them in
    # the order of the primary key; any other order only sends the page to the slow path.
    index_summary: str
    # How a worker process verifying part of the chain opens its own session (``None``: no
    # workers, everything is verified in the caller's session).
    reader: Callable[[TableDB], Callable[[], Query] | None]


SQLITE = Dialect(
    "INTEGER",
    " WITHOUT ROWID",
    "",
    f"CAST(printf({_ARGS}) AS BLOB)",
    tuple,
    "SELECT group_concat(person_key, '\",\"'), group_concat(seq, ','), "
    "max(instr(person_key, '\"')) FROM audit_subjects WHERE {where}",
    _sqlite_reader,
)
POSTGRES = Dialect(
    "BIGINT",
    "",
    "SELECT id FROM audit_head FOR UPDATE",
    f"format({_ARGS})",
    _encoded,
    'SELECT string_agg(person_key, \'","\' ORDER BY seq, person_key COLLATE "C"), '
    "string_agg(CAST(seq AS TEXT), ',' ORDER BY seq, person_key COLLATE \"C\"), "
    "max(strpos(person_key, '\"')) FROM audit_subjects WHERE {where}",
    _no_reader,
)


@dataclass(frozen=True)
class LedgerHead:
    """The chain's head: number of records, hash and time of the last (``GENESIS``, "")."""

    count: int
    hash: str
    at: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
