"""Benchmark: append to the audit ledger, then verify its whole hash chain.

Targets (brief of the governance work): verification at least 500 000 records/s, appends at
least 10 000 records/s. Records look like governed reads: one to three persons, a few fields,
a French reason, some refusals. Appends are measured twice: ``append_many`` in batches of 1 000
(one transaction each) and 2 000 single ``append`` calls (one transaction, hence one commit,
each). Verification reads every record, recomputes every hash and checks the person index, the
head row and the links; it runs three times and the best run is reported (the machine is shared).
From ``PARALLEL_MIN`` records the embedded store is verified by one worker process per CPU; the
same ledger verified in this process alone is shown for comparison.

    python benchmarks/audit_ledger.py                 # 200 000 records, embedded store
    python benchmarks/audit_ledger.py --quick         # 100 000 (fewer: process start-up shows)
    python benchmarks/audit_ledger.py --postgres postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from territoria.backends import open_store
from territoria.backends.postgres import PostgresStore
from territoria.core.config import WorkspaceConfig, init_workspace
from territoria.governance import ledger as ledger_module
from territoria.governance.ledger import AuditEntry, AuditLedger

VERIFY_TARGET = 500_000
APPEND_TARGET = 10_000
BATCH = 1_000
SINGLES = 2_000
SERVICES = ("ccas", "eau", "ecoles", "bibliotheque")
FIELDS = ("identite.nom", "identite.naissance", "adresse.voie", "ccas.revenus", "eau.conso")


def entries(count: int, seed: int) -> list[AuditEntry]:
    rng = random.Random(seed)
    made = []
    for _ in range(count):
        service = rng.choice(SERVICES)
        allowed = rng.random() < 0.9
        made.append(
            AuditEntry(
                kind="read",
                actor=f"agent:{rng.randrange(200)}",
                service=service,
                role="instructeur",
                purpose=f"{service}.instruction",
                legal_basis="public_task",
                view=rng.choice(("person_360", "search", "count")),
                persons=tuple(f"P{rng.randrange(10**9):09d}" for _ in range(rng.randint(1, 3))),
                fields=tuple(rng.sample(FIELDS, rng.randint(2, 4))),
                decision="allow" if allowed else "deny",
                rule=f"{service}.lecture" if allowed else "refus.par.defaut",
                reason="Accès autorisé : dossier suivi" if allowed else "Refusé : hors finalité",
            )
        )
    return made


@dataclass
class Figures:
    records: int
    append_per_s: float
    append_single_per_s: float
    verify_per_s: list[float]
    verify_one_process_per_s: float


def verify_rates(ledger: AuditLedger, runs: int) -> list[float]:
    rates = []
    for _ in range(runs):
        report = ledger.verify()
        if not report.ok:
            raise SystemExit(f"registre invalide : {report.problems[:3]}")
        rates.append(report.count / report.seconds)
    return rates


def one_process_rate(ledger: AuditLedger) -> float:
    """The best of two verifications without worker processes."""
    workers = ledger_module.WORKERS
    ledger_module.WORKERS = 1
    try:
        return max(verify_rates(ledger, 2))
    finally:
        ledger_module.WORKERS = workers


def measure(config: WorkspaceConfig, records: int) -> Figures:
    store = open_store(config)
    try:
        ledger = AuditLedger(store.tables())
        batches = [entries(BATCH, seed) for seed in range(records // BATCH)]
        started = time.perf_counter()
        for batch in batches:
            ledger.append_many(batch)
        append_per_s = records / (time.perf_counter() - started)
        singles = entries(SINGLES, -1)
        started = time.perf_counter()
        for one in singles:
            ledger.append(one)
        single_per_s = SINGLES / (time.perf_counter() - started)
        rates = verify_rates(ledger, 3)
        count = ledger.head().count
        return Figures(count, append_per_s, single_per_s, rates, one_process_rate(ledger))
    finally:
        if isinstance(store, PostgresStore):
            store.drop_schema()
        store.close()


def show(label: str, figures: Figures) -> None:
    runs = ", ".join(f"{r:,.0f}" for r in figures.verify_per_s)
    print(
        f"{label} : {figures.records:,} enregistrements ; ajout par lots de {BATCH} "
        f"{figures.append_per_s:,.0f}/s ; ajout unitaire {figures.append_single_per_s:,.0f}/s ; "
        f"vérification {max(figures.verify_per_s):,.0f}/s (meilleure de : {runs}) ; "
        f"en un seul processus {figures.verify_one_process_per_s:,.0f}/s"
    )


def workers(records: int) -> int:
    """The worker processes verifying ``records`` on the embedded store use here."""
    if records < ledger_module.PARALLEL_MIN or not hasattr(os, "sched_getaffinity"):
        return 1
    return len(os.sched_getaffinity(0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 000 records")
    parser.add_argument("--records", type=int, default=None, help="records (multiple of 1 000)")
    parser.add_argument("--postgres", metavar="URL", help="also measure on this PostgreSQL")
    args = parser.parse_args()
    records = args.records or (100_000 if args.quick else 200_000)
    work = Path(tempfile.mkdtemp(prefix="bench-audit-"))
    try:
        embedded = measure(init_workspace(work / "ws", name="Banc d'essai"), records)
        show("magasin embarqué (SQLite, WAL, synchronous=NORMAL)", embedded)
        extra: dict[str, float] = {}
        if args.postgres:
            schema = f"bench_{secrets.token_hex(4)}"
            config = init_workspace(
                work / "pg", name="Banc", store_url=args.postgres, schema=schema
            )
            postgres = measure(config, records)
            show("PostgreSQL (synchronous_commit du serveur)", postgres)
            extra = {
                "postgres_verify_per_s": round(max(postgres.verify_per_s)),
                "postgres_verify_one_process_per_s": round(postgres.verify_one_process_per_s),
                "postgres_append_per_s": round(postgres.append_per_s),
                "postgres_append_single_per_s": round(postgres.append_single_per_s),
            }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if embedded.append_single_per_s < APPEND_TARGET:
        print(
            "ajout unitaire sous la cible : chaque ajout est une transaction validée à part "
            "(environ six pages écrites au journal WAL, puis recopiées à chaque point de "
            "contrôle) ; append_many groupe les ajouts"
        )
    value = round(max(embedded.verify_per_s))
    print(
        json.dumps(
            {
                "benchmark": "audit_ledger",
                "value": value,
                "unit": "records/s",
                "target": VERIFY_TARGET,
                "ratio": round(value / VERIFY_TARGET, 4),
                "records": embedded.records,
                "verify_one_process_per_s": round(embedded.verify_one_process_per_s),
                "verify_workers": workers(embedded.records),
                "append_per_s": round(embedded.append_per_s),
                "append_single_per_s": round(embedded.append_single_per_s),
                "append_target": APPEND_TARGET,
                **extra,
            }
        )
    )


if __name__ == "__main__":
    main()
