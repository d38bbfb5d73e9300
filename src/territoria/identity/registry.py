"""The resident index's tables: keys, events, reviews, decisions, models, runs.

Person and household keys are pseudonymous (random, never derived from identity) and stay
with their records across runs; every change of a key (created, merged into another, split)
is an event with its reason. Agents' decisions on pairs are kept here and read by every run.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import pyarrow as pa

from territoria.backends import TableDB, marks
from territoria.core.errors import TerritoriaError
from territoria.identity.features import FEATURE_COLUMNS, FEATURE_SCHEMA

Decision = Literal["same", "different"]
DECISION_LABELS: dict[str, str] = {"same": "même personne", "different": "personnes différentes"}

SCHEMA = """
CREATE TABLE IF NOT EXISTS id_runs (
    run_id TEXT PRIMARY KEY, kind TEXT NOT NULL, started_at TEXT NOT NULL,
    finished_at TEXT, model_version BIGINT, summary TEXT
);
CREATE TABLE IF NOT EXISTS id_models (
    version BIGINT PRIMARY KEY, created_at TEXT NOT NULL, run_id TEXT NOT NULL,
    params TEXT NOT NULL, evaluation TEXT
);
CREATE TABLE IF NOT EXISTS id_mentions (
    mention_id TEXT PRIMARY KEY, source TEXT NOT NULL, person_key TEXT NOT NULL,
    household_key TEXT, run_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS id_mentions_person ON id_mentions (person_key);
CREATE TABLE IF NOT EXISTS id_events (
    at TEXT NOT NULL, run_id TEXT NOT NULL, kind TEXT NOT NULL, entity TEXT NOT NULL,
    entity_key TEXT NOT NULL, other_key TEXT, mention_id TEXT, reason TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS id_events_key ON id_events (entity_key);
CREATE TABLE IF NOT EXISTS id_reviews (
    mention_a TEXT NOT NULL, mention_b TEXT NOT NULL, probability DOUBLE PRECISION NOT NULL,
    explanation TEXT NOT NULL, run_id TEXT NOT NULL, PRIMARY KEY (mention_a, mention_b)
);
CREATE TABLE IF NOT EXISTS id_features (
    unique_id TEXT PRIMARY KEY, source TEXT, fn TEXT, gn TEXT, gn1 TEXT, gk TEXT, bn TEXT,
    fullname TEXT, sex TEXT, dob TEXT, dob_y BIGINT, dob_m BIGINT, dob_d BIGINT, num TEXT,
    street TEXT, cpl TEXT, pc TEXT, commune TEXT, bkey TEXT, dkey TEXT, phone TEXT,
    email TEXT, ident TEXT
);
CREATE TABLE IF NOT EXISTS id_decisions (
    mention_a TEXT NOT NULL, mention_b TEXT NOT NULL, decision TEXT NOT NULL,
    agent TEXT NOT NULL, decided_at TEXT NOT NULL, note TEXT,
    PRIMARY KEY (mention_a, mention_b)
);
"""
EVENT_COLUMNS = (
    "at",
    "run_id",
    "kind",
    "entity",
    "entity_key",
    "other_key",
    "mention_id",
    "reason",
)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


_BASE32 = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford: no I, L, O, U


def new_key(prefix: str) -> str:
    """A pseudonymous key: ``P-`` (person) or ``F-`` (foyer) and 12 random base-32 digits."""
    bits = secrets.randbits(60)  # one draw from the system's generator, 12 digits of 5 bits
    return prefix + "-" + "".join(_BASE32[(bits >> (5 * i)) & 31] for i in range(12))


def ordered(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a <= b else (b, a)


@dataclass(frozen=True)
class Event:
    kind: str  # created, merged, split, attached, household_created, …
    entity: str  # person | household
    entity_key: str
    reason: str
    other_key: str | None = None
    mention_id: str | None = None


class Registry:
    """Reads and writes the index's tables in one store (embedded or PostgreSQL)."""

    def __init__(self, db: TableDB) -> None:
        self.db = db
        with db.transaction():
            db.script(SCHEMA)

    # -- keys ------------------------------------------------------------------------------

    def assignments(self) -> dict[str, tuple[str, str | None]]:
        """mention id -> (person key, household key)."""
        rows = self.db.query("SELECT mention_id, person_key, household_key FROM id_mentions")
        return {m: (p, h) for m, p, h in rows}

    def person_of(self, mention: str) -> str | None:
        rows = self.db.query("SELECT person_key FROM id_mentions WHERE mention_id = ?", [mention])
        return str(rows[0][0]) if rows else None

    def mentions_of(self, person_key: str) -> list[tuple[str, str, str | None]]:
        return [
            (str(m), str(s), h)
            for m, s, h in self.db.query(
                "SELECT mention_id, source, household_key FROM id_mentions "
                "WHERE person_key = ? ORDER BY mention_id",
                [person_key],
            )
        ]

    def replace_assignments(
        self, rows: Iterable[tuple[str, str, str, str | None]], run_id: str
    ) -> None:
        """Replace every assignment (mention, source, person key, household key)."""
        self.db.execute("DELETE FROM id_mentions")
        self.db.insert(
            "id_mentions",
            ("mention_id", "source", "person_key", "household_key", "run_id"),
            ((m, s, p, h, run_id) for m, s, p, h in rows),
        )

    def add_assignment(
        self, mention: str, source: str, person: str, household: str | None, run_id: str
    ) -> None:
        self.db.execute("DELETE FROM id_mentions WHERE mention_id = ?", [mention])
        self.db.insert(
            "id_mentions",
            ("mention_id", "source", "person_key", "household_key", "run_id"),
            [(mention, source, person, household, run_id)],
        )

    def record_events(self, events: Iterable[Event], run_id: str) -> int:
        at = now()
        return self.db.insert(
            "id_events",
            EVENT_COLUMNS,
            (
                (at, run_id, e.kind, e.entity, e.entity_key, e.other_key, e.mention_id, e.reason)
                for e in events
            ),
        )

    def events(self, key: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        where, params = ("WHERE entity_key = ? OR other_key = ?", [key, key]) if key else ("", [])
        rows = self.db.query(
            f"SELECT {', '.join(EVENT_COLUMNS)} FROM id_events {where} "
            f"ORDER BY at DESC, kind LIMIT {int(limit)}",
            params,
        )
        return [dict(zip(EVENT_COLUMNS, r, strict=True)) for r in rows]

    # -- features (standardised identifying fields, for incremental linking) -----------------

    def replace_features(self, features: pa.Table) -> None:
        self.db.execute("DELETE FROM id_features")
        self.add_features(features)

    def add_features(self, features: pa.Table) -> None:
        columns = features.column_names
        self.db.insert("id_features", columns, _rows(features))

    def features(self) -> pa.Table:
        rows = self.db.query(f"SELECT {', '.join(FEATURE_COLUMNS)} FROM id_features")
        columns: list[Sequence[Any]] = (
            list(zip(*rows, strict=True)) if rows else [() for _ in FEATURE_COLUMNS]
        )
        return pa.table(
            {
                name: pa.array(list(col), FEATURE_SCHEMA.field(name).type)
                for name, col in zip(FEATURE_COLUMNS, columns, strict=True)
            },
            schema=FEATURE_SCHEMA,
        )

    def feature_rows(self, mentions: Sequence[str]) -> dict[str, dict[str, Any]]:
        rows = self.db.query(
            f"SELECT {', '.join(FEATURE_COLUMNS)} FROM id_features "
            f"WHERE unique_id IN ({marks(mentions)})",
            list(mentions),
        )
        return {str(r[0]): dict(zip(FEATURE_COLUMNS, r, strict=True)) for r in rows}

    # -- runs and models -------------------------------------------------------------------

    def start_run(self, kind: str) -> str:
        run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)
        self.db.execute(
            "INSERT INTO id_runs (run_id, kind, started_at) VALUES (?, ?, ?)", [run_id, kind, now()]
        )
        return run_id

    def finish_run(self, run_id: str, model_version: int | None, summary: dict[str, Any]) -> None:
        self.db.execute(
            "UPDATE id_runs SET finished_at = ?, model_version = ?, summary = ? WHERE run_id = ?",
            [now(), model_version, json.dumps(summary, ensure_ascii=False), run_id],
        )

    def last_run(self) -> dict[str, Any] | None:
        rows = self.db.query(
            "SELECT run_id, kind, started_at, finished_at, model_version, summary FROM id_runs "
            "WHERE finished_at IS NOT NULL ORDER BY finished_at DESC, run_id DESC LIMIT 1"
        )
        if not rows:
            return None
        run_id, kind, started, finished, version, summary = rows[0]
        return {
            "run_id": run_id,
            "kind": kind,
            "started_at": started,
            "finished_at": finished,
            "model_version": version,
            "summary": json.loads(summary or "{}"),
        }

    def save_model(
        self, run_id: str, params: dict[str, Any], evaluation: dict[str, Any] | None
    ) -> int:
        rows = self.db.query("SELECT coalesce(max(version), 0) FROM id_models")
        version = int(rows[0][0]) + 1
        self.db.insert(
            "id_models",
            ("version", "created_at", "run_id", "params", "evaluation"),
            [
                (
                    version,
                    now(),
                    run_id,
                    json.dumps(params, ensure_ascii=False),
                    json.dumps(evaluation, ensure_ascii=False) if evaluation else None,
                )
            ],
        )
        return version

    def set_model_evaluation(self, version: int, evaluation: dict[str, Any]) -> None:
        self.db.execute(
            "UPDATE id_models SET evaluation = ? WHERE version = ?",
            [json.dumps(evaluation, ensure_ascii=False), version],
        )

    def model(
        self, version: int | None = None
    ) -> tuple[int, dict[str, Any], dict[str, Any] | None] | None:
        """(version, parameters, evaluation) of a model, the latest by default."""
        where, params = ("WHERE version = ?", [version]) if version else ("", [])
        rows = self.db.query(
            f"SELECT version, params, evaluation FROM id_models {where} "
            "ORDER BY version DESC LIMIT 1",
            params,
        )
        if not rows:
            return None
        v, p, e = rows[0]
        return int(v), json.loads(p), json.loads(e) if e else None

    # -- reviews and decisions -------------------------------------------------------------

    def replace_reviews(
        self, rows: Iterable[tuple[str, str, float, dict[str, Any]]], run_id: str
    ) -> int:
        self.db.execute("DELETE FROM id_reviews")
        return self.db.insert(
            "id_reviews",
            ("mention_a", "mention_b", "probability", "explanation", "run_id"),
            ((a, b, p, json.dumps(e, ensure_ascii=False), run_id) for a, b, p, e in rows),
        )

    def reviews(self, limit: int = 50) -> list[dict[str, Any]]:
        """Pending pairs, the most uncertain first (probability closest to one half)."""
        rows = self.db.query(
            "SELECT r.mention_a, r.mention_b, r.probability, r.explanation FROM id_reviews r "
            "LEFT JOIN id_decisions d ON d.mention_a = r.mention_a AND d.mention_b = r.mention_b "
            f"WHERE d.decision IS NULL ORDER BY abs(r.probability - 0.5), r.mention_a LIMIT {int(limit)}"
        )
        return [
            {"mention_a": a, "mention_b": b, "probability": p, "explanation": json.loads(e)}
            for a, b, p, e in rows
        ]

    def pending_reviews(self) -> int:
        rows = self.db.query(
            "SELECT count(*) FROM id_reviews r LEFT JOIN id_decisions d "
            "ON d.mention_a = r.mention_a AND d.mention_b = r.mention_b WHERE d.decision IS NULL"
        )
        return int(rows[0][0])

    def decide(self, a: str, b: str, decision: Decision, agent: str, note: str = "") -> None:
        if decision not in DECISION_LABELS:
            raise TerritoriaError(
                f"décision inconnue : {decision!r}",
                code="decision_invalid",
                expected="same (même personne) ou different (personnes différentes)",
            )
        if a == b:
            raise TerritoriaError(
                "une fiche ne peut pas être comparée à elle-même", code="decision_invalid"
            )
        left, right = ordered(a, b)
        with self.db.transaction():
            self.db.execute(
                "DELETE FROM id_decisions WHERE mention_a = ? AND mention_b = ?", [left, right]
            )
            self.db.insert(
                "id_decisions",
                ("mention_a", "mention_b", "decision", "agent", "decided_at", "note"),
                [(left, right, decision, agent, now(), note)],
            )

    def decisions(self) -> list[tuple[str, str, str]]:
        return [
            (str(a), str(b), str(d))
            for a, b, d in self.db.query("SELECT mention_a, mention_b, decision FROM id_decisions")
        ]

    def counts(self) -> dict[str, int]:
        def one(sql: str) -> int:
            return int(self.db.query(sql)[0][0])

        return {
            "mentions": one("SELECT count(*) FROM id_mentions"),
            "persons": one("SELECT count(DISTINCT person_key) FROM id_mentions"),
            "households": one("SELECT count(DISTINCT household_key) FROM id_mentions"),
            "pending_reviews": self.pending_reviews(),
            "decisions": one("SELECT count(*) FROM id_decisions"),
            "events": one("SELECT count(*) FROM id_events"),
        }


def _rows(table: pa.Table) -> Iterator[tuple[Any, ...]]:
    for batch in table.to_batches(50_000):
        yield from zip(*(c.to_pylist() for c in batch.columns), strict=True)


def split_decisions(
    rows: Sequence[tuple[str, str, str]],
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    same = [(a, b) for a, b, d in rows if d == "same"]
    different = [(a, b) for a, b, d in rows if d == "different"]
    return same, different
