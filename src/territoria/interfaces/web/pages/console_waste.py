"""The waste service's console pages: billing runs, a payer's bill, anomalies, disputes and the
tariff simulator.

Every page runs what ``territoria waste`` runs (:mod:`territoria.interfaces.runs.waste`): the
bins and lifts are read through ``Governance.extract`` under the acting purpose (``finalite``;
by default the agent's grant that opens ``records`` on the bin registry), one ledger record
naming every payer read. The billing run is kept in the web state's run cache under
``("waste", actor, purpose, period, grid)`` so that paging, a bill or the anomalies do not read
again; a dispute opened or decided, or an issue that applies credits, drops every waste run and
the next page bills again with the credits. A refusal of the policy is a 403 page, recorded in
the ledger like any refusal. Forms work without JavaScript (post, then redirect).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Annotated, Any, Literal
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pyarrow.compute as pc
from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from territoria.apps.waste import (
    Assumptions,
    BillingRun,
    Dispute,
    Evidence,
    GroupRow,
    Period,
    RunSummary,
    SimulationResult,
    TariffGrid,
    builtin_grids,
    corrections_due,
    decide_dispute,
    get_grid,
    mark_applied,
    open_dispute,
    parse_period,
    year_periods,
)
from territoria.apps.waste.money import euros
from territoria.core.errors import GovernanceError, TerritoriaError
from territoria.governance.policy import VIEW_LABELS
from territoria.interfaces.runs.waste import (
    DEFAULT_GRID,
    SOURCES,
    Inputs,
    acting_purpose,
    bill_run,
    checked_period,
    governed_inputs,
    simulate_grid,
)
from territoria.interfaces.runs.waste_book import GovernedDisputeBook
from territoria.interfaces.web.api.schemas import PURPOSE_PATTERN
from territoria.interfaces.web.meta import governed
from territoria.interfaces.web.pages.console import acting_purposes
from territoria.interfaces.web.principals import AgentPrincipal, Principal, web_state
from territoria.interfaces.web.security import check_csrf
from territoria.interfaces.web.state import WebState
from territoria.interfaces.web.templates import render

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
META = governed("agent", "records", "from_query")
Finalite = Annotated[str | None, Query(pattern=PURPOSE_PATTERN)]
FormFinalite = Annotated[str, Form(pattern=f"^$|{PURPOSE_PATTERN}")]
GridQuery = Annotated[str, Query(max_length=60)]
PeriodQuery = Annotated[str, Query(max_length=20)]
PageQuery = Annotated[int, Query(ge=1, le=100_000)]
Csrf = Annotated[str, Form(max_length=200)]
FLASH = "waste_flash"
PAGE_ROWS = 50
LIFT_PATTERN = r"^[A-Za-z0-9._:\-]{1,64}$"
try:
    _PARIS: ZoneInfo | None = ZoneInfo("Europe/Paris")
except ZoneInfoNotFoundError:  # no tz database: times stay in UTC
    _PARIS = None


# -- the grid and the period asked for -----------------------------------------------------------


@lru_cache(maxsize=32)
def _grid(grid_id: str) -> TariffGrid:
    return get_grid(grid_id)


@lru_cache(maxsize=1)
def _grid_ids() -> tuple[str, ...]:
    return tuple(g.id for g in builtin_grids())


def _grid_options() -> list[dict[str, Any]]:
    return [
        {"id": g, "title": _grid(g).title, "published": _grid(g).published} for g in _grid_ids()
    ]


def _periods(grid: TariffGrid, kind_of: TariffGrid | None = None) -> list[Period]:
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


def _latest_complete(periods: list[Period], today: date) -> Period | None:
    done = [p for p in periods if p.end <= today]
    return done[-1] if done else (periods[0] if periods else None)


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


def _known_grid(grille: str, field: str, errors: dict[str, str]) -> TariffGrid:
    if grille and grille not in _grid_ids():
        errors[field] = f"grille « {grille} » inconnue : choisissez l'une des grilles livrées"
    return _grid(grille if grille in _grid_ids() else DEFAULT_GRID)


def _select(grille: str, periode: str, today: date) -> Selection:
    """The billing run's grid (default: the sandbox's example) and period (default: the
    latest complete one the grid bills)."""
    errors: dict[str, str] = {}
    grid = _known_grid(grille, "grille", errors)
    periods = _periods(grid)
    period = None
    if not periode:
        period = _latest_complete(periods, today)
    elif "grille" not in errors:
        try:
            period = checked_period(grid, periode)
        except TerritoriaError as exc:
            errors["periode"] = f"{exc.message} : choisissez une période de la liste"
    return Selection(grid, not grille, period, periods, errors, periode)


def _query(purpose: str, sel: Selection, **more: Any) -> str:
    period = sel.period.label if sel.period else ""
    values = {"finalite": purpose, "periode": period, "grille": sel.grid.id, **more}
    return urlencode({k: v for k, v in values.items() if v not in ("", None)})


# -- the billing run, kept in the run cache ---------------------------------------------------


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


def _held_reasons(run: BillingRun) -> dict[str, list[str]]:
    held = set(run.held)
    reasons: dict[str, list[str]] = {p: [] for p in sorted(held)}
    for row in run.anomalies.to_pylist():
        if row["payer"] in held:
            reasons[row["payer"]].append(str(row["detail"] or row["reason"]))
    return reasons


def _billing_of(trace: Trace, run: BillingRun, disputes: list[Dispute]) -> Billing:
    bills = sorted(run.bills.to_pylist(), key=lambda b: (-b["total_cents"], b["payer"]))
    lines = run.lines
    credits = lines.filter(pc.equal(lines.column("kind"), "correction")).column("contract")
    return Billing(
        trace=trace,
        run=run,
        summary=run.summary(),
        payers=bills,
        held=_held_reasons(run),
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
def _billing(
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


def _drop_runs(state: WebState) -> None:
    """Every agent's waste runs are recomputed after a write (credits change bills)."""
    state.runs.drop(("waste",))


