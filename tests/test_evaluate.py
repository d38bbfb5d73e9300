"""Linkage metrics: hand-computed cases, and a brute-force pair enumeration as the oracle."""

from __future__ import annotations

import json
from collections.abc import Mapping
from itertools import combinations
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from territoria.core.errors import TerritoriaError
from territoria.identity.evaluate import (
    EvaluationReport,
    Metrics,
    cluster_metrics,
    evaluate_against_truth,
    household_merges,
    pairwise_metrics,
    pairwise_metrics_by_source,
    read_sandbox_truth,
)

Labels = Mapping[str, object]


def table(labels: Labels) -> pa.Table:
    """``{unique_id: entity}`` as an evaluation table (entities kept as given)."""
    return pa.table({"unique_id": list(labels), "entity": list(labels.values())})


TRUTH = {"s|a": "1", "s|b": "1", "r|c": "2", "r|d": "2", "r|e": "3"}


# ---------------------------------------------------------------- hand-computed cases


def test_perfect_prediction_scores_one_everywhere() -> None:
    predicted = {"s|a": 10, "s|b": 10, "r|c": 20, "r|d": 20, "r|e": 30}
    m = pairwise_metrics(table(predicted), table(TRUTH))
    assert (m.precision, m.recall, m.f1) == (1.0, 1.0, 1.0)
    assert (m.true_pairs, m.predicted_pairs, m.correct_pairs) == (2, 2, 2)
    c = cluster_metrics(table(predicted), table(TRUTH))
    assert (c.precision, c.recall, c.true_pairs, c.unit) == (1.0, 1.0, 3, "clusters")


def test_merging_two_true_clusters_lowers_precision_by_the_exact_count() -> None:
    predicted = {"s|a": "x", "s|b": "x", "r|c": "x", "r|d": "x", "r|e": "y"}
    m = pairwise_metrics(table(predicted), table(TRUTH))
    # 4 records together: 6 pairs predicted, 2 of them true.
    assert (m.true_pairs, m.predicted_pairs, m.correct_pairs) == (2, 6, 2)
    assert m.precision == pytest.approx(2 / 6)
    assert m.recall == 1.0
    assert m.f1 == pytest.approx(2 * (1 / 3) / (1 / 3 + 1))
    c = cluster_metrics(table(predicted), table(TRUTH))
    assert (c.correct_pairs, c.predicted_pairs, c.true_pairs) == (1, 2, 3)  # only {e} exact


def test_a_split_lowers_recall() -> None:
    truth = {"a": 1, "b": 1, "c": 1, "d": 2}
    predicted = {"a": "x", "b": "x", "c": "y", "d": "z"}
    m = pairwise_metrics(table(predicted), table(truth))
    assert (m.true_pairs, m.predicted_pairs, m.correct_pairs) == (3, 1, 1)
    assert (m.precision, m.recall) == (1.0, pytest.approx(1 / 3))


def test_only_records_in_both_tables_count() -> None:
    predicted = {"s|a": "x", "s|b": "x", "zz": "x"}
    m = pairwise_metrics(table(predicted), table(TRUTH))
    assert (m.true_pairs, m.predicted_pairs, m.correct_pairs) == (1, 1, 1)


def test_empty_entities_stand_alone() -> None:
    truth = {"a": "", "b": None, "c": "p"}
    predicted = {"a": "x", "b": "x", "c": "y"}
    m = pairwise_metrics(table(predicted), table(truth))
    assert (m.true_pairs, m.predicted_pairs, m.correct_pairs) == (0, 1, 0)
    assert (m.precision, m.recall, m.f1) == (0.0, 1.0, 0.0)


def test_nothing_predicted_has_precision_one_by_convention() -> None:
    predicted = {k: k for k in TRUTH}
    m = pairwise_metrics(table(predicted), table(TRUTH))
    assert (m.precision, m.recall, m.f1) == (1.0, 0.0, 0.0)


def test_between_counts_only_cross_source_pairs() -> None:
    truth = {"a|1": 1, "b|1": 1, "a|2": 2, "b|2": 2, "a|3": 3}
    predicted = {"a|1": "x", "b|1": "x", "a|2": "x", "b|2": "y", "a|3": "z"}
    m = pairwise_metrics(table(predicted), table(truth), between=("a", "b"))
    # cross pairs predicted: a1-b1 (true), a2-b1 (false); true cross pairs: a1-b1, a2-b2.
    assert (m.true_pairs, m.predicted_pairs, m.correct_pairs) == (2, 2, 1)
    same = pairwise_metrics(table(predicted), table(truth), between=("a", "a"))
    assert (same.true_pairs, same.predicted_pairs, same.correct_pairs) == (0, 1, 0)


