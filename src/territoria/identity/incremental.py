"""Attaching one new record to a stable person key in milliseconds (incremental linking).

A new water subscriber or school enrolment arrives every day; re-linking the whole territory
for it would take minutes. ``Attacher`` finds its candidates with the model's own blocking
rules as indexed lookups in the registry's feature table, scores them in Python with the saved
parameters (the same weights as Splink's, see ``scoring``), and joins the most likely person
whose records it does not conflict with; otherwise it creates a new person. The assignment
and its event are written at once; the next full run keeps the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from territoria.identity.comparisons import Row, conflict_reason
from territoria.identity.features import FEATURE_COLUMNS, build_features
from territoria.identity.mentions import MENTION_SCHEMA
from territoria.identity.model import BLOCKING, BlockingRule, ModelParams
from territoria.identity.registry import Event, Registry, new_key
from territoria.identity.scoring import Explanation, TermFrequencies, explain, tf_columns

# One index per column set the blocking rules look up (created once, used by every attach).
INDEXES: dict[str, tuple[str, ...]] = {
    "id_features_fullname": ("fullname",),
    "id_features_fn_gn1": ("fn", "gn1"),
    "id_features_dob": ("dob",),
    "id_features_bkey": ("bkey",),
    "id_features_phone": ("phone",),
    "id_features_email": ("email",),
    "id_features_ident": ("ident",),
    "id_features_fn_pc": ("fn", "pc"),
    "id_features_gk_pc": ("gk", "pc"),
    "id_features_gk_fn": ("gk", "fn"),
    "id_features_gk_bn": ("gk", "bn"),
}


_WARM_UP = {
    "mention_id": "-",
    "source": "-",
    "family_name": "Exemple",
    "given_name": "Anne",
    "birth_date": "01/01/1980",
    "address": "1 rue de la Paix",
    "phone": "0600000000",
}


@dataclass(frozen=True)
class Attachment:
    mention_id: str
    person_key: str
    household_key: str | None
    created: bool
    probability: float
    matched: str | None  # the existing record that carried the decision
    explanation: Explanation | None


class _IndexedFrequencies(TermFrequencies):
    """Term frequencies read from the registry by indexed counts, not held in memory."""

    def __init__(self, registry: Registry, columns: set[str]) -> None:
        super().__init__({})
        self._registry = registry
        self._totals = {
            c: int(registry.db.query(f"SELECT count({c}) FROM id_features")[0][0]) for c in columns
        }

    def share(self, column: str, a: str | None, b: str | None) -> float | None:
        total = self._totals.get(column)
        if not total:
            return None
        shares = []
        for value in {v for v in (a, b) if v is not None}:
            n = self._registry.db.query(
                f"SELECT count(*) FROM id_features WHERE {column} = ?", [value]
            )[0][0]
            if n:
                shares.append(int(n) / total)
        return max(shares) if shares else None


class Attacher:
    """Attaches new mentions to the registry's persons with a saved model."""

    def __init__(self, registry: Registry, params: ModelParams) -> None:
        self.registry, self.params = registry, params
        with registry.db.transaction():
            for name, columns in INDEXES.items():
                registry.db.execute(
                    f"CREATE INDEX IF NOT EXISTS {name} ON id_features ({', '.join(columns)})"
                )
        self.tf = _IndexedFrequencies(registry, tf_columns(params))
        self._queries = [_query(rule) for rule in _oriented(BLOCKING)]
        build_features(pa.Table.from_pylist([_WARM_UP], schema=MENTION_SCHEMA))  # load tables once

    def candidates(self, row: Row) -> list[Row]:
        seen: dict[str, Row] = {}
        for sql, keys in self._queries:
            values = [k.value(row) for k in keys]
            if any(v is None for v in values):
                continue
            for found in self.registry.db.query(sql, values):
                record = dict(zip(FEATURE_COLUMNS, found, strict=True))
                seen.setdefault(str(record["unique_id"]), record)
        seen.pop(str(row["unique_id"]), None)
        return list(seen.values())

    def attach(self, mention: Mapping[str, Any], run_id: str = "attach") -> Attachment:
        """Link one raw mention (``MENTION_SCHEMA`` fields) and record its person key."""
        features = build_features(pa.Table.from_pylist([dict(mention)], schema=MENTION_SCHEMA))
        if features.num_rows == 0:
            raise ValueError("fiche sans nom exploitable")
        row = features.to_pylist()[0]
        best = self._best(row)
        if best is None:
            person, household, created = new_key("P"), None, True
            reason, probability, matched, why = (
                "nouvelle fiche sans correspondance",
                0.0,
                None,
                None,
            )
        else:
            matched, probability, why = best
            person = str(self.registry.person_of(matched))
            household = self._household_of(matched)
            created = False
            reason = f"nouvelle fiche rattachée (probabilité {probability:.0%} avec {matched})"
        kind = "created" if created else "attached"
        with self.registry.db.transaction():
            self.registry.add_features(features)
            self.registry.add_assignment(row["unique_id"], row["source"], person, household, run_id)
            self.registry.record_events(
                [Event(kind, "person", person, reason, mention_id=row["unique_id"])], run_id
            )
        return Attachment(row["unique_id"], person, household, created, probability, matched, why)

    def _best(self, row: Row) -> tuple[str, float, Explanation] | None:
        scored = []
        for candidate in self.candidates(row):
            why = explain(self.params, self.tf, row, candidate)
            if why.probability >= self.params.threshold and why.conflict is None:
                scored.append((why.probability, str(candidate["unique_id"]), why))
        for probability, matched, why in sorted(scored, key=lambda s: (-s[0], s[1])):
            person = self.registry.person_of(matched)
            if person is not None and not self._conflicts(row, person):
                return matched, probability, why
        return None

    def _conflicts(self, row: Row, person: str) -> bool:
        members = self.registry.db.query(
            f"SELECT {', '.join('f.' + c for c in FEATURE_COLUMNS)} FROM id_features f "
            "JOIN id_mentions m ON m.mention_id = f.unique_id WHERE m.person_key = ?",
            [person],
        )
        return any(
            conflict_reason(row, dict(zip(FEATURE_COLUMNS, m, strict=True))) is not None
            for m in members
        )

    def _household_of(self, mention: str) -> str | None:
        rows = self.registry.db.query(
            "SELECT household_key FROM id_mentions WHERE mention_id = ?", [mention]
        )
        return rows[0][0] if rows else None


def _oriented(rules: tuple[BlockingRule, ...]) -> list[BlockingRule]:
    out: list[BlockingRule] = []
    for rule in rules:
        for oriented in (rule, rule.mirrored()):
            if oriented not in out:
                out.append(oriented)
    return out


def _query(rule: BlockingRule) -> tuple[str, list[Any]]:
    """SQL finding existing records (right side) for a new record's left-side values."""
    where = " AND ".join(f"{right.sql('f')} = ?" for _left, right in rule.equalities)
    return (
        f"SELECT {', '.join('f.' + c for c in FEATURE_COLUMNS)} FROM id_features f WHERE {where}",
        [left for left, _right in rule.equalities],
    )
