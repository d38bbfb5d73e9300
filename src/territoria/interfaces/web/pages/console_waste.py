"""The waste service's console pages: billing runs, a payer's bill, anomalies and disputes.

Every page runs what ``territoria waste`` runs (:mod:`territoria.interfaces.runs.waste`): the
bins and lifts are read through ``Governance.extract`` under the acting purpose (``finalite``;
by default the agent's grant that opens ``records`` on the bin registry), one ledger record
naming every payer read. The billing run is kept in the web state's run cache under
``("waste", actor, purpose, period, grid)`` so that paging, a bill or the anomalies do not read
again; a dispute opened or decided, or an issue that applies credits, drops every waste run and
the next page bills again with the credits. A refusal of the policy is a 403 page, recorded in
the ledger like any refusal. Forms work without JavaScript (post, then redirect). The tariff
simulator is :mod:`.console_waste_simulation`; what both share, :mod:`.console_waste_common`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

import pyarrow.compute as pc
from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from territoria.apps.waste import (
    Dispute,
    Period,
    corrections_due,
    decide_dispute,
    mark_applied,
    open_dispute,
)
from territoria.apps.waste.money import euros
from territoria.core.errors import GovernanceError, TerritoriaError
from territoria.interfaces.runs.waste import acting_purpose, grid_periods, load_grid_option
from territoria.interfaces.runs.waste_book import GovernedDisputeBook, LiftRequest, lift_requests
from territoria.interfaces.runs.waste_text import DISPUTE_STATUS, evidence_rows, kilograms
from territoria.interfaces.web.api.schemas import PURPOSE_PATTERN
from territoria.interfaces.web.pages.console_waste_common import (
    META,
    OFFERED,
    VIEW,
    Finalite,
    GridQuery,
    PeriodQuery,
    Selection,
    drop_runs,
    grid_options,
    kept_billing,
    local_time,
    page_query,
    select_period,
    trace_context,
)
from territoria.interfaces.web.pages.guard import guarded, purpose_context
from territoria.interfaces.web.principals import AgentPrincipal, Principal, web_state
from territoria.interfaces.web.security import check_csrf
from territoria.interfaces.web.state import WebState
from territoria.interfaces.web.templates import render

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
FormFinalite = Annotated[str, Form(pattern=f"^$|{PURPOSE_PATTERN}")]
PageQuery = Annotated[int, Query(ge=1, le=100_000)]
Csrf = Annotated[str, Form(max_length=200)]
FLASH = "waste_flash"
PAGE_ROWS = 50
LIFT_PATTERN = r"^[A-Za-z0-9._:\-]{1,64}$"


# -- what every page shows --------------------------------------------------------------------


def _asked(
    request: Request, principal: Principal, finalite: str | None, grille: str, periode: str
) -> tuple[WebState, str, Selection]:
    """The web state, the purpose acted under, and the grid and period asked for, checked."""
    state = web_state(request)
    purpose = acting_purpose(state.gov, principal.actor, finalite or None)
    return state, purpose, select_period(grille, periode, state.gov.clock().date())


def _base(
    request: Request, state: WebState, principal: Principal, purpose: str, sel: Selection
) -> dict[str, Any]:
    return {
        "flash": request.session.pop(FLASH, None),
        "grids": grid_options(),
        "sel": sel,
        "finalite": purpose,
        "base_query": page_query(purpose, sel),
        **purpose_context(state, principal, VIEW, purpose, OFFERED),
    }


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
    state, purpose, sel = _asked(request, principal, finalite, grille, periode)
    context = {
        "title": "Redevance incitative : facturation",
        "billing": None,
        **_base(request, state, principal, purpose, sel),
    }
    if not sel.ok:
        return render(request, "console/dechets_run.html", context, status_code=422)

    def url(number: int) -> str:
        return f"/console/dechets?{page_query(purpose, sel, q=q, page=number)}#redevables"

    def build() -> Response:
        with kept_billing(state, principal.actor, purpose, sel) as (billing, made_at):
            needle = q.strip().casefold()
            found = [p for p in billing.payers if needle in p["payer"].casefold()]
            pager = _pager(len(found), page, url)
            rows = found[pager["offset"] : pager["offset"] + PAGE_ROWS]
            context["billing"] = {
                "summary": billing.summary,
                "lines": billing.lines,
                "credits": len(billing.credit_refs),
                "held": billing.held,
                "trace": trace_context(state, billing.trace, made_at),
            }
        context.update(
            payers=[_payer_row(p) for p in rows], found=len(found), q=q, pager=pager, money=euros
        )
        return render(request, "console/dechets_run.html", context)

    return guarded(request, principal, VIEW, purpose, build, offered=OFFERED)


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
    state, purpose, sel = _asked(request, principal, finalite, grille, periode)
    target = f"/console/dechets?{page_query(purpose, sel)}"
    if not sel.ok or sel.period is None:
        _flash(request, "error", "Émission impossible : " + "; ".join(sel.errors.values()))
        return RedirectResponse(target, status_code=303)
    period = sel.period

    def build() -> Response:
        drop_runs(state)  # issue what the disputes say now, not a run computed before
        with kept_billing(state, principal.actor, purpose, sel, writing=True) as (billing, _):
            book = GovernedDisputeBook(state.gov, principal.actor, purpose)
            run = billing.run
            due = {c.reference for c in corrections_due(book) if run.total(c.payer) is not None}
            # A credit decided while the run was computed is not on its bills: issue nothing.
            applied = mark_applied(book, run) if due == billing.credit_refs else None
        drop_runs(state)
        ok, text = _issued_text(applied, period)
        _flash(request, "ok" if ok else "error", text)
        return RedirectResponse(target, status_code=303)

    return guarded(
        request, principal, VIEW, purpose, build, page="/console/dechets", offered=OFFERED
    )


# -- 2. one payer's bill, and opening a dispute -----------------------------------------------


@router.get("/console/dechets/facture", openapi_extra=META)
def bill_page(
    request: Request,
    principal: AgentPrincipal,
    redevable: Annotated[str, Query(min_length=1, max_length=200)],
    finalite: Finalite = None,
    periode: PeriodQuery = "",
    grille: GridQuery = "",
) -> Response:
    state, purpose, sel = _asked(request, principal, finalite, grille, periode)
    context: dict[str, Any] = {"title": "Facture d'un redevable", "payer": redevable}
    context.update(_base(request, state, principal, purpose, sel))
    if not sel.ok:
        return render(request, "console/dechets_bill.html", context, status_code=422)

    def build() -> Response:
        with kept_billing(state, principal.actor, purpose, sel) as (billing, made_at):
            run = billing.run
            known = run.total(redevable) is not None or redevable in billing.held
            bill = run.bill(redevable) if known else None
            trace = trace_context(state, billing.trace, made_at)
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
                "weight": kilograms(lift.weight_kg),
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

    return guarded(request, principal, VIEW, purpose, build, offered=OFFERED)


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
    state, purpose, sel = _asked(request, principal, finalite, grille, periode)
    back = f"/console/dechets/facture?{page_query(purpose, sel, redevable=redevable)}#levees"
    claim = reclamation.strip()
    if not sel.ok or not claim:
        problem = "; ".join(sel.errors.values()) or "la réclamation du redevable est vide"
        _flash(request, "error", f"Contestation non enregistrée : {problem}.")
        return RedirectResponse(back, status_code=303)

    def build() -> Response:
        try:
            with kept_billing(state, principal.actor, purpose, sel, writing=True) as (billing, _):
                book = GovernedDisputeBook(state.gov, principal.actor, purpose)
                at = state.gov.clock()
                dispute = open_dispute(book, billing.run, redevable, levee, claim, at)
        except GovernanceError:
            raise
        except TerritoriaError as exc:
            _flash(request, "error", f"Contestation non enregistrée : {exc.message}.")
            return RedirectResponse(back, status_code=303)
        drop_runs(state)
        _flash(
            request,
            "ok",
            f"Contestation {dispute.id} enregistrée pour la levée {levee} de {redevable}, avec "
            "sa preuve : tranchez-la ci-dessous (avoir ou levée maintenue).",
        )
        target = f"/console/dechets/contestations?{urlencode({'finalite': purpose})}"
        return RedirectResponse(f"{target}#{dispute.id}", status_code=303)

    return guarded(
        request, principal, VIEW, purpose, build, page="/console/dechets", offered=OFFERED
    )


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
    state, purpose, sel = _asked(request, principal, finalite, grille, periode)
    context: dict[str, Any] = {"title": "Anomalies de la facturation", "motif": motif}
    context.update(_base(request, state, principal, purpose, sel))
    if not sel.ok:
        return render(request, "console/dechets_anomalies.html", context, status_code=422)

    def url(number: int) -> str:
        return f"/console/dechets/anomalies?{page_query(purpose, sel, motif=motif, page=number)}"

    def build() -> Response:
        with kept_billing(state, principal.actor, purpose, sel) as (billing, made_at):
            table = billing.run.anomalies
            counts = Counter(table.column("reason").to_pylist())
            if motif:
                table = table.filter(pc.equal(table.column("reason"), motif))
            pager = _pager(table.num_rows, page, url)
            rows = table.slice(pager["offset"], PAGE_ROWS).to_pylist()
            trace = trace_context(state, billing.trace, made_at)
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

    return guarded(request, principal, VIEW, purpose, build, offered=OFFERED)


# -- 4. the disputes and their decisions --------------------------------------------------------


def _dispute_view(dispute: Dispute, purpose: str) -> dict[str, Any]:
    bill = {
        "finalite": purpose,
        "redevable": dispute.payer,
        "periode": dispute.evidence.period,
        "grille": dispute.evidence.grid_id,
    }
    return {
        "d": dispute,
        "status": DISPUTE_STATUS[dispute.status],
        "opened": local_time(dispute.opened_at),
        "decided": local_time(dispute.decided_at) if dispute.decided_at else None,
        "credit": euros(dispute.credit_cents),
        "evidence_value": euros(dispute.evidence.billed_value_cents),
        "evidence": evidence_rows(dispute.evidence),
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
            requests = lift_requests(state.gov, principal.actor, purpose)
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
                "counts": {k: counts[k] for k in DISPUTE_STATUS},
                "labels": DISPUTE_STATUS,
                "disputes": [_dispute_view(d, purpose) for d in shown],
                "requests": _pending_requests(requests, disputes),
                "pager": pager,
                **purpose_context(state, principal, VIEW, purpose, OFFERED),
            },
        )

    return guarded(request, principal, VIEW, purpose, build, offered=OFFERED)


def _pending_requests(requests: list[LiftRequest], disputes: list[Dispute]) -> list[dict[str, Any]]:
    """Residents' contests not yet opened as disputes, each with the period that billed it."""
    opened = {(d.payer, d.lift_id) for d in disputes}
    grid, _ = load_grid_option(None)
    periods = grid_periods(grid)
    rows = []
    for r in requests:
        if (r.payer, r.lift_id) in opened:
            continue
        day = r.lifted_at.date()
        period = next((p for p in periods if p.start <= day < p.end), None)
        if period is not None and grid.variable_settlement == "year":
            # the lifts of the year are counted, and so contested, on its last bill
            period = [p for p in periods if p.year == period.year][-1]
        rows.append(
            {
                "r": r,
                "lifted": local_time(r.lifted_at),
                "sent": f"{r.sent_at[8:10]}/{r.sent_at[5:7]}/{r.sent_at[:4]}",
                "period": period.label if period else "",
                "grid": grid.id,
            }
        )
    return rows


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
        drop_runs(state)
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

    return guarded(
        request,
        principal,
        VIEW,
        purpose,
        build,
        page="/console/dechets/contestations",
        offered=OFFERED,
    )
