"""The Fellegi–Sunter model, trained and applied with Splink, without labels.

``train`` estimates the prior (λ) from deterministic rules, u by random sampling and m by EM
on two blockings (same birth date, then same name) so that EM learns "same person", not "same
household". ``predict`` scores the candidate pairs of the blocking rules. Both run through a
Splink database API: DuckDB in-process by default; any backend Splink supports (Spark for the
scale-out) runs the same settings and the same trained parameters (``ModelParams``).

The operating threshold is chosen without labels: the one that maximises the F1 the model
expects from its own match probabilities (``expected_f1_threshold``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from territoria.identity.comparisons import COMPARISONS, Comparison


@dataclass(frozen=True)
class Key:
    """A column, or its first ``prefix`` characters, on one side of a blocking equality."""

    column: str
    prefix: int | None = None

    def sql(self, side: str) -> str:
        ref = f"{side}.{self.column}"
        return f"substr({ref}, 1, {self.prefix})" if self.prefix else ref

    def value(self, row: Mapping[str, Any]) -> Any:
        value = row.get(self.column)
        if value is None or not self.prefix:
            return value
        return str(value)[: self.prefix]


@dataclass(frozen=True)
class BlockingRule:
    """Pairs where every ``left`` key of one record equals the ``right`` key of the other."""

    equalities: tuple[tuple[Key, Key], ...]

    @property
    def sql(self) -> str:
        return " AND ".join(f"{a.sql('l')} = {b.sql('r')}" for a, b in self.equalities)

    @property
    def symmetric(self) -> bool:
        return all(a == b for a, b in self.equalities)

    def mirrored(self) -> BlockingRule:
        return BlockingRule(tuple((b, a) for a, b in self.equalities))


def _rule(*pairs: tuple[str, str] | str, prefix: Mapping[str, int] | None = None) -> BlockingRule:
    prefix = prefix or {}
    equalities = []
    for pair in pairs:
        a, b = (pair, pair) if isinstance(pair, str) else pair
        equalities.append((Key(a, prefix.get(a)), Key(b, prefix.get(b))))
    return BlockingRule(tuple(equalities))


_INITIAL = {"fn": 1, "gk": 1}
# Candidate pairs: a pair is scored when one of these holds (a union of equi-joins).
BLOCKING: tuple[BlockingRule, ...] = (
    _rule("fullname"),
    _rule(("fn", "gn1"), ("gn1", "fn")),
    _rule("dob", "fn", prefix=_INITIAL),
    _rule("dob", "gk"),
    _rule("bkey", "gk", prefix=_INITIAL),
    _rule("phone"),
    _rule("email"),
    _rule("ident"),
    BlockingRule(((Key("fn"), Key("fn")), (Key("pc"), Key("pc")), (Key("gk", 1), Key("gk", 1)))),
    BlockingRule(((Key("gk"), Key("gk")), (Key("pc"), Key("pc")), (Key("fn", 1), Key("fn", 1)))),
    _rule("gk", ("bn", "fn")),
    _rule("gk", ("fn", "bn")),
    _rule("dob", "pc"),  # a name changed or mistyped, the birth date and place kept
    _rule("dob", "num"),
)
BLOCKING_RULES: tuple[str, ...] = tuple(rule.sql for rule in BLOCKING)
# Pairs surely the same person, used to estimate the prior (λ) with an assumed recall.
DETERMINISTIC_RULES: tuple[str, ...] = (
    "l.fullname = r.fullname AND l.dob = r.dob",
    "l.fullname = r.fullname AND l.phone = r.phone",
    "l.fullname = r.fullname AND l.email = r.email",
    "l.fullname = r.fullname AND l.dkey = r.dkey",
)
DETERMINISTIC_RECALL = 0.7
# EM passes: each trains every comparison but its own blocking; the first rule of a pass that
# finds pairs is used (files without birth dates fall back on phones, e-mails, identifiers).
EM_PASSES: tuple[tuple[str, ...], ...] = (
    ("l.dob = r.dob", "l.phone = r.phone", "l.email = r.email", "l.ident = r.ident"),
    ("l.fullname = r.fullname",),
)
U_MAX_PAIRS = 2e6
EM_MAX_PAIRS = 2e6
EM_SAMPLE_ABOVE = 200_000  # records; below, EM sees every blocked pair
SCORE_FLOOR = 0.01  # pairs scored below this probability are not kept

log = logging.getLogger(__name__)


def splink_settings(link_type: str = "dedupe_only") -> dict[str, Any]:
    """The Splink settings dictionary of Territoria's model (untrained)."""
    return {
        "link_type": link_type,
        "unique_id_column_name": "unique_id",
        "blocking_rules_to_generate_predictions": [
            {"blocking_rule": rule} for rule in BLOCKING_RULES
        ],
        "comparisons": [_splink_comparison(c) for c in COMPARISONS],
        "retain_intermediate_calculation_columns": False,
        "retain_matching_columns": False,
        "additional_columns_to_retain": [],
    }