def test_between_reads_sources_from_the_source_table() -> None:
    truth = {"1": 1, "2": 1}
    sources = pa.table({"unique_id": ["1", "2"], "source": ["left", "right"]})
    m = pairwise_metrics(table(truth), table(truth), ("left", "right"), sources)
    assert (m.true_pairs, m.correct_pairs) == (1, 1)


def test_by_source_counts_pairs_touching_the_source() -> None:
    predicted = {"s|a": "x", "s|b": "x", "r|c": "x", "r|d": "y", "r|e": "y"}
    by = pairwise_metrics_by_source(table(predicted), table(TRUTH))
    assert list(by) == ["r", "s"]
    # s: predicted a-b, a-c, b-c (a-b true); true a-b.
    assert (by["s"].true_pairs, by["s"].predicted_pairs, by["s"].correct_pairs) == (1, 3, 1)
    # r: predicted a-c, b-c, d-e; true c-d.
    assert (by["r"].true_pairs, by["r"].predicted_pairs, by["r"].correct_pairs) == (1, 3, 0)


def test_household_merges_finds_twins_merged() -> None:
    persons = {"w|1|holder": "P1", "s|7|child": "P2", "s|8|child": "P3", "w|2|holder": "P4"}
    households = {"w|1|holder": "H1", "s|7|child": "H1", "s|8|child": "H1", "w|2|holder": "H2"}
    predicted = {"w|1|holder": "A", "s|7|child": "B", "s|8|child": "B", "w|2|holder": "B"}
    merges = household_merges(table(predicted), table(persons), table(households))
    assert merges == [("B", ["P2", "P3"])]
    separate = {k: k for k in persons}
    assert household_merges(table(separate), table(persons), table(households)) == []


def test_duplicate_ids_are_refused() -> None:
    doubled = pa.table({"unique_id": ["a", "a"], "entity": ["x", "y"]})
    with pytest.raises(TerritoriaError, match="plusieurs fois"):
        pairwise_metrics(doubled, table({"a": 1}))


def test_missing_column_is_refused() -> None:
    with pytest.raises(TerritoriaError) as info:
        pairwise_metrics(pa.table({"unique_id": ["a"]}), table({"a": 1}))
    assert info.value.field_name == "entity"


# ---------------------------------------------------------------- truth files and report


