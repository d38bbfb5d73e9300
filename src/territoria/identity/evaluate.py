"""Scoring a linkage against a ground truth: pairwise and cluster metrics, household merges.

Every function takes Arrow tables with a ``unique_id`` column (string) and an ``entity`` column
(string or integer): the predicted cluster on one side, the true person (or household) on the
other. Only records present in BOTH tables are scored; a record whose entity is null or empty
stands alone (it is the same entity as no other record).

Pairs are unordered pairs of records of the same entity. Pairwise precision is the share of
predicted pairs that are true pairs, recall the share of true pairs that are predicted; true
pairs the linkage never compared (lost by blocking) count as false negatives, as in
``research/linkage-anchors.md`` §5. Pairs are counted with DuckDB from group sizes
(``n * (n - 1) / 2`` per group, the intersection from groups of (predicted, true) entity) and
never materialised: memory grows with records, not pairs (the full report on five million
records: 2 GB and about a minute on two busy cores; one pairwise figure, about ten seconds).

By convention, precision is 1.0 when nothing is predicted (no pair, no cluster) and recall is
1.0 when there is nothing to find; F1 is 0.0 when both precision and recall are 0.
"""

from __future__ import annotations

import csv
from contextlib import closing
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any, Literal

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from territoria.core.errors import TerritoriaError

TRUTH_FILE = "records.csv"
TRUTH_COLUMNS = ("source", "record_id", "slot", "person_id", "household_id")
MERGE_EXAMPLES = 20

# Groups of joined records by predicted cluster, by true entity, and by both.
_PREDICTED, _TRUE, _BOTH = "pred", "truth", "pred, truth"


@dataclass(frozen=True)
class Metrics:
    """Precision, recall and F1 with the counts they come from.

    The counts are of pairs for pairwise metrics and of clusters for cluster metrics
    (``unit`` says which): ``true_pairs`` are the true ones, ``predicted_pairs`` the predicted
    ones, ``correct_pairs`` the predicted ones that are true.
    """

    precision: float
    recall: float
    f1: float
    true_pairs: int
    predicted_pairs: int
    correct_pairs: int
    unit: Literal["pairs", "clusters"] = "pairs"

    @classmethod
    def from_counts(
        cls, true: int, predicted: int, correct: int, unit: Literal["pairs", "clusters"] = "pairs"
    ) -> Metrics:
        precision = correct / predicted if predicted else 1.0
        recall = correct / true if true else 1.0
        total = precision + recall
        f1 = 2 * precision * recall / total if total else 0.0
        return cls(precision, recall, f1, true, predicted, correct, unit)

    def as_dict(self) -> dict[str, Any]:
        return {
            "precision": round(self.precision, 6),
            "recall": round(self.recall, 6),
            "f1": round(self.f1, 6),
            "true": self.true_pairs,
            "predicted": self.predicted_pairs,
            "correct": self.correct_pairs,
            "unit": self.unit,
        }


# ---------------------------------------------------------------- joining the two sides


