"""Benchmark: link two French sources of n persons each (``link_mentions``) against Splink.

Target (research note ``linkage-anchors.md`` §6, G3): train + predict + cluster 500 000 +
500 000 records in at most 35 s of linkage (standardisation excluded, as in the reference),
under 4 GB. The reference is measured in the same run, on the same records: the note's Splink 5
no-identifier model (``linkage-baseline/models.py`` ``noid`` + ``train_noid``) on DuckDB with
``memory_limit = 4GB``, clustered at 0.5; its input columns are prepared beforehand (lower
case, no accents, number and street split), outside the timed part. Its address blocking rules
are made local to a building or a commune by default (``--blocking adapted``, see
``blocking_rules``): the note's own (``--blocking note``) make quadratic blocks on French
communes and cannot run at full size. Each side runs in its own
process, so that its peak memory is its own; both are scored by the same pairwise metrics
(pairs joining a record of A to one of B) and by the household-merge count.

    python benchmarks/link_scale.py                 # 500 000 + 500 000 records
    python benchmarks/link_scale.py --quick         # 20 000 + 20 000
    python benchmarks/link_scale.py --n 100000 --no-reference
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

TARGET_SECONDS = 35
MEMORY_LIMIT = "4GB"
SEED = 20250
BETWEEN = ("source_a", "source_b")
PHASES = ("standardise", "setup", "train", "predict", "cluster")


# ---------------------------------------------------------------- shared by both sides


def connection(work: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
    con.execute(f"SET temp_directory = '{work / 'spill'}'")
    con.execute("SET enable_progress_bar = false")
    return con


def peak_rss_gb(who: int = resource.RUSAGE_SELF) -> float:
    """Peak resident memory of this process (or of the largest of its finished children,
    e.g. the standardisation workers), in GB."""
    return round(resource.getrusage(who).ru_maxrss / 1024**2, 2)


# ---------------------------------------------------------------- Territoria side (child)


def run_ours(work: Path) -> dict[str, Any]:
    from territoria.identity import link_mentions

    mentions = pq.read_table(work / "mentions.parquet")
    result = link_mentions(mentions, connection=connection(work))
    pq.write_table(result.clusters, work / "ours_clusters.parquet")
    return {
        "timings": result.timings,
        "pairs_kept": result.pairs.num_rows,
        "threshold": result.threshold,
        "refused_merges": result.clustering.refused,
        "peak_rss_gb": peak_rss_gb(),
        "workers_peak_rss_gb": peak_rss_gb(resource.RUSAGE_CHILDREN),
    }


# ---------------------------------------------------------------- Splink reference (child)
# A port of linkage-baseline/models.py (``noid`` settings and ``train_noid``), unchanged.

SWAPPED = "l.given_name = r.surname and l.surname = r.given_name"


def _jw(col: str, t: float) -> str:
    return f"jaro_winkler_similarity({col}_l, {col}_r) >= {t}"


def _address_comparison() -> Any:
    import splink.comparison_library as cl

    return cl.CustomComparison(
        output_column_name="address",
        comparison_levels=[
            {
                "sql_condition": "(address_1_l IS NULL OR address_1_r IS NULL) AND "
                "(postcode_l IS NULL OR postcode_r IS NULL)",
                "label_for_charts": "null",
                "is_null_level": True,
            },
            {
                "sql_condition": "street_number_l = street_number_r AND "
                "address_1_l = address_1_r AND "
                "(postcode_l = postcode_r OR suburb_l = suburb_r)",
                "label_for_charts": "same number+street+locality",
            },
            {
                "sql_condition": f"{_jw('address_1', 0.88)} AND "
                "(street_number_l = street_number_r OR "
                "postcode_l = postcode_r OR suburb_l = suburb_r)",
                "label_for_charts": "street ~ + one more field",
            },
            {
                "sql_condition": f"postcode_l = postcode_r OR {_jw('suburb', 0.9)}",
                "label_for_charts": "same locality only",
            },
            {"sql_condition": "ELSE", "label_for_charts": "different"},
        ],
    )


def _name_comparison() -> Any:
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl

    return cl.CustomComparison(
        output_column_name="name",
        comparison_levels=[
            cll.And(cll.NullLevel("given_name"), cll.NullLevel("surname")),
            cll.ExactMatchLevel("full_name", term_frequency_adjustments=True),
            cll.ColumnsReversedLevel("given_name", "surname", symmetrical=True),
            cll.And(
                cll.JaroWinklerLevel("given_name", 0.92), cll.JaroWinklerLevel("surname", 0.92)
            ),
            cll.And(cll.JaroWinklerLevel("given_name", 0.8), cll.JaroWinklerLevel("surname", 0.88)),
            {
                "sql_condition": "jaro_winkler_similarity(given_name_l, surname_r) >= 0.88 "
                "AND jaro_winkler_similarity(surname_l, given_name_r) >= 0.88",
                "label_for_charts": "swapped with typos",
            },
            cll.ExactMatchLevel("surname", term_frequency_adjustments=True),
            cll.ExactMatchLevel("given_name", term_frequency_adjustments=True),
            {
                "sql_condition": "given_name_l = surname_r OR surname_l = given_name_r",
                "label_for_charts": "single cross-match",
            },
            cll.ElseLevel(),
        ],
    )


def blocking_rules(kind: str) -> list[Any]:
    """The note's blocking rules, or the same ones made local to a building or a commune.

    On French data, a street number alone (``postcode + number``: every "3" of a commune of
    50 000) or a name initial within a whole commune makes quadratic blocks: 3.8 million pairs
    at 20 000 + 20 000 records, billions at 500 000 + 500 000. ``adapted`` keeps the names,
    swapped names and birth date rules, and replaces the four address rules by the building
    (postcode + number + street) and the commune with the surname's first two letters and the
    given name's initial.
    """
    from splink import block_on

    names = [block_on("given_name", "surname"), SWAPPED, block_on("date_of_birth")]
    if kind == "note":
        return [
            *names,
            block_on("postcode", "street_number"),
            block_on("postcode", "substr(given_name, 1, 1)"),
            block_on("street_number", "address_1"),
            block_on("suburb", "substr(surname, 1, 2)"),
        ]
    return [
        *names,
        block_on("postcode", "street_number", "address_1"),
        block_on("suburb", "substr(surname, 1, 2)", "substr(given_name, 1, 1)"),
    ]


def noid_settings(blocking: str) -> Any:
    import splink.comparison_library as cl
    from splink import SettingsCreator

    return SettingsCreator(
        unique_id_column_name="rec_id",
        link_type="link_only",
        blocking_rules_to_generate_predictions=blocking_rules(blocking),
        comparisons=[
            _name_comparison(),
            cl.DateOfBirthComparison(
                "date_of_birth",
                input_is_string=True,
                datetime_format="%Y%m%d",
                invalid_dates_as_null=True,
            ),
            _address_comparison(),
        ],
        retain_intermediate_calculation_columns=False,
    )


def train_noid(linker: Any) -> None:
    """lambda from deterministic rules, u by random sampling (1e7 pairs), m by EM (5e6)."""
    from splink import block_on

    linker.training.estimate_probability_two_random_records_match(
        [
            block_on("given_name", "surname", "date_of_birth"),
            SWAPPED + " and l.date_of_birth = r.date_of_birth",
        ],
        recall=0.7,
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=1e7, seed=1)
    for rule in (block_on("date_of_birth"), block_on("given_name", "surname")):
        linker.training.estimate_parameters_using_expectation_maximisation(
            rule, estimate_without_term_frequencies=True, max_pairs=5e6
        )


def run_reference(work: Path, blocking: str) -> dict[str, Any]:
    from splink import DuckDBAPI, Linker

    from territoria.identity.pipeline import Laps

    logging.getLogger("splink").setLevel(logging.WARNING)
    con = connection(work)
    for side in ("a", "b"):
        con.execute(
            f"CREATE TABLE ref_{side} AS FROM read_parquet('{work / f'ref_{side}.parquet'}')"
        )
    laps = Laps()
    db_api = DuckDBAPI(connection=con)
    tables = [db_api.register(f"ref_{s}", dataset_display_name=s) for s in ("a", "b")]
    linker = Linker(tables, noid_settings(blocking), log_level=logging.WARNING)
    laps.lap("setup")
    train_noid(linker)
    laps.lap("train")
    predictions = linker.inference.predict(threshold_match_probability=None)
    laps.lap("predict")
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
        predictions, threshold_match_probability=0.5
    )
    laps.lap("cluster")
    rss = peak_rss_gb()
    table = (
        clusters.as_duckdbpyrelation()
        .select("rec_id AS unique_id, CAST(cluster_id AS VARCHAR) AS cluster")
        .to_arrow_table()
    )
    pq.write_table(table, work / "ref_clusters.parquet")
    pairs = predictions.as_duckdbpyrelation().aggregate("count(*)").fetchall()[0]
    return {
        "timings": laps.timings,
        "pairs_kept": int(pairs[0]) if pairs else 0,
        "peak_rss_gb": rss,
        "blocking": blocking,
    }


# ---------------------------------------------------------------- data (parent)


def _clean(expr: str) -> str:
    return f"NULLIF(lower(strip_accents(trim({expr}))), '')"


_STREET = "split_part(address, ',', 1)"
_NUMBER = r"'^\s*(\d+)'"
_NUMBER_AND_SUFFIX = r"'^\s*\d+\s*(bis|ter|b|t)?\s+'"
_REFERENCE_SQL = f"""
    SELECT mention_id AS rec_id,
        {_clean("given_name")} AS given_name,
        {_clean("family_name")} AS surname,
        strftime(coalesce(try_strptime(birth_date, '%d/%m/%Y'),
                          try_strptime(birth_date, '%Y-%m-%d')), '%Y%m%d') AS date_of_birth,
        NULLIF(regexp_extract({_STREET}, {_NUMBER}, 1), '') AS street_number,
        {_clean(f"regexp_replace({_STREET}, {_NUMBER_AND_SUFFIX}, '', 'i')")} AS address_1,
        {_clean("commune")} AS suburb,
        NULLIF(trim(postcode), '') AS postcode,
        {_clean("given_name")} || ' ' || {_clean("family_name")} AS full_name
    FROM mentions WHERE source = $source
