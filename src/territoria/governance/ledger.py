"""The tamper-evident audit ledger: one hash-chained record per governed access or policy change.

Why: residents ask "who looked at my data?" and the DPO must be able to prove the answer was not
edited. Every governed read (allowed or refused), every write of personal data and every policy
change appends ONE record whose hash covers its content, its position (``seq``) and the previous
record's hash. The verifier therefore finds, at the record concerned, any modification, deletion,
insertion or reordering; the head row finds a naive truncation; a head copied outside the store
(``save_anchor``, e.g. mailed to the DPO or time-stamped) finds what a chain alone cannot: a tail
truncated and rebuilt, or a whole chain re-hashed after an edit.

``audit_subjects`` indexes records by person (the resident's view must be fast); it is not
chained itself, so the verifier checks it against the chained ``persons`` column.

The verifier must stay fast on millions of records: it reads pages of records in which the engine
has already built each canonical text, hashes them in Python (never in the database, whose
functions a forger with full control could replace) and compares everything else in bulk. Once
records store their previous hash, parts of the chain can be checked independently: on the
embedded store a large ledger is split between worker processes, and a part where anything is
wrong is checked again here, record by record, so problems come out exactly as in one pass.

This module writes and reads the ledger; the verifier is in ``ledger_verify.py`` (with
``ledger_check.py`` and ``ledger_workers.py``) and the storage layout in ``ledger_tables.py``.

    ledger = AuditLedger(store.tables())
    ledger.append(AuditEntry("read", "agent:42", "ccas", "instructeur", "ccas.instruction",
                             "public_task", "person_360", persons=("P7K2M9Q4",)))
    report = ledger.verify(load_anchors(Path("ancres.jsonl")))
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, get_args

from territoria.backends.tables import Row, SQLiteTables, TableDB
from territoria.core.errors import GovernanceError
from territoria.governance.ledger_check import LedgerProblem
from territoria.governance.ledger_tables import (
    COLUMNS,
    GENESIS,
    POSTGRES,
    SCHEMA,
    SEPARATOR,
    SQLITE,
    LedgerHead,
)
from territoria.governance.ledger_verify import VerifyReport, VerifySettings, verify_ledger

# Read from this module by ``verify``, so that a test can replace them here.
from territoria.governance.ledger_workers import run_parts as _run_parts
from territoria.governance.ledger_workers import verify_part as _verify_part

__all__ = [
    "GENESIS",
    "AuditEntry",
    "AuditLedger",
    "DecisionKind",
    "EntryKind",
    "LedgerHead",
    "LedgerProblem",
    "LedgerRecord",
    "VerifyReport",
    "canonical",
    "chain_hash",
    "load_anchors",
    "save_anchor",
]

EntryKind = Literal["read", "write", "policy"]
DecisionKind = Literal["allow", "deny"]

PAGE_ROWS = 1_000  # measured: pages of 1 000 stay in the CPU cache (10 000: ~12 % slower)
# From this many records, verification forks worker processes (one per CPU, or ``WORKERS``)
# that check parts of the chain at once. Measured on two cores: break-even near 8 000 records;
# 20 000 are verified ~40 % faster, 50 000 ~70 % faster than in one process.
PARALLEL_MIN = 20_000
WORKERS: int | None = None
# The head row and the last record, read in one statement (they must agree before an append).
_HEAD_AND_LAST = (
    "SELECT count, hash, (SELECT seq FROM audit_ledger ORDER BY seq DESC LIMIT 1), "
    "(SELECT hash FROM audit_ledger ORDER BY seq DESC LIMIT 1) FROM audit_head"
)
# Up to this many rows are written in one INSERT statement; more by the bulk insert.
_INLINE_ROWS = 64


@dataclass(frozen=True)
class AuditEntry:
    """What one governed access or policy change was; ``persons`` is stored sorted and unique."""

    kind: EntryKind
    actor: str
    service: str
    role: str
    purpose: str
    legal_basis: str
    view: str
    persons: tuple[str, ...] = ()
    fields: tuple[str, ...] = ()
    decision: DecisionKind = "allow"
    rule: str = ""
    reason: str = ""
    defer_until: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "persons", tuple(sorted(set(self.persons))))
        object.__setattr__(self, "fields", tuple(self.fields))
        if self.defer_until == "":
            object.__setattr__(self, "defer_until", None)
        with contextlib.suppress(TypeError, ValueError):  # an invalid date is refused on append
            day = date.fromisoformat(self.defer_until)  # type: ignore[arg-type]
            object.__setattr__(self, "defer_until", day.isoformat())


@dataclass(frozen=True)
class LedgerRecord:
    """An entry as stored: its position, time and chain links."""

    seq: int
    at: str
    entry: AuditEntry
    prev_hash: str
    hash: str


def chain_hash(prev_hash: str, canonical: str) -> str:
    """``sha256(bytes(prev_hash) + canonical)`` in hexadecimal."""
    return hashlib.sha256(bytes.fromhex(prev_hash) + canonical.encode()).hexdigest()


def canonical(values: Sequence[Any]) -> str:
    """The hashed text of a row's chained columns (``None`` as an empty string)."""
    return SEPARATOR.join("" if v is None else str(v) for v in values)


