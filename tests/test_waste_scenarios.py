"""Readable billing scenarios: ``tests/data/waste_scenarios/*.yaml``, one test each.

A scenario names a grid (a shipped one by identifier, or ``grid_file`` next to the scenario),
lists payers, allocations, suspensions and lifts, then runs steps in order: billing runs with
their expected totals, lines, anomalies, held payers and lift statuses; disputes opened and
decided (credits become corrections on the next run); apportionments of a building's bill.
Amounts are written in euros as strings (``"338.59"``) and compared to the cent.

Lift shorthand: ``{tag, truck, dates: [...], time, weights: [...], id}`` or
``{tag, truck, every: {from, days, count}, id}`` expand to lifts ``<id or tag>-01``, ``-02``…;
``{lift_id, truck_id, lifted_at, rfid_tag, read_status, weight_kg}`` is a lift as delivered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import yaml

from territoria.apps.waste import (
    BillingRun,
    EventRules,
    InMemoryDisputeBook,
    Proration,
    TariffGrid,
    apportion,
    corrections_due,
    decide_dispute,
    excluded_lifts,
    get_grid,
    load_grid,
    mark_applied,
    open_dispute,
    run_billing,
)
from territoria.core.errors import TerritoriaError

FOLDER = Path(__file__).parent / "data" / "waste_scenarios"
SCENARIOS = sorted(FOLDER.glob("*.yaml"))

_ALLOCATION_TYPES = pa.schema(
    [
        ("allocation_id", pa.string()),
        ("bin_id", pa.string()),
        ("rfid_tag", pa.string()),
        ("volume_l", pa.int32()),
        ("payer", pa.string()),
        ("start_date", pa.date32()),
        ("end_date", pa.date32()),
        ("end_reason", pa.string()),
        ("housing_type", pa.string()),
        ("service", pa.string()),
    ]
)
_LIFT_TYPES = pa.schema(
    [
        ("lift_id", pa.string()),
        ("truck_id", pa.string()),
        ("lifted_at", pa.string()),
        ("rfid_tag", pa.string()),
        ("weight_kg", pa.float64()),
        ("read_status", pa.string()),
        ("place", pa.string()),
    ]
)
_PAYER_TYPES = pa.schema(
    [
        ("payer", pa.string()),
        ("category", pa.string()),
        ("household_size", pa.int32()),
        ("income_decile", pa.int32()),
        ("exemption", pa.string()),
        ("tax_base", pa.float64()),
    ]
)


def cents(value: object) -> int:
    return int(Decimal(str(value)) * 100)


def _expand_lifts(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for entry in entries:
        if "lift_id" in entry:
            rows.append({"read_status": "ok", **entry, "lifted_at": str(entry["lifted_at"])})
            continue
        stamps = _stamps(entry)
        weights = entry.get("weights", [None] * len(stamps))
        prefix = entry.get("id", entry["tag"])
        for i, (stamp, weight) in enumerate(zip(stamps, weights, strict=True), start=1):
            rows.append(
                {
                    "lift_id": f"{prefix}-{i:02d}",
                    "truck_id": entry.get("truck", "BOM-001"),
                    "lifted_at": stamp.isoformat(),
                    "rfid_tag": entry["tag"],
                    "weight_kg": weight,
                    "read_status": entry.get("status", "ok"),
                }
            )
    return rows


def _stamps(entry: dict[str, Any]) -> list[datetime]:
    hour, minute = (int(x) for x in str(entry.get("time", "07:30")).split(":"))
    if "every" in entry:
        every = entry["every"]
        days = [every["from"] + timedelta(days=every["days"] * i) for i in range(every["count"])]
    else:
        days = list(entry["dates"])
    return [datetime(d.year, d.month, d.day, hour, minute) for d in days]


@dataclass
class Tables:
    allocations: pa.Table
    lifts: pa.Table
    payers: pa.Table | None
    suspensions: pa.Table | None

    @classmethod
    def of(cls, spec: dict[str, Any]) -> Tables:
        payers = spec.get("payers")
        suspensions = spec.get("suspensions")
        return cls(
            pa.Table.from_pylist(spec["allocations"], schema=_ALLOCATION_TYPES),
            pa.Table.from_pylist(_expand_lifts(spec.get("lifts", [])), schema=_LIFT_TYPES),
            None if payers is None else pa.Table.from_pylist(payers, schema=_PAYER_TYPES),
            None if suspensions is None else pa.Table.from_pylist(suspensions),
        )


@dataclass
class Scenario:
    grid: TariffGrid
    tables: Tables
    rules: EventRules
    proration: Proration | None
    book: InMemoryDisputeBook = field(default_factory=InMemoryDisputeBook)
    runs: dict[str, BillingRun] = field(default_factory=dict)
    disputes: dict[str, str] = field(default_factory=dict)

    def run(self, period: str) -> BillingRun:
        run = run_billing(
            self.grid,
            period,
            self.tables.allocations,
            self.tables.lifts,
            payers=self.tables.payers,
            suspensions=self.tables.suspensions,
            corrections=corrections_due(self.book),
            excluded_lifts=excluded_lifts(self.book),
            rules=self.rules,
            proration=self.proration,
        )
        self.runs[period] = run
        return run


def _grid(spec: dict[str, Any], path: Path) -> TariffGrid:
    if "grid_file" in spec:
        return load_grid(path.parent / spec["grid_file"])
    return get_grid(spec["grid"])


def _check_run(run: BillingRun, expect: dict[str, Any]) -> None:
    for payer, total in expect.get("totals", {}).items():
        assert run.total(payer) == cents(total), f"total de {payer}: {run.bill(payer).lines}"
    for payer, lines in expect.get("lines", {}).items():
        actual = run.bill(payer).lines
        assert len(actual) == len(lines), [(line.kind, line.amount) for line in actual]
        for want, got in zip(lines, actual, strict=True):
            assert got.kind == want["kind"], (want, got)
            assert got.amount_cents == cents(want["amount"]), (want, got.explanation)
            if "quantity" in want:
                assert got.quantity == Decimal(str(want["quantity"])), (want, got)
            if "explains" in want:
                assert want["explains"] in got.explanation, got.explanation
    if "held" in expect:
        assert run.held == sorted(expect["held"])
    anomalies = {(a["ref"], a["reason"]) for a in run.anomalies.to_pylist()}
    for ref, reason in expect.get("anomalies", {}).items():
        assert (str(ref), reason) in anomalies, sorted(anomalies)
    if "anomaly_count" in expect:
        assert len(anomalies) == expect["anomaly_count"], sorted(anomalies)
    for payer, statuses in expect.get("lift_status", {}).items():
        actual_status = {d.lift_id: d.status for d in run.bill(payer).lifts}
        for lift, status in statuses.items():
            assert actual_status.get(lift) == status, actual_status
    summary = run.summary()
    for key, value in expect.get("summary", {}).items():
        assert str(getattr(summary, key)) == str(value), (key, getattr(summary, key))


def _step_run(s: Scenario, step: dict[str, Any]) -> None:
    run = s.run(str(step["run"]))
    _check_run(run, step.get("expect", {}))
    total = sum(run.bills.column("total_cents").to_pylist())
    assert total == sum(run.lines.column("amount_cents").to_pylist())
    if step.get("apply_corrections", True):
        mark_applied(s.book, run)


def _step_dispute(s: Scenario, step: dict[str, Any]) -> None:
    spec = step["dispute"]
    run = s.runs[str(spec["run"])]
    dispute = open_dispute(s.book, run, spec["payer"], spec["lift"], spec["claim"], spec["at"])
    s.disputes[spec["name"]] = dispute.id
    expect = step.get("expect", {})
    if "value" in expect:
        assert dispute.evidence.billed_value_cents == cents(expect["value"])
    for key, text in expect.get("evidence", {}).items():
        assert text in str(getattr(dispute.evidence, key)), getattr(dispute.evidence, key)


def _step_decide(s: Scenario, step: dict[str, Any]) -> None:
    spec = step["decide"]
    dispute = decide_dispute(
        s.book, s.disputes[spec["dispute"]], spec["decision"], spec["agent"], spec["reason"],
        spec["at"],
    )  # fmt: skip
    expect = step.get("expect", {})
    if "credit" in expect:
        assert dispute.credit_cents == cents(expect["credit"])
    if "corrections_due" in expect:
        assert len(corrections_due(s.book)) == expect["corrections_due"]


def _step_apportion(s: Scenario, step: dict[str, Any]) -> None:
    spec = step["apportion"]
    result = apportion(
        s.runs[str(spec["run"])], spec["payer"], spec["units"], spec["key"],
        individual_counting=spec.get("individual_counting", False),
    )  # fmt: skip
    shares = {u.unit_id: u.amount_cents for u in result.units}
    assert shares == {unit: cents(v) for unit, v in step["expect"].items()}
    assert sum(shares.values()) == result.total_cents


STEPS = {
    "run": _step_run,
    "dispute": _step_dispute,
    "decide": _step_decide,
    "apportion": _step_apportion,
}


def _kind(step: dict[str, Any]) -> str:
    return next(k for k in STEPS if k in step)


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_scenario(path: Path) -> None:
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    if "expect_error" in spec:
        expected = spec["expect_error"]
        with pytest.raises(TerritoriaError) as caught:
            _grid(spec, path)
        error = caught.value
        assert error.code == expected["code"]
        assert error.line == expected["line"]
        assert error.field_name == expected["field"]
        assert error.file is not None and Path(error.file).name == Path(spec["grid_file"]).name
        return
    rules = EventRules(**spec.get("rules", {}))
    proration = Proration(**spec["proration"]) if "proration" in spec else None
    scenario = Scenario(_grid(spec, path), Tables.of(spec), rules, proration)
    for step in spec["steps"]:
        STEPS[_kind(step)](scenario, step)
    for run in scenario.runs.values():
        run.close()


def test_every_scenario_has_a_title_and_steps() -> None:
    assert len(SCENARIOS) >= 12
    for path in SCENARIOS:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert spec.get("title"), path
        assert "steps" in spec or "expect_error" in spec, path


def test_three_published_grids_are_reproduced() -> None:
    """At least three scenarios bill a shipped, published grid to the cent."""
    published = set()
    for path in SCENARIOS:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        if "grid" in spec and get_grid(spec["grid"]).published:
            published.add(spec["grid"])
    assert len(published) >= 3, published


def test_dates_in_scenarios_are_dates() -> None:
    for path in SCENARIOS:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        for row in spec.get("allocations", []):
            assert isinstance(row["start_date"], date), (path, row)
