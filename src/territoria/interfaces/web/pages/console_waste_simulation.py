"""The waste service's tariff simulator: a proposed grid replayed on a period's bins and lifts.

What ``territoria waste simulate`` does (:func:`territoria.interfaces.runs.waste.simulate_grid`):
the bins and lifts read through ``Governance.extract`` under the acting purpose, the reference
grid billed, then the proposal after the households' response (ADEME: about −30 % of residual
waste, adjustable); the revenue against the budget, and who pays more or less, by group, with
an accessible SVG chart. The result is kept in the web state's run cache like a billing run.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from territoria.apps.waste import (
    Assumptions,
    GroupRow,
    Period,
    SimulationResult,
    TariffGrid,
    parse_period,
)
from territoria.apps.waste.money import euros
from territoria.core.errors import GovernanceError, TerritoriaError
from territoria.interfaces.runs.waste import (
    DEFAULT_GRID,
    acting_purpose,
    governed_inputs,
    simulate_grid,
)
from territoria.interfaces.runs.waste_text import euros_to_cents, parse_decimal
from territoria.interfaces.web.pages import console_waste_common as shared
from territoria.interfaces.web.pages.guard import guarded, purpose_context
from territoria.interfaces.web.principals import AgentPrincipal, web_state
from territoria.interfaces.web.state import WebState
from territoria.interfaces.web.templates import render

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


# -- the form ----------------------------------------------------------------------------------


def _budget(value: str, errors: dict[str, str]) -> int | None:
    if not value.strip():
        return None  # the reference grid's revenue
    cents = euros_to_cents(value)
    if cents is None:
        errors["budget"] = (
            f"montant « {value} » incompréhensible : un montant positif en euros est attendu, "
            "par exemple 250000 ou 250 000,50"
        )
    return cents


def _change(value: str, field: str, errors: dict[str, str]) -> Decimal | None:
    if not value.strip():
        return None
    change = parse_decimal(value)
    if change is None or not -1 <= change <= 1:
        errors[field] = (
            f"variation « {value} » incompréhensible : une fraction entre −1 et 1 est attendue, "
            "par exemple −0,30 (ou −30 %)"
        )
        return None
    return change


@dataclass(frozen=True)
class SimulationForm:
    """The simulator's inputs, checked: the proposed and reference grids, the period
    replayed, the budget (``None``: the reference's revenue), the behavioural response."""

    proposed: TariffGrid
    reference: TariffGrid
    period: Period | None
    periods: list[Period]
    budget_cents: int | None
    assumptions: Assumptions
    values: dict[str, str]
    errors: dict[str, str]

    def key(self, actor: str, purpose: str) -> tuple[Hashable, ...]:
        a = self.assumptions
        period = self.period.label if self.period else ""
        return ("waste", actor, purpose, "simulation", self.proposed.id, self.reference.id,
                period, self.budget_cents, str(a.residual_waste_change), str(a.lift_change))  # fmt: skip


def _simulation_form(values: dict[str, str], today: date) -> SimulationForm:
    errors: dict[str, str] = {}
    proposed = shared.known_grid(values["grille"], "grille", errors)
    reference = shared.known_grid(values["reference"], "reference", errors)
    periods = shared.billing_periods(reference, proposed)
    period = shared.latest_complete(periods, today) if not values["periode"] else None
    if values["periode"]:
        try:
            period = parse_period(values["periode"])
            for grid in (proposed, reference):
                grid.check_period(period, check_validity=False)
        except TerritoriaError as exc:
            errors["periode"] = f"{exc.message} : choisissez une période de la liste"
    budget = _budget(values["budget"], errors)
    residual = _change(values["comportement"], "comportement", errors)
    lifts = _change(values["levees"], "levees", errors)
    assumptions = Assumptions(
        residual_waste_change=Decimal("-0.30") if residual is None else residual,
        lift_change=lifts,
    )
    return SimulationForm(proposed, reference, period, periods, budget, assumptions, values, errors)


# -- the simulation, kept in the run cache -----------------------------------------------------


@dataclass(frozen=True)
class Simulated:
    trace: shared.Trace
    result: SimulationResult


def _simulation_maker(
    state: WebState, actor: str, purpose: str, form: SimulationForm
) -> Callable[[], Simulated]:
    """What ``territoria waste simulate`` does: the reference billed, then the proposal."""

    def make() -> Simulated:
        assert form.period is not None
        with state.lock:
            inputs = governed_inputs(state.gov, actor, purpose)
        result = simulate_grid(
            inputs, form.proposed, form.reference, form.period, form.budget_cents,
            form.assumptions,
        )  # fmt: skip
        return Simulated(shared.Trace.of(inputs), result)

    return make


# -- what the page shows of the result ---------------------------------------------------------


def _chart(groups: list[GroupRow]) -> dict[str, Any]:
    """Horizontal bars of the mean change of each group, around a zero line (SVG units)."""
    values = [g.mean_change_cents for g in groups]
    lo, hi = min(0, *values), max(0, *values)
    left, span = 190, 360

    def x(cents: int) -> float:
        return left + (cents - lo) * span / ((hi - lo) or 1)

    zero = x(0)
    bars = [
        {
            "label": f"{g.group} ({g.payers})",
            "y": 12 + i * 30,
            "x": round(min(zero, x(v)), 1),
            "w": round(max(abs(x(v) - zero), 1.0), 1),
            "more": v > 0,
            "value": euros(v),
        }
        for i, (g, v) in enumerate(zip(groups, values, strict=True))
    ]
    return {"width": 680, "height": 24 + 30 * len(groups), "zero": round(zero, 1), "bars": bars}


def _dimensions(result: SimulationResult) -> list[dict[str, Any]]:
    by: dict[str, list[GroupRow]] = {}
    for group in result.groups:
        by.setdefault(group.dimension, []).append(group)
    return [
        {
            "name": name,
            "slug": "foyer" if "foyer" in name else "revenu",
            "groups": groups,
            "unknown_only": all(g.group == "inconnu" for g in groups),
            "chart": _chart(groups),
        }
        for name, groups in by.items()
    ]


# -- the page ----------------------------------------------------------------------------------


@router.get("/console/dechets/simulation", openapi_extra=shared.META)
def simulation_page(
    request: Request,
    principal: AgentPrincipal,
    finalite: shared.Finalite = None,
    grille: shared.GridQuery = "",
    reference: shared.GridQuery = "",
    periode: shared.PeriodQuery = "",
    budget: Annotated[str, Query(max_length=40)] = "",
    comportement: Annotated[str, Query(max_length=20)] = "-0,30",
    levees: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    state = web_state(request)
    purpose = acting_purpose(state.gov, principal.actor, finalite)
    values = {
        "grille": grille, "reference": reference, "periode": periode, "budget": budget,
        "comportement": comportement, "levees": levees,
    }  # fmt: skip
    form = _simulation_form(values, state.gov.clock().date())
    context: dict[str, Any] = {
        "title": "Simulateur de grille tarifaire",
        "form": form,
        "finalite": purpose,
        "grids": shared.grid_options(),
        "default_grid": DEFAULT_GRID,
        "result": None,
        **purpose_context(state, principal, shared.VIEW, purpose, shared.OFFERED),
    }
    if form.errors or form.period is None:
        return render(request, "console/dechets_simulation.html", context, status_code=422)
    make = _simulation_maker(state, principal.actor, purpose, form)

    def build() -> Response:
        try:
            cached = state.runs.get_or_make(
                form.key(principal.actor, purpose), make, state.gov.clock
            )
        except GovernanceError:
            raise
        except TerritoriaError as exc:
            form.errors[exc.field_name or "budget"] = exc.message
            return render(request, "console/dechets_simulation.html", context, status_code=422)
        result = cached.value.result
        context.update(
            result=result,
            money=euros,
            dimensions=_dimensions(result),
            coverage=f"{result.coverage * 100:.1f} %".replace(".", ","),
            trace=shared.trace_context(state, cached.value.trace, cached.made_at),
        )
        return render(request, "console/dechets_simulation.html", context)

    return guarded(request, principal, shared.VIEW, purpose, build, offered=shared.OFFERED)
