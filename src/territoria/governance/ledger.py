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

    ledger = AuditLedger(store.tables())
    ledger.append(AuditEntry("read", "agent:42", "ccas", "instructeur", "ccas.instruction",
                             "public_task", "person_360", persons=("P7K2M9Q4",)))
    report = ledger.verify(load_anchors(Path("ancres.jsonl")))
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, NamedTuple, get_args

from territoria.backends.tables import Row, SQLiteTables, TableDB
from territoria.core.errors import GovernanceError

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
    "load_anchors",
    "save_anchor",
]

EntryKind = Literal["read", "write", "policy"]
DecisionKind = Literal["allow", "deny"]

GENESIS = "0" * 64
SEPARATOR = "\x1f"
PAGE_ROWS = 200_000
MAX_PROBLEMS = 100
# The hashed columns, in chain order; prev_hash and hash follow them in the table.
CHAINED = (
    "seq",
    "at",
    "kind",
    "actor",
    "service",
    "role",
    "purpose",
    "legal_basis",
    "view",
    "persons",
    "fields",
    "decision",
    "rule",
    "reason",
    "defer_until",
)
COLUMNS = (*CHAINED, "prev_hash", "hash")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_ledger (
    seq {seq_type} PRIMARY KEY, at TEXT NOT NULL, kind TEXT NOT NULL, actor TEXT NOT NULL,
    service TEXT NOT NULL, role TEXT NOT NULL, purpose TEXT NOT NULL, legal_basis TEXT NOT NULL,
    view TEXT NOT NULL, persons TEXT NOT NULL, fields TEXT NOT NULL, decision TEXT NOT NULL,
    rule TEXT NOT NULL, reason TEXT NOT NULL, defer_until TEXT,
    prev_hash TEXT NOT NULL, hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_subjects (
    seq BIGINT NOT NULL, person_key TEXT NOT NULL, PRIMARY KEY (seq, person_key)
);
CREATE INDEX IF NOT EXISTS audit_subjects_person ON audit_subjects (person_key, seq);
CREATE TABLE IF NOT EXISTS audit_head (
    id BIGINT PRIMARY KEY, count BIGINT NOT NULL, hash TEXT NOT NULL, at TEXT NOT NULL
)
"""
# The database builds each record's canonical text (``format`` with this pattern, NULL as ''),
# so the verifier receives one byte string per record instead of fifteen values.
_PATTERN = SEPARATOR.join("%s" for _ in CHAINED)
_FORMAT_SQL = f"format(CAST(? AS TEXT), {', '.join(CHAINED)})"


@dataclass(frozen=True)
class _Dialect:
    """What differs between the engines, as data."""

    seq_type: str  # SQLite: INTEGER PRIMARY KEY makes seq the rowid, so pages read in table order
    row_lock: (
        str  # SQLite's BEGIN IMMEDIATE already serialises appenders; PostgreSQL locks the head
    )
    as_bytes: str  # the canonical text as UTF-8 bytes, so Python neither decodes nor encodes it


_SQLITE = _Dialect("INTEGER", "", "CAST({} AS BLOB)")
_POSTGRES = _Dialect("BIGINT", " FOR UPDATE", "convert_to({}, 'UTF8')")


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


@dataclass(frozen=True)
class LedgerRecord:
    """An entry as stored: its position, time and chain links."""

    seq: int
    at: str
    entry: AuditEntry
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class LedgerHead:
    """The chain's head: number of records and hash of the last (``GENESIS`` when empty)."""

    count: int
    hash: str
    at: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LedgerProblem:
    """One thing the verifier found wrong, at record ``seq`` (French message)."""

    seq: int | None
    code: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    count: int
    head: LedgerHead
    problems: list[LedgerProblem]
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "count": self.count,
            "head": self.head.as_dict(),
            "problems": [p.as_dict() for p in self.problems],
            "seconds": round(self.seconds, 3),
        }


