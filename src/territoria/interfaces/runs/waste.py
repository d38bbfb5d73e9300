"""Pay-as-you-throw billing on the governed read, shared by ``territoria waste`` and the console.

The bin registry (``waste_bins``) and the lift events (``waste_lifts``) are read through
``Governance.extract`` under the acting purpose: one decision, only the purpose's fields, payers
named by the purpose's pseudonyms, one ledger record naming every payer read. A record that
names no resident of the index (a building's manager) is billed to a payer key derived from its
name (« GESTIONNAIRE … »). Disputes are governed cases (:mod:`.waste_book`).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pyarrow as pa

from territoria.apps.waste import (
    Assumptions,
    BillingRun,
    Period,
    SimulationResult,
    TariffGrid,
    corrections_due,
    excluded_lifts,
    get_grid,
    parse_period,
    run_billing,
    simulate,
)
from territoria.core.errors import GovernanceError, TerritoriaError
from territoria.governance import Governance
from territoria.interfaces.runs.waste_book import (
    MANAGER_PREFIX,
    UNLINKED_PREFIX,
    GovernedDisputeBook,
)

__all__ = [
    "DEFAULT_GRID",
    "DEFAULT_PURPOSE",
    "SOURCES",
    "Inputs",
    "acting_purpose",
    "bill_run",
    "checked_period",
    "governed_inputs",
    "grid_periods",
    "load_grid_option",
    "payer_keys",
    "simulate_grid",
]

SOURCES = ("waste_bins", "waste_lifts")
DEFAULT_GRID = "exemple_metropole_2025"
DEFAULT_PURPOSE = "waste_billing"


@dataclass(frozen=True)
class Inputs:
    """The engine's inputs from one governed extract, and the extract's trace."""

    purpose: str
    allocations: pa.Table
    lifts: pa.Table
    persons: int
    ledger_seq: int | None
    payers: pa.Table  # payer, household_size (residents of the payer's household in the index)


def acting_purpose(gov: Governance, actor: str, purpose: str | None) -> str:
    """The purpose given, else the actor's grant that opens ``records`` on the bin registry."""
    return purpose or gov.purpose_for(actor, "records", "waste_bins") or DEFAULT_PURPOSE


def _name_key(name: object) -> str:
    text = unicodedata.normalize("NFC", " ".join(str(name or "").split())).upper()
    return text


def payer_keys(bins: pa.Table) -> pa.Array:
    """The payer of each allocation: its pseudonym, or a key derived from the payer's name.

    A record naming no resident of the index is a building's manager (collective housing:
    « GESTIONNAIRE » + name) or a payer the index has not linked (« NON RAPPROCHÉ » + name).
    """
    columns = set(bins.column_names)
    rows = bins.num_rows

    def column(name: str) -> list[Any]:
        return bins.column(name).to_pylist() if name in columns else [None] * rows

    keys = []
    for person, name, housing, allocation in zip(
        column("person"),
        column("payer_name"),
        column("housing_type"),
        column("allocation_id"),
        strict=True,
    ):
        if person:
            keys.append(str(person))
            continue
        prefix = MANAGER_PREFIX if housing == "collectif" else UNLINKED_PREFIX
        keys.append(prefix + (_name_key(name) or f"DOTATION {allocation}"))
    return pa.array(keys, pa.string())


_IDENTIFYING = ("payer_name", "address", "postcode", "commune", "person", "household")


