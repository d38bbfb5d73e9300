"""Scoring and explaining one pair in Python, with the parameters Splink trained.

The same Fellegi–Sunter arithmetic as Splink's SQL: the prior's match weight plus, for each
comparison, log2(m/u) of the level that applies, plus its term-frequency adjustment
(log2(u) − log2(frequency of the shared value)). ``Explanation`` keeps every term, so an agent
or a DPO sees, field by field and in French, why two records are one person or not (the
textual form of Splink's waterfall chart).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

from territoria.identity.comparisons import COMPARISONS, Row, conflict_reason, level_of
from territoria.identity.model import LevelParams, ModelParams


@dataclass(frozen=True)
class TermFrequencies:
    """Share of each value among non-null values, per term-frequency column."""

    tables: Mapping[str, Mapping[str, float]]

    @classmethod
    def from_features(cls, features: pa.Table, columns: set[str]) -> TermFrequencies:
        con = duckdb.connect()
        con.register("features", features.select(sorted(columns)))
        tables: dict[str, dict[str, float]] = {}
        for column in sorted(columns):
            rows = con.execute(
                f'SELECT "{column}", count(*) / sum(count(*)) OVER () FROM features '
                f'WHERE "{column}" IS NOT NULL GROUP BY 1'
            ).fetchall()
            tables[column] = {value: float(share) for value, share in rows}
        con.close()
        return cls(tables)

    def share(self, column: str, a: str | None, b: str | None) -> float | None:
        table = self.tables.get(column, {})
        values = [table[v] for v in (a, b) if v is not None and v in table]
        return max(values) if values else None


def tf_columns(params: ModelParams) -> set[str]:
    return {
        level.tf_column
        for levels in params.levels.values()
        for level in levels
        if level is not None and level.tf_column
    }


@dataclass(frozen=True)
class Evidence:
    comparison: str
    title: str
    level: str
    weight: float  # bits, term frequency included
    tf_weight: float
    left: str
    right: str


@dataclass(frozen=True)
class Explanation:
    prior_weight: float
    evidence: tuple[Evidence, ...]
    conflict: str | None

    @property
    def weight(self) -> float:
        return self.prior_weight + sum(e.weight for e in self.evidence)

    @property
    def probability(self) -> float:
        return probability(self.weight)

    def as_dict(self) -> dict[str, Any]:
        return {
            "probabilite": round(self.probability, 6),
            "poids_total": round(self.weight, 3),
            "poids_a_priori": round(self.prior_weight, 3),
            "conflit": self.conflict,
            "champs": [
                {
                    "champ": e.title,
                    "niveau": e.level,
                    "poids": round(e.weight, 3),
                    "dont_frequence": round(e.tf_weight, 3),
                    "valeur_a": e.left,
                    "valeur_b": e.right,
                }
                for e in self.evidence
            ],
        }

    def lines_fr(self) -> list[str]:
        """The waterfall as text: one line per field, then the total."""
        lines = [f"a priori (deux fiches au hasard) : {self.prior_weight:+.1f} bits"]
        for e in self.evidence:
            tf = f" (dont rareté de la valeur {e.tf_weight:+.1f})" if e.tf_weight else ""
            values = f" — « {e.left} » / « {e.right} »" if e.left or e.right else ""
            lines.append(f"{e.title} : {e.level}, {e.weight:+.1f} bits{tf}{values}")
        lines.append(
            f"total : {self.weight:+.1f} bits, probabilité {self.probability:.1%}"
            + (f" ; conflit : {self.conflict}" if self.conflict else "")
        )
        return lines


def probability(weight: float) -> float:
    if weight > 60:
        return 1.0
    if weight < -60:
        return 0.0
    odds: float = 2.0**weight
    return odds / (1 + odds)


_SHOWN: dict[str, tuple[str, ...]] = {
    "name": ("fn", "gn"),
    "birth_date": ("dob",),
    "address": ("dkey",),
    "phone": ("phone",),
    "email": ("email",),
    "sex": ("sex",),
    "identifier": ("ident",),
}


def _shown(row: Row, comparison: str) -> str:
    parts = [row.get(c) for c in _SHOWN.get(comparison, ())]
    if comparison == "birth_date" and row.get("dob") is None and row.get("dob_y") is not None:
        parts = [str(row["dob_y"])]
    return " ".join(str(p) for p in parts if p)


def explain(params: ModelParams, tf: TermFrequencies, a: Row, b: Row) -> Explanation:
    """Every comparison's contribution for the pair ``a``, ``b`` (feature rows)."""
    evidence = []
    for comparison in COMPARISONS:
        levels = params.levels.get(comparison.name)
        if levels is None:
            continue
        index = level_of(comparison, a, b)
        level = levels[index]
        weight, tf_weight = _level_weight(level, tf, a, b)
        evidence.append(
            Evidence(
                comparison.name,
                comparison.title,
                comparison.levels[index].label,
                weight,
                tf_weight,
                _shown(a, comparison.name),
                _shown(b, comparison.name),
            )
        )
    return Explanation(params.prior_weight, tuple(evidence), conflict_reason(a, b))


def _level_weight(
    level: LevelParams | None, tf: TermFrequencies, a: Row, b: Row
) -> tuple[float, float]:
    if level is None:
        return 0.0, 0.0
    tf_weight = 0.0
    if level.tf_column:
        share = tf.share(level.tf_column, a.get(level.tf_column), b.get(level.tf_column))
        if share is not None and share > 0:
            tf_weight = math.log2(level.u) - math.log2(share)
    return level.weight + tf_weight, tf_weight