# -- what every page shows --------------------------------------------------------------------


def _local(moment: datetime, pattern: str = "%d/%m/%Y à %H:%M") -> str:
    if moment.tzinfo is not None and _PARIS is not None:
        moment = moment.astimezone(_PARIS)
    return moment.strftime(pattern)


def _trace_context(state: WebState, trace: Trace, made_at: datetime) -> dict[str, Any]:
    purpose = state.gov.policy.purposes.get(trace.purpose)
    return {
        "seq": trace.ledger_seq,
        "purpose": trace.purpose,
        "purpose_name": purpose.name if purpose else trace.purpose,
        "persons": trace.persons,
        "allocations": trace.allocations,
        "lifts": trace.lifts,
        "at": _local(made_at, "%H:%M"),
        "day": _local(made_at, "%d/%m/%Y"),
        "kept_minutes": max(1, round(state.runs.ttl / 60)),
    }


def _purpose_context(state: WebState, principal: Principal, purpose: str) -> dict[str, Any]:
    policy = state.gov.policy
    chosen = policy.purposes.get(purpose)
    choices = [
        p
        for p in acting_purposes(policy, principal.actor, ("records",))
        if all(s in policy.purposes[p["id"]].sources for s in SOURCES)
    ]
    return {
        "acting": {"id": purpose, "name": chosen.name if chosen else None},
        "choices": choices,
        "view_label": VIEW_LABELS.get("records", "records"),
    }


def _base(
    request: Request, state: WebState, principal: Principal, purpose: str, sel: Selection
) -> dict[str, Any]:
    return {
        "flash": request.session.pop(FLASH, None),
        "grids": _grid_options(),
        "sel": sel,
        "finalite": purpose,
        "base_query": _query(purpose, sel),
        **_purpose_context(state, principal, purpose),
    }