def chain_hash(prev_hash: str, canonical: str) -> str:
    """``sha256(bytes(prev_hash) + canonical)`` in hexadecimal."""
    return hashlib.sha256(bytes.fromhex(prev_hash) + canonical.encode()).hexdigest()


def canonical(values: Sequence[Any]) -> str:
    """The hashed text of a row's chained columns (``None`` as an empty string)."""
    return SEPARATOR.join("" if v is None else str(v) for v in values)


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
    if entry.kind not in get_args(EntryKind):
        raise _invalid_entry(f"nature inconnue {entry.kind!r}", "kind")
    if entry.decision not in get_args(DecisionKind):
        raise _invalid_entry(f"décision inconnue {entry.decision!r}", "decision")
    for name in ("actor", "service", "role", "purpose", "legal_basis", "view", "rule", "reason"):
        value = getattr(entry, name)
        if not isinstance(value, str) or SEPARATOR in value:
            raise _invalid_entry("texte attendu, sans caractère de contrôle 0x1F", name)
    for key in entry.persons:
        if not key or '"' in key or "\\" in key or any(ord(c) < 32 for c in key):
            raise _invalid_entry(f"clé de personne invalide {key!r}", "persons")
    if entry.defer_until is not None:
        try:
            date.fromisoformat(entry.defer_until)
        except (TypeError, ValueError):
            raise _invalid_entry(
                f"date de levée {entry.defer_until!r} invalide (AAAA-MM-JJ)", "defer_until"
            ) from None


def _chained_values(seq: int, at: str, entry: AuditEntry) -> tuple[Any, ...]:
    return (
        seq,
        at,
        entry.kind,
        entry.actor,
        entry.service,
        entry.role,
        entry.purpose,
        entry.legal_basis,
        entry.view,
        _compact(entry.persons),
        _compact(entry.fields),
        entry.decision,
        entry.rule,
        entry.reason,
        entry.defer_until,
    )


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


class _Problems:
    """Problems found so far; full once ``MAX_PROBLEMS`` are collected."""

    def __init__(self) -> None:
        self.items: list[LedgerProblem] = []

    @property
    def full(self) -> bool:
        return len(self.items) >= MAX_PROBLEMS

    def add(self, seq: int | None, code: str, message: str) -> None:
        if len(self.items) < MAX_PROBLEMS:
            self.items.append(LedgerProblem(seq, code, message))
        elif len(self.items) == MAX_PROBLEMS:
            stop = f"plus de {MAX_PROBLEMS} anomalies : vérification arrêtée"
            self.items.append(LedgerProblem(None, "too_many_problems", stop))


class _Chain(NamedTuple):
    """Where the verifier stands: the next seq, the last stored hash and its bytes."""

    expected: int
    last: str
    link: bytes


def _short(hash_: object) -> str:
    return f"{str(hash_)[:12]}…"


def _hex_bytes(value: object) -> bytes:
    """The bytes of a stored hash; ``b""`` (never a valid link) when it is not one."""
    try:
        return bytes.fromhex(value) if isinstance(value, str) and len(value) == 64 else b""
    except ValueError:
        return b""


def _sound_page(rows: list[Row], chain: _Chain) -> _Chain | None:
    """The chain after a page whose records are all intact and linked; ``None`` otherwise.

    The verifier's hot path: per record only one SHA-256, every comparison done in bulk
    (element-wise on tuples, or on joined hashes of a checked fixed length).
    """
    seqs, canons, prevs, hashes = list(zip(*rows, strict=True))[:4]
    end = chain.expected + len(seqs)
    try:
        if (
            seqs != tuple(range(chain.expected, end))
            or prevs[0] != chain.last
            or prevs[1:] != hashes[:-1]
            or set(map(len, hashes)) != {64}
        ):
            return None
        sha256, digest, digests = hashlib.sha256, chain.link, list[bytes]()
        append = digests.append
        for canon in canons:
            digest = sha256(digest + canon).digest()
            append(digest)
        if b"".join(digests).hex() != "".join(hashes):
            return None
    except TypeError:  # a value of the wrong type stored in a column
        return None
    return _Chain(end, hashes[-1], digest)