def _splink_comparison(comparison: Comparison) -> dict[str, Any]:
    levels = []
    for level in comparison.levels:
        entry: dict[str, Any] = {"sql_condition": level.sql, "label_for_charts": level.label}
        if level.is_null:
            entry["is_null_level"] = True
        if level.fixed_m is not None:
            entry["m_probability"] = level.fixed_m
            entry["fix_m_probability"] = True
        if level.tf_column:
            entry["tf_adjustment_column"] = level.tf_column
            entry["tf_adjustment_weight"] = 1.0
            entry["disable_tf_exact_match_detection"] = True
        levels.append(entry)
    return {
        "output_column_name": comparison.name,
        "comparison_description": comparison.title,
        "comparison_levels": levels,
    }


@dataclass(frozen=True)
class LevelParams:
    label: str
    m: float
    u: float
    tf_column: str | None = None

    @property
    def weight(self) -> float:
        """Match weight (log2 Bayes factor) of this level, before term frequencies."""
        return math.log2(self.m / self.u)


@dataclass(frozen=True)
class ModelParams:
    """A trained model: the prior and each level's m and u, plus the full Splink settings."""

    prior: float  # probability that two random records match
    levels: dict[str, list[LevelParams | None]]  # comparison -> levels (None: null level)
    threshold: float
    review_band: tuple[float, float]
    splink: dict[str, Any] = field(repr=False)

    @property
    def prior_weight(self) -> float:
        return math.log2(self.prior / (1 - self.prior))

    def as_dict(self) -> dict[str, Any]:
        return {
            "prior": self.prior,
            "threshold": self.threshold,
            "review_band": list(self.review_band),
            "splink": self.splink,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelParams:
        return from_splink(data["splink"], data["threshold"], tuple(data["review_band"]))


def from_splink(
    settings: dict[str, Any], threshold: float, review_band: tuple[float, float]
) -> ModelParams:
    levels: dict[str, list[LevelParams | None]] = {}
    for comp in settings["comparisons"]:
        out: list[LevelParams | None] = []
        for level in comp["comparison_levels"]:
            if level.get("is_null_level"):
                out.append(None)
                continue
            out.append(
                LevelParams(
                    label=level.get("label_for_charts", level["sql_condition"]),
                    m=_bounded(level.get("m_probability")),
                    u=_bounded(level.get("u_probability")),
                    tf_column=level.get("tf_adjustment_column"),
                )
            )
        levels[comp["output_column_name"]] = out
    prior = float(settings.get("probability_two_random_records_match", 1e-4))
    return ModelParams(prior, levels, threshold, review_band, settings)


def _bounded(p: float | None) -> float:
    if p is None:
        return 0.5
    return min(max(float(p), 1e-9), 1.0)


def train(
    linker: Any, records: int, progress: Callable[[str], None] = lambda _: None
) -> dict[str, Any]:
    """Estimate λ, u and m on ``linker`` (a Splink Linker); returns the trained settings.

    EM runs on every blocked pair of small inputs, on a sample of ``EM_MAX_PAIRS`` of large
    ones. A pass that fails (Splink refuses an m that underflows to zero on tiny inputs) is
    skipped: the other pass and Splink's defaults still give a usable model, and the log says so.
    """
    logging.getLogger("splink").setLevel(logging.ERROR)
    progress("probabilité a priori")
    linker.training.estimate_probability_two_random_records_match(
        list(DETERMINISTIC_RULES), recall=DETERMINISTIC_RECALL
    )
    if not linker._settings_obj._probability_two_random_records_match > 0:  # Splink 5.0
        # No pair is surely the same person: assume about one duplicate per record.
        linker._settings_obj._probability_two_random_records_match = 1 / max(records, 2)
    progress("probabilités u (paires au hasard)")
    linker.training.estimate_u_using_random_sampling(max_pairs=U_MAX_PAIRS, seed=1)
    max_pairs = EM_MAX_PAIRS if records > EM_SAMPLE_ABOVE else None
    for rules in EM_PASSES:
        for rule in rules:
            progress(f"probabilités m (EM sur {rule})")
            if _em_pass(linker, rule, max_pairs):
                break
    settings: dict[str, Any] = linker.misc.save_model_to_json()
    _fill_defaults(settings, linker, records)
    _floor_m(settings)
    return settings


def _em_pass(linker: Any, rule: str, max_pairs: float | None) -> bool:
    """One EM pass; False when it cannot run (no pair in the blocking, a degenerate m)."""
    from splink.internals.exceptions import SplinkException

    prior = linker._settings_obj._probability_two_random_records_match  # Splink 5.0
    try:
        linker.training.estimate_parameters_using_expectation_maximisation(
            rule, estimate_without_term_frequencies=True, max_pairs=max_pairs
        )
    except (SplinkException, ValueError) as exc:
        linker._settings_obj._probability_two_random_records_match = prior
        log.info("passe EM %s ignorée : %s", rule, str(exc).splitlines()[0])
        return False
    return True


M_FLOOR = 1e-3


def _floor_m(settings: dict[str, Any]) -> None:
    """No level is impossible for a true match: EM on a small or lopsided territory can drive
    an m to zero (say "different addresses" when no one in the sample moved), which would veto
    every move for ever. Each m is floored at ``M_FLOOR`` and the comparison renormalised."""
    for comp in settings["comparisons"]:
        levels = [lv for lv in comp["comparison_levels"] if not lv.get("is_null_level")]
        if any(lv.get("fix_m_probability") for lv in levels):
            continue
        floored = [max(float(lv["m_probability"]), M_FLOOR) for lv in levels]
        total = sum(floored)
        for lv, m in zip(levels, floored, strict=True):
            lv["m_probability"] = m / total


def _fill_defaults(settings: dict[str, Any], linker: Any, records: int) -> None:
    """Write every m and u into the saved model, so that it scores exactly as Splink.

    A level never seen among the random pairs (a birth name matching a used name, say) gets
    u = half of one pair in the sample (it is rarer than that), not Splink's generic default,
    which would make the rarest evidence look common. Other untrained values are Splink's.
    """
    sampled = min(U_MAX_PAIRS, records * (records - 1) / 2) or 1
    trained = linker._settings_obj.comparisons  # Splink 5.0 internals (pinned)
    for comp, live in zip(settings["comparisons"], trained, strict=True):
        for level, live_level in zip(
            comp["comparison_levels"], live.comparison_levels, strict=True
        ):
            if level.get("is_null_level"):
                continue
            level["m_probability"] = float(live_level.m_probability)
            u = level.get("u_probability")
            unseen = not isinstance(u, int | float)
            level["u_probability"] = 0.5 / sampled if unseen else float(live_level.u_probability)


def expected_f1_threshold(probabilities: pa.Array, floor: float = 0.5) -> float:
    """The threshold that maximises the F1 expected from calibrated match probabilities.

    Without labels, each scored pair counts as ``p`` of a true match: at threshold ``t`` the
    expected true positives are the sum of ``p`` over pairs at or above ``t``, the expected
    positives all true matches (the sum of every ``p``). The result is never below ``floor``.
    """
    import pyarrow.compute as pc

    ordered = pc.array_sort_indices(probabilities, order="descending")
    values = pc.take(probabilities, ordered).cast(pa.float64())
    if len(values) == 0:
        return floor
    expected_true = pc.sum(values).as_py()
    tp = pc.cumulative_sum(values)
    predicted = pa.array(range(1, len(values) + 1), pa.float64())
    f1 = pc.divide(pc.multiply(tp, 2.0), pc.add(predicted, expected_true))
    best = values[pc.index(f1, pc.max(f1)).as_py()].as_py()
    return max(float(best), floor)
