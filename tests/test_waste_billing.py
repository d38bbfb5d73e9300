"""Billing runs end to end: the sandbox's waste files, events, disputes, apportionment, simulator."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from territoria.apps.waste import (
    Assumptions,
    EventRules,
    InMemoryDisputeBook,
    Proration,
    apportion,
    clean_events,
    decide_dispute,
    evidence,
    get_grid,
    open_dispute,
    run_billing,
    simulate,
)
from territoria.core.errors import TerritoriaError
from waste_fixtures import allocations, count_status, lifts, sandbox_waste, weekly

ESTUAIRE = get_grid("estuaire_sillon_2024")
EXAMPLE = get_grid("exemple_metropole_2025")


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> tuple[pa.Table, pa.Table]:
    return sandbox_waste(tmp_path_factory.mktemp("waste"))


def one_bin(**changes: Any) -> pa.Table:
    """One 240 L bin (D1 / B1, tag T1) of payer P1 since 2020, with these fields changed."""
    row = {
        "allocation_id": "D1",
        "bin_id": "B1",
        "rfid_tag": "T1",
        "volume_l": 240,
        "payer": "P1",
        "start_date": date(2020, 1, 1),
    }
    return allocations([{**row, **changes}])


def test_the_sandbox_bills_every_payer_with_explained_lines(
    sandbox: tuple[pa.Table, pa.Table],
) -> None:
    bins, lift_table = sandbox
    run = run_billing(EXAMPLE, "2025", bins, lift_table)
    summary = run.summary()
    assert summary.bills > 50
    assert summary.held_payers == 0
    assert summary.total_cents == summary.fixed_cents + summary.variable_cents
    lines = run.lines.to_pylist()
    assert all(line["explanation"] and line["rule"].startswith(EXAMPLE.id) for line in lines)
    totals = dict(
        zip(*run.bills.select(["payer", "total_cents"]).to_pydict().values(), strict=True)
    )
    for payer, total in list(totals.items())[:20]:
        bill = run.bill(payer)
        assert bill.total_cents == total == sum(line.amount_cents for line in bill.lines)
        assert all(not p.startswith(("COPRO", "M.")) for p in [bill.payer])
    # the truck's own flags are reported, one anomaly per flagged read
    reasons = summary.anomalies
    assert reasons.get("doublon_signale", 0) == count_status(lift_table, "doublon")
    assert reasons.get("illisible", 0) == count_status(lift_table, "illisible")
    assert reasons.get("puce_inconnue", 0) >= count_status(lift_table, "inconnue")
    assert reasons.get("horodatage_invalide", 0) == 3
    run.close()


def test_semesters_add_up_to_the_year_on_the_sandbox(sandbox: tuple[pa.Table, pa.Table]) -> None:
    bins, lift_table = sandbox
    year = run_billing(EXAMPLE, "2025", bins, lift_table)
    halves = [run_billing(EXAMPLE, p, bins, lift_table) for p in ("2025-S1", "2025-S2")]
    assert halves[0].summary().variable_cents == 0  # settled on the year's last bill
    assert year.summary().variable_cents == halves[1].summary().variable_cents
    # a payer present all year pays exactly the annual fixed part, in two shares
    present = _whole_year_payers(bins, 2025)
    assert len(present) > 20

    def fixed(run: object) -> dict[str, int]:
        table = run.bills.select(["payer", "fixed_cents"]).to_pylist()  # type: ignore[attr-defined]
        return {r["payer"]: r["fixed_cents"] for r in table if r["payer"] in present}

    first, second, whole = fixed(halves[0]), fixed(halves[1]), fixed(year)
    assert whole == {p: first[p] + second[p] for p in whole}


def _whole_year_payers(bins: pa.Table, year: int) -> set[str]:
    payers: dict[str, bool] = {}
    for row in bins.select(["payer", "start_date", "end_date"]).to_pylist():
        whole = row["start_date"] <= date(year, 1, 1) and (
            row["end_date"] is None or row["end_date"] >= date(year + 1, 1, 1)
        )
        payers[row["payer"]] = payers.get(row["payer"], True) and whole
    return {p for p, ok in payers.items() if ok}


def test_json_output_has_each_payer_total_and_lines(sandbox: tuple[pa.Table, pa.Table]) -> None:
    bins, lift_table = sandbox
    run = run_billing(EXAMPLE, "2025-S2", bins, lift_table)
    data = run.as_dict()
    text = json.dumps(data, ensure_ascii=False)
    assert '"period": "2025-S2"' in text
    bills = data["bills"]
    assert len(bills) == run.summary().bills
    first = bills[0]
    assert first["total_cents"] == sum(line["amount_cents"] for line in first["lines"])
    assert {"kind", "label", "rule", "explanation", "amount_cents"} <= set(first["lines"][0])
    assert run.as_dict(payers=[first["payer"]])["bills"] == [first]


def test_an_unknown_payer_has_no_bill() -> None:
    run = run_billing(
        ESTUAIRE,
        "2024",
        one_bin(),
        lifts([]),
    )
    assert run.total("P1") == 31225
    assert run.total("nobody") is None
    assert run.bill("nobody").lines == []


def test_proration_policy_can_be_overridden() -> None:
    table = one_bin(start_date=date(2024, 3, 15))
    by_day = run_billing(ESTUAIRE, "2024", table, lifts([]))
    by_month = run_billing(ESTUAIRE, "2024", table, lifts([]), proration=Proration(policy="month"))
    whole = run_billing(ESTUAIRE, "2024", table, lifts([]), proration=Proration(policy="none"))
    assert by_day.total("P1") == (31225 * 292 * 2 + 366) // (2 * 366)
    assert by_month.total("P1") == (31225 * 9 * 2 + 12) // 24  # April to December
    assert whole.total("P1") == 31225


def test_double_read_window_and_truck_rule_are_configurable() -> None:
    table = one_bin()
    reads = lifts(
        [
            {"lift_id": "A", "lifted_at": datetime(2024, 1, 5, 7, 0), "rfid_tag": "T1"},
            {"lift_id": "B", "lifted_at": datetime(2024, 1, 5, 7, 3), "rfid_tag": "T1"},
            {
                "lift_id": "C",
                "lifted_at": datetime(2024, 1, 5, 7, 6),
                "rfid_tag": "T1",
                "truck_id": "BOM-2",
            },
        ]
    )
    lo, hi = date(2024, 1, 1), date(2025, 1, 1)
    default = clean_events(table, reads, lo, hi)
    assert default.billable.column("lift_id").to_pylist() == ["A", "C"]
    any_truck = clean_events(table, reads, lo, hi, rules=EventRules(same_truck=False))
    assert any_truck.billable.column("lift_id").to_pylist() == ["A"]
    short = clean_events(table, reads, lo, hi, rules=EventRules(window_minutes=2))
    assert short.billable.column("lift_id").to_pylist() == ["A", "B", "C"]


def test_overlapping_allocations_of_a_tag_are_cut_and_reported() -> None:
    table = allocations(
        [
            {
                "allocation_id": "D1",
                "bin_id": "B1",
                "rfid_tag": "T1",
                "volume_l": 240,
                "payer": "OLD",
                "start_date": date(2020, 1, 1),
            },
            {
                "allocation_id": "D2",
                "bin_id": "B2",
                "rfid_tag": "T1",
                "volume_l": 120,
                "payer": "NEW",
                "start_date": date(2024, 7, 1),
            },
            {
                "allocation_id": "D3",
                "bin_id": "B3",
                "rfid_tag": "T3",
                "volume_l": 120,
                "payer": "NEW",
                "start_date": date(2024, 7, 1),
                "end_date": date(2024, 7, 1),
            },
        ]
    )
    reads = lifts(weekly("T1", date(2024, 6, 24), 2, "L"))
    cleaned = clean_events(table, reads, date(2024, 1, 1), date(2025, 1, 1))
    assert cleaned.billable.column("payer").to_pylist() == ["OLD", "NEW"]
    reasons = {(a["ref"], a["reason"]) for a in cleaned.anomalies.to_pylist()}
    assert ("D1", "dotations_chevauchantes") in reasons
    assert ("D3", "dotation_vide") in reasons


def test_a_missing_column_is_named() -> None:
    table = allocations([]).drop_columns(["volume_l"])
    with pytest.raises(TerritoriaError) as caught:
        run_billing(ESTUAIRE, "2024", table, lifts([]))
    assert caught.value.code == "waste_input_missing_column"
    assert caught.value.field_name == "volume_l"


def test_a_suspension_of_an_unknown_allocation_is_reported() -> None:
    table = one_bin()
    suspensions = pa.Table.from_pylist(
        [{"allocation_id": "DX", "start_date": date(2024, 2, 1), "end_date": date(2024, 3, 1)}]
    )
    run = run_billing(ESTUAIRE, "2024", table, lifts([]), suspensions=suspensions)
    assert ("DX", "suspension_hors_dotation") in {
        (a["ref"], a["reason"]) for a in run.anomalies.to_pylist()
    }
    assert run.total("P1") == 31225


# --- disputes --------------------------------------------------------------------------------


@pytest.fixture
def billed() -> tuple[InMemoryDisputeBook, object]:
    table = allocations(
        [
            {
                "allocation_id": "D1",
                "bin_id": "B1",
                "rfid_tag": "T1",
                "volume_l": 240,
                "payer": "P1",
                "start_date": date(2020, 1, 1),
            },
            {
                "allocation_id": "D2",
                "bin_id": "B2",
                "rfid_tag": "T2",
                "volume_l": 80,
                "payer": "P2",
                "start_date": date(2020, 1, 1),
            },
        ]
    )
    reads = lifts(weekly("T1", date(2024, 1, 3), 10, "A") + weekly("T2", date(2024, 1, 4), 2, "B"))
    return InMemoryDisputeBook(), run_billing(ESTUAIRE, "2024", table, reads)


def test_dispute_rules(billed: tuple[InMemoryDisputeBook, object]) -> None:
    book, run = billed
    at = datetime(2025, 1, 5, 9, 0)
    with pytest.raises(TerritoriaError) as caught:
        open_dispute(book, run, "P2", "A-001", "pas à moi", at)  # type: ignore[arg-type]
    assert caught.value.code == "waste_dispute_not_payer"
    dispute = open_dispute(book, run, "P1", "A-009", "contestée", at)  # type: ignore[arg-type]
    assert dispute.evidence.billed_value_cents == 878
    with pytest.raises(TerritoriaError) as caught:
        open_dispute(book, run, "P1", "A-009", "encore", at)  # type: ignore[arg-type]
    assert caught.value.code == "waste_dispute_exists"
    with pytest.raises(TerritoriaError) as caught:
        decide_dispute(book, dispute.id, "credit", "agent", "  ", at)
    assert caught.value.code == "waste_dispute_reason"
    decide_dispute(book, dispute.id, "uphold", "agent", "levée confirmée", at)
    with pytest.raises(TerritoriaError) as caught:
        decide_dispute(book, dispute.id, "credit", "agent", "revirement", at)
    assert caught.value.code == "waste_dispute_decided"
    with pytest.raises(TerritoriaError) as caught:
        book.get("C-99999")
    assert caught.value.code == "waste_dispute_unknown"


def test_evidence_of_included_and_absent_lifts(billed: tuple[InMemoryDisputeBook, object]) -> None:
    _, run = billed
    included = evidence(run, "B-001")  # type: ignore[arg-type]
    assert included.found and included.billed_value_cents == 0
    assert "incluse" in included.billing
    absent = evidence(run, "ZZZ")  # type: ignore[arg-type]
    assert not absent.found and absent.billed_value_cents == 0


# --- collective buildings ----------------------------------------------------------------------


def test_apportionment_needs_every_key_value(billed: tuple[InMemoryDisputeBook, object]) -> None:
    _, run = billed
    with pytest.raises(TerritoriaError) as caught:
        apportion(run, "P1", [{"unit_id": "A", "residents": 2}, {"unit_id": "B"}], "residents")  # type: ignore[arg-type]
    assert caught.value.code == "waste_key_missing"
    with pytest.raises(TerritoriaError) as caught:
        apportion(run, "nobody", [{"unit_id": "A"}], "equal")  # type: ignore[arg-type]
    assert caught.value.code == "waste_no_bill"
    result = apportion(
        run, "P1", pa.Table.from_pylist([{"unit_id": "A", "valeur_locative": 3000.0},  # type: ignore[arg-type]
                                         {"unit_id": "B", "valeur_locative": 1500.0}]),
        "valeur_locative",
    )  # fmt: skip
    # 347,37 € = fixed 312,25 (→ 208,17 + 104,08) + variable 35,12 (→ 23,41 + 11,71)
    assert [u.amount_cents for u in result.units] == [23158, 11579]
    assert sum(u.amount_cents for u in result.units) == result.total_cents


# --- simulator -------------------------------------------------------------------------------


def test_simulator_revenue_budget_and_distribution(sandbox: tuple[pa.Table, pa.Table]) -> None:
    bins, lift_table = sandbox
    payers = sorted(set(bins.column("payer").to_pylist()))
    profile = pa.Table.from_pylist(
        [
            {"payer": p, "household_size": 1 + i % 6, "income_decile": 1 + i % 10}
            for i, p in enumerate(payers)
        ]
    )
    baseline = run_billing(EXAMPLE, "2025", bins, lift_table)
    budget = baseline.summary().total_cents
    result = simulate(
        EXAMPLE, "2025", bins, lift_table, budget_cents=budget, baseline=EXAMPLE, payers=profile
    )
    assert result.baseline_revenue_cents == budget
    assert 0.66 < result.lifts_after / result.lifts_before < 0.74
    assert result.revenue_cents < budget  # fewer lifts, less variable revenue
    assert str(result.coverage) == f"{result.revenue_cents / budget:.4f}"
    dims = {g.dimension for g in result.groups}
    assert dims == {"taille du foyer", "décile de revenu"}
    deciles = [g.group for g in result.groups if g.dimension == "décile de revenu"]
    assert deciles[:3] == ["D1", "D2", "D3"]
    assert sum(g.payers for g in result.groups if g.dimension == "taille du foyer") == (
        result.payers_compared
    )
    assert result.chart["$schema"].startswith("https://vega.github.io/schema/vega-lite/")
    assert len(result.chart["data"]["values"]) == len(result.groups)
    assert result.table()[0]["dimension"] == "taille du foyer"
    json.dumps(result.model_dump(mode="json"))
    # the same events with no behaviour change reproduce the baseline exactly
    still = simulate(
        EXAMPLE, "2025", bins, lift_table, budget_cents=budget, baseline=EXAMPLE,
        assumptions=Assumptions(residual_waste_change=0),
    )  # fmt: skip
    assert still.revenue_cents == budget and still.lifts_after == still.lifts_before
    assert all(g.mean_change_cents == 0 for g in still.groups)


def test_simulator_takes_issued_bills_and_checks_the_budget(
    sandbox: tuple[pa.Table, pa.Table],
) -> None:
    bins, lift_table = sandbox
    issued = run_billing(EXAMPLE, "2025", bins, lift_table).bills.select(["payer", "total_cents"])
    issued = issued.rename_columns(["payer", "amount_cents"])
    estuaire_like = get_grid("estuaire_sillon_2024")  # no 770 L: those payers are held
    result = simulate(
        estuaire_like, "2025", bins, lift_table, budget_cents=10_000_000, baseline=issued
    )
    assert result.baseline == "factures émises"
    assert result.held_payers > 0
    with pytest.raises(TerritoriaError) as caught:
        simulate(EXAMPLE, "2025", bins, lift_table, budget_cents=0, baseline=issued)
    assert caught.value.code == "waste_budget"


def test_weight_follows_the_residual_waste_change() -> None:
    a = Assumptions(residual_waste_change=-0.3, lift_change=-0.2)  # type: ignore[arg-type]
    assert float(a.weight_factor) == pytest.approx(0.7 / 0.8)
    assert Assumptions().lifts == Assumptions().residual_waste_change


def test_apps_never_read_a_store(tmp_path: Path) -> None:
    """The engine imports no store, identity or governance module (layering): its only
    backend is the in-memory compute connection."""
    package = Path(__file__).parent.parent / "src" / "territoria" / "apps" / "waste"
    for path in package.glob("*.py"):
        text = path.read_text(encoding="utf-8").replace("territoria.backends.compute", "")
        for forbidden in ("territoria.backends", "territoria.identity", "territoria.governance"):
            assert forbidden not in text, (path.name, forbidden)


@pytest.mark.slow
def test_the_benchmark_ends_with_its_json_line() -> None:
    script = Path(__file__).parents[1] / "benchmarks" / "waste_billing.py"
    out = subprocess.run(
        [sys.executable, str(script), "--households", "2000", "--events", "50000"],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    assert {"benchmark", "value", "unit", "target", "ratio"} <= set(result)
    assert result["bills"] == 2000