def write_truth(folder: Path, rows: list[tuple[str, ...]], header: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = [header or "source,record_id,slot,person_id,household_id"]
    lines += [",".join(row) for row in rows]
    (folder / "records.csv").write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    return folder


TRUTH_ROWS = [
    ("water", "C1", "holder", "P1", "H1"),
    ("water", "C1", "co_holder", "P2", "H1"),
    ("water", "C1", "payer", "", ""),
    ("school", "E1", "child", "P3", "H1"),
    ("school", "E2", "child", "P4", "H1"),
    ("school", "E3", "guardian", "P1", "H1"),
]


def test_read_sandbox_truth(tmp_path: Path) -> None:
    persons, households = read_sandbox_truth(write_truth(tmp_path / "truth", TRUTH_ROWS))
    assert persons.column("unique_id").to_pylist()[0] == "water|C1|holder"
    assert persons.column("entity").to_pylist()[:3] == ["P1", "P2", ""]
    assert households.column("entity").to_pylist()[0] == "H1"


@pytest.mark.parametrize("case", ["no_folder", "no_file", "no_column"])
def test_truth_errors_say_what_is_missing(tmp_path: Path, case: str) -> None:
    folder = tmp_path / "truth"
    if case == "no_file":
        folder.mkdir()
    if case == "no_column":
        write_truth(folder, [("w", "1", "h", "P1")], header="source,record_id,slot,person_id")
    with pytest.raises(TerritoriaError) as info:
        read_sandbox_truth(folder)
    assert info.value.file is not None
    if case == "no_column":
        assert (info.value.code, info.value.field_name) == ("truth_column_missing", "household_id")
    else:
        assert info.value.code == "truth_missing"


def test_evaluate_against_truth_reports_in_french_and_json(tmp_path: Path) -> None:
    truth_dir = write_truth(tmp_path / "truth", TRUTH_ROWS)
    ids = ["|".join(row[:3]) for row in TRUTH_ROWS]
    # The twins P3 and P4 merged; everything else right; one extra record the truth ignores.
    persons = ["P1", "P2", "X", "T", "T", "P1", "Z"]
    predicted = pa.table({"unique_id": [*ids, "other|1|x"], "entity": persons})
    households = pa.table({"unique_id": ids, "entity": ["H"] * 6})
    report = evaluate_against_truth(predicted, households, truth_dir, None)
    assert isinstance(report, EvaluationReport)
    assert (report.persons.precision, report.persons.recall) == (0.5, 1.0)
    assert report.household_merges == [("T", ["P3", "P4"])]
    assert report.records == {"predicted": 7, "truth": 6, "compared": 6}
    assert set(report.by_source) == {"school", "water"}
    assert report.households is not None and report.households.recall == 1.0
    data = json.loads(json.dumps(report.as_dict()))
    assert data["household_merges"] == 1 and data["persons"]["f1"] == pytest.approx(2 / 3, 1e-5)
    text = "\n".join(report.lines_fr())
    for words in ("Précision", "Rappel", "F1", "par source", "ménage", "0,5000"):
        assert words in text


def test_metrics_as_dict() -> None:
    m = Metrics.from_counts(true=4, predicted=2, correct=1)
    assert m.as_dict() == {
        "precision": 0.5,
        "recall": 0.25,
        "f1": pytest.approx(1 / 3, 1e-5),
        "true": 4,
        "predicted": 2,
        "correct": 1,
        "unit": "pairs",
    }


# ---------------------------------------------------------------- brute force oracle


def brute_pairs(labels: Labels, keep: set[tuple[str, str]] | None = None) -> set[frozenset[str]]:
    """Unordered pairs of records with the same (non-empty) label, optionally only those whose
    ordered (source, source) is in ``keep``."""
    out = set()
    for x, y in combinations(sorted(labels), 2):
        if labels[x] in (None, "") or labels[x] != labels[y]:
            continue
        if keep is None or (x[0], y[0]) in keep or (y[0], x[0]) in keep:
            out.add(frozenset((x, y)))
    return out


def brute_metrics(pred: set[frozenset[str]], true: set[frozenset[str]]) -> tuple[int, int, int]:
    return len(true), len(pred), len(pred & true)


ids = st.lists(
    st.builds(lambda s, n: f"{s}|{n}", st.sampled_from("abc"), st.integers(0, 9)),
    unique=True,
    max_size=14,
)


@st.composite
def partitions(draw: st.DrawFn) -> tuple[dict[str, object], dict[str, object]]:
    """Predicted and true labels of random records; some records only on one side."""
    keys = draw(ids)
    labels = st.sampled_from(["0", "1", "2", "3", "", None])
    truth = {k: draw(labels) for k in keys if draw(st.integers(0, 9)) > 0}
    predicted = {k: draw(st.sampled_from("xyz")) for k in keys if draw(st.integers(0, 9)) > 0}
    return predicted, truth


def counts(m: Metrics) -> tuple[int, int, int]:
    return m.true_pairs, m.predicted_pairs, m.correct_pairs


@settings(max_examples=60, deadline=None)
@given(partitions(), st.sampled_from([None, ("a", "b"), ("c", "c")]))
def test_pairwise_metrics_match_brute_force(
    case: tuple[dict[str, object], dict[str, object]], between: tuple[str, str] | None
) -> None:
    predicted, truth = case
    common = predicted.keys() & truth.keys()
    pred = {k: v for k, v in predicted.items() if k in common}
    true = {k: v for k, v in truth.items() if k in common}
    keep = None if between is None else {between}
    got = pairwise_metrics(table(predicted), table(truth), between=between)
    assert counts(got) == brute_metrics(brute_pairs(pred, keep), brute_pairs(true, keep))


@settings(max_examples=40, deadline=None)
@given(partitions())
def test_by_source_matches_brute_force(case: tuple[dict[str, object], dict[str, object]]) -> None:
    predicted, truth = case
    common = predicted.keys() & truth.keys()
    pred = brute_pairs({k: v for k, v in predicted.items() if k in common})
    true = brute_pairs({k: v for k, v in truth.items() if k in common})
    by = pairwise_metrics_by_source(table(predicted), table(truth))
    assert set(by) == {k[0] for k in common}
    for source, m in by.items():
        touching = {p for p in pred | true if any(x[0] == source for x in p)}
        assert counts(m) == brute_metrics(pred & touching, true & touching)


@settings(max_examples=40, deadline=None)
@given(partitions())
def test_cluster_metrics_match_brute_force(
    case: tuple[dict[str, object], dict[str, object]],
) -> None:
    predicted, truth = case
    common = sorted(predicted.keys() & truth.keys())

    def groups(labels: Labels) -> set[frozenset[str]]:
        found: dict[object, set[str]] = {}
        for k in common:
            found.setdefault(labels[k] if labels[k] not in (None, "") else ("alone", k), set()).add(
                k
            )
        return {frozenset(g) for g in found.values()}

    pred, true = groups(predicted), groups(truth)
    m = cluster_metrics(table(predicted), table(truth))
    assert counts(m) == (len(true), len(pred), len(pred & true))
