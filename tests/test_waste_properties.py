"""Properties of the billing engine, checked on generated cases (Hypothesis).

- the shares of a year add up to the annual amount, whatever the amount and the period kind;
- a full period of presence bills exactly the unprorated share (every proration policy);
- bills are never negative unless credited, and a total is the sum of its lines;
- a lift's billed value (a dispute's credit) is exactly what the bill loses without it;
- an extra lift never lowers a bill;
- a building's apportionment adds up to its bill, each share within a cent of its exact part.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from territoria.apps.waste import (
    EventRules,
    Proration,
    clean_events,
    evidence,
    get_grid,
    load_grid,
    run_billing,
    split_cents,
)
from territoria.apps.waste.money import period_share
from waste_fixtures import allocations, lifts

GRIDS = {
    name: get_grid(name)
    for name in ("estuaire_sillon_2024", "sevre_loire_2019", "vallees_haut_anjou_2024")
}
GRIDS["poids_exemple"] = load_grid(
    Path(__file__).parent / "data" / "waste_scenarios" / "grids" / "poids_exemple.yaml"
)
YEARS = {
    "estuaire_sillon_2024": 2024,
    "sevre_loire_2019": 2019,
    "vallees_haut_anjou_2024": 2024,
    "poids_exemple": 2024,
}
SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@given(st.integers(0, 10**9), st.sampled_from([1, 2, 3]))
def test_shares_of_a_year_add_up(annual: int, count: int) -> None:
    for rounding in ("half_up", "down"):
        shares = [period_share(annual, i, count, rounding) for i in range(1, count + 1)]  # type: ignore[arg-type]
        assert sum(shares) == annual
        assert max(shares) - min(shares) <= 1


def _volumes(grid_name: str) -> list[int]:
    return sorted(v for rate in GRIDS[grid_name].categories["menage"].bins for v in rate.volumes)


@st.composite
def households(draw: st.DrawFn) -> tuple[str, list[dict[str, object]], list[dict[str, object]]]:
    """A grid and a few payers with allocations (arrivals, departures, swaps) and lifts."""
    name = draw(st.sampled_from(sorted(GRIDS)))
    year = YEARS[name]
    volumes = _volumes(name)
    rows: list[dict[str, object]] = []
    reads: list[dict[str, object]] = []
    for p in range(draw(st.integers(1, 3))):
        start = date(year, 1, 1) + timedelta(days=draw(st.integers(-400, 300)))
        length = draw(st.one_of(st.none(), st.integers(1, 500)))
        end = None if length is None else start + timedelta(days=length)
        tag = f"T{p}"
        rows.append(
            {
                "allocation_id": f"D{p}",
                "bin_id": f"B{p}",
                "rfid_tag": tag,
                "volume_l": draw(st.sampled_from(volumes)),
                "payer": f"P{p}",
                "start_date": start,
                "end_date": end,
            }
        )
        days = draw(st.lists(st.integers(0, 364), max_size=30, unique=True))
        for i, day in enumerate(sorted(days)):
            reads.append(
                {"lift_id": f"L{p}-{i:02d}",
                 "lifted_at": datetime(year, 1, 1, 7) + timedelta(days=day),
                 "rfid_tag": tag, "weight_kg": draw(st.one_of(st.none(), st.floats(1, 90)))}
            )  # fmt: skip
    return name, rows, reads


@SETTINGS
@given(
    st.sampled_from(sorted(GRIDS)),
    st.sampled_from(["day", "month", "none"]),
    st.data(),
)
def test_a_full_period_bills_the_unprorated_share(
    name: str, policy: str, data: st.DataObject
) -> None:
    grid = GRIDS[name]
    year = YEARS[name]
    volume = data.draw(st.sampled_from(_volumes(name)))
    labels = {
        "year": [str(year)],
        "semester": [f"{year}-S1", f"{year}-S2"],
        "four_months": [f"{year}-Q1", f"{year}-Q2", f"{year}-Q3"],
    }[grid.billing_period]
    table = allocations(
        [
            {
                "allocation_id": "D",
                "bin_id": "B",
                "rfid_tag": "T",
                "volume_l": volume,
                "payer": "P",
                "start_date": date(year - 1, 6, 1),
            }
        ]
    )
    rate = grid.categories["menage"].bin_rate(volume)
    assert rate is not None
    annual = grid.cents(rate.annual_fixed)
    proration = Proration(policy=policy)  # type: ignore[arg-type]
    shares = []
    for index, label in enumerate(labels, start=1):
        run = run_billing(grid, label, table, lifts([]), proration=proration)
        fixed = [line for line in run.bill("P").lines if line.kind == "part_fixe"]
        assert [line.amount_cents for line in fixed] == [
            period_share(annual, index, len(labels), grid.rounding)
        ]
        shares.append(fixed[0].amount_cents)
        run.close()
    assert sum(shares) == annual


@SETTINGS
@given(households())
def test_bills_are_never_negative_and_add_up(case: tuple[str, list, list]) -> None:  # type: ignore[type-arg]
    name, rows, reads = case
    grid = GRIDS[name]
    run = run_billing(grid, str(YEARS[name]), allocations(rows), lifts(reads))
    totals = run.bills.column("total_cents").to_pylist()
    assert all(t >= 0 for t in totals)
    assert sum(totals) == sum(run.lines.column("amount_cents").to_pylist())
    for payer in run.bills.column("payer").to_pylist():
        bill = run.bill(payer)
        assert bill.total_cents == sum(line.amount_cents for line in bill.lines)
        assert all(line.explanation and line.rule for line in bill.lines)
    run.close()


@SETTINGS
@given(households(), st.data())
def test_a_lift_is_worth_what_the_bill_loses_without_it(
    case: tuple[str, list, list],  # type: ignore[type-arg]
    data: st.DataObject,
) -> None:
    name, rows, reads = case
    grid, period = GRIDS[name], str(YEARS[name])
    run = run_billing(grid, period, allocations(rows), lifts(reads))
    counted = [d for p in run.bills.column("payer").to_pylist() for d in run.bill(p).lifts]
    if not counted:
        run.close()
        return
    chosen = data.draw(st.sampled_from(counted))
    payer = next(r["payer"] for r in rows if r["bin_id"] == chosen.bin_id)
    value = evidence(run, chosen.lift_id).billed_value_cents
    before = run.total(str(payer))
    without = run_billing(
        grid, period, allocations(rows), lifts(reads), excluded_lifts={chosen.lift_id: "test"}
    )
    assert before is not None
    assert before - (without.total(str(payer)) or 0) == value
    assert value >= 0
    run.close()
    without.close()


@SETTINGS
@given(households(), st.integers(0, 364))
def test_an_extra_lift_never_lowers_a_bill(case: tuple[str, list, list], day: int) -> None:  # type: ignore[type-arg]
    name, rows, reads = case
    grid, year = GRIDS[name], YEARS[name]
    base = run_billing(grid, str(year), allocations(rows), lifts(reads))
    extra = {"lift_id": "EXTRA", "lifted_at": datetime(year, 1, 1, 18) + timedelta(days=day),
             "rfid_tag": "T0"}  # fmt: skip
    more = run_billing(grid, str(year), allocations(rows), lifts([*reads, extra]))
    assert (more.total("P0") or 0) >= (base.total("P0") or 0)
    base.close()
    more.close()


@given(
    st.integers(-(10**7), 10**7),
    st.lists(st.decimals(0, 1000, places=2), min_size=1, max_size=12).filter(lambda w: sum(w) > 0),
)
def test_apportionment_adds_up_to_the_cent(total: int, weights: list[Decimal]) -> None:
    parts = split_cents(total, weights)
    assert sum(parts) == total
    whole = sum(weights)
    for part, weight in zip(parts, weights, strict=True):
        assert abs(Decimal(part) - Decimal(total) * weight / whole) < 1


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["T1", "T2", "T3"]),
            st.sampled_from(["BOM-1", "BOM-2"]),
            st.integers(0, 2 * 3600 * 1000),  # milliseconds within two hours, across midnight
        ),
        max_size=60,
    ),
    st.integers(1, 15),
    st.booleans(),
)
def test_double_reads_follow_the_rule_exactly(
    reads: list[tuple[str, str, int]], minutes: int, same_truck: bool
) -> None:
    """The engine's double reads are those of the plain rule: gap to the previous read."""
    table = allocations(
        [
            {"allocation_id": f"D{t}", "bin_id": f"B{t}", "rfid_tag": t, "volume_l": 240,
             "payer": f"P{t}", "start_date": date(2020, 1, 1)}
            for t in ("T1", "T2", "T3")
        ]
    )  # fmt: skip
    start = datetime(2024, 3, 5, 23, 0)
    rows = [
        {"lift_id": f"L{i:03d}", "truck_id": truck, "rfid_tag": tag,
         "lifted_at": start + timedelta(milliseconds=ms)}
        for i, (tag, truck, ms) in enumerate(reads)
    ]  # fmt: skip
    schema = lifts([]).schema.set(2, lifts([]).schema.field(2).with_type(pa.timestamp("ms")))
    reads_table = pa.Table.from_pylist(
        [{"read_status": "ok", "weight_kg": None, **r} for r in rows], schema=schema
    )
    cleaned = clean_events(
        table, reads_table, date(2024, 1, 1), date(2025, 1, 1),
        rules=EventRules(window_minutes=minutes, same_truck=same_truck),
    )  # fmt: skip
    expected = set()
    last: dict[tuple[str, str], datetime] = {}
    for row in sorted(rows, key=lambda r: (r["lifted_at"], r["lift_id"])):
        key = (row["rfid_tag"], row["truck_id"] if same_truck else "")
        previous = last.get(key)
        if previous is None or row["lifted_at"] - previous >= timedelta(minutes=minutes):
            expected.add(row["lift_id"])
        last[key] = row["lifted_at"]
    assert set(cleaned.billable.column("lift_id").to_pylist()) == expected