def _guarded(
    request: Request,
    state: WebState,
    principal: Principal,
    purpose: str,
    build: Callable[[], Response],
    page: str | None = None,
) -> Response:
    """The page, or the refusal page when the policy refuses (already in the ledger)."""
    try:
        return build()
    except GovernanceError as exc:
        if exc.code != "access_denied":
            raise
        return render(
            request,
            "console/admin_refused.html",
            {
                "title": "Accès refusé",
                "message": exc.message,
                "rule": exc.details.get("rule", ""),
                "retry_path": page or request.url.path,
                **_purpose_context(state, principal, purpose),
            },
            status_code=403,
        )


def _pager(total: int, page: int, url: Callable[[int], str]) -> dict[str, Any]:
    last = max(1, -(-total // PAGE_ROWS))
    return {
        "page": page,
        "pages": last,
        "offset": (page - 1) * PAGE_ROWS,
        "prev_url": url(page - 1) if page > 1 else None,
        "next_url": url(page + 1) if page < last else None,
    }


def _flash(request: Request, kind: Literal["ok", "error"], text: str) -> None:
    request.session[FLASH] = {"kind": kind, "text": text}


# -- 1. the billing run -----------------------------------------------------------------------


def _payer_row(bill: dict[str, Any]) -> dict[str, Any]:
    return {
        "payer": bill["payer"],
        "lines": bill["line_count"],
        "total": euros(bill["total_cents"]),
        "fixed": euros(bill["fixed_cents"]),
        "variable": euros(bill["variable_cents"]),
    }


@router.get("/console/dechets", openapi_extra=META)
def run_page(
    request: Request,
    principal: AgentPrincipal,
    finalite: Finalite = None,
    periode: PeriodQuery = "",
    grille: GridQuery = "",
    q: Annotated[str, Query(max_length=200)] = "",
    page: PageQuery = 1,
) -> Response:
    state = web_state(request)
    purpose = acting_purpose(state.gov, principal.actor, finalite)
    sel = _select(grille, periode, state.gov.clock().date())
    context = {
        "title": "Redevance incitative : facturation",
        "billing": None,
        **_base(request, state, principal, purpose, sel),
    }
    if not sel.ok:
        return render(request, "console/dechets_run.html", context, status_code=422)

    def url(number: int) -> str:
        return f"/console/dechets?{_query(purpose, sel, q=q, page=number)}#redevables"

    def build() -> Response:
        with _billing(state, principal.actor, purpose, sel) as (billing, made_at):
            needle = q.strip().casefold()
            found = [p for p in billing.payers if needle in p["payer"].casefold()]
            pager = _pager(len(found), page, url)
            rows = found[pager["offset"] : pager["offset"] + PAGE_ROWS]
            context["billing"] = {
                "summary": billing.summary,
                "lines": billing.lines,
                "credits": len(billing.credit_refs),
                "held": billing.held,
                "trace": _trace_context(state, billing.trace, made_at),
            }
        context.update(
            payers=[_payer_row(p) for p in rows], found=len(found), q=q, pager=pager, money=euros
        )
        return render(request, "console/dechets_run.html", context)

    return _guarded(request, state, principal, purpose, build)


def _issued_text(applied: list[Dispute] | None, period: Period) -> tuple[bool, str]:
    if applied is None:
        return False, (
            "Les contestations ont changé pendant le calcul de la facturation : rien n'a été "
            "imputé. Rechargez la page, vérifiez les avoirs, puis émettez de nouveau."
        )
    if not applied:
        return True, f"Facturation du {period.title} : aucun avoir en attente, rien à imputer."
    ids = ", ".join(d.id for d in applied)
    return True, (
        f"Facturation du {period.title} émise : {len(applied)} avoir(s) imputé(s) ({ids}). "
        "Ils figurent sur cette facturation et ne seront plus reportés ; les levées créditées "
        "ne sont plus comptées."
    )


@router.post("/console/dechets/emission", openapi_extra=META)
def issue_form(
    request: Request,
    principal: AgentPrincipal,
    csrf_token: Csrf = "",
    finalite: FormFinalite = "",
    periode: Annotated[str, Form(max_length=20)] = "",
    grille: Annotated[str, Form(max_length=60)] = "",
) -> Response:
    """Issue the run: the credits due are put on it and carried no more (``--apply-credits``)."""
    check_csrf(request, csrf_token)
    state = web_state(request)
    purpose = acting_purpose(state.gov, principal.actor, finalite or None)
    sel = _select(grille, periode, state.gov.clock().date())
    target = f"/console/dechets?{_query(purpose, sel)}"
    if not sel.ok or sel.period is None:
        _flash(request, "error", "Émission impossible : " + "; ".join(sel.errors.values()))
        return RedirectResponse(target, status_code=303)
    period = sel.period

    def build() -> Response:
        _drop_runs(state)  # issue what the disputes say now, not a run computed before
        with _billing(state, principal.actor, purpose, sel, writing=True) as (billing, _):
            book = GovernedDisputeBook(state.gov, principal.actor, purpose)
            run = billing.run
            due = {c.reference for c in corrections_due(book) if run.total(c.payer) is not None}
            # A credit decided while the run was computed is not on its bills: issue nothing.
            applied = mark_applied(book, run) if due == billing.credit_refs else None
        _drop_runs(state)
        ok, text = _issued_text(applied, period)
        _flash(request, "ok" if ok else "error", text)
        return RedirectResponse(target, status_code=303)

    return _guarded(request, state, principal, purpose, build, "/console/dechets")


# -- 2. one payer's bill, and opening a dispute -----------------------------------------------


def _kg(weight: Decimal | None) -> str:
    return "—" if weight is None else format(weight.normalize(), "f").replace(".", ",") + " kg"


@router.get("/console/dechets/facture", openapi_extra=META)
def bill_page(
    request: Request,
    principal: AgentPrincipal,
    redevable: Annotated[str, Query(min_length=1, max_length=200)],
    finalite: Finalite = None,
    periode: PeriodQuery = "",
    grille: GridQuery = "",
) -> Response:
    state = web_state(request)
    purpose = acting_purpose(state.gov, principal.actor, finalite)
    sel = _select(grille, periode, state.gov.clock().date())
    context: dict[str, Any] = {"title": "Facture d'un redevable", "payer": redevable}
    context.update(_base(request, state, principal, purpose, sel))
    if not sel.ok:
        return render(request, "console/dechets_bill.html", context, status_code=422)

    def build() -> Response:
        with _billing(state, principal.actor, purpose, sel) as (billing, made_at):
            run = billing.run
            known = run.total(redevable) is not None or redevable in billing.held
            bill = run.bill(redevable) if known else None
            trace = _trace_context(state, billing.trace, made_at)
            contested = {
                d.lift_id: d
                for d in billing.disputes
                if d.payer == redevable and d.status != "maintenue"
            }
            held = billing.held.get(redevable)
        if bill is None:
            context["title"] = "Redevable introuvable"
            return render(request, "console/dechets_missing.html", context, status_code=404)
        lifts = [
            {
                "id": lift.lift_id,
                "at": lift.lifted_at.strftime("%d/%m/%Y %H:%M:%S"),
                "truck": lift.truck_id,
                "bin": f"{lift.bin_id} ({lift.volume_l} L)",
                "weight": _kg(lift.weight_kg),
                "status": lift.status,
                "dispute": contested.get(lift.lift_id),
            }
            for lift in bill.lifts
        ]
        statuses = Counter(lift.status for lift in bill.lifts)
        context.update(
            title=f"Facture de {redevable}",
            bill=bill,
            lifts=lifts,
            statuses=sorted(statuses.items()),
            held=held,
            trace=trace,
        )
        return render(request, "console/dechets_bill.html", context)

    return _guarded(request, state, principal, purpose, build)


@router.post("/console/dechets/contestations", openapi_extra=META)
def open_form(
    request: Request,
    principal: AgentPrincipal,
    redevable: Annotated[str, Form(min_length=1, max_length=200)],
    levee: Annotated[str, Form(pattern=LIFT_PATTERN)],
    reclamation: Annotated[str, Form(max_length=2000)] = "",
    csrf_token: Csrf = "",
    finalite: FormFinalite = "",
    periode: Annotated[str, Form(max_length=20)] = "",
    grille: Annotated[str, Form(max_length=60)] = "",
) -> Response:
    """Record a payer's contestation of a lift with its evidence, then show the disputes."""
    check_csrf(request, csrf_token)
    state = web_state(request)
    purpose = acting_purpose(state.gov, principal.actor, finalite or None)
    sel = _select(grille, periode, state.gov.clock().date())
    back = f"/console/dechets/facture?{_query(purpose, sel, redevable=redevable)}#levees"
    claim = reclamation.strip()
    if not sel.ok or not claim:
        problem = "; ".join(sel.errors.values()) or "la réclamation du redevable est vide"
        _flash(request, "error", f"Contestation non enregistrée : {problem}.")
        return RedirectResponse(back, status_code=303)

    def build() -> Response:
        try:
            with _billing(state, principal.actor, purpose, sel, writing=True) as (billing, _):
                book = GovernedDisputeBook(state.gov, principal.actor, purpose)
                at = state.gov.clock()
                dispute = open_dispute(book, billing.run, redevable, levee, claim, at)
        except GovernanceError:
            raise
        except TerritoriaError as exc:
            _flash(request, "error", f"Contestation non enregistrée : {exc.message}.")
            return RedirectResponse(back, status_code=303)
        _drop_runs(state)
        _flash(
            request,
            "ok",
            f"Contestation {dispute.id} enregistrée pour la levée {levee} de {redevable}, avec "
            "sa preuve : tranchez-la ci-dessous (avoir ou levée maintenue).",
        )
        target = f"/console/dechets/contestations?{urlencode({'finalite': purpose})}"
        return RedirectResponse(f"{target}#{dispute.id}", status_code=303)

    return _guarded(request, state, principal, purpose, build, "/console/dechets")


# -- 3. the anomalies ---------------------------------------------------------------------------


@router.get("/console/dechets/anomalies", openapi_extra=META)
def anomalies_page(
    request: Request,
    principal: AgentPrincipal,
    finalite: Finalite = None,
    periode: PeriodQuery = "",
    grille: GridQuery = "",
    motif: Annotated[str, Query(pattern=r"^[a-z_]{0,40}$")] = "",
    page: PageQuery = 1,
) -> Response:
    state = web_state(request)
    purpose = acting_purpose(state.gov, principal.actor, finalite)
    sel = _select(grille, periode, state.gov.clock().date())
    context: dict[str, Any] = {"title": "Anomalies de la facturation", "motif": motif}
    context.update(_base(request, state, principal, purpose, sel))
    if not sel.ok:
        return render(request, "console/dechets_anomalies.html", context, status_code=422)

    def url(number: int) -> str:
        return f"/console/dechets/anomalies?{_query(purpose, sel, motif=motif, page=number)}"

    def build() -> Response:
        with _billing(state, principal.actor, purpose, sel) as (billing, made_at):
            table = billing.run.anomalies
            counts = Counter(table.column("reason").to_pylist())
            if motif:
                table = table.filter(pc.equal(table.column("reason"), motif))
            pager = _pager(table.num_rows, page, url)
            rows = table.slice(pager["offset"], PAGE_ROWS).to_pylist()
            trace = _trace_context(state, billing.trace, made_at)
        for row in rows:
            at = row["occurred_at"]
            row["at"] = at.strftime("%d/%m/%Y %H:%M:%S") if at else "—"
        context.update(
            counts=sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])),
            total=sum(counts.values()),
            shown=table.num_rows,
            rows=rows,
            pager=pager,
            trace=trace,
        )
        return render(request, "console/dechets_anomalies.html", context)

    return _guarded(request, state, principal, purpose, build)