"""


def write_inputs(work: Path, n: int, reference: bool) -> pa.Table:
    """Mentions (and the reference's prepared tables) in ``work``; returns the truth."""
    sys.path.insert(0, str(Path(__file__).parent))
    from linkdata import make_pair

    started = time.perf_counter()
    a, b, truth = make_pair(n, SEED)
    mentions = pa.concat_tables([a, b])
    pq.write_table(mentions, work / "mentions.parquet")
    print(f"données : {n:,} + {n:,} fiches générées en {time.perf_counter() - started:.1f} s")
    if reference:
        with duckdb.connect() as con:
            con.register("mentions", mentions)
            for side, source in zip(("a", "b"), BETWEEN, strict=True):
                path = work / f"ref_{side}.parquet"
                query = _REFERENCE_SQL.replace("$source", f"'{source}'")
                con.execute(f"COPY ({query}) TO '{path}' (FORMAT parquet)")
    return truth


def run_child(side: str, work: Path, blocking: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", side, "--dir", str(work), "--blocking", blocking],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        sys.exit(f"échec du côté {side} :\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


# ---------------------------------------------------------------- scoring (parent)


def score(clusters: pa.Table, truth: pa.Table) -> dict[str, Any]:
    from territoria.identity.evaluate import household_merges, pairwise_metrics

    predicted = pa.table({"unique_id": clusters["unique_id"], "entity": clusters["cluster"]})
    persons = truth.select(["unique_id", "entity"])
    households = pa.table({"unique_id": truth["unique_id"], "entity": truth["household"]})
    between = pairwise_metrics(predicted, persons, between=BETWEEN)
    every = pairwise_metrics(predicted, persons)
    return {
        "precision": round(between.precision, 4),
        "recall": round(between.recall, 4),
        "f1": round(between.f1, 4),
        "f1_all_pairs": round(every.f1, 4),
        "false_pairs": between.predicted_pairs - between.correct_pairs,
        "household_merges": len(household_merges(predicted, persons, households)),
    }


def linkage_seconds(timings: dict[str, float]) -> float:
    return round(sum(v for k, v in timings.items() if k != "standardise"), 3)


def report(label: str, run: dict[str, Any], scores: dict[str, Any]) -> None:
    phases = ", ".join(f"{k} {v:.1f}" for k, v in run["timings"].items())
    forked = run.get("workers_peak_rss_gb")
    workers = f" (processus de normalisation : {forked:.2f} Go au plus)" if forked else ""
    print(
        f"{label} : liaison {linkage_seconds(run['timings']):.1f} s hors normalisation "
        f"({phases}) ; mémoire max {run['peak_rss_gb']:.2f} Go"
        f"{workers} ; "
        f"{run['pairs_kept']:,} paires scorées gardées"
    )
    print(
        f"{'':<{len(label)}}   paires A–B : précision {scores['precision']:.4f}, rappel "
        f"{scores['recall']:.4f}, F1 {scores['f1']:.4f} ({scores['false_pairs']:,} fausses) ; "
        f"F1 toutes paires {scores['f1_all_pairs']:.4f} ; "
        f"personnes d'un même ménage fusionnées : {scores['household_merges']:,}"
    )


def result_line(n: int, ours: dict[str, Any], mine: dict[str, Any], ref: dict[str, Any] | None,
                ref_scores: dict[str, Any] | None) -> dict[str, Any]:  # fmt: skip
    seconds = linkage_seconds(ours["timings"])
    ref_seconds = linkage_seconds(ref["timings"]) if ref else None
    return {
        "benchmark": "link_scale",
        "value": seconds,
        "unit": "s",
        "target": TARGET_SECONDS,
        "ratio": round(seconds / ref_seconds, 3) if ref_seconds else None,
        "records": 2 * n,
        "peak_rss_gb": ours["peak_rss_gb"],
        "workers_peak_rss_gb": ours["workers_peak_rss_gb"],
        "f1": mine["f1"],
        "precision": mine["precision"],
        "recall": mine["recall"],
        "household_merges": mine["household_merges"],
        "standardise_seconds": ours["timings"].get("standardise"),
        "total_seconds": round(sum(ours["timings"].values()), 3),
        "timings": ours["timings"],
        "reference_seconds": ref_seconds,
        "reference_f1": ref_scores["f1"] if ref_scores else None,
        "reference_precision": ref_scores["precision"] if ref_scores else None,
        "reference_household_merges": ref_scores["household_merges"] if ref_scores else None,
        "reference_peak_rss_gb": ref["peak_rss_gb"] if ref else None,
        "pairs_kept": ours["pairs_kept"],
        "reference_pairs_kept": ref["pairs_kept"] if ref else None,
        "reference_blocking": ref["blocking"] if ref else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 000 + 20 000 records")
    parser.add_argument("--n", type=int, default=None, help="records per source")
    parser.add_argument("--no-reference", action="store_true", help="skip the Splink reference")
    parser.add_argument(
        "--blocking",
        choices=("adapted", "note"),
        default="adapted",
        help="reference blocking: the note's rules (quadratic on French communes) or adapted",
    )
    parser.add_argument("--child", choices=("ours", "reference"), help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        out = run_ours(args.dir) if args.child == "ours" else run_reference(args.dir, args.blocking)
        print(json.dumps(out))
        return
    n = args.n or (20_000 if args.quick else 500_000)
    reference = not args.no_reference
    work = Path(tempfile.mkdtemp(prefix="bench-link-"))
    try:
        truth = write_inputs(work, n, reference)
        ours = run_child("ours", work, args.blocking)
        mine = score(pq.read_table(work / "ours_clusters.parquet"), truth)
        report("Territoria", ours, mine)
        ref = ref_scores = None
        if reference:
            ref = run_child("reference", work, args.blocking)
            ref_scores = score(pq.read_table(work / "ref_clusters.parquet"), truth)
            report(f"Splink no-id, blocage {args.blocking} (référence)", ref, ref_scores)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result_line(n, ours, mine, ref, ref_scores)))


if __name__ == "__main__":
    main()