_KINDS = get_args(EntryKind)
_DECISIONS = get_args(DecisionKind)
_TEXT_FIELDS = ("actor", "service", "role", "purpose", "legal_basis", "view", "rule", "reason")
# What a person key may not hold: it is stored in a JSON array and compared without decoding.
_BAD_KEY_CHAR = re.compile(r'["\\\x00-\x1f]')


def _compact(values: Sequence[str]) -> str:
    return json.dumps(list(values), ensure_ascii=False, separators=(",", ":"))


def _timestamp(moment: datetime) -> str:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="microseconds")


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _invalid_entry(message: str, field_name: str) -> GovernanceError:
    return GovernanceError(
        f"entrée d'audit refusée : {message}", code="audit_entry_invalid", field_name=field_name
    )


def _check_entry(entry: AuditEntry) -> None:
    """Refuse what would make the canonical text ambiguous or the stored row unreadable."""
    if entry.kind not in _KINDS:
        raise _invalid_entry(f"nature inconnue {entry.kind!r}", "kind")
    if entry.decision not in _DECISIONS:
        raise _invalid_entry(f"décision inconnue {entry.decision!r}", "decision")
    for name in _TEXT_FIELDS:
        value = getattr(entry, name)
        if not isinstance(value, str) or SEPARATOR in value:
            raise _invalid_entry("texte attendu, sans caractère de contrôle 0x1F", name)
    for key in entry.persons:
        if not key or _BAD_KEY_CHAR.search(key):
            raise _invalid_entry(f"clé de personne invalide {key!r}", "persons")
    if entry.defer_until is not None:
        try:
            date.fromisoformat(entry.defer_until)
        except (TypeError, ValueError):
            raise _invalid_entry(
                f"date de levée {entry.defer_until!r} invalide (AAAA-MM-JJ)", "defer_until"
            ) from None


def _chained_values(seq: int, at: str, entry: AuditEntry) -> tuple[Any, ...]:
    """The values of the ``CHAINED`` columns, in order."""
    return (
        seq, at, entry.kind, entry.actor, entry.service, entry.role, entry.purpose,
        entry.legal_basis, entry.view, _compact(entry.persons), _compact(entry.fields),
        entry.decision, entry.rule, entry.reason, entry.defer_until,
    )  # fmt: skip


def _chained_rows(
    entries: Sequence[AuditEntry], count: int, last: str, at: str
) -> tuple[list[LedgerRecord], list[tuple[Any, ...]]]:
    """The records following ``count``/``last``, and their table rows."""
    records, rows = [], []
    for seq, entry in enumerate(entries, start=count + 1):
        values = _chained_values(seq, at, entry)
        digest = chain_hash(last, canonical(values))
        records.append(LedgerRecord(seq, at, entry, last, digest))
        rows.append((*values, last, digest))
        last = digest
    return records, rows


@functools.lru_cache(maxsize=2 * _INLINE_ROWS)
def _insert_sql(table: str, columns: tuple[str, ...], rows: int) -> str:
    marks = ", ".join(f"({', '.join('?' for _ in columns)})" for _ in range(rows))
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES {marks}"


def _record(row: Row) -> LedgerRecord:
    seq, at, kind, actor, service, role, purpose, basis, view, persons, fields = row[:11]
    decision, rule, reason, defer_until, prev_hash, hash_ = row[11:]
    try:
        person_keys, field_names = tuple(json.loads(persons)), tuple(json.loads(fields))
    except (TypeError, ValueError):
        raise GovernanceError(
            f"enregistrement d'audit n°{seq} illisible (personnes ou champs altérés)",
            code="audit_record_unreadable",
            hint="lancez la vérification du registre d'audit",
        ) from None
    entry = AuditEntry(
        kind, actor, service, role, purpose, basis, view, person_keys, field_names,
        decision, rule, reason, defer_until,
    )  # fmt: skip
    return LedgerRecord(seq, at, entry, prev_hash, hash_)


