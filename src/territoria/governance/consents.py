"""Residents' consents to optional purposes and objections to public-task processing.

Consent (RGPD art. 6-1-a) is only for optional extras; objection (art. 21) is how a resident
says no to proactive processing that rests on a public task. Both are kept as an append-only
log: each event is one immutable record, and the current state of (person, purpose) is its
latest record. Nothing here is cached between calls, so the governed read, which asks at every
read, sees a withdrawal at once. Records render as ISO/IEC TS 27560 consent records so a
resident can be given a receipt and another system can read them.

"Latest" is decided by a sequence number, not by the timestamp: two events in the same second
must still order. One counter serves both tables, so a person's history interleaves consents
and objections in the order they happened; bumping it first in each write transaction also
serialises writers (BEGIN IMMEDIATE on SQLite, a row lock on PostgreSQL), so the "is it
given?" check and the insert that follows cannot race with another writer.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from territoria.backends import TableDB
from territoria.core.errors import GovernanceError

__all__ = [
    "COLLECTION_METHOD_LABELS",
    "CONSENT_LEGAL_BASIS",
    "OBJECTION_LEGAL_BASIS",
    "CollectionMethod",
    "ConsentBook",
    "ConsentEvent",
    "ConsentRecord",
    "ObjectionEvent",
    "ObjectionRecord",
]

ConsentEvent = Literal["given", "withdrawn"]
ObjectionEvent = Literal["objected", "lifted"]
CollectionMethod = Literal["portal", "counter", "paper", "phone", "api"]

COLLECTION_METHOD_LABELS: dict[str, str] = {
    "portal": "portail en ligne",
    "counter": "guichet",
    "paper": "formulaire papier",
    "phone": "téléphone",
    "api": "interface de programmation",
}
CONSENT_LEGAL_BASIS = "consent (RGPD art. 6-1-a)"
OBJECTION_LEGAL_BASIS = "public task (RGPD art. 6-1-e), objection (RGPD art. 21)"
ISO27560_VERSION = "ISO/IEC TS 27560:2023"

_PERSON = re.compile(r"P-[0-9A-Z]{12}")
_PURPOSE = re.compile(r"[a-z][a-z0-9_]*")
_METHODS: tuple[str, ...] = get_args(CollectionMethod)
_SEQ_NAME = "events"

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS gov_consents (
    seq BIGINT PRIMARY KEY, record_id TEXT NOT NULL UNIQUE, person TEXT NOT NULL,
    purpose TEXT NOT NULL, event TEXT NOT NULL, at TEXT NOT NULL, actor TEXT NOT NULL,
    method TEXT NOT NULL, controller TEXT NOT NULL, notice TEXT NOT NULL,
    purpose_label TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS gov_consents_purpose ON gov_consents (purpose, person, seq);
CREATE INDEX IF NOT EXISTS gov_consents_person ON gov_consents (person, seq);
CREATE TABLE IF NOT EXISTS gov_objections (
    seq BIGINT PRIMARY KEY, record_id TEXT NOT NULL UNIQUE, person TEXT NOT NULL,
    purpose TEXT NOT NULL, event TEXT NOT NULL, at TEXT NOT NULL, actor TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS gov_objections_purpose ON gov_objections (purpose, person, seq);
CREATE INDEX IF NOT EXISTS gov_objections_person ON gov_objections (person, seq);
CREATE TABLE IF NOT EXISTS gov_consent_seq (name TEXT PRIMARY KEY, value BIGINT NOT NULL);
INSERT INTO gov_consent_seq (name, value) SELECT '{_SEQ_NAME}', 0
    WHERE NOT EXISTS (SELECT 1 FROM gov_consent_seq WHERE name = '{_SEQ_NAME}')
    ON CONFLICT (name) DO NOTHING
"""


