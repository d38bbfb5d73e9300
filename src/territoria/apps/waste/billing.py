"""The billing run: each payer's bill for a period, every line explained.

``run_billing(grid, "2024-S2", allocations, lifts, payers=…)`` cleans the lift events
(:mod:`territoria.apps.waste.events`), computes per contract (payer × bin) the days or months of
presence in the period and the lifts counted, and writes one line per fixed part, per extra
lifts, per weight, per column openings, per exemption and per correction — each with the rule
of the grid it applies and a sentence saying how the amount was computed. A payer whose data do
not allow a bill (volume absent from the grid, unknown category, unknown household size…) is
*held*: no partial bill, an anomaly with the reason instead.

Everything is DuckDB SQL over the arrow inputs; amounts are integer cents and a bill's total is
the sum of its lines.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa
from pydantic import BaseModel

from territoria.apps.waste import billing_sql
from territoria.apps.waste.events import EventPipeline, EventRules
from territoria.apps.waste.grid_tables import register_grid
from territoria.apps.waste.grids import TEOMI_MAX_SHARE, TEOMI_MIN_SHARE, Proration, TariffGrid
from territoria.apps.waste.inputs import EMPTY_PAYERS, PAYERS, register
from territoria.apps.waste.money import euros
from territoria.apps.waste.periods import Period, parse_period
from territoria.apps.waste.sql import Connection, connect, fetch_dicts, fetch_row, run_script

FIXED_KINDS = ("part_fixe", "abonnement", "forfait_foyer", "sans_bac", "teom")
VARIABLE_KINDS = ("levees", "poids", "ouvertures")


@dataclass(frozen=True)
class Correction:
    """A line to add to a payer's next bill (negative for a credit), with its reason."""

    payer: str
    amount_cents: int
    reference: str
    label: str
    explanation: str


class BillLine(BaseModel):
    """One line of a bill."""

    line_no: int
    kind: str
    label: str
    contract: str | None
    quantity: Decimal | None
    unit: str | None
    unit_price_cents: int | None
    amount_cents: int
    amount: str
    rule: str
    explanation: str


class LiftDetail(BaseModel):
    """One lift (or opening) counted on a bill, and how it was counted."""

    lift_id: str
    lifted_at: datetime
    truck_id: str
    weight_kg: Decimal | None
    bin_id: str
    volume_l: int
    service: str
    rank: int
    status: str


class Bill(BaseModel):
    """A payer's bill for one period, with its lines, its lifts and its anomalies."""

    payer: str
    period: str
    grid_id: str
    total_cents: int
    total: str
    lines: list[BillLine]
    lifts: list[LiftDetail]
    anomalies: list[dict[str, Any]]


class RunSummary(BaseModel):
    """What a billing run did, for the console and the JSON output."""

    grid_id: str
    grid_title: str
    deliberation: str
    period: str
    period_title: str
    fixed_window: tuple[date, date]
    count_window: tuple[date, date] | None
    proration: str
    bills: int
    held_payers: int
    total_cents: int
    fixed_cents: int
    variable_cents: int
    other_cents: int
    anomalies: dict[str, int]
    teomi_incentive_share: Decimal | None = None
    teomi_within_bounds: bool | None = None
    notes: list[str]


@dataclass(frozen=True)
class _Windows:
    fixed: tuple[date, date]
    count: tuple[date, date] | None
    k: int  # count windows per year


def _windows(grid: TariffGrid, period: Period) -> _Windows:
    fixed = (period.start, period.end)
    if grid.variable_settlement == "period":
        return _Windows(fixed, fixed, period.count)
    if period.is_last_of_year:
        return _Windows(fixed, (period.year_start, period.year_end), 1)
    return _Windows(fixed, None, 1)


def _months(lo: date, hi: date) -> int:
    return (hi.year - lo.year) * 12 + hi.month - lo.month


