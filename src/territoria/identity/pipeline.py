"""Linking mentions into persons: standardise, train, score, cluster.

``link_mentions`` is the whole job on any set of mentions (a workspace's sources, a data
team's CSV files, FEBRL); the registry (stable keys, households, reviews) builds on its result.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from territoria.identity.cluster import CONFLICT_COLUMNS, Clustering, cluster, conflict_rows
from territoria.identity.comparisons import GUARDIAN_MIN_AGE
from territoria.identity.features import build_features
from territoria.identity.model import (
    SCORE_FLOOR,
    ModelParams,
    expected_f1_threshold,
    from_splink,
    splink_settings,
    train,
)

REVIEW_BAND = (0.2, 0.8)
PAIR_SCHEMA = pa.schema(
    [
        ("unique_id_l", pa.string()),
        ("unique_id_r", pa.string()),
        ("match_probability", pa.float64()),
        ("match_weight", pa.float64()),
    ]
)
Progress = Callable[[str], None]


@dataclass
class LinkResult:
    features: pa.Table
    pairs: pa.Table  # PAIR_SCHEMA, every candidate pair scored at or above SCORE_FLOOR
    clusters: pa.Table  # unique_id, cluster
    params: ModelParams
    clustering: Clustering
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def threshold(self) -> float:
        return self.params.threshold


class Laps:
    """Seconds spent in each phase, in order (``timings``), for reports and benchmarks."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = round(now - self._last, 3)
        self._last = now


def duckdb_connection(memory_limit: str | None = None, threads: int | None = None) -> Any:
    """An in-memory DuckDB for Splink; it spills to the system's temporary folder (never the
    current directory) and takes ``TERRITORIA_DUCKDB_MEMORY`` as its memory limit."""
    con = duckdb.connect()
    spill = Path(tempfile.gettempdir()) / "territoria-duckdb"
    con.execute(f"SET temp_directory = '{spill.as_posix()}'")
    memory_limit = memory_limit or os.environ.get("TERRITORIA_DUCKDB_MEMORY")
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con


def link_mentions(
    mentions: pa.Table,
    *,
    relations: pa.Table | None = None,
    same: Iterable[tuple[str, str]] = (),
    different: Iterable[tuple[str, str]] = (),
    shared_identifiers: bool = False,
    one_per_source: bool = False,
    settings: dict[str, Any] | None = None,
    threshold: float | None = None,
    connection: Any = None,
    progress: Progress = lambda _: None,
) -> LinkResult:
    """Persons among ``mentions`` (``MENTION_SCHEMA``): train without labels, score, cluster.

    ``same`` and ``different`` are agents' decisions on pairs of mention ids;
    ``one_per_source`` links registers that hold each person at most once (one-to-one, see
    ``cluster``); ``shared_identifiers`` says whether an ``identifier`` means the same across sources (an id
    the files share) or only within its source (a customer number); ``settings`` is a
    trained model to reuse instead of training a new one, with its ``threshold`` (by default
    the threshold is chosen without labels, see ``expected_f1_threshold``).
    """
    timer = Laps()
    progress("normalisation des noms, dates et adresses")
    features = build_features(mentions, shared_identifiers=shared_identifiers)
    timer.lap("standardise")
    pairs, trained = score_pairs(features, settings, connection, progress, timer)
    if threshold is None:
        threshold = expected_f1_threshold(pairs.column("match_probability"))
    params = from_splink(trained, threshold, REVIEW_BAND)
    progress("regroupement en personnes")
    clustering = cluster_pairs(
        features,
        pairs,
        threshold,
        relations=relations,
        same=same,
        different=different,
        one_per_source=one_per_source,
    )
    timer.lap("cluster")
    ids = list(clustering.labels)
    clusters = pa.table(
        {"unique_id": ids, "cluster": [clustering.labels[i] for i in ids]},
        schema=pa.schema([("unique_id", pa.string()), ("cluster", pa.string())]),
    )
    return LinkResult(features, pairs, clusters, params, clustering, timer.timings)