@dataclass(frozen=True)
class ConsentRecord:
    """One consent event (given or withdrawn), as stored and never changed."""

    record_id: str
    person: str
    purpose: str
    event: ConsentEvent
    at: str
    actor: str
    method: CollectionMethod
    controller: str
    notice: str
    purpose_label: str

    def as_iso27560(self) -> dict[str, Any]:
        """The record as an ISO/IEC TS 27560 consent record (Kantara-compatible field names)."""
        return {
            "schema_version": ISO27560_VERSION,
            "record_id": self.record_id,
            "pii_principal_id": self.person,
            "controller": [{"name": self.controller}],
            "purposes": [
                {
                    "purpose": self.purpose,
                    "label": self.purpose_label,
                    "legal_basis": CONSENT_LEGAL_BASIS,
                }
            ],
            "notice": _notice(self.notice),
            "event": {"type": self.event, "timestamp": self.at, "method": self.method},
            "jurisdiction": "FR",
            "language": "fr",
            "recorded_by": self.actor,
            "state": self.event,
        }


@dataclass(frozen=True)
class ObjectionRecord:
    """One objection event (objected or lifted) under RGPD art. 21, never changed."""

    record_id: str
    person: str
    purpose: str
    event: ObjectionEvent
    at: str
    actor: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "record_id": self.record_id,
            "person": self.person,
            "purpose": self.purpose,
            "event": self.event,
            "at": self.at,
            "actor": self.actor,
            "reason": self.reason,
            "legal_basis": OBJECTION_LEGAL_BASIS,
        }


# Stored columns: the sequence number, then the record's fields in declaration order.
CONSENT_COLUMNS = ("seq", *(f.name for f in fields(ConsentRecord)))
OBJECTION_COLUMNS = ("seq", *(f.name for f in fields(ObjectionRecord)))


def _notice(notice: str) -> dict[str, str | None]:
    """The notice shown: a URL or a version label of the information text."""
    if notice.startswith(("https://", "http://")):
        return {"version": None, "url": notice}
    return {"version": notice or None, "url": None}