def _params(
    grid: TariffGrid, period: Period, windows: _Windows, proration: Proration
) -> dict[str, Any]:
    flo, fhi = windows.fixed
    clo, chi = windows.count or (flo, flo)
    policy = proration.policy
    ctotal = {"day": (chi - clo).days, "month": _months(clo, chi)}.get(policy, 1)
    teomi = grid.teomi
    return {
        "flo": flo, "fhi": fhi, "clo": clo, "chi": chi,
        "hlo": min(flo, clo), "hhi": max(fhi, chi),
        "fdays": (fhi - flo).days, "fmonths": _months(flo, fhi),
        "cdays": (chi - clo).days, "cmonths": _months(clo, chi),
        "ftotal": {"day": (fhi - flo).days, "month": _months(flo, fhi)}.get(policy, 1),
        "ctotal": max(ctotal, 1),
        "k": windows.k, "has_count": windows.count is not None,
        "policy": policy, "inc_mode": proration.included,
        "inc_round": proration.included_rounding,
        "money_round": "down" if grid.rounding == "down" else "nearest",
        "default_category": grid.default_category, "grid_id": grid.id,
        "period_title": period.title, "share_label": f"{period.index}/{period.count}",
        "cnt": period.count, "idx": period.index,
        "unit_name": "mois" if policy == "month" else "jours",
        "count_label": _count_label(windows.count),
        "teom_rate": teomi.rate if teomi else Decimal(0),
        "teom_rate_label": _percent(teomi.rate) if teomi else "",
    }  # fmt: skip


def _count_label(window: tuple[date, date] | None) -> str:
    if window is None:
        return ""
    last = window[1] - timedelta(days=1)
    return f"du {window[0]:%d/%m/%Y} au {last:%d/%m/%Y}"


def _percent(rate: Decimal) -> str:
    return format((rate * 100).normalize(), "f").replace(".", ",") + " %"


def _corrections_table(corrections: Sequence[Correction]) -> pa.Table:
    return pa.table(
        {
            "payer": pa.array([c.payer for c in corrections], pa.string()),
            "amount_cents": pa.array([c.amount_cents for c in corrections], pa.int64()),
            "reference": pa.array([c.reference for c in corrections], pa.string()),
            "label": pa.array([c.label for c in corrections], pa.string()),
            "explanation": pa.array([c.explanation for c in corrections], pa.string()),
        }
    )


def run_billing(
    grid: TariffGrid,
    period: str | Period,
    allocations: pa.Table,
    lifts: pa.Table,
    *,
    payers: pa.Table | None = None,
    suspensions: pa.Table | None = None,
    corrections: Sequence[Correction] = (),
    excluded_lifts: Mapping[str, str] | None = None,
    rules: EventRules | None = None,
    proration: Proration | None = None,
    check_validity: bool = True,
) -> BillingRun:
    """Bill every payer of ``allocations`` for ``period`` under ``grid``.

    ``period`` is a label (``2024``, ``2024-S1``, ``2024-Q3``) no finer than the grid's billing
    period. ``corrections`` (credits from disputes) become lines of the bill; lifts in
    ``excluded_lifts`` (id → reason) are not counted. ``proration`` overrides the grid's policy.
    ``check_validity=False`` applies a grid outside its validity (the simulator replays last
    year's events under a proposed grid).

    >>> run = run_billing(get_grid("estuaire_sillon_2024"), "2024", bins, lifts)  # doctest: +SKIP
    >>> run.bill("P1").total  # doctest: +SKIP
    '338,59 €'
    """
    period = parse_period(period) if isinstance(period, str) else period
    grid.check_period(period, check_validity=check_validity)
    windows = _windows(grid, period)
    policy = proration or grid.proration
    con = connect()
    rules = rules or EventRules()
    pipeline = EventPipeline(con, rules)
    pipeline.load_allocations(allocations, suspensions)
    lo, hi = windows.count or (period.start, period.start)
    pipeline.load_lifts(lifts, lo, hi, dict(excluded_lifts or {}))
    register(con, "in_payers", payers if payers is not None else EMPTY_PAYERS, PAYERS)
    con.register("in_corrections", _corrections_table(corrections))
    register_grid(con, grid, period)
    params = _params(grid, period, windows, policy)
    run_script(con, billing_sql.FACTS, params)
    run_script(con, billing_sql.BLOCKING, params)
    run_script(con, billing_sql.LINES, params)
    return BillingRun(grid, period, con, windows, policy, rules)


