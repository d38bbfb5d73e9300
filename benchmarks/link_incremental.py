"""Benchmark: attach one new record at a time to a registry of existing persons (``Attacher``).

Target (research note ``linkage-anchors.md`` §6, G4): a new record gets its person key in at
most 50 ms (p95) against 1 000 000 existing records, cluster update included. The reference
is the note's figure for Splink 5 ``predict_between`` of ONE record against 500 000 existing
ones: 0.33 s, pairs only (no person key). It is quoted, not measured in this run.

The registry is built as ``territoria link`` builds it (``link_mentions`` on sources A and B
of ``linkdata``, then keys, households and features in an embedded workspace); 1 000 new
records (``source_c`` habit) follow, one ``attach`` each: half of persons the registry does not
know (a new key is expected), half a second record of a known person (their key is expected).

    python benchmarks/link_incremental.py            # 1 000 000 existing records
    python benchmarks/link_incremental.py --quick    # 50 000
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).parent))
from linkdata import Resident, records, residents
from territoria.backends import open_store
from territoria.core.config import init_workspace
from territoria.identity import Attacher, ModelParams, Registry, link_mentions
from territoria.identity.households import household_labels
from territoria.identity.keys import assign_keys, groups_of
from territoria.identity.pipeline import LinkResult

TARGET_MS = 50
REFERENCE_MS = 330  # research note §5.4: Splink predict_between, 1 record vs 500 000
NEW_RECORDS = 1_000
SEED = 20251
MEMORY_LIMIT = "4GB"


def people(existing_persons: int) -> tuple[list[Resident], list[Resident]]:
    """(persons of the registry, persons of households it does not know)."""
    everyone = residents(existing_persons + 3 * NEW_RECORDS, SEED)
    known = everyone[:existing_persons]
    households = {r.person.household_id for r in known}
    outsiders = [r for r in everyone[existing_persons:] if r.person.household_id not in households]
    return known, outsiders


def new_records(known: list[Resident], outsiders: list[Resident]) -> tuple[pa.Table, pa.Table]:
    """Half newcomers, half a second record of a known person, in shuffled order."""
    rng = random.Random(f"{SEED}:returning")
    newcomers = outsiders[: NEW_RECORDS // 2]
    returning = rng.sample(known, NEW_RECORDS - len(newcomers))
    return records(newcomers + returning, "source_c", SEED)


def fill_registry(registry: Registry, result: LinkResult) -> None:
    """Keys, households, features and model of a first run, as ``link_workspace`` writes them."""
    person_of = result.clustering.labels
    persons, events = assign_keys(groups_of(person_of), {}, prefix="P", entity="person")
    household_of = household_labels(person_of, result.features, None)
    households, more = assign_keys(groups_of(household_of), {}, prefix="F", entity="household")
    sources = dict(
        zip(
            result.features["unique_id"].to_pylist(),
            result.features["source"].to_pylist(),
            strict=True,
        )
    )
    run_id = registry.start_run("link")
    with registry.db.transaction():
        version = registry.save_model(run_id, result.params.as_dict(), None)
        registry.replace_assignments(
            ((m, sources[m], persons[m], households.get(m)) for m in persons), run_id
        )
        registry.replace_features(result.features)
        registry.record_events(events + more, run_id)
    registry.finish_run(run_id, version, {"mentions": len(persons)})


def build_registry(
    work: Path, known: list[Resident]
) -> tuple[Registry, dict[str, str], dict[str, float]]:
    """The registry of sources A and B of ``known``; (registry, truth, seconds by step)."""
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    a, truth_a = records(known, "source_a", SEED)
    b, truth_b = records(known, "source_b", SEED)
    seconds["data"] = time.perf_counter() - started
    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
    con.execute(f"SET temp_directory = '{work / 'spill'}'")
    started = time.perf_counter()
    result = link_mentions(pa.concat_tables([a, b]), connection=con)
    seconds["link"] = time.perf_counter() - started
    con.close()
    started = time.perf_counter()
    store = open_store(init_workspace(work / "ws", name="Banc d'essai"))
    registry = Registry(store.tables())
    fill_registry(registry, result)
    seconds["registry"] = time.perf_counter() - started
    truth = pa.concat_tables([truth_a, truth_b])
    entity = dict(zip(truth["unique_id"].to_pylist(), truth["entity"].to_pylist(), strict=True))
    return registry, entity, seconds


def attach_all(attacher: Attacher, table: pa.Table) -> tuple[list[float], list[Any]]:
    latencies, outcomes = [], []
    for row in table.to_pylist():
        started = time.perf_counter()
        outcome = attacher.attach(row, run_id="bench")
        latencies.append((time.perf_counter() - started) * 1000)
        outcomes.append(outcome)
    return latencies, outcomes


def tally(outcomes: list[Any], new_truth: pa.Table, entity_of: dict[str, str]) -> dict[str, int]:
    """Correct joins of known persons, correct creations for newcomers, and the errors."""
    entity_new = dict(
        zip(new_truth["unique_id"].to_pylist(), new_truth["entity"].to_pylist(), strict=True)
    )
    known = set(entity_of.values())
    counts = dict.fromkeys(
        ("correct_existing", "wrong_person", "missed_existing", "correct_new", "wrong_join"), 0
    )
    for o in outcomes:
        true = entity_new[o.mention_id]
        if true in known:
            key = "missed_existing" if o.created else "wrong_person"
            if not o.created and entity_of.get(o.matched) == true:
                key = "correct_existing"
        else:
            key = "correct_new" if o.created else "wrong_join"
        counts[key] += 1
    return counts


def percentile(values: list[float], q: int) -> float:
    return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1], 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50 000 existing records")
    parser.add_argument("--existing", type=int, default=None, help="existing records (even)")
    args = parser.parse_args()
    existing = args.existing or (50_000 if args.quick else 1_000_000)
    work = Path(tempfile.mkdtemp(prefix="bench-attach-"))
    try:
        known, outsiders = people(existing // 2)
        new_table, new_truth = new_records(known, outsiders)
        registry, entity_of, seconds = build_registry(work, known)
        started = time.perf_counter()
        attacher = Attacher(registry, ModelParams.from_dict(registry.model()[1]))  # type: ignore[index]
        seconds["attacher"] = time.perf_counter() - started
        latencies, outcomes = attach_all(attacher, new_table)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    counts = tally(outcomes, new_truth, entity_of)
    p50, p95, p99 = (percentile(latencies, q) for q in (50, 95, 99))
    steps = ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items())
    print(f"registre : {existing:,} fiches existantes ({steps})")
    print(
        f"{len(latencies):,} rattachements : p50 {p50:.1f} ms, p95 {p95:.1f} ms, "
        f"p99 {p99:.1f} ms, max {max(latencies):.1f} ms"
    )
    print(
        f"personnes connues : {counts['correct_existing']} bien rattachées, "
        f"{counts['wrong_person']} à une autre personne, {counts['missed_existing']} créées à tort ; "
        f"nouvelles personnes : {counts['correct_new']} bien créées, "
        f"{counts['wrong_join']} rattachées à tort"
    )
    print(
        f"référence : Splink predict_between, 1 fiche contre 500 000, {REFERENCE_MS} ms "
        "(chiffre de la note §5.4, non mesuré ici ; paires seulement, sans clé de personne)"
    )
    print(
        json.dumps(
            {
                "benchmark": "link_incremental",
                "value": p95,
                "unit": "ms",
                "target": TARGET_MS,
                "ratio": round(p95 / REFERENCE_MS, 4),
                "reference": f"{REFERENCE_MS} ms, research note section 5.4 (not measured in this run)",
                "p50_ms": p50,
                "p99_ms": p99,
                "max_ms": round(max(latencies), 2),
                "existing_records": existing,
                "new_records": len(latencies),
                **counts,
                "setup_seconds": {k: round(v, 2) for k, v in seconds.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