class ConsentBook:
    """The append-only log of consents and objections in one store (embedded or PostgreSQL)."""

    def __init__(self, db: TableDB, clock: Callable[[], datetime] | None = None) -> None:
        self.db = db
        self._clock = clock or (lambda: datetime.now(UTC))
        # One statement at a time, not one transaction: on PostgreSQL a transaction holding
        # the index-creation locks deadlocks with a writer that holds the counter's row.
        # Every statement is idempotent, so an interrupted creation resumes.
        db.script(SCHEMA)

    # -- writes ----------------------------------------------------------------------------

    def give(
        self,
        person: str,
        purpose: str,
        *,
        actor: str,
        method: CollectionMethod = "portal",
        controller: str = "",
        notice: str = "",
        purpose_label: str = "",
    ) -> ConsentRecord:
        """Record that ``person`` consents to ``purpose`` (giving again renews the record)."""
        _check(person, purpose, actor)
        _check_method(method)
        with self.db.transaction():
            seq = self._next_seq()
            record = ConsentRecord(
                record_id=_new_id("CR"),
                person=person,
                purpose=purpose,
                event="given",
                at=self._now(),
                actor=actor,
                method=method,
                controller=controller,
                notice=notice,
                purpose_label=purpose_label,
            )
            self._insert_consent(seq, record)
        return record

    def withdraw(
        self, person: str, purpose: str, *, actor: str, method: CollectionMethod = "portal"
    ) -> ConsentRecord:
        """Record a withdrawal; it names the controller and notice of the consent it ends."""
        _check(person, purpose, actor)
        _check_method(method)
        with self.db.transaction():
            seq = self._next_seq()
            latest = self._latest_consent(person, purpose)
            if latest is None or latest.event != "given":
                raise GovernanceError(
                    f"aucun consentement en cours pour la finalité « {purpose} »",
                    code="consent_not_given",
                    hint="seul un consentement donné et non retiré peut être retiré",
                )
            record = ConsentRecord(
                record_id=_new_id("CR"),
                person=person,
                purpose=purpose,
                event="withdrawn",
                at=self._now(),
                actor=actor,
                method=method,
                controller=latest.controller,
                notice=latest.notice,
                purpose_label=latest.purpose_label,
            )
            self._insert_consent(seq, record)
        return record

    def object(self, person: str, purpose: str, *, actor: str, reason: str = "") -> ObjectionRecord:
        """Record an objection (RGPD art. 21) to the purpose's processing of this person."""
        _check(person, purpose, actor)
        with self.db.transaction():
            seq = self._next_seq()
            if self._objection_state(person, purpose) == "objected":
                raise GovernanceError(
                    f"une opposition est déjà enregistrée pour la finalité « {purpose} »",
                    code="already_objected",
                    hint="l'opposition en cours reste valable ; rien à enregistrer",
                )
            record = ObjectionRecord(
                _new_id("OB"), person, purpose, "objected", self._now(), actor, reason
            )
            self._insert_objection(seq, record)
        return record

    def lift_objection(self, person: str, purpose: str, *, actor: str) -> ObjectionRecord:
        """Record that the person's objection to the purpose no longer applies."""
        _check(person, purpose, actor)
        with self.db.transaction():
            seq = self._next_seq()
            if self._objection_state(person, purpose) != "objected":
                raise GovernanceError(
                    f"aucune opposition en cours pour la finalité « {purpose} »",
                    code="not_objected",
                    hint="seule une opposition en cours peut être levée",
                )
            record = ObjectionRecord(
                _new_id("OB"), person, purpose, "lifted", self._now(), actor, ""
            )
            self._insert_objection(seq, record)
        return record

    # -- reads (one query each, nothing cached) ---------------------------------------------

    def has_consent(self, person: str, purpose: str) -> bool:
        _check(person, purpose)
        latest = self._latest_event("gov_consents", person, purpose)
        return latest == "given"

    def has_objected(self, person: str, purpose: str) -> bool:
        _check(person, purpose)
        return self._objection_state(person, purpose) == "objected"

    def consenting(self, purpose: str) -> set[str]:
        """Persons whose latest consent record for the purpose is ``given``."""
        _check_purpose(purpose)
        return self._persons_in_state("gov_consents", purpose, "given")

    def objecting(self, purpose: str) -> set[str]:
        """Persons whose latest objection record for the purpose is ``objected``."""
        _check_purpose(purpose)
        return self._persons_in_state("gov_objections", purpose, "objected")

    def history(self, person: str) -> list[ConsentRecord | ObjectionRecord]:
        """Every record about the person, consents and objections, oldest first."""
        _check_person(person)
        consents = self.db.query(
            f"SELECT {', '.join(CONSENT_COLUMNS)} FROM gov_consents WHERE person = ?", [person]
        )
        objections = self.db.query(
            f"SELECT {', '.join(OBJECTION_COLUMNS)} FROM gov_objections WHERE person = ?",
            [person],
        )
        rows: list[tuple[int, ConsentRecord | ObjectionRecord]] = [
            (int(r[0]), _consent(r)) for r in consents
        ]
        rows += [(int(r[0]), _objection(r)) for r in objections]
        return [record for _, record in sorted(rows, key=lambda pair: pair[0])]

    def current(self, person: str) -> dict[str, str]:
        """purpose -> ``given``/``withdrawn``/``objected`` (an objection in force wins).

        A purpose whose only records are a lifted objection is left out: it is in the default
        state (no consent, no objection).
        """
        consents: dict[str, str] = {}
        objections: dict[str, str] = {}
        for record in self.history(person):
            target = consents if isinstance(record, ConsentRecord) else objections
            target[record.purpose] = record.event
        state = dict(consents)
        state.update({p: "objected" for p, event in objections.items() if event == "objected"})
        return dict(sorted(state.items()))

    # -- internals --------------------------------------------------------------------------

    def _now(self) -> str:
        moment = self._clock()
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC).isoformat(timespec="seconds")

    def _next_seq(self) -> int:
        """Bump the shared counter; must run inside the write transaction, before any read."""
        self.db.execute("UPDATE gov_consent_seq SET value = value + 1 WHERE name = ?", [_SEQ_NAME])
        rows = self.db.query("SELECT value FROM gov_consent_seq WHERE name = ?", [_SEQ_NAME])
        return int(rows[0][0])

    def _latest_event(self, table: str, person: str, purpose: str) -> str | None:
        rows = self.db.query(
            f"SELECT event FROM {table} WHERE purpose = ? AND person = ? ORDER BY seq DESC LIMIT 1",
            [purpose, person],
        )
        return str(rows[0][0]) if rows else None

    def _objection_state(self, person: str, purpose: str) -> str | None:
        return self._latest_event("gov_objections", person, purpose)

    def _latest_consent(self, person: str, purpose: str) -> ConsentRecord | None:
        rows = self.db.query(
            f"SELECT {', '.join(CONSENT_COLUMNS)} FROM gov_consents "
            "WHERE purpose = ? AND person = ? ORDER BY seq DESC LIMIT 1",
            [purpose, person],
        )
        return _consent(rows[0]) if rows else None

    def _persons_in_state(self, table: str, purpose: str, event: str) -> set[str]:
        # an anti-join ("no later record") is the fastest form on both engines
        rows = self.db.query(
            f"SELECT t.person FROM {table} t WHERE t.purpose = ? AND t.event = ? "
            f"AND NOT EXISTS (SELECT 1 FROM {table} u WHERE u.purpose = t.purpose "
            "AND u.person = t.person AND u.seq > t.seq)",
            [purpose, event],
        )
        return {str(r[0]) for r in rows}

    def _insert_consent(self, seq: int, record: ConsentRecord) -> None:
        row = [seq, *(getattr(record, name) for name in CONSENT_COLUMNS[1:])]
        self.db.insert("gov_consents", CONSENT_COLUMNS, [row])

    def _insert_objection(self, seq: int, record: ObjectionRecord) -> None:
        row = [seq, *(getattr(record, name) for name in OBJECTION_COLUMNS[1:])]
        self.db.insert("gov_objections", OBJECTION_COLUMNS, [row])