@dataclass
class BillingRun:
    """The result of a billing run; keeps its DuckDB connection for per-payer explanations."""

    grid: TariffGrid
    period: Period
    con: Connection
    windows: _Windows
    proration: Proration
    rules: EventRules
    _cache: dict[str, pa.Table] = field(default_factory=dict)

    @property
    def rules_text(self) -> str:
        """The double-read rule, in French."""
        return self.rules.describe()

    def _table(self, name: str, sql: str) -> pa.Table:
        if name not in self._cache:
            self._cache[name] = self.con.sql(sql).to_arrow_table()
        return self._cache[name]

    @property
    def bills(self) -> pa.Table:
        """One row per payer billed: total, fixed and variable parts in cents."""
        return self._table("bills", "SELECT * FROM bills ORDER BY payer")

    @property
    def lines(self) -> pa.Table:
        """Every line of every bill, with its rule and explanation."""
        return self._table("lines", "SELECT * FROM lines ORDER BY payer, line_no")

    @property
    def anomalies(self) -> pa.Table:
        """Reads not billed, allocations corrected, payers held — each with its reason."""
        return self._table(
            "anomalies", "SELECT * FROM anomalies ORDER BY level, occurred_at NULLS FIRST, ref"
        )

    @property
    def held(self) -> list[str]:
        """Payers with no bill this period (see their anomalies)."""
        return [str(r[0]) for r in self.con.execute("SELECT payer FROM held ORDER BY 1").fetchall()]

    def total(self, payer: str) -> int | None:
        """A payer's total in cents (``None``: not billed)."""
        row = fetch_row(self.con, "SELECT total_cents FROM bills WHERE payer = ?", [payer])
        return None if row is None else int(row[0])

    def bill(self, payer: str) -> Bill:
        """A payer's bill with its lines, the lifts counted (and how) and its anomalies."""
        lines = [
            BillLine(**row, amount=euros(int(row["amount_cents"])))
            for row in fetch_dicts(
                self.con,
                "SELECT line_no, kind, label, contract, quantity, unit, unit_price_cents, "
                "amount_cents, rule, explanation FROM lines WHERE payer = ? ORDER BY line_no",
                [payer],
            )
        ]
        total = sum(line.amount_cents for line in lines)
        anomalies = fetch_dicts(
            self.con,
            "SELECT level, ref, occurred_at, reason, detail FROM anomalies WHERE payer = ? "
            "ORDER BY occurred_at NULLS FIRST, ref",
            [payer],
        )
        return Bill(
            payer=payer,
            period=self.period.label,
            grid_id=self.grid.id,
            total_cents=total,
            total=euros(total),
            lines=lines,
            lifts=self._lift_details(payer),
            anomalies=anomalies,
        )

    def _lift_details(self, payer: str) -> list[LiftDetail]:
        return [LiftDetail(**row) for row in fetch_dicts(self.con, _LIFT_DETAIL_SQL, [payer])]

    def summary(self) -> RunSummary:
        totals = fetch_row(
            self.con,
            "SELECT count(*), coalesce(sum(total_cents), 0), coalesce(sum(fixed_cents), 0), "
            "coalesce(sum(variable_cents), 0) FROM bills",
        )
        assert totals is not None
        bills, total, fixed, variable = (int(v) for v in totals)
        reasons = Counter(
            str(r[0]) for r in self.con.execute("SELECT reason FROM anomalies").fetchall()
        )
        share, within = self._teomi_share(fixed, variable)
        return RunSummary(
            grid_id=self.grid.id,
            grid_title=self.grid.title,
            deliberation=self.grid.deliberation.reference,
            period=self.period.label,
            period_title=self.period.title,
            fixed_window=self.windows.fixed,
            count_window=self.windows.count,
            proration=self.proration.policy,
            bills=bills,
            held_payers=len(self.held),
            total_cents=total,
            fixed_cents=fixed,
            variable_cents=variable,
            other_cents=total - fixed - variable,
            anomalies=dict(sorted(reasons.items())),
            teomi_incentive_share=share,
            teomi_within_bounds=within,
            notes=self._notes(),
        )

    def _teomi_share(self, fixed: int, variable: int) -> tuple[Decimal | None, bool | None]:
        if self.grid.scheme != "teomi" or self.windows.count is None or fixed + variable == 0:
            return None, None
        share = (Decimal(variable) / Decimal(fixed + variable)).quantize(Decimal("0.0001"))
        return share, TEOMI_MIN_SHARE <= share <= TEOMI_MAX_SHARE

    def _notes(self) -> list[str]:
        notes = []
        if self.windows.count is None:
            notes.append(
                "Part variable comptée sur l'année civile : elle sera facturée avec la "
                "dernière facture de l'année."
            )
        if not self.grid.published:
            notes.append("Grille d'exemple, sans valeur réglementaire.")
        return notes

    def as_dict(self, payers: Sequence[str] | None = None) -> dict[str, Any]:
        """JSON-ready: the run's summary and each payer's total and lines."""
        wanted = None if payers is None else set(payers)
        bills: dict[str, dict[str, Any]] = {}
        for row in self.lines.to_pylist():
            if wanted is not None and row["payer"] not in wanted:
                continue
            bill = bills.setdefault(row["payer"], {"payer": row["payer"], "lines": []})
            bill["lines"].append(
                {
                    **{k: v for k, v in row.items() if k != "payer"},
                    "quantity": None if row["quantity"] is None else str(row["quantity"]),
                }
            )
        for bill in bills.values():
            cents = sum(int(line["amount_cents"]) for line in bill["lines"])
            bill["total_cents"], bill["total"] = cents, euros(cents)
        return {
            "run": self.summary().model_dump(mode="json"),
            "bills": list(bills.values()),
            "held": self.held,
        }

    def close(self) -> None:
        self.con.close()