def _bound(value: str, name: str, *, end: bool) -> str:
    """A ``since``/``until`` filter as a stored timestamp (a bare date covers its whole day)."""
    try:
        if len(value) == 10:
            day = date.fromisoformat(value) + timedelta(days=1 if end else 0)
            return _timestamp(datetime(day.year, day.month, day.day))
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise GovernanceError(
            f"date {value!r} invalide",
            code="audit_filter_invalid",
            field_name=name,
            expected="date ISO AAAA-MM-JJ ou horodatage ISO",
        ) from None
    return _timestamp(moment + timedelta(microseconds=1 if end else 0))


def _filters(
    person: str | None,
    actor: str | None,
    purpose: str | None,
    decision: str | None,
    kind: str | None,
    since: str | None,
    until: str | None,
) -> tuple[str, list[Any]]:
    """The WHERE clause of ``records``/``count`` (``until`` is inclusive)."""
    clauses, params = [], []
    if person is not None:
        clauses.append("seq IN (SELECT seq FROM audit_subjects WHERE person_key = ?)")
        params.append(person)
    for column, value in (
        ("actor", actor),
        ("purpose", purpose),
        ("decision", decision),
        ("kind", kind),
    ):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if since is not None:
        clauses.append("at >= ?")
        params.append(_bound(since, "since", end=False))
    if until is not None:
        clauses.append("at < ?")
        params.append(_bound(until, "until", end=True))
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