def _consent(row: Sequence[Any]) -> ConsentRecord:
    """A stored row (seq first) back to its record; every column is TEXT."""
    return ConsentRecord(*(str(value) for value in row[1:]))  # type: ignore[arg-type]


def _objection(row: Sequence[Any]) -> ObjectionRecord:
    return ObjectionRecord(*(str(value) for value in row[1:]))  # type: ignore[arg-type]


def _new_id(prefix: str) -> str:
    """A random record id (never derived from the person or the purpose)."""
    return f"{prefix}-{secrets.token_hex(8).upper()}"


def _check(person: str, purpose: str, actor: str | None = None) -> None:
    _check_person(person)
    _check_purpose(purpose)
    if actor is not None and not (isinstance(actor, str) and actor.strip()):
        raise GovernanceError(
            "l'auteur de l'enregistrement est obligatoire",
            code="actor_invalid",
            field_name="actor",
            expected="« resident:<clé> » ou l'identifiant de l'agent",
        )


def _check_person(person: str) -> None:
    if not (isinstance(person, str) and _PERSON.fullmatch(person)):
        raise GovernanceError(
            f"clé de personne invalide : {person!r}",
            code="person_invalid",
            field_name="person",
            expected="« P- » suivi de 12 chiffres ou lettres majuscules",
        )


def _check_purpose(purpose: str) -> None:
    if not (isinstance(purpose, str) and _PURPOSE.fullmatch(purpose)):
        raise GovernanceError(
            f"identifiant de finalité invalide : {purpose!r}",
            code="purpose_invalid",
            field_name="purpose",
            expected="minuscules, chiffres et « _ », commençant par une lettre",
        )


def _check_method(method: str) -> None:
    if method not in _METHODS:
        raise GovernanceError(
            f"mode de recueil inconnu : {method!r}",
            code="method_invalid",
            field_name="method",
            expected=", ".join(_METHODS),
        )