_LIFT_DETAIL_SQL = """
SELECT l.lift_id, l.ts AS lifted_at, l.truck_id, l.w AS weight_kg, l.bin_id, l.volume_l, l.service,
       CAST(l.rank AS INTEGER) AS rank,
       CASE WHEN l.service = 'badge'
                 THEN CASE WHEN l.rank <= o.inc_eff THEN 'incluse' ELSE 'facturée' END
            WHEN f.extra_cents IS NULL THEN
                 CASE WHEN l.rank <= f.inc_eff THEN 'incluse' ELSE 'non tarifée' END
            WHEN f.counted <= f.min_eff THEN 'minimum facturé'
            WHEN l.rank <= f.inc_eff THEN 'incluse'
            ELSE 'facturée' END AS status
FROM (
    SELECT m.*, e.truck_id, c.payer, c.service, c.bin_id, c.volume_l,
           row_number() OVER (PARTITION BY CASE WHEN c.service = 'badge' THEN -1 ELSE m.cid END
                              ORDER BY m.ts, m.lift_id) AS rank
    FROM matched m JOIN contracts c USING (cid) JOIN ev e ON e.rowid = m.rid
    WHERE c.payer = $1
) l
LEFT JOIN bf f ON f.cid = l.cid
LEFT JOIN op o ON o.payer = l.payer
ORDER BY l.ts, l.lift_id
"""
