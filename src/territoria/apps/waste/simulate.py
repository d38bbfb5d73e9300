"""Tariff simulator: a proposed grid replayed on last period's events, with behaviour change.

For a proposed grid, the simulator bills last period's allocations and lifts as they were
(the *baseline*, under the current grid or from the bills actually issued) and as they would be
under the proposed grid once households react. The reaction follows ADEME's observation that
pay-as-you-throw cuts residual household waste by about 30 % (ADEME 2023/24, usecase-anchors
§1.2); both the change in residual waste and the change in lifts are parameters. Lifts are
thinned deterministically (a lift is kept when a hash of its id falls under the kept share), and
the weight of each kept lift is scaled so that the total weight follows the residual-waste
change.

The result: revenue against the budget to cover, the distribution of bill changes by household
size and by income decile (mean, median, 10th and 90th percentiles, share paying more), a table
and a Vega-Lite chart specification (a dict; no JavaScript here).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pyarrow as pa
from pydantic import BaseModel, Field

from territoria.apps.waste.billing import BillingRun, run_billing
from territoria.apps.waste.events import EventRules
from territoria.apps.waste.grids import TariffGrid
from territoria.apps.waste.inputs import EMPTY_PAYERS, LIFTS, PAYERS, register
from territoria.apps.waste.money import euros
from territoria.apps.waste.periods import Period, parse_period
from territoria.apps.waste.sql import connect, fetch_dicts, fetch_row
from territoria.core.errors import TerritoriaError

ADEME_SOURCE = (
    "ADEME 2023/24 : −30 % d'ordures ménagères résiduelles en moyenne sous tarification "
    "incitative (usecase-anchors §1.2)"
)


class Assumptions(BaseModel):
    """Behavioural response to the proposed grid (fractions: −0.30 is −30 %)."""

    residual_waste_change: Decimal = Field(default=Decimal("-0.30"), ge=-1, le=1)
    lift_change: Decimal | None = Field(default=None, ge=-1, le=1)
    source: str = ADEME_SOURCE

    @property
    def lifts(self) -> Decimal:
        """Change in the number of lifts (default: the residual-waste change)."""
        return self.residual_waste_change if self.lift_change is None else self.lift_change

    @property
    def weight_factor(self) -> Decimal:
        """Factor on each kept lift's weight so the total follows the residual-waste change."""
        kept = 1 + self.lifts
        return Decimal(1) if kept == 0 else (1 + self.residual_waste_change) / kept


class GroupRow(BaseModel):
    """Bill changes of one group of payers (cents)."""

    dimension: str
    group: str
    payers: int
    mean_before_cents: int
    mean_after_cents: int
    mean_change_cents: int
    median_change_cents: int
    p10_change_cents: int
    p90_change_cents: int
    share_paying_more: Decimal


class SimulationResult(BaseModel):
    """Revenue against the budget, and who pays more or less."""

    proposed_grid: str
    baseline: str
    period: str
    assumptions: Assumptions
    lifts_before: int
    lifts_after: int
    revenue_cents: int
    baseline_revenue_cents: int
    budget_cents: int
    coverage: Decimal
    gap_cents: int
    payers_compared: int
    held_payers: int
    groups: list[GroupRow]
    explanation: list[str]
    chart: dict[str, Any]

    def table(self) -> list[dict[str, Any]]:
        """The groups as rows with amounts in euros, for display."""
        return [
            {
                "dimension": g.dimension,
                "groupe": g.group,
                "redevables": g.payers,
                "facture moyenne avant": euros(g.mean_before_cents),
                "facture moyenne après": euros(g.mean_after_cents),
                "variation moyenne": euros(g.mean_change_cents),
                "variation médiane": euros(g.median_change_cents),
                "10e centile": euros(g.p10_change_cents),
                "90e centile": euros(g.p90_change_cents),
                "part qui paie plus": f"{g.share_paying_more * 100:.1f} %".replace(".", ","),
            }
            for g in self.groups
        ]


def behave(lifts: pa.Table, assumptions: Assumptions) -> pa.Table:
    """Last period's lifts after the behavioural response (deterministic thinning)."""
    keep = float(1 + assumptions.lifts)
    factor = assumptions.weight_factor
    con = connect()
    try:
        register(con, "in_lifts", lifts, LIFTS)
        return con.sql(
            """
            SELECT lift_id, truck_id, lifted_at, rfid_tag, read_status,
                   CAST(weight_kg * CAST(? AS DECIMAL(18, 6)) AS DECIMAL(9, 3)) AS weight_kg,
                   place, latitude, longitude
            FROM in_lifts
            WHERE (hash(lift_id) % 1000000) < ? * 1000000
            """,
            params=[str(factor), keep],
        ).to_arrow_table()
    finally:
        con.close()