def _require(table: pa.Table, columns: tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise TerritoriaError(
            f"la table {what} n'a pas la colonne « {missing[0]} »",
            code="evaluation_input",
            field_name=missing[0],
            expected=", ".join(columns),
        )


def _entity_sql(column: str) -> str:
    """The entity as text; a null or empty one becomes a group of its own record."""
    text = f"NULLIF(CAST({column} AS VARCHAR), '')"
    return f"coalesce({text}, chr(0) || unique_id)"


def _connect(
    predicted: pa.Table, truth: pa.Table, source_of: pa.Table | None = None
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection holding ``joined(unique_id, pred, truth, source)``.

    ``source`` comes from ``source_of`` when given, else from the mention id
    (``source|record_id|slot``: the text before the first ``|``).
    """
    _require(predicted, ("unique_id", "entity"), "prédite")
    _require(truth, ("unique_id", "entity"), "de vérité")
    con = _database().cursor()
    try:
        _join(con, predicted, truth, source_of)
    except BaseException:
        con.close()
        raise
    return con


@cache
def _database() -> duckdb.DuckDBPyConnection:
    """One in-memory DuckDB per process: opening and closing one costs a tenth of a second.

    Each evaluation works on its own cursor, whose registrations and temp tables die with it.
    """
    return duckdb.connect()


def _join(
    con: duckdb.DuckDBPyConnection,
    predicted: pa.Table,
    truth: pa.Table,
    source_of: pa.Table | None,
) -> None:
    con.register("predicted_in", predicted.select(["unique_id", "entity"]))
    con.register("truth_in", truth.select(["unique_id", "entity"]))
    source, join = "split_part(p.unique_id, '|', 1)", ""
    if source_of is not None:
        _require(source_of, ("unique_id", "source"), "des sources")
        con.register("source_in", source_of.select(["unique_id", "source"]))
        source = "s.source"
        join = (
            "LEFT JOIN (SELECT unique_id, any_value(source) AS source FROM source_in "
            "GROUP BY unique_id) s USING (unique_id)"
        )
    con.execute(f"""
        CREATE TEMP TABLE joined AS
        SELECT unique_id, {_entity_sql("p.entity")} AS pred,
               {_entity_sql("t.entity")} AS truth, CAST({source} AS VARCHAR) AS source
        FROM predicted_in p JOIN truth_in t USING (unique_id) {join}
    """)
    _check_unique(con)


def _check_unique(con: duckdb.DuckDBPyConnection) -> None:
    repeated = _count(con, "SELECT count(*) - count(DISTINCT unique_id) FROM joined")
    if repeated:
        example = _first(con, "SELECT unique_id FROM joined GROUP BY 1 HAVING count(*) > 1 LIMIT 1")
        raise TerritoriaError(
            f"{repeated} identifiants apparaissent plusieurs fois (par exemple « {example[0]} »)",
            code="evaluation_input",
            field_name="unique_id",
            hint="chaque enregistrement doit figurer une seule fois dans chaque table",
        )


# ---------------------------------------------------------------- counting pairs


def _first(con: duckdb.DuckDBPyConnection, sql: str, params: Any = None) -> tuple[Any, ...]:
    """The first row of a one-row query (fetched to the end: DuckDB 2 refuses new work on a
    connection with an unfinished result)."""
    rows = con.execute(sql, params).fetchall()
    return tuple(rows[0]) if rows else (None,)


def _count(con: duckdb.DuckDBPyConnection, sql: str, params: Any = None) -> int:
    value = _first(con, sql, params)[0]
    return int(value) if value is not None else 0


def _pairs(con: duckdb.DuckDBPyConnection, key: str) -> int:
    """Unordered pairs of joined records that share ``key``."""
    return _count(
        con, f"SELECT sum(n * (n - 1) // 2) FROM (SELECT count(*) AS n FROM joined GROUP BY {key})"
    )


def _pairs_between(con: duckdb.DuckDBPyConnection, key: str, a: str, b: str) -> int:
    """Pairs sharing ``key`` that join a record of source ``a`` to one of source ``b``."""
    per_group = "n_a * (n_a - 1) // 2" if a == b else "n_a * n_b"
    return _count(
        con,
        f"""SELECT sum({per_group}) FROM (
            SELECT count(*) FILTER (WHERE source = $a) AS n_a,
                   count(*) FILTER (WHERE source = $b) AS n_b
            FROM joined GROUP BY {key})""",
        {"a": a, "b": b},
    )


def _pairs_by_source(con: duckdb.DuckDBPyConnection, key: str) -> dict[str, int]:
    """For each source, pairs sharing ``key`` with at least one record of that source.

    In a group of ``n`` records, ``s`` of them from the source, that is every pair but those
    between the ``n - s`` others. Singleton groups have no pair: they are dropped first.
    """
    rows = con.execute(f"""
        WITH g AS (SELECT count(*) AS n, list(source) AS sources FROM joined
                   GROUP BY {key} HAVING count(*) > 1)
        SELECT source, sum(n * (n - 1) // 2 - (n - s) * (n - s - 1) // 2)
        FROM (SELECT n, unnest(map_entries(list_histogram(sources)), recursive := true)
              FROM g) AS t(n, source, s)
        WHERE source IS NOT NULL GROUP BY source
    """).fetchall()
    return {str(source): int(count) for source, count in rows}


# ---------------------------------------------------------------- metrics on a connection


def _pairwise(con: duckdb.DuckDBPyConnection, between: tuple[str, str] | None = None) -> Metrics:
    if between is None:
        true, pred, correct = (_pairs(con, key) for key in (_TRUE, _PREDICTED, _BOTH))
    else:
        true, pred, correct = (_pairs_between(con, k, *between) for k in (_TRUE, _PREDICTED, _BOTH))
    return Metrics.from_counts(true, pred, correct)


def _by_source(con: duckdb.DuckDBPyConnection) -> dict[str, Metrics]:
    true, pred, both = (_pairs_by_source(con, key) for key in (_TRUE, _PREDICTED, _BOTH))
    sources = [
        str(row[0])
        for row in con.execute(
            "SELECT DISTINCT source FROM joined WHERE source IS NOT NULL ORDER BY source"
        ).fetchall()
    ]
    return {s: Metrics.from_counts(true.get(s, 0), pred.get(s, 0), both.get(s, 0)) for s in sources}


def _clusters(con: duckdb.DuckDBPyConnection) -> Metrics:
    # A predicted cluster is exact when it holds one true entity, with all of its records.
    # (Joining the three group-size tables at once on ``n = n`` hangs DuckDB 2.0.1.)
    exact, n_true, n_pred = (
        int(v)
        for v in _first(
            con,
            """WITH b AS (SELECT pred, truth, count(*) AS n FROM joined GROUP BY pred, truth),
                p AS (SELECT any_value(truth) AS truth, sum(n) AS n FROM b
                      GROUP BY pred HAVING count(*) = 1),
                t AS (SELECT truth, sum(n) AS n FROM b GROUP BY truth)
           SELECT (SELECT count(*) FROM p JOIN t ON p.truth = t.truth WHERE p.n = t.n),
                  (SELECT count(*) FROM t), (SELECT count(DISTINCT pred) FROM b)""",
        )
    )
    return Metrics.from_counts(n_true, n_pred, exact, unit="clusters")


def _merges(con: duckdb.DuckDBPyConnection, households: pa.Table) -> list[tuple[str, list[str]]]:
    _require(households, ("unique_id", "entity"), "des ménages")
    con.register("households_in", households.select(["unique_id", "entity"]))
    rows = con.execute("""
        WITH mixed AS (SELECT pred FROM joined GROUP BY pred HAVING min(truth) <> max(truth)),
        m AS (
            SELECT j.pred, j.truth AS person, NULLIF(CAST(h.entity AS VARCHAR), '') AS hh
            FROM joined j SEMI JOIN mixed USING (pred) JOIN households_in h USING (unique_id)
            WHERE NOT starts_with(j.truth, chr(0))),
        bad AS (SELECT pred, hh FROM m WHERE hh IS NOT NULL
                GROUP BY ALL HAVING count(DISTINCT person) > 1)
        SELECT pred, list_sort(list(DISTINCT person))
        FROM m JOIN bad USING (pred, hh) GROUP BY pred ORDER BY pred
    """).fetchall()
    con.unregister("households_in")
    return [(str(cluster), [str(p) for p in persons]) for cluster, persons in rows]


# ---------------------------------------------------------------- public metrics


def pairwise_metrics(
    predicted: pa.Table,
    truth: pa.Table,
    between: tuple[str, str] | None = None,
    source_of: pa.Table | None = None,
) -> Metrics:
    """Pairwise precision, recall and F1 of ``predicted`` clusters against ``truth``.

    Only records present in both tables count. With ``between=(a, b)`` only pairs joining a
    record of source ``a`` to a record of source ``b`` count, on both sides (linking file A to
    file B, where only cross-file pairs can be true). Sources come from ``source_of``
    (``unique_id``, ``source``), or else from the mention id (``source|record_id|slot``).

    >>> t = pa.table({"unique_id": ["a", "b", "c"], "entity": [1, 1, 2]})
    >>> pairwise_metrics(t, t).f1
    1.0
    """
    with closing(_connect(predicted, truth, source_of)) as con:
        return _pairwise(con, between)


def pairwise_metrics_by_source(
    predicted: pa.Table, truth: pa.Table, source_of: pa.Table | None = None
) -> dict[str, Metrics]:
    """Pairwise metrics of each source, on the pairs with at least one record of that source.

    Sources come from ``source_of`` (``unique_id``, ``source``), or else from the mention id;
    they are listed in alphabetical order.
    """
    with closing(_connect(predicted, truth, source_of)) as con:
        return _by_source(con)


def cluster_metrics(predicted: pa.Table, truth: pa.Table) -> Metrics:
    """Share of predicted clusters that are exactly a true cluster (precision), and of true
    clusters exactly reproduced (recall). Singletons count; only records in both tables do.

    The counts of the result are of clusters (``unit == "clusters"``).
    """
    with closing(_connect(predicted, truth)) as con:
        return _clusters(con)


def household_merges(
    predicted: pa.Table, truth_persons: pa.Table, truth_households: pa.Table
) -> list[tuple[str, list[str]]]:
    """Predicted clusters that join two different true persons of the same true household.

    The failure the resident index must never make (twins, a father and his son of the same
    name): returns ``(cluster, sorted person ids)`` for each such cluster, the persons being
    those that share a household with another person of the cluster; sorted by cluster.
    """
    with closing(_connect(predicted, truth_persons)) as con:
        return _merges(con, truth_households)


# ---------------------------------------------------------------- sandbox truth


def read_sandbox_truth(truth_dir: Path) -> tuple[pa.Table, pa.Table]:
    """The sandbox's ``truth/records.csv`` as (persons truth, households truth).

    Both tables have ``unique_id`` (the mention id ``source|record_id|slot``) and ``entity``
    (``person_id``, resp. ``household_id``; empty for a slot that is no known person).
    """
    path = Path(truth_dir) / TRUTH_FILE
    hint = "donnez le dossier truth/ écrit par « territoria sandbox generate »"
    if not Path(truth_dir).is_dir():
        raise TerritoriaError(
            "le dossier de vérité terrain n'existe pas",
            code="truth_missing",
            file=truth_dir,
            hint=hint,
        )
    if not path.is_file():
        raise TerritoriaError(
            f"le dossier de vérité terrain ne contient pas {TRUTH_FILE}",
            code="truth_missing",
            file=path,
            hint=hint,
        )
    table = _read_truth_csv(path)
    ids = pc.binary_join_element_wise(
        table["source"], table["record_id"], table["slot"], pa.scalar("|")
    )
    return (
        pa.table({"unique_id": ids, "entity": table["person_id"]}),
        pa.table({"unique_id": ids, "entity": table["household_id"]}),
    )


def _read_truth_csv(path: Path) -> pa.Table:
    import pyarrow.csv as pacsv

    with path.open(encoding="utf-8", newline="") as handle:
        header = next(csv.reader(handle), [])
    for column in TRUTH_COLUMNS:
        if column not in header:
            raise TerritoriaError(
                f"la colonne « {column} » manque",
                code="truth_column_missing",
                file=path,
                field_name=column,
                expected=", ".join(TRUTH_COLUMNS),
            )
    try:
        return pacsv.read_csv(
            path,
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(header, pa.string()), include_columns=list(TRUTH_COLUMNS)
            ),
        )
    except pa.ArrowInvalid as exc:
        raise TerritoriaError(
            f"le fichier de vérité terrain est illisible ({exc})", code="truth_invalid", file=path
        ) from exc


# ---------------------------------------------------------------- report


@dataclass(frozen=True)
class EvaluationReport:
    """A linkage scored against the truth: persons, per source, households."""

    persons: Metrics  # pairwise, persons
    person_clusters: Metrics  # exact clusters, persons
    by_source: dict[str, Metrics]  # pairwise, pairs involving each source
    household_merges: list[tuple[str, list[str]]]  # clusters joining persons of one household
    households: Metrics | None = None  # pairwise, households (when predicted)
    records: dict[str, int] = field(default_factory=dict)  # predicted, truth, compared

    def as_dict(self) -> dict[str, Any]:
        return {
            "records": dict(self.records),
            "persons": self.persons.as_dict(),
            "person_clusters": self.person_clusters.as_dict(),
            "by_source": {s: m.as_dict() for s, m in self.by_source.items()},
            "household_merges": len(self.household_merges),
            "household_merge_examples": [
                {"cluster": c, "persons": p} for c, p in self.household_merges[:MERGE_EXAMPLES]
            ],
            "households": None if self.households is None else self.households.as_dict(),
        }

    def lines_fr(self) -> list[str]:
        """The report as lines of a terminal table, in French."""
        n = self.records
        lines = [
            f"Enregistrements comparés : {_int_fr(n.get('compared', 0))} "
            f"(prédits {_int_fr(n.get('predicted', 0))}, vérité {_int_fr(n.get('truth', 0))})",
            _HEADER,
            _row("Personnes, par paires", self.persons),
            _row("Personnes, groupes exacts", self.person_clusters),
        ]
        if self.households is not None:
            lines.append(_row("Ménages, par paires", self.households))
        if self.by_source:
            lines.append("Personnes par source (paires touchant la source) :")
            lines += [_row(f"  {s}", m) for s, m in self.by_source.items()]
        lines.append(
            "Personnes distinctes d'un même ménage fusionnées (jumeaux, parent et enfant…) : "
            f"{_int_fr(len(self.household_merges))}"
        )
        lines += [f"  {c} : {', '.join(p)}" for c, p in self.household_merges[:MERGE_EXAMPLES]]
        return lines


_LABEL_WIDTH = 34
_HEADER = (
    f"{'':<{_LABEL_WIDTH}} {'Précision':>9} {'Rappel':>8} {'F1':>8} "
    f"{'vrais':>10} {'prédits':>10} {'corrects':>10}"
)


def _int_fr(value: int) -> str:
    return f"{value:,}".replace(",", " ")


def _float_fr(value: float) -> str:
    return f"{value:.4f}".replace(".", ",")


def _row(label: str, m: Metrics) -> str:
    return (
        f"{label:<{_LABEL_WIDTH}} {_float_fr(m.precision):>9} {_float_fr(m.recall):>8} "
        f"{_float_fr(m.f1):>8} {_int_fr(m.true_pairs):>10} {_int_fr(m.predicted_pairs):>10} "
        f"{_int_fr(m.correct_pairs):>10}"
    )


def evaluate_against_truth(
    person_clusters: pa.Table,
    household_clusters: pa.Table | None,
    truth_dir: Path,
    source_of: pa.Table | None = None,
) -> EvaluationReport:
    """Score predicted persons (and households) against the sandbox's ``truth/`` folder.

    ``person_clusters`` and ``household_clusters`` have ``unique_id`` (mention id) and
    ``entity`` (the predicted person / household); sources come from ``source_of`` or else from
    the mention ids.
    """
    persons, households = read_sandbox_truth(truth_dir)
    with closing(_connect(person_clusters, persons, source_of)) as con:
        report = EvaluationReport(
            persons=_pairwise(con),
            person_clusters=_clusters(con),
            by_source=_by_source(con),
            household_merges=_merges(con, households),
            records={
                "predicted": person_clusters.num_rows,
                "truth": persons.num_rows,
                "compared": _count(con, "SELECT count(*) FROM joined"),
            },
        )
    if household_clusters is None:
        return report
    return replace(report, households=pairwise_metrics(household_clusters, households))