# -- 4. the disputes and their decisions --------------------------------------------------------

STATUS_LABELS = {"ouverte": "ouverte", "maintenue": "levée maintenue", "avoir": "avoir accordé"}


def _evidence_rows(evidence: Evidence) -> list[tuple[str, str]]:
    def text(value: object) -> str:
        return "—" if value is None or value == "" else str(value)

    when = evidence.lifted_at.strftime("%d/%m/%Y %H:%M:%S") if evidence.lifted_at else None
    rows = [
        ("Trouvée dans les données", "oui" if evidence.found else "non"),
        ("Horodatage", text(when)),
        ("Benne", text(evidence.truck_id)),
        ("Lieu", text(evidence.place)),
        ("Poids", _kg(evidence.weight_kg)),
        ("Statut de lecture", text(evidence.read_status)),
        ("Puce lue", text(evidence.rfid_tag)),
        ("Doublons", text(evidence.dedup)),
        ("Rattachement", text(evidence.attribution)),
        ("Facturation", text(evidence.billing)),
        ("Valeur facturée", euros(evidence.billed_value_cents)),
    ]
    rows += [("Anomalie", str(a.get("detail") or a.get("reason"))) for a in evidence.anomalies]
    return rows


def _dispute_view(dispute: Dispute, purpose: str) -> dict[str, Any]:
    bill = {
        "finalite": purpose,
        "redevable": dispute.payer,
        "periode": dispute.evidence.period,
        "grille": dispute.evidence.grid_id,
    }
    return {
        "d": dispute,
        "status": STATUS_LABELS[dispute.status],
        "opened": _local(dispute.opened_at),
        "decided": _local(dispute.decided_at) if dispute.decided_at else None,
        "credit": euros(dispute.credit_cents),
        "evidence_value": euros(dispute.evidence.billed_value_cents),
        "evidence": _evidence_rows(dispute.evidence),
        "bill_url": f"/console/dechets/facture?{urlencode(bill)}",
    }


