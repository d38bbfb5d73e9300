"""What the waste service's console pages share: the view and purposes they act under, the
grids and periods they offer, the trace of the governed read under every figure, and the
billing run kept in the web state's run cache.

The billing pages (:mod:`.console_waste`) and the tariff simulator
(:mod:`.console_waste_simulation`) read the bins and lifts under ``records``; they offer only
the agent's purposes that read both sources. A billing run is kept under
``("waste", actor, purpose, period, grid)``; every write that changes bills drops them all.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pyarrow.compute as pc
from fastapi import Query

from territoria.apps.waste import (
    BillingRun,
    Dispute,
    Period,
    RunSummary,
    TariffGrid,
    builtin_grids,
    get_grid,
    year_periods,
)
from territoria.core.errors import TerritoriaError
from territoria.interfaces.runs.waste import (
    DEFAULT_GRID,
    SOURCES,
    Inputs,
    bill_run,
    checked_period,
    governed_inputs,
)
from territoria.interfaces.runs.waste_book import GovernedDisputeBook
from territoria.interfaces.runs.waste_text import held_reasons
from territoria.interfaces.web.api.schemas import PURPOSE_PATTERN
from territoria.interfaces.web.meta import governed
from territoria.interfaces.web.pages.guard import reading
from territoria.interfaces.web.state import WebState

__all__ = [
    "META",
    "OFFERED",
    "VIEW",
    "Billing",
    "Finalite",
    "GridQuery",
    "PeriodQuery",
    "Selection",
    "Trace",
    "billing_periods",
    "drop_runs",
    "grid_options",
    "kept_billing",
    "known_grid",
    "latest_complete",
    "local_time",
    "page_query",
    "select_period",
    "trace_context",
]

VIEW = "records"
META = governed("agent", VIEW, "from_query")
OFFERED = reading(SOURCES)  # the purposes offered: those that read the bins and the lifts
Finalite = Annotated[str | None, Query(pattern=PURPOSE_PATTERN)]
GridQuery = Annotated[str, Query(max_length=60)]
PeriodQuery = Annotated[str, Query(max_length=20)]
try:
    _PARIS: ZoneInfo | None = ZoneInfo("Europe/Paris")
except ZoneInfoNotFoundError:  # no tz database: times stay in UTC
    _PARIS = None


# -- the grids and their periods ---------------------------------------------------------------


@lru_cache(maxsize=32)
def _grid(grid_id: str) -> TariffGrid:
    return get_grid(grid_id)


@lru_cache(maxsize=1)
def _grid_ids() -> tuple[str, ...]:
    return tuple(g.id for g in builtin_grids())


def grid_options() -> list[dict[str, Any]]:
    """The grids shipped, for a form's choice: id, title, whether published."""
    return [
        {"id": g, "title": _grid(g).title, "published": _grid(g).published} for g in _grid_ids()
    ]


def known_grid(grille: str, field: str, errors: dict[str, str]) -> TariffGrid:
    """The grid asked for (``""``: the sandbox's example); an unknown one is an error of the
    field, and the example grid stands in for it."""
    if grille and grille not in _grid_ids():
        errors[field] = f"grille « {grille} » inconnue : choisissez l'une des grilles livrées"
    return _grid(grille if grille in _grid_ids() else DEFAULT_GRID)


def billing_periods(grid: TariffGrid, kind_of: TariffGrid | None = None) -> list[Period]:
    """The periods a grid bills within its validity (at the coarser kind of two grids)."""
    kind = grid.billing_period
    if kind_of is not None and kind_of.periods_per_year < grid.periods_per_year:
        kind = kind_of.billing_period
    found = []
    for year in range(grid.valid_from.year, grid.valid_to.year + 1):
        for period in year_periods(year, kind):
            try:
                grid.check_period(period)
            except TerritoriaError:
                continue
            found.append(period)
    return found


def latest_complete(periods: list[Period], today: date) -> Period | None:
    """The last period ended by ``today`` (the first one when none has ended)."""
    done = [p for p in periods if p.end <= today]
    return done[-1] if done else (periods[0] if periods else None)


# -- the billing run's grid and period ---------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """The grid and period asked for, checked: what the form shows, and its errors by field."""

    grid: TariffGrid
    default_grid: bool
    period: Period | None
    periods: list[Period]
    errors: dict[str, str]
    asked: str  # the period typed or chosen ("": the default)

    @property
    def ok(self) -> bool:
        return not self.errors and self.period is not None


def select_period(grille: str, periode: str, today: date) -> Selection:
    """The billing run's grid (default: the sandbox's example) and period (default: the
    latest complete one the grid bills)."""
    errors: dict[str, str] = {}
    grid = known_grid(grille, "grille", errors)
    periods = billing_periods(grid)
    period = None
    if not periode:
        period = latest_complete(periods, today)
    elif "grille" not in errors:
        try:
            period = checked_period(grid, periode)
        except TerritoriaError as exc:
            errors["periode"] = f"{exc.message} : choisissez une période de la liste"
    return Selection(grid, not grille, period, periods, errors, periode)