def _diagnose(row: Row, chain: _Chain, problems: _Problems) -> _Chain:
    """Say what is wrong with one record, exactly; the chain after it."""
    seq, canon, prev, stored = row[:4]
    if not isinstance(seq, int) or seq < chain.expected:
        expected = f"attendu : n°{chain.expected}"
        problems.add(None, "seq_out_of_order", f"enregistrement n°{seq} hors séquence ({expected})")
        return chain
    if seq > chain.expected:
        gap = f"n°{chain.expected}" + (f" à {seq - 1}" if seq > chain.expected + 1 else "")
        problems.add(
            chain.expected,
            "records_missing",
            f"enregistrement(s) {gap} absent(s) : le registre passe du n°{chain.expected - 1} "
            f"au n°{seq}",
        )
    elif prev != chain.last:
        problems.add(
            seq,
            "link_broken",
            f"enregistrement n°{seq} : son lien ({_short(prev)}) n'est pas l'empreinte du "
            f"n°{seq - 1} ({_short(chain.last)}) : enregistrement inséré, déplacé ou remplacé",
        )
    link = _hex_bytes(prev)
    content = canon if isinstance(canon, bytes) else str(canon).encode()
    if not link or hashlib.sha256(link + content).hexdigest() != stored:
        problems.add(
            seq,
            "hash_mismatch",
            f"enregistrement n°{seq} modifié : son contenu ne correspond plus à son "
            f"empreinte ({_short(stored)})",
        )
    return _Chain(seq + 1, str(stored), _hex_bytes(stored))


def _named_keys(persons: object) -> list[str]:
    """Keys of a stored persons array (keys never contain a quote, see ``_check_entry``)."""
    text = str(persons)
    return [] if text == "[]" else text[2:-2].split('","')


def _named_pairs(rows: list[Row]) -> list[tuple[Any, str]]:
    """(seq, person key) for every person the page's records name, in index order."""
    pairs: list[tuple[Any, str]] = []
    append = pairs.append
    for row in rows:
        if row[4] != "[]":
            for key in _named_keys(row[4]):
                append((row[0], key))
    return pairs


def _subject_problems(rows: list[Row], subjects: list[Row], problems: _Problems) -> None:
    """Say, record by record, where the person index and the chained persons differ."""
    named = {row[0]: set(_named_keys(row[4])) for row in rows}
    indexed: dict[Any, set[str]] = {}
    for seq, key in subjects:
        indexed.setdefault(seq, set()).add(str(key))
    for seq in sorted(named.keys() | indexed.keys(), key=str):
        keys, found = named.get(seq), indexed.get(seq, set())
        if keys is None:
            problems.add(
                seq,
                "subject_orphan",
                f"index des personnes : {', '.join(sorted(found))} rattaché(s) à "
                f"l'enregistrement n°{seq}, qui n'existe pas",
            )
            continue
        if found - keys:
            problems.add(
                seq,
                "subject_extra",
                f"index des personnes : l'enregistrement n°{seq} ne nomme pas "
                f"{', '.join(sorted(found - keys))}",
            )
        if keys - found:
            problems.add(
                seq,
                "subject_missing",
                f"index des personnes : {', '.join(sorted(keys - found))} manque(nt) pour "
                f"l'enregistrement n°{seq} (accès caché à la personne concernée)",
            )


