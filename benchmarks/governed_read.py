"""Benchmark: the cost of governance on a 360° view of one resident.

Target (issue "Governance", performance): a governed read of a 360° view costs at most 1.2×
the same query without governance. Both read the same records of the same sources, with the
same fields, from the same store; the governed one also decides (policy decision point, deny
by default), checks the purpose's scope, resolves the subject's pseudonym and pseudonymises
the answer, and appends the audit record (hash chain, committed). The reference (ungoverned)
is measured in the same run, alternating with the governed read, person by person.

The territory is the sandbox (``territoria demo``'s generator), loaded and linked in a
temporary embedded workspace; the 360° view is the DPO's rights-handling view (all six
person sources, every field).

    python benchmarks/governed_read.py            # 10 000 inhabitants, 300 persons
    python benchmarks/governed_read.py --quick    # 2 000 inhabitants, 100 persons
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from territoria.backends import Store, open_store
from territoria.core.config import init_workspace
from territoria.governance import Governance, ReadRequest
from territoria.identity import link_workspace
from territoria.ingest import ContractCatalog, ingest_files, sandbox_items
from territoria.sandbox import generate

TARGET_RATIO = 1.2
ACTOR, PURPOSE = "dpo", "rights_handling"
PERSON_SOURCES = (
    "ccas_aid",
    "library_members",
    "school_enrolments",
    "transport_passes",
    "waste_bins",
    "water_subscribers",
)


def build(folder: Path, population: int, store_url: str) -> tuple[Store, Governance]:
    schema = f"bench_{secrets.token_hex(4)}"
    config = init_workspace(folder / "ws", name="Banc d'essai", store_url=store_url, schema=schema)
    generate(population=population, seed=7, out=folder / "sandbox")
    store = open_store(config)
    catalog = ContractCatalog.load()
    items = [(s, p) for s, p in sandbox_items(folder / "sandbox") if s in PERSON_SOURCES]
    assert all(o.ok for o in ingest_files(store, catalog, items))
    link_workspace(store, catalog)
    return store, Governance.open(config, store)


def ungoverned(gov: Governance, person: str, fields: dict[str, tuple[str, ...]]) -> dict[str, Any]:
    """The same 360° query with no decision, scope, pseudonym or ledger."""
    rows = gov.db.query("SELECT source, mention_id FROM id_mentions WHERE person_key = ?", [person])
    out: dict[str, Any] = {}
    for source in sorted({str(s) for s, _ in rows}):
        key = gov.contracts[source].linkage.record_id or ""
        ids = sorted({str(m).split("|")[1] for s, m in rows if s == source})
        out[source] = list(gov.store.raw_rows(source, key, ids, list(fields[source])).values())
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(gov: Governance, persons: list[str]) -> tuple[list[float], list[float]]:
    fields = gov.decide(ACTOR, PURPOSE, "person_360").fields
    domain = gov.policy.purposes[PURPOSE].domain
    plain: list[float] = []
    governed: list[float] = []
    for person in persons:
        subject = gov.pseudonyms.pseudonym(domain, person)
        start = time.perf_counter()
        ungoverned(gov, person, fields)
        plain.append(time.perf_counter() - start)
        start = time.perf_counter()
        result = gov.read(ReadRequest(ACTOR, PURPOSE, "person_360", subject=subject))
        governed.append(time.perf_counter() - start)
        assert result.status == "ok"
    return plain, governed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 000 habitants, 100 personnes")
    parser.add_argument(
        "--store",
        default="embedded",
        help="embedded (défaut) ou une URL postgresql:// (un schéma jetable y est créé)",
    )
    args = parser.parse_args()
    population, sample = (2_000, 100) if args.quick else (10_000, 300)
    folder = Path(tempfile.mkdtemp(prefix="territoria-governed-"))
    try:
        print(f"Territoire fictif de {population} habitants : génération, chargement, liaison…")
        store, gov = build(folder, population, args.store)
        rows = gov.db.query(
            "SELECT person_key FROM id_mentions GROUP BY person_key "
            "ORDER BY count(DISTINCT source) DESC, person_key LIMIT ?",
            [sample],
        )
        persons = [str(r[0]) for r in rows]
        measure(gov, persons[:10])  # warm caches (pseudonym map, DuckDB, SQLite pages)
        plain, governed = measure(gov, persons)
        if hasattr(store, "drop_schema"):
            store.drop_schema()
        store.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    ratio = statistics.median(governed) / statistics.median(plain)
    for name, values in (("sans gouvernance", plain), ("gouvernée", governed)):
        print(
            f"vue 360° {name:17s}: p50 {1000 * statistics.median(values):6.2f} ms, "
            f"p95 {1000 * percentile(values, 0.95):6.2f} ms ({len(values)} personnes)"
        )
    print(
        f"surcoût de la gouvernance : ×{ratio:.3f} (cible ≤ ×{TARGET_RATIO}), magasin {args.store.split('@')[-1]}"
    )
    print(
        json.dumps(
            {
                "benchmark": "governed_read_360",
                "value": round(ratio, 4),
                "unit": "ratio governed/ungoverned (p50)",
                "target": TARGET_RATIO,
                "ratio": round(ratio / TARGET_RATIO, 4),
                "governed_p50_ms": round(1000 * statistics.median(governed), 3),
                "ungoverned_p50_ms": round(1000 * statistics.median(plain), 3),
                "governed_p95_ms": round(1000 * percentile(governed, 0.95), 3),
                "persons": len(governed),
                "population": population,
                "store": "embedded" if args.store == "embedded" else "postgresql",
            }
        )
    )


if __name__ == "__main__":
    main()