def page_query(purpose: str, sel: Selection, **more: Any) -> str:
    """A billing page's query string: the purpose, the period and grid chosen, and ``more``."""
    period = sel.period.label if sel.period else ""
    values = {"finalite": purpose, "periode": period, "grille": sel.grid.id, **more}
    return urlencode({k: v for k, v in values.items() if v not in ("", None)})


# -- the governed read behind a page -----------------------------------------------------------


@dataclass(frozen=True)
class Trace:
    """What the governed read was: shown under every figure computed from it."""

    purpose: str
    ledger_seq: int | None
    persons: int
    allocations: int
    lifts: int

    @classmethod
    def of(cls, inputs: Inputs) -> Trace:
        return cls(
            inputs.purpose,
            inputs.ledger_seq,
            inputs.persons,
            inputs.allocations.num_rows,
            inputs.lifts.num_rows,
        )


def local_time(moment: datetime, pattern: str = "%d/%m/%Y à %H:%M") -> str:
    """A moment in Paris time (in UTC where the machine has no time-zone database)."""
    if moment.tzinfo is not None and _PARIS is not None:
        moment = moment.astimezone(_PARIS)
    return moment.strftime(pattern)


def trace_context(state: WebState, trace: Trace, made_at: datetime) -> dict[str, Any]:
    """The read's ledger record, purpose and counts, and when it was made and is kept until."""
    purpose = state.gov.policy.purposes.get(trace.purpose)
    return {
        "seq": trace.ledger_seq,
        "purpose": trace.purpose,
        "purpose_name": purpose.name if purpose else trace.purpose,
        "persons": trace.persons,
        "allocations": trace.allocations,
        "lifts": trace.lifts,
        "at": local_time(made_at, "%H:%M"),
        "day": local_time(made_at, "%d/%m/%Y"),
        "kept_minutes": max(1, round(state.runs.ttl / 60)),
    }


# -- the billing run, kept in the run cache ----------------------------------------------------


@dataclass
class Billing:
    """A billing run and what the pages show of it (kept until evicted, then closed)."""

    trace: Trace
    run: BillingRun
    summary: RunSummary
    payers: list[dict[str, Any]]  # bills, largest total first
    held: dict[str, list[str]]
    lines: int
    credit_refs: frozenset[str]  # disputes whose credit is a line of this run
    disputes: list[Dispute]  # as the run saw them
    closed: bool = False

    def close(self) -> None:
        self.closed = True
        self.run.close()


def _billing_of(trace: Trace, run: BillingRun, disputes: list[Dispute]) -> Billing:
    bills = sorted(run.bills.to_pylist(), key=lambda b: (-b["total_cents"], b["payer"]))
    lines = run.lines
    credits = lines.filter(pc.equal(lines.column("kind"), "correction")).column("contract")
    return Billing(
        trace=trace,
        run=run,
        summary=run.summary(),
        payers=bills,
        held=held_reasons(run),
        lines=lines.num_rows,
        credit_refs=frozenset(str(c) for c in credits.to_pylist()),
        disputes=disputes,
    )


def _billing_maker(
    state: WebState, actor: str, purpose: str, grid: TariffGrid, period: Period
) -> Callable[[], Billing]:
    def make() -> Billing:
        with state.lock:
            inputs = governed_inputs(state.gov, actor, purpose)
            book = GovernedDisputeBook(state.gov, actor, purpose)
            disputes = book.all()  # the governed listing, made once for the book
        run = bill_run(grid, period, inputs, book)  # pure computation, outside the lock
        try:
            return _billing_of(Trace.of(inputs), run, disputes)
        except BaseException:
            run.close()
            raise

    return make


@contextmanager
def kept_billing(
    state: WebState, actor: str, purpose: str, sel: Selection, *, writing: bool = False
) -> Iterator[tuple[Billing, datetime]]:
    """The kept run (made if absent), its lock held; ``writing``: the state's lock too.

    Locks are always taken in the order state, then run (never the cache while holding the
    state's lock): a run being read cannot be closed under the reader.
    """
    assert sel.period is not None
    key: tuple[Hashable, ...] = ("waste", actor, purpose, sel.period.label, sel.grid.id)
    make = _billing_maker(state, actor, purpose, sel.grid, sel.period)
    for _ in range(3):
        cached = state.runs.get_or_make(key, make, state.gov.clock)
        with state.lock if writing else nullcontext(), cached.lock:
            if not cached.value.closed:
                yield cached.value, cached.made_at
                return
    raise TerritoriaError(
        "la facturation a été recalculée pendant la lecture : rechargez la page",
        code="waste_run_busy",
    )


def drop_runs(state: WebState) -> None:
    """Every agent's waste runs are recomputed after a write (credits change bills)."""
    state.runs.drop(("waste",))