def simulate(
    proposed: TariffGrid,
    period: str | Period,
    allocations: pa.Table,
    lifts: pa.Table,
    *,
    budget_cents: int,
    baseline: TariffGrid | pa.Table,
    payers: pa.Table | None = None,
    assumptions: Assumptions | None = None,
    rules: EventRules | None = None,
) -> SimulationResult:
    """Replay ``period``'s events under ``proposed`` after the behavioural response.

    ``baseline`` is the current grid (billed on the actual events) or a table of the bills
    actually issued (``payer``, ``amount_cents``). ``payers`` carries ``household_size`` and
    ``income_decile`` for the distribution (missing values form the group « inconnu »).
    """
    if budget_cents <= 0:
        raise TerritoriaError(
            "le budget à couvrir doit être positif", code="waste_budget", field_name="budget"
        )
    period = parse_period(period) if isinstance(period, str) else period
    assumptions = assumptions or Assumptions()
    after_lifts = behave(lifts, assumptions)
    after = run_billing(
        proposed, period, allocations, after_lifts, payers=payers, rules=rules,
        check_validity=False,
    )  # fmt: skip
    try:
        before_table, baseline_name = _baseline(baseline, period, allocations, lifts, payers, rules)
        return _compare(
            proposed, period, assumptions, after, before_table, baseline_name, payers,
            budget_cents, lifts.num_rows, after_lifts.num_rows,
        )  # fmt: skip
    finally:
        after.close()


def _baseline(
    baseline: TariffGrid | pa.Table,
    period: Period,
    allocations: pa.Table,
    lifts: pa.Table,
    payers: pa.Table | None,
    rules: EventRules | None,
) -> tuple[pa.Table, str]:
    if isinstance(baseline, pa.Table):
        if not {"payer", "amount_cents"} <= set(baseline.column_names):
            raise TerritoriaError(
                "factures de référence : colonnes payer et amount_cents attendues",
                code="waste_input_missing_column",
            )
        return baseline.select(["payer", "amount_cents"]), "factures émises"
    run = run_billing(
        baseline, period, allocations, lifts, payers=payers, rules=rules, check_validity=False
    )
    try:
        table = run.bills.select(["payer", "total_cents"]).rename_columns(["payer", "amount_cents"])
        return table, f"grille {baseline.id}"
    finally:
        run.close()


def _compare(
    proposed: TariffGrid,
    period: Period,
    assumptions: Assumptions,
    after: BillingRun,
    before: pa.Table,
    baseline_name: str,
    payers: pa.Table | None,
    budget_cents: int,
    lifts_before: int,
    lifts_after: int,
) -> SimulationResult:
    con = after.con
    con.register("sim_before", before)
    register(con, "sim_payers", payers if payers is not None else EMPTY_PAYERS, PAYERS)
    con.execute(_CHANGES_SQL)
    groups = [GroupRow(**row) for row in fetch_dicts(con, _GROUPS_SQL)]
    totals = fetch_row(
        con, "SELECT count(*), (SELECT coalesce(sum(amount_cents), 0) FROM sim_before) FROM changes"
    )
    assert totals is not None
    compared, base_revenue = (int(v) for v in totals)
    revenue = after.summary().total_cents
    coverage = (Decimal(revenue) / Decimal(budget_cents)).quantize(Decimal("0.0001"))
    return SimulationResult(
        proposed_grid=proposed.id,
        baseline=baseline_name,
        period=period.label,
        assumptions=assumptions,
        lifts_before=lifts_before,
        lifts_after=lifts_after,
        revenue_cents=revenue,
        baseline_revenue_cents=base_revenue,
        budget_cents=budget_cents,
        coverage=coverage,
        gap_cents=revenue - budget_cents,
        payers_compared=compared,
        held_payers=len(after.held),
        groups=groups,
        explanation=_explain(proposed, assumptions, revenue, base_revenue, budget_cents, coverage),
        chart=chart_spec(groups, proposed.id),
    )