@router.get("/console/dechets/contestations", openapi_extra=META)
def disputes_page(
    request: Request,
    principal: AgentPrincipal,
    finalite: Finalite = None,
    statut: Literal["", "ouverte", "maintenue", "avoir"] = "",
    page: PageQuery = 1,
) -> Response:
    state = web_state(request)
    purpose = acting_purpose(state.gov, principal.actor, finalite)
    flash = request.session.pop(FLASH, None)

    def url(number: int) -> str:
        query = {"finalite": purpose, "statut": statut, "page": number}
        return "/console/dechets/contestations?" + urlencode({k: v for k, v in query.items() if v})

    def build() -> Response:
        with state.lock:
            disputes = GovernedDisputeBook(state.gov, principal.actor, purpose).all()
        counts: Counter[str] = Counter(d.status for d in disputes)
        chosen = [d for d in disputes if not statut or d.status == statut]
        pager = _pager(len(chosen), page, url)
        shown = chosen[pager["offset"] : pager["offset"] + PAGE_ROWS]
        return render(
            request,
            "console/dechets_disputes.html",
            {
                "title": "Contestations de levées",
                "flash": flash,
                "finalite": purpose,
                "statut": statut,
                "total": len(disputes),
                "counts": {k: counts[k] for k in STATUS_LABELS},
                "labels": STATUS_LABELS,
                "disputes": [_dispute_view(d, purpose) for d in shown],
                "pager": pager,
                **_purpose_context(state, principal, purpose),
            },
        )

    return _guarded(request, state, principal, purpose, build)


