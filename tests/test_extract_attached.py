"""Events attached to another source's record (``linkage.attached_to``): a bin's lifts.

A lift names nobody; it belongs to the payer of the bin that carried the tag that day. The
governed batch read attributes it so, which lets a resident read their own lifts (and only
those: not the previous occupant's, not a building's, not an unknown tag's) and names the
payers of the lifts in the ledger when the waste service reads them.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import yaml

from identity_fixtures import catalog
from territoria.backends import Store, open_store
from territoria.core.config import WorkspaceConfig, load_workspace
from territoria.core.contract import SourceContract
from territoria.governance import Governance
from territoria.ingest import ingest_files
from territoria.ingest.catalog import builtin_contracts_dir


@pytest.fixture
def world(lifts_template: Path, tmp_path: Path) -> Iterator[tuple[WorkspaceConfig, Store]]:
    root = tmp_path / "ws"
    shutil.copytree(lifts_template, root)
    config = load_workspace(root)
    store = open_store(config)
    yield config, store
    store.close()


def _day(value: object) -> date:
    return date.fromisoformat(str(value)[:10])


def _bin_holders(gov: Governance) -> dict[str, list[tuple[str, str, date, date | None]]]:
    """person key → (allocation, tag, start, end) of the bins the index attributes to them."""
    owners = {
        str(m).split("|")[1]: str(p)
        for m, p in gov.db.query(
            "SELECT mention_id, person_key FROM id_mentions WHERE source = 'waste_bins'"
        )
    }
    bins = gov.store.raw_table(
        "waste_bins", ["allocation_id", "rfid_tag", "start_date", "end_date"]
    )
    held: dict[str, list[tuple[str, str, date, date | None]]] = {}
    for row in bins.to_pylist():
        person = owners.get(str(row["allocation_id"]))
        if person:
            end = _day(row["end_date"]) if row["end_date"] else None
            held.setdefault(person, []).append(
                (row["allocation_id"], row["rfid_tag"], _day(row["start_date"]), end)
            )
    return held


def _deliver_lifts_before_arrival(
    config: WorkspaceConfig, store: Store, held: dict[str, list[tuple[str, str, date, date | None]]]
) -> int:
    """Lifts of a newcomer's tag the week before they arrived (the bin's previous user)."""
    rows = ["id_levee,camion,horodatage,puce_rfid,poids_kg,statut_lecture"]
    for _, spans in sorted(held.items()):
        for _, tag, start, _ in spans:
            if start > date(2025, 1, 8):
                before = date.fromordinal(start.toordinal() - 7)
                rows.append(f"LAV{len(rows):08d},BOM-001,{before.isoformat()}T07:30:00,{tag},,ok")
    path = config.root / "levees-avant-arrivee.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    outcome = ingest_files(store, catalog(config), [("waste_lifts", path)])
    assert all(o.ok for o in outcome)
    return len(rows) - 1


def test_a_resident_reads_exactly_the_lifts_of_their_bins_while_they_held_them(
    world: tuple[WorkspaceConfig, Store],
) -> None:
    config, store = world
    held = _bin_holders(Governance.open(config, store))
    assert _deliver_lifts_before_arrival(config, store, held) > 0
    gov = Governance.open(config, store)
    lifts = gov.store.raw_table("waste_lifts", ["lift_id", "rfid_tag", "lifted_at"]).to_pylist()
    # A bin that changed payer: its tag has lifts before the current holder arrived.
    moved = [
        (person, spans)
        for person, spans in held.items()
        if any(start > date(2025, 1, 1) for _, _, start, _ in spans)
    ]
    checked = sorted(held.items())[:5] + moved[:5]
    assert checked
    previous_occupants_lifts = 0
    for person, spans in checked:
        found = gov.extract(f"resident:{person}", "resident_access", ["waste_bins", "waste_lifts"])
        bins = found.tables["waste_bins"]
        assert set(bins.column("allocation_id").to_pylist()) == {a for a, _, _, _ in spans}
        expected = {
            lift["lift_id"]
            for lift in lifts
            for _, tag, start, end in spans
            if lift["rfid_tag"] == tag and start <= _day(lift["lifted_at"]) < (end or date.max)
        }
        tags = {tag for _, tag, _, _ in spans}
        previous_occupants_lifts += sum(
            1 for lift in lifts if lift["rfid_tag"] in tags and lift["lift_id"] not in expected
        )
        got = found.tables["waste_lifts"]
        assert set(got.column("lift_id").to_pylist()) == expected
        assert set(got.column("person").to_pylist()) <= {bins.column("person")[0].as_py()}
        entry = gov.ledger.records(limit=1)[0].entry
        assert entry.persons == (person,) and entry.actor == f"resident:{person}"
    assert moved, "le territoire fictif devrait compter des emménagements en cours d'année"
    assert previous_occupants_lifts > 0  # the test can tell a previous occupant's lifts apart


def test_the_waste_service_reads_every_lift_and_the_ledger_names_their_payers(
    world: tuple[WorkspaceConfig, Store],
) -> None:
    config, store = world
    gov = Governance.open(config, store)
    found = gov.extract("paul.dechets", "waste_billing", ["waste_lifts"])
    lifts = found.tables["waste_lifts"]
    assert lifts.num_rows == gov.store.raw_table("waste_lifts", ["lift_id"]).num_rows
    named = [p for p in lifts.column("person").to_pylist() if p]
    assert named and len(named) < lifts.num_rows  # unknown tags and buildings' bins name nobody
    assert found.persons == len(gov.ledger.records(limit=1)[0].entry.persons) > 0


def test_a_contract_cannot_attach_to_a_field_it_does_not_have() -> None:
    shipped = builtin_contracts_dir() / "waste_lifts.yaml"
    data = yaml.safe_load(shipped.read_text(encoding="utf-8"))
    assert SourceContract.model_validate(data).linkage.attached_to is not None
    data["linkage"]["attached_to"]["key"] = "puce"
    with pytest.raises(ValueError, match=r"attached_to\.key désigne un champ inconnu : puce"):
        SourceContract.model_validate(data)
    data["linkage"]["attached_to"].update(key="rfid_tag", at="truck_id")
    with pytest.raises(ValueError, match="« truck_id », qui n'est pas de type date"):
        SourceContract.model_validate(data)


def test_the_extract_gives_the_size_of_each_household_it_names(
    world: tuple[WorkspaceConfig, Store],
) -> None:
    config, store = world
    gov = Governance.open(config, store)
    found = gov.extract("paul.dechets", "waste_billing", ["waste_bins"])
    named = {h for h in found.tables["waste_bins"].column("household").to_pylist() if h}
    assert named and set(found.household_sizes) == named
    members: dict[str, set[str]] = {}
    for person, household in gov.db.query(
        "SELECT person_key, household_key FROM id_mentions WHERE household_key IS NOT NULL "
        "AND source <> 'ccas_aid'"  # special-category data never feeds a size
    ):
        members.setdefault(str(household), set()).add(str(person))
    domain = gov.policy.purposes["waste_billing"].domain
    expected = {gov.pseudonyms.pseudonym(domain, h): len(p) for h, p in members.items()}
    assert all(found.household_sizes[h] == expected[h] for h in named)
    assert "index.household_size" in gov.ledger.records(limit=1)[0].entry.fields


def test_a_person_known_only_to_the_ccas_never_changes_a_household_size(
    world: tuple[WorkspaceConfig, Store],
) -> None:
    """A member the index knows only from the CCAS file is not counted (non-interference); the
    same member known from the library is."""
    config, store = world
    gov = Governance.open(config, store)
    before = gov.extract("paul.dechets", "waste_billing", ["waste_bins"]).household_sizes
    household = next(iter(sorted(before)))
    domain = gov.policy.purposes["waste_billing"].domain
    key = next(
        str(h)
        for (h,) in gov.db.query("SELECT DISTINCT household_key FROM id_mentions")
        if h and gov.pseudonyms.pseudonym(domain, str(h)) == household
    )
    columns = ["mention_id", "source", "person_key", "household_key", "run_id"]
    gov.db.insert(
        "id_mentions", columns, [["ccas_aid|A-TEST|beneficiary", "ccas_aid", "P-TEST", key, "t"]]
    )
    after = gov.extract("paul.dechets", "waste_billing", ["waste_bins"]).household_sizes
    assert after == before
    gov.db.insert(
        "id_mentions",
        columns,
        [["library_members|B-TEST|member", "library_members", "P-TEST", key, "t"]],
    )
    grown = gov.extract("paul.dechets", "waste_billing", ["waste_bins"]).household_sizes
    assert grown[household] == before[household] + 1