def _anchor_problem(
    number: int, anchor: LedgerHead, stored: dict[int, str], last_seq: int
) -> LedgerProblem | None:
    """What is wrong between one anchor and the records, if anything."""
    name = f"l'ancre n°{number} ({anchor.count} enregistrements, {anchor.at or 'date inconnue'})"
    if anchor.count == 0:
        if anchor.hash == GENESIS:
            return None
        return LedgerProblem(None, "anchor_invalid", f"{name} n'a pas l'empreinte d'origine")
    if anchor.count > last_seq:
        return LedgerProblem(
            anchor.count,
            "anchor_beyond_end",
            f"{name} dépasse la fin du registre (n°{last_seq}) : des enregistrements ont été "
            "supprimés",
        )
    found = stored.get(anchor.count)
    if found is None:
        return LedgerProblem(
            anchor.count, "anchor_record_missing", f"{name} : l'enregistrement est absent"
        )
    if found != anchor.hash:
        return LedgerProblem(
            anchor.count,
            "anchor_mismatch",
            f"enregistrement n°{anchor.count} : empreinte {_short(found)} au lieu de "
            f"{_short(anchor.hash)} selon {name} : registre réécrit",
        )
    return None


class AuditLedger:
    """The workspace's audit ledger on a ``TableDB`` (tables created if missing)."""

    def __init__(self, db: TableDB, clock: Callable[[], datetime] | None = None) -> None:
        self.db = db
        self._clock = clock or _utc_now
        self._dialect = _SQLITE if isinstance(db, SQLiteTables) else _POSTGRES
        with db.transaction():
            db.script(_SCHEMA.format(seq_type=self._dialect.seq_type))
            db.execute(
                "INSERT INTO audit_head (id, count, hash, at) SELECT 1, 0, ?, ? "
                "WHERE NOT EXISTS (SELECT 1 FROM audit_ledger) ON CONFLICT (id) DO NOTHING",
                [GENESIS, _timestamp(self._clock())],
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
        heads = self.db.query(f"SELECT count, hash FROM audit_head{self._dialect.row_lock}")
        # A second statement: on PostgreSQL it sees what the previous lock holder committed.
        last = self.db.query("SELECT seq, hash FROM audit_ledger ORDER BY seq DESC LIMIT 1")
        found = (last[0][0], last[0][1]) if last else (0, GENESIS)
        if len(heads) != 1 or tuple(heads[0]) != found:
            raise GovernanceError(
                "registre d'audit incohérent : sa tête ne correspond pas au dernier "
                "enregistrement ; plus aucun accès ne peut être journalisé",
                code="audit_head_mismatch",
                hint="lancez la vérification du registre d'audit et prévenez le DPO",
            )
        return found

    def _insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if len(rows) == 1:  # one plain INSERT: cheaper than a bulk load for a single append
            marks = ", ".join("?" for _ in columns)
            self.db.execute(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows[0])
        elif rows:
            self.db.insert(table, columns, rows)

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
        """Recompute the chain; check the person index, the head row and the anchors."""
        started = time.perf_counter()
        problems = _Problems()
        count = self._check_records(problems, progress)
        if not problems.full:
            self._check_head(problems)
            self._check_anchors(anchors, problems)
        return VerifyReport(
            ok=not problems.items,
            count=count,
            head=self._last_record(),
            problems=problems.items,
            seconds=time.perf_counter() - started,
        )

    def _pages(self) -> Iterator[tuple[list[Row], list[Row]]]:
        """(records, their person index rows) by keyset pages of ``PAGE_ROWS`` records.

        The index rows of a page are those with seq after the previous page's last record and
        up to its own (no upper bound on the last page, so orphans past the end are seen too).
        """
        canonical_sql = self._dialect.as_bytes.format(_FORMAT_SQL)
        select = f"SELECT seq, {canonical_sql}, prev_hash, hash, persons FROM audit_ledger"
        after: Any = None
        while True:
            where, params = (
                ("", [_PATTERN]) if after is None else (" WHERE seq > ?", [_PATTERN, after])
            )
            rows = self.db.query(f"{select}{where} ORDER BY seq LIMIT {PAGE_ROWS}", params)
            final = len(rows) < PAGE_ROWS
            bounds = [("seq > ?", after), ("seq <= ?", None if final else rows[-1][0])]
            kept = [(clause, value) for clause, value in bounds if value is not None]
            subject_where = " AND ".join(c for c, _ in kept) or "1 = 1"
            subjects = self.db.query(
                f"SELECT seq, person_key FROM audit_subjects WHERE {subject_where}",
                [v for _, v in kept],
            )
            yield rows, subjects
            if final:
                return
            after = rows[-1][0]

    def _check_records(
        self, problems: _Problems, progress: Callable[[int, int], None] | None
    ) -> int:
        """Check the chain and the person index page by page; the number of records read."""
        total = int(self.db.query("SELECT COUNT(*) FROM audit_ledger")[0][0])
        chain, done = _Chain(1, GENESIS, bytes(32)), 0
        for rows, subjects in self._pages():
            sound = _sound_page(rows, chain) if rows else chain
            if sound is None:
                for row in rows:
                    chain = _diagnose(row, chain, problems)
            else:
                chain = sound
            subjects.sort()
            if _named_pairs(rows) != subjects:
                _subject_problems(rows, subjects, problems)
            done += len(rows)
            if progress is not None:
                progress(min(done, total), total)
            if problems.full:
                break
        return done

    def _check_head(self, problems: _Problems) -> None:
        """The head row names the last record (a naive truncation leaves it behind)."""
        with self.db.transaction():  # appenders wait, so the two reads agree
            heads = self.db.query(f"SELECT count, hash FROM audit_head{self._dialect.row_lock}")
            last = self.db.query("SELECT seq, hash FROM audit_ledger ORDER BY seq DESC LIMIT 1")
        last_seq, last_hash = (last[0][0], last[0][1]) if last else (0, GENESIS)
        if len(heads) != 1:
            problems.add(None, "head_missing", "ligne de tête du registre absente ou en double")
            return
        count, hash_ = heads[0]
        if count > last_seq:
            problems.add(
                last_seq + 1,
                "records_truncated",
                f"la tête annonce {count} enregistrements mais le dernier est le n°{last_seq} : "
                f"enregistrements n°{last_seq + 1} à {count} supprimés",
            )
        elif count < last_seq:
            problems.add(
                count + 1,
                "records_after_head",
                f"enregistrements n°{count + 1} à {last_seq} ajoutés hors journalisation "
                f"(la tête s'arrête au n°{count})",
            )
        elif hash_ != last_hash:
            problems.add(
                last_seq,
                "head_mismatch",
                f"la tête ({_short(hash_)}) n'est pas l'empreinte du dernier enregistrement, "
                f"n°{last_seq} ({_short(last_hash)})",
            )

    def _check_anchors(self, anchors: Sequence[LedgerHead], problems: _Problems) -> None:
        """Each anchor's hash is still the hash of record ``count`` (a rebuilt chain is not)."""
        counts = sorted({a.count for a in anchors if a.count > 0})
        stored: dict[int, str] = {}
        for start in range(0, len(counts), 500):
            chunk = counts[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            sql = f"SELECT seq, hash FROM audit_ledger WHERE seq IN ({marks})"
            stored.update((int(s), str(h)) for s, h in self.db.query(sql, chunk))
        last_seq = self._last_record().count
        for number, anchor in enumerate(anchors, start=1):
            problem = _anchor_problem(number, anchor, stored, last_seq)
            if problem is not None:
                problems.add(problem.seq, problem.code, problem.message)

    def _last_record(self) -> LedgerHead:
        rows = self.db.query("SELECT seq, hash, at FROM audit_ledger ORDER BY seq DESC LIMIT 1")
        if not rows:
            return LedgerHead(0, GENESIS, "")
        seq, hash_, at = rows[0]
        return LedgerHead(int(seq), str(hash_), str(at))


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