def score_pairs(
    features: pa.Table,
    settings: dict[str, Any] | None,
    connection: Any,
    progress: Progress,
    timer: Laps,
) -> tuple[pa.Table, dict[str, Any]]:
    """Candidate pairs scored with Splink (training first when no ``settings`` are given)."""
    from splink import DuckDBAPI, Linker

    logging.getLogger("splink").setLevel(logging.ERROR)
    con = connection or duckdb_connection()
    con.register("territoria_features_arrow", features)
    con.execute("CREATE OR REPLACE TABLE territoria_features AS FROM territoria_features_arrow")
    con.unregister("territoria_features_arrow")
    if features.num_rows < 2:
        return PAIR_SCHEMA.empty_table(), settings or splink_settings()
    db_api = DuckDBAPI(connection=con)
    table = db_api.register("territoria_features", dataset_display_name="mentions")
    linker = Linker(table, settings or splink_settings(), log_level=logging.WARNING)
    timer.lap("setup")
    trained = settings
    if trained is None:
        trained = train(linker, features.num_rows, progress)
        linker = Linker(table, trained, log_level=logging.WARNING)  # predict with saved values
    timer.lap("train")
    progress("calcul des scores des paires candidates")
    predictions = linker.inference.predict(threshold_match_probability=SCORE_FLOOR)
    relation = predictions.as_duckdbpyrelation()
    pairs = relation.select(
        "unique_id_l, unique_id_r, match_probability::DOUBLE AS match_probability, "
        "match_weight::DOUBLE AS match_weight"
    ).to_arrow_table()
    predictions.drop_table_from_database_and_remove_from_cache()
    con.execute("DROP TABLE IF EXISTS territoria_features")  # the caller's connection lives on
    timer.lap("predict")
    return pairs.cast(PAIR_SCHEMA), trained


def cluster_pairs(
    features: pa.Table,
    pairs: pa.Table,
    threshold: float,
    *,
    relations: pa.Table | None = None,
    same: Iterable[tuple[str, str]] = (),
    different: Iterable[tuple[str, str]] = (),
    one_per_source: bool = False,
) -> Clustering:
    same, different = list(same), list(different)
    above = pairs.filter(pc.greater_equal(pairs["match_probability"], threshold))
    kept = list(
        zip(
            above["unique_id_l"].to_pylist(),
            above["unique_id_r"].to_pylist(),
            above["match_probability"].to_pylist(),
            strict=True,
        )
    )
    involved = {x for a, b, _ in kept for x in (a, b)}
    involved |= {x for pair in same + different for x in pair}
    if relations is not None:
        involved |= set(relations["mention_a"].to_pylist()) | set(
            relations["mention_b"].to_pylist()
        )
    # Only the records in a pair, and only the fields conflicts read, become Python objects.
    subset = features.filter(
        pc.is_in(features["unique_id"], pa.array(sorted(involved), pa.string()))
    )
    columns = {c: subset.column(c).to_pylist() for c in CONFLICT_COLUMNS}
    rows = conflict_rows(columns, range(subset.num_rows), _latest_birth_years(columns, relations))
    ids = features["unique_id"].to_pylist()
    return cluster(
        ids, rows, kept, threshold, same=same, different=different, one_per_source=one_per_source
    )


def _latest_birth_years(
    columns: dict[str, list[Any]], relations: pa.Table | None
) -> dict[str, int]:
    """Latest plausible birth year of each guardian: the child's, minus the minimum age."""
    if relations is None or relations.num_rows == 0:
        return {}
    year = dict(zip(columns["unique_id"], columns["dob_y"], strict=True))
    latest: dict[str, int] = {}
    for a, b, kind in zip(
        relations.column("mention_a").to_pylist(),
        relations.column("mention_b").to_pylist(),
        relations.column("kind").to_pylist(),
        strict=True,
    ):
        child_year = year.get(b)
        if kind == "guardian_of" and child_year is not None:
            bound = child_year - GUARDIAN_MIN_AGE
            latest[a] = min(bound, latest.get(a, bound))
    return latest