def _explain(
    grid: TariffGrid,
    assumptions: Assumptions,
    revenue: int,
    base_revenue: int,
    budget: int,
    coverage: Decimal,
) -> list[str]:
    pct = f"{coverage * 100:.1f}".replace(".", ",")
    return [
        f"Hypothèse : ordures résiduelles {_signed(assumptions.residual_waste_change)}, "
        f"levées {_signed(assumptions.lifts)} ({assumptions.source}).",
        "Chaque levée est gardée ou retirée selon une empreinte de son identifiant "
        "(tirage déterministe) ; le poids des levées gardées est ajusté au même total.",
        f"Recette simulée sous la grille « {grid.id} » : {euros(revenue)} ; recette de "
        f"référence : {euros(base_revenue)}.",
        f"Budget à couvrir : {euros(budget)} ; taux de couverture : {pct} % "
        f"(écart : {euros(revenue - budget)}).",
    ]


def _signed(value: Decimal) -> str:
    return f"{value * 100:+.0f} %".replace("-", "−")


_CHANGES_SQL = """
CREATE OR REPLACE TEMP TABLE changes AS
SELECT coalesce(a.payer, b.payer) AS payer,
       coalesce(b.amount_cents, 0) AS before_c, coalesce(a.total_cents, 0) AS after_c,
       coalesce(a.total_cents, 0) - coalesce(b.amount_cents, 0) AS change_c,
       p.household_size, p.income_decile
FROM bills a
FULL JOIN (SELECT payer, sum(amount_cents) AS amount_cents FROM sim_before GROUP BY payer) b
  USING (payer)
LEFT JOIN (SELECT payer, any_value(household_size) AS household_size,
                  any_value(income_decile) AS income_decile
           FROM sim_payers GROUP BY payer) p USING (payer)
WHERE coalesce(a.payer, b.payer) NOT IN (SELECT payer FROM held)
"""

_GROUPS_SQL = """
WITH tagged AS (
    SELECT 'taille du foyer' AS dimension,
           CASE WHEN household_size IS NULL THEN 'inconnu'
                WHEN household_size >= 5 THEN '5 pers. et plus'
                ELSE household_size || ' pers.' END AS grp,
           coalesce(least(household_size, 5), 99) AS ord, * FROM changes
    UNION ALL
    SELECT 'décile de revenu',
           CASE WHEN income_decile IS NULL THEN 'inconnu' ELSE 'D' || income_decile END,
           coalesce(income_decile, 99), * FROM changes
)
SELECT dimension, grp AS "group", CAST(count(*) AS INTEGER) AS payers,
       CAST(round(avg(before_c)) AS BIGINT) AS mean_before_cents,
       CAST(round(avg(after_c)) AS BIGINT) AS mean_after_cents,
       CAST(round(avg(change_c)) AS BIGINT) AS mean_change_cents,
       CAST(round(quantile_cont(change_c, 0.5)) AS BIGINT) AS median_change_cents,
       CAST(round(quantile_cont(change_c, 0.1)) AS BIGINT) AS p10_change_cents,
       CAST(round(quantile_cont(change_c, 0.9)) AS BIGINT) AS p90_change_cents,
       CAST(avg(CASE WHEN change_c > 0 THEN 1 ELSE 0 END) AS DECIMAL(6, 4)) AS share_paying_more
FROM tagged
GROUP BY dimension, grp, ord
ORDER BY dimension DESC, ord, grp
"""


def chart_spec(groups: list[GroupRow], grid_id: str) -> dict[str, Any]:
    """A Vega-Lite v5 specification: mean change with its 10th–90th percentile range."""
    values = [
        {
            "dimension": g.dimension,
            "groupe": g.group,
            "variation_moyenne": g.mean_change_cents / 100,
            "p10": g.p10_change_cents / 100,
            "p90": g.p90_change_cents / 100,
            "redevables": g.payers,
        }
        for g in groups
    ]
    encoding_x = {"field": "groupe", "type": "nominal", "sort": None, "title": None}
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "title": f"Variation des factures sous la grille « {grid_id} » (€)",
        "data": {"values": values},
        "facet": {"field": "dimension", "type": "nominal", "title": None},
        "resolve": {"scale": {"x": "independent"}},
        "spec": {
            "layer": [
                {
                    "mark": {"type": "rule"},
                    "encoding": {
                        "x": encoding_x,
                        "y": {"field": "p10", "type": "quantitative", "title": "€"},
                        "y2": {"field": "p90"},
                    },
                },
                {
                    "mark": {"type": "bar", "opacity": 0.7},
                    "encoding": {
                        "x": encoding_x,
                        "y": {"field": "variation_moyenne", "type": "quantitative"},
                        "tooltip": [
                            {"field": "groupe"},
                            {"field": "redevables"},
                            {"field": "variation_moyenne", "format": ".2f"},
                            {"field": "p10", "format": ".2f"},
                            {"field": "p90", "format": ".2f"},
                        ],
                    },
                },
            ]
        },
    }