@router.post("/console/dechets/contestations/{dispute_id}/decision", openapi_extra=META)
def decision_form(
    request: Request,
    principal: AgentPrincipal,
    dispute_id: Annotated[str, Path(pattern=r"^C-[0-9]{5,9}$")],
    decision: Annotated[Literal["credit", "uphold"] | None, Form()] = None,
    motif: Annotated[str, Form(max_length=1000)] = "",
    csrf_token: Csrf = "",
    finalite: FormFinalite = "",
) -> Response:
    """Credit or uphold a contested lift, with a reason; a credit is on the next bill."""
    check_csrf(request, csrf_token)
    state = web_state(request)
    purpose = acting_purpose(state.gov, principal.actor, finalite or None)
    target = f"/console/dechets/contestations?{urlencode({'finalite': purpose})}#{dispute_id}"
    if decision is None or not motif.strip():
        missing = "choisissez avoir ou levée maintenue" if decision is None else "motivez-la"
        _flash(request, "error", f"Décision sur {dispute_id} non enregistrée : {missing}.")
        return RedirectResponse(target, status_code=303)

    def build() -> Response:
        try:
            with state.lock:
                book = GovernedDisputeBook(state.gov, principal.actor, purpose)
                at = state.gov.clock()
                decided = decide_dispute(
                    book, dispute_id, decision, principal.actor, motif.strip(), at
                )
        except GovernanceError:
            raise
        except TerritoriaError as exc:
            _flash(request, "error", f"Décision non enregistrée : {exc.message}.")
            return RedirectResponse(target, status_code=303)
        _drop_runs(state)
        if decided.status == "avoir":
            text = (
                f"Avoir de {euros(decided.credit_cents)} accordé sur la contestation "
                f"{decided.id} : il figurera sur la prochaine facture du redevable, et la "
                f"levée {decided.lift_id} ne sera plus comptée une fois la facturation émise."
            )
        else:
            text = f"Levée {decided.lift_id} maintenue (contestation {decided.id}) : aucun avoir."
        _flash(request, "ok", text)
        return RedirectResponse(target, status_code=303)

    return _guarded(request, state, principal, purpose, build, "/console/dechets/contestations")