def governed_inputs(gov: Governance, actor: str, purpose: str) -> Inputs:
    """Extract the bins and lifts under ``purpose`` (one ledger record) as engine inputs."""
    try:
        found = gov.extract(actor, purpose, SOURCES)
    except GovernanceError as refused:
        if refused.code != "access_denied":
            raise
        raise GovernanceError(
            f"{actor} ne peut pas lire les bacs et les levées sous la finalité {purpose} : "
            f"{refused.message}",
            code=refused.code,
            details=refused.details,
            hint="la facturation des déchets demande une habilitation « records » sur une "
            "finalité qui couvre waste_bins et waste_lifts (policy/actors.yaml) ; "
            "-p pour en choisir une autre",
        ) from None
    bins = found.tables["waste_bins"]
    allocations = bins.append_column("payer", payer_keys(bins))
    allocations = allocations.drop_columns([c for c in _IDENTIFYING if c in bins.column_names])
    lifts = found.tables["waste_lifts"]
    lifts = lifts.drop_columns([c for c in ("person", "household") if c in lifts.column_names])
    sizes: dict[str, int] = {}
    for payer, household in zip(
        allocations.column("payer").to_pylist(), bins.column("household").to_pylist(), strict=True
    ):
        if household in found.household_sizes:
            sizes.setdefault(payer, found.household_sizes[household])
    payers = pa.table(
        {
            "payer": pa.array(list(sizes), pa.string()),
            "household_size": pa.array(list(sizes.values()), pa.int32()),
        }
    )
    return Inputs(purpose, allocations, lifts, found.persons, found.ledger_seq, payers)


def load_grid_option(grid: str | None) -> tuple[TariffGrid, bool]:
    """The grid asked for (an identifier or a YAML file), or the sandbox's example grid."""
    return get_grid(grid or DEFAULT_GRID), grid is None


def bill_run(
    grid: TariffGrid, period: Period, inputs: Inputs, book: GovernedDisputeBook
) -> BillingRun:
    """A billing run with the stored disputes' credits.

    A credit not yet put on a bill becomes a correction line, and its lift stays counted (the
    correction offsets it, so the bill moves by exactly the credit); once a credit is applied
    (``--apply-credits``), its lift is no longer counted by any later run.
    """
    due = corrections_due(book)
    due_lifts = {book.get(c.reference).lift_id for c in due}
    excluded = {k: v for k, v in excluded_lifts(book).items() if k not in due_lifts}
    return run_billing(
        grid,
        period,
        inputs.allocations,
        inputs.lifts,
        payers=inputs.payers,
        corrections=due,
        excluded_lifts=excluded,
    )


def simulate_grid(
    inputs: Inputs,
    proposed: TariffGrid,
    reference: TariffGrid,
    period: Period,
    budget_cents: int | None,
    assumptions: Assumptions,
) -> SimulationResult:
    """The tariff simulator on governed inputs: the reference grid billed on the actual events
    (its revenue is the budget when none is given), then the proposal after the behavioural
    response, compared payer by payer (household sizes from the index)."""
    before = run_billing(
        reference, period, inputs.allocations, inputs.lifts, payers=inputs.payers,
        check_validity=False,
    )  # fmt: skip
    try:
        issued = before.bills.select(["payer", "total_cents"]).rename_columns(
            ["payer", "amount_cents"]
        )
        revenue = before.summary().total_cents
    finally:
        before.close()
    if budget_cents is None:
        if revenue <= 0:
            raise TerritoriaError(
                "la grille de référence ne facture rien sur cette période : donnez le budget "
                "à couvrir",
                code="waste_budget",
                field_name="budget",
            )
        budget_cents = revenue
    result = simulate(
        proposed, period, inputs.allocations, inputs.lifts, budget_cents=budget_cents,
        baseline=issued, payers=inputs.payers, assumptions=assumptions,
    )  # fmt: skip
    return result.model_copy(update={"baseline": f"grille {reference.id}"})


def grid_periods(grid: TariffGrid) -> list[Period]:
    """The periods the grid bills, in order, within its validity."""
    labels = {"year": "{y}", "semester": "{y}-S{i}", "four_months": "{y}-Q{i}"}
    per_year = grid.periods_per_year
    found = []
    for year in range(grid.valid_from.year, grid.valid_to.year + 1):
        for index in range(1, per_year + 1):
            period = parse_period(labels[grid.billing_period].format(y=year, i=index))
            if period.start >= grid.valid_from and period.end <= grid.valid_to + timedelta(days=1):
                found.append(period)
    return found


def checked_period(grid: TariffGrid, period: str) -> Period:
    """The period parsed and checked against the grid's billing periods."""
    parsed = parse_period(period)
    grid.check_period(parsed)
    return parsed