class AuditLedger:
    """The workspace's audit ledger on a ``TableDB`` (tables created if missing)."""

    def __init__(self, db: TableDB, clock: Callable[[], datetime] | None = None) -> None:
        self.db = db
        self._clock = clock or _utc_now
        self._dialect = SQLITE if isinstance(db, SQLiteTables) else POSTGRES
        with db.transaction():
            dialect = self._dialect
            db.script(SCHEMA.format(seq_type=dialect.seq_type, clustered=dialect.clustered))
            db.execute(
                "INSERT INTO audit_head (id, count, hash, at) SELECT 1, 0, ?, '' "
                "WHERE NOT EXISTS (SELECT 1 FROM audit_ledger) ON CONFLICT (id) DO NOTHING",
                [GENESIS],
            )

    # -- writing -----------------------------------------------------------------------------

    def append(self, entry: AuditEntry) -> LedgerRecord:
        """Add one record (its own transaction)."""
        return self.append_many([entry])[0]

    def append_many(self, entries: Sequence[AuditEntry]) -> list[LedgerRecord]:
        """Add records in one transaction, in order; nothing is written if one is invalid."""
        for entry in entries:
            _check_entry(entry)
        if not entries:
            return []
        with self.db.transaction():
            count, last = self._locked_head()
            at = _timestamp(self._clock())
            records, rows = _chained_rows(entries, count, last, at)
            self._insert("audit_ledger", COLUMNS, rows)
            subjects = [(r.seq, key) for r in records for key in r.entry.persons]
            self._insert("audit_subjects", ("seq", "person_key"), subjects)
            self.db.execute(
                "UPDATE audit_head SET count = ?, hash = ?, at = ?",
                [records[-1].seq, records[-1].hash, at],
            )
        return records

    def _locked_head(self) -> tuple[int, str]:
        """(count, hash) of the head, locked until commit; refuses to extend a broken chain."""
        if self._dialect.lock_head:
            self.db.query(self._dialect.lock_head)
        # After the lock, one statement: on PostgreSQL it sees what the previous holder committed.
        heads = self.db.query(_HEAD_AND_LAST)
        count, hash_, last_seq, last_hash = heads[0] if len(heads) == 1 else (None,) * 4
        if (count, hash_) != (last_seq or 0, last_hash or GENESIS):
            raise GovernanceError(
                "registre d'audit incohérent : sa tête ne correspond pas au dernier "
                "enregistrement ; plus aucun accès ne peut être journalisé",
                code="audit_head_mismatch",
                hint="lancez la vérification du registre d'audit et prévenez le DPO",
            )
        return int(count), str(hash_)

    def _insert(self, table: str, columns: tuple[str, ...], rows: Sequence[Sequence[Any]]) -> None:
        """A few rows in one plain INSERT (cheaper than a bulk load); more by the bulk insert."""
        if len(rows) > _INLINE_ROWS:
            self.db.insert(table, columns, rows)
        elif rows:
            values = [value for row in rows for value in row]
            self.db.execute(_insert_sql(table, columns, len(rows)), values)

    # -- reading -----------------------------------------------------------------------------

    def head(self) -> LedgerHead:
        """The head row: what to anchor outside the store."""
        rows = self.db.query("SELECT count, hash, at FROM audit_head")
        if len(rows) != 1:
            raise GovernanceError(
                "tête du registre d'audit absente",
                code="audit_head_missing",
                hint="lancez la vérification du registre d'audit et prévenez le DPO",
            )
        count, hash_, at = rows[0]
        return LedgerHead(int(count), str(hash_), str(at))

    def records(
        self,
        *,
        person: str | None = None,
        actor: str | None = None,
        purpose: str | None = None,
        decision: str | None = None,
        kind: str | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[LedgerRecord]:
        """Records matching every filter given, newest first (``since``/``until`` inclusive)."""
        where, params = _filters(person, actor, purpose, decision, kind, since, until)
        rows = self.db.query(
            f"SELECT {', '.join(COLUMNS)} FROM audit_ledger{where} "
            "ORDER BY seq DESC LIMIT ? OFFSET ?",
            [*params, int(limit), int(offset)],
        )
        return [_record(row) for row in rows]

    def count(
        self,
        *,
        person: str | None = None,
        actor: str | None = None,
        purpose: str | None = None,
        decision: str | None = None,
        kind: str | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> int:
        """Number of records matching every filter given."""
        where, params = _filters(person, actor, purpose, decision, kind, since, until)
        return int(self.db.query(f"SELECT COUNT(*) FROM audit_ledger{where}", params)[0][0])

    # -- verifying ---------------------------------------------------------------------------

    def verify(
        self,
        anchors: Sequence[LedgerHead] = (),
        progress: Callable[[int, int], None] | None = None,
    ) -> VerifyReport:
        """Recompute the chain; check the person index, the head row and the anchors.

        Reads only, takes no lock: appends may go on; records appended meanwhile are either
        verified or left for the next run, never reported as problems. From ``PARALLEL_MIN``
        records on the embedded store, worker processes check parts of the chain at once.
        """
        # Read at each call, so these module settings can be changed (by a benchmark, a test).
        settings = VerifySettings(PAGE_ROWS, PARALLEL_MIN, WORKERS, _run_parts, _verify_part)
        return verify_ledger(self.db, self._dialect, settings, anchors, progress)


# -- anchors outside the store -----------------------------------------------------------------

_ANCHOR_EXPECTED = '{"count": entier >= 0, "hash": 64 caractères hexadécimaux, "at": texte}'


def save_anchor(path: Path, head: LedgerHead) -> None:
    """Append the head as one JSON line to ``path`` (a file kept outside the store)."""
    line = json.dumps(head.as_dict(), ensure_ascii=False) + "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as out:
            out.write(line)
            out.flush()
            os.fsync(out.fileno())
    except OSError as exc:
        raise GovernanceError(
            f"ancre non enregistrée : {exc.strerror or exc}", code="anchor_unwritable", file=path
        ) from None


def _anchor(text: str, path: Path, line: int) -> LedgerHead:
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        count, hash_, at = data.get("count"), data.get("hash"), data.get("at", "")
        if (
            isinstance(count, int)
            and not isinstance(count, bool)
            and count >= 0
            and isinstance(hash_, str)
            and len(hash_) == 64
            and all(c in "0123456789abcdef" for c in hash_)
            and isinstance(at, str)
        ):
            return LedgerHead(count, hash_, at)
    raise GovernanceError(
        "ancre illisible",
        code="anchor_invalid",
        file=path,
        line=line,
        expected=_ANCHOR_EXPECTED,
    )


def load_anchors(path: Path) -> list[LedgerHead]:
    """The heads saved by ``save_anchor``, in file order (blank lines ignored)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "encodage non UTF-8"
        raise GovernanceError(
            f"fichier d'ancres illisible : {reason or exc}",
            code="anchor_file_unreadable",
            file=path,
        ) from None
    return [
        _anchor(line, path, number)
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip()
    ]
