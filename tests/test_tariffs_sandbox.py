"""The screening end to end on the sandbox's service files (synthetic territory).

The files are read with their contracts' field names, as the governed read hands them over;
the truth file groups them by household and gives each person a stable key (standing in for
the governed pseudonyms the lead passes).
"""

from __future__ import annotations

import collections
import csv
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from python_calamine import CalamineWorkbook

from territoria.apps.tariffs import (
    Household,
    TariffInputError,
    assign_bands,
    crpa_notice,
    default_grids,
    household_from_records,
    non_take_up_worklist,
    screen,
)
from territoria.ingest import ContractCatalog
from territoria.ingest.mapping import map_columns
from territoria.sandbox import Options, generate
from territoria.sandbox.territory import load_communes

FILES = {
    "ccas_aid": ("ccas_aid.csv", "aid_id"),
    "school_enrolments": ("school_enrolments.xlsx", "enrolment_id"),
    "transport_passes": ("transport_passes.json", "pass_id"),
    "water_subscribers": ("water_subscribers.csv", "contract_id"),
}
KEY_SLOTS = {
    "ccas_aid": {"beneficiary": "person_key", "spouse": "spouse_person_key"},
    "school_enrolments": {"child": "person_key", "guardian_1": "guardian_1_person_key"},
}
REFERENCE = date(2025, 11, 1)


def _rows(source: str, path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".xlsx":
        data = CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0).to_python()
        header, body = [str(h) for h in data[0]], data[1:]
    elif path.suffix == ".json":
        items = json.loads(path.read_text(encoding="utf-8"))
        header = list(items[0])
        body = [[item.get(h) for h in header] for item in items]
    else:
        encoding, delimiter = ("cp1252", ";") if source == "ccas_aid" else ("utf-8", ";")
        with path.open(encoding=encoding, newline="") as f:
            header, *body = list(csv.reader(f, delimiter=delimiter))
    mapping = map_columns(ContractCatalog.load().get(source), header, path)
    index = {p.spec.name: header.index(p.column) for p in mapping.fields if p.column is not None}
    return [{name: row[i] for name, i in index.items()} for row in body]


def _grouped(folder: Path) -> dict[str, dict[str, list[dict[str, Any]]]]:
    with (folder / "truth" / "records.csv").open(encoding="utf-8") as f:
        truth = collections.defaultdict(list)
        for t in csv.DictReader(f):
            truth[(t["source"], t["record_id"])].append(t)
    grouped: dict[str, dict[str, list[dict[str, Any]]]] = collections.defaultdict(
        lambda: collections.defaultdict(list)
    )
    for source, (name, id_field) in FILES.items():
        for row in _rows(source, folder / name):
            links = truth.get((source, str(row[id_field])), [])
            if not links or not links[0]["household_id"]:
                continue
            slots = {t["slot"]: t["person_id"] for t in links}
            for slot, field in KEY_SLOTS.get(source, {"holder": "person_key"}).items():
                row[field] = slots.get(slot) or (
                    next(iter(slots.values())) if field == "person_key" else None
                )
            grouped[links[0]["household_id"]][source].append(row)
    return grouped


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("tariffs_sandbox")
    options = Options(traffic_loops=1, traffic_weeks=1, hourly_days=1, lift_density=0.05)
    generate(population=3000, seed=23, out=folder, options=options)
    postcodes = {pc: c.code_insee for c in load_communes() for pc in c.postcodes}
    households: list[Household] = []
    refused: collections.Counter[str] = collections.Counter()
    grouped = _grouped(folder)
    for key, records in sorted(grouped.items()):
        try:
            households.append(household_from_records(key, records, REFERENCE, communes=postcodes))
        except TariffInputError as exc:
            refused[exc.code] += 1
    return {"grouped": grouped, "households": households, "refused": refused}


def test_the_sandbox_households_are_built_from_their_records(sandbox: dict[str, Any]) -> None:
    households, grouped = sandbox["households"], sandbox["grouped"]
    assert len(households) >= 0.9 * len(grouped)
    assert set(sandbox["refused"]) <= {"tariffs_empty", "tariffs_commune"}
    for h in households:
        records = grouped[h.key]
        applicant = next(m for m in h.members if m.role == "demandeur")
        if records.get("ccas_aid"):
            assert (
                applicant.incomes is not None
                and applicant.incomes[0].provenance.source == "ccas_aid"
            )
        else:
            assert applicant.incomes is None  # no CCAS file: unknown, never 0
        for use in h.services:
            if use.service == "restauration_scolaire":
                assert use.current_band in set("ABCDEFG")
                assert use.monthly_quantity in {6.0, 9.0, 12.0}  # 2, 3 or 4 days × 36 weeks ÷ 12


def test_the_sandbox_screening_end_to_end(sandbox: dict[str, Any]) -> None:
    households = sandbox["households"]
    screening = screen(households, REFERENCE)
    grids = default_grids()
    bands = assign_bands(screening, grids)
    worklist = non_take_up_worklist(screening, grids, assignments=bands)
    with_ccas = {h.key for h in households if sandbox["grouped"][h.key].get("ccas_aid")}
    assessed = {screening.layout.household_keys[screening.layout.famille_household[r]]
                for r in range(screening.layout.familles) if screening.layout.famille_known[r]}  # fmt: skip
    assert assessed == with_ccas
    assert worklist.entries and {e.household_key for e in worklist.entries} <= with_ccas
    assert all(line.how for e in worklist.entries for line in e.lines)
    assert set(worklist.households_unknown) == {h.key for h in households} - with_ccas
    canteen = [b for b in bands if b.service == "restauration_scolaire"]
    assert canteen and all(b.quotient is None for b in canteen if b.household_key not in with_ccas)
    notice = crpa_notice(screening, grids)
    assert set(notice.data) == {
        "ccas_aid",
        "school_enrolments",
        "transport_passes",
        "water_subscribers",
    }