# -- 5. the tariff simulator --------------------------------------------------------------------


def _decimal(value: str) -> Decimal | None:
    """A number as typed in French or English (« −0,30 », « 250 000 », « -30 % »)."""
    text = value.strip().replace("\u2212", "-").replace(",", ".").replace("€", "")
    percent = text.endswith("%")
    for space in (" ", "\u202f", "\xa0", "%"):
        text = text.replace(space, "")
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None
    if not number.is_finite():
        return None
    return number / 100 if percent else number


def _budget(value: str, errors: dict[str, str]) -> int | None:
    if not value.strip():
        return None  # the reference grid's revenue
    amount = _decimal(value)
    if amount is None or amount <= 0 or amount >= 10**10:
        errors["budget"] = (
            f"montant « {value} » incompréhensible : un montant positif en euros est attendu, "
            "par exemple 250000 ou 250 000,50"
        )
        return None
    return int((amount * 100).to_integral_value())


def _change(value: str, field: str, errors: dict[str, str]) -> Decimal | None:
    if not value.strip():
        return None
    change = _decimal(value)
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
    proposed = _known_grid(values["grille"], "grille", errors)
    reference = _known_grid(values["reference"], "reference", errors)
    periods = _periods(reference, proposed)
    period = _latest_complete(periods, today) if not values["periode"] else None
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


@dataclass(frozen=True)
class Simulated:
    trace: Trace
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
        return Simulated(Trace.of(inputs), result)

    return make


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


@router.get("/console/dechets/simulation", openapi_extra=META)
def simulation_page(
    request: Request,
    principal: AgentPrincipal,
    finalite: Finalite = None,
    grille: GridQuery = "",
    reference: GridQuery = "",
    periode: PeriodQuery = "",
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
        "grids": _grid_options(),
        "default_grid": DEFAULT_GRID,
        "result": None,
        **_purpose_context(state, principal, purpose),
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
            trace=_trace_context(state, cached.value.trace, cached.made_at),
        )
        return render(request, "console/dechets_simulation.html", context)

    return _guarded(request, state, principal, purpose, build)
