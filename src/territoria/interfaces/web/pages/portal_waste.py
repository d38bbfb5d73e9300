"""The resident's waste account (``/portail/dechets``): my bins, my lifts and weights, my bill.

Everything comes from the governed batch read under the portal's purpose (``resident_access``,
limited to the resident's own data): the bins the index attributes to the resident, and the
lifts attached to them (``linkage.attached_to``: the lifts of the resident's bin while it was
theirs — never a previous occupant's, a neighbour's or an unknown tag's). The bill is the
billing engine's, on the same grid as the waste service's runs, with the credits of the
disputes the service decided about the resident (cases the resident may read, RGPD art. 15).
The read is in the ledger, and so in « Qui a consulté mes données » as the resident's own.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from territoria.apps.waste import Bill, Dispute, Period, TariffGrid
from territoria.apps.waste.money import euros
from territoria.core.errors import TerritoriaError
from territoria.interfaces.runs.waste import (
    DEFAULT_PURPOSE,
    Inputs,
    bill_run,
    checked_period,
    governed_inputs,
    grid_periods,
    load_grid_option,
)
from territoria.interfaces.runs.waste_book import (
    GovernedDisputeBook,
    lift_requests,
    request_contest,
)
from territoria.interfaces.web.api.me import RESIDENT_PURPOSE
from territoria.interfaces.web.meta import governed
from territoria.interfaces.web.principals import ResidentPrincipal, web_state
from territoria.interfaces.web.security import check_csrf
from territoria.interfaces.web.templates import render

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
PERIOD_PATTERN = r"^\d{4}(-[SQ][1-3])?$"

# What each read status and each counting status means, in a resident's words.
READ_STATUS = {
    "ok": "lue",
    "doublon": "lecture en double, écartée",
    "illisible": "puce illisible",
    "inconnue": "puce inconnue",
}
COUNT_STATUS = {
    "incluse": "comprise dans le forfait",
    "facturée": "facturée au-delà du forfait",
    "minimum facturé": "comptée dans le minimum facturé",
    "non tarifée": "comptée, sans prix au-delà du forfait",
}
DISPUTE_STATUS = {"ouverte": "en cours d'examen", "maintenue": "levée maintenue", "avoir": "avoir"}


def _default_period(periods: list[Period], lifts: list[dict[str, Any]]) -> Period | None:
    """The last period that holds one of the resident's lifts, else the grid's last period."""
    days = [lift["lifted_at"].date() for lift in lifts if lift.get("lifted_at") is not None]
    if days:
        latest = max(days)
        holding = [p for p in periods if p.start <= latest]
        if holding:
            return holding[-1]
    return periods[-1] if periods else None


def _kg(value: Decimal | float | None) -> str:
    if value is None:
        return "—"
    return f"{Decimal(str(value)).quantize(Decimal('0.1'))} kg".replace(".", ",")


def _lift_rows(
    inputs: Inputs, window: tuple[date, date], bill: Bill | None
) -> tuple[list[dict[str, Any]], Decimal]:
    """The resident's lifts in the bill's counting window, with what the bill made of each;
    their total weight."""
    counted = {lift.lift_id: lift for lift in bill.lifts} if bill else {}
    rows, weight = [], Decimal(0)
    for lift in sorted(inputs.lifts.to_pylist(), key=lambda r: (r["lifted_at"], r["lift_id"])):
        moment = lift["lifted_at"]
        if moment is None or not window[0] <= moment.date() < window[1]:
            continue
        detail = counted.get(lift["lift_id"])
        if lift.get("weight_kg") is not None:
            weight += Decimal(str(lift["weight_kg"]))
        rows.append(
            {
                "lift_id": lift["lift_id"],
                "when": moment.strftime("%d/%m/%Y à %H h %M"),
                "truck": lift.get("truck_id") or "—",
                "weight": _kg(lift.get("weight_kg")),
                "read": READ_STATUS.get(str(lift.get("read_status")), lift.get("read_status")),
                "counted": COUNT_STATUS.get(detail.status, detail.status) if detail else None,
            }
        )
    return rows, weight


def _account(state: Any, actor: str, grid: TariffGrid, wanted: str | None) -> dict[str, Any]:
    with state.lock:
        inputs = governed_inputs(state.gov, actor, RESIDENT_PURPOSE)
    bins = inputs.allocations.to_pylist()
    payers = sorted({str(b["payer"]) for b in bins})
    payer = payers[0] if payers else None
    periods = grid_periods(grid)
    period = (
        checked_period(grid, wanted)
        if wanted
        else _default_period(periods, inputs.lifts.to_pylist())
    )
    context: dict[str, Any] = {
        "bins": bins,
        "periods": periods,
        "period": period,
        "grid": grid,
        "bill": None,
        "held": [],
        "disputes": [],
        "requests": [],
        "lifts": [],
        "weight": "—",
    }
    if payer is None or period is None:
        return context
    with state.lock:
        book = GovernedDisputeBook(state.gov, actor, RESIDENT_PURPOSE, as_payer=payer)
        disputes: list[Dispute] = book.all()
        requests = lift_requests(state.gov, actor, RESIDENT_PURPOSE)
    run = bill_run(grid, period, inputs, book)
    try:
        window = run.summary().count_window or (period.start, period.end)
        bill = run.bill(payer) if run.total(payer) is not None else None
        held = [
            str(r["detail"] or r["reason"])
            for r in run.anomalies.to_pylist()
            if r["payer"] == payer and payer in run.held
        ]
    finally:
        run.close()
    lifts, weight = _lift_rows(inputs, window, bill)
    contested = {d.lift_id for d in disputes}
    pending = [r for r in requests if r.lift_id not in contested]
    sent = contested | {r.lift_id for r in pending}
    for row in lifts:
        row["contested"] = row["lift_id"] in sent
    context.update(
        requests=[
            {
                "case_id": r.case_id,
                "lift_id": r.lift_id,
                "lifted_at": r.lifted_at.strftime("%d/%m/%Y à %H h %M"),
                "sent": r.sent_at[:10],
                "claim": r.claim,
            }
            for r in pending
        ],
        bill=bill,
        held=held,
        window=(window[0], window[1] - timedelta(days=1)),
        lifts=lifts,
        weight=_kg(weight) if any(row["weight"] != "—" for row in lifts) else "—",
        disputes=[
            {
                "id": d.id,
                "lift_id": d.lift_id,
                "opened": f"{d.opened_at:%d/%m/%Y}",
                "claim": d.claim,
                "status": DISPUTE_STATUS.get(d.status, d.status),
                "credit": d.credit_cents,
                "applied_in": d.applied_in,
            }
            for d in disputes
        ],
    )
    return context


@router.get("/portail/dechets", openapi_extra=governed("resident", "records", RESIDENT_PURPOSE))
def waste_account(
    request: Request,
    principal: ResidentPrincipal,
    periode: Annotated[str | None, Query(pattern=PERIOD_PATTERN)] = None,
) -> Response:
    return _page(request, principal.actor, periode)


def _page(
    request: Request, actor: str, periode: str | None, contest_error: str | None = None
) -> Response:
    state = web_state(request)
    grid, _ = load_grid_option(None)
    try:
        context = _account(state, actor, grid, periode)
        status = 422 if contest_error else 200
    except TerritoriaError as refused:
        if refused.code not in ("waste_period_not_billed", "waste_period_outside_grid"):
            raise
        context = {"error": refused.message, "periods": grid_periods(grid), "grid": grid}
        status = 422
    flash = request.session.pop("flash", None) if "session" in request.scope else None
    return render(
        request,
        "portal/waste.html",
        {
            "title": "Mes déchets",
            "euros": euros,
            "flash": flash,
            "contest_error": contest_error,
            **context,
        },
        status_code=status,
    )


@router.post(
    "/portail/dechets/contestations",
    openapi_extra=governed("resident", "records", RESIDENT_PURPOSE),
)
def contest_lift(
    request: Request,
    principal: ResidentPrincipal,
    levee: Annotated[str, Form(max_length=40)],
    periode: Annotated[str, Form(pattern=PERIOD_PATTERN)],
    reclamation: Annotated[str, Form(max_length=2000)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Send the waste service the contest of one of my lifts (a governed request)."""
    check_csrf(request, csrf_token)
    state = web_state(request)
    claim = " ".join(reclamation.split())
    with state.lock:
        inputs = governed_inputs(state.gov, principal.actor, RESIDENT_PURPOSE)
        sent = {r.lift_id for r in lift_requests(state.gov, principal.actor, RESIDENT_PURPOSE)}
    lift = next((row for row in inputs.lifts.to_pylist() if row["lift_id"] == levee), None)
    error = None
    if lift is None or lift.get("lifted_at") is None:
        error = f"La levée {levee} n'est pas une levée de vos bacs."
    elif levee in sent:
        error = f"Vous avez déjà contesté la levée {levee}."
    elif not claim:
        error = "Dites en quelques mots pourquoi cette levée vous paraît fausse."
    if error is not None:
        return _page(request, principal.actor, periode, contest_error=error)
    assert lift is not None
    with state.lock:
        request_contest(
            state.gov, principal.actor, RESIDENT_PURPOSE, DEFAULT_PURPOSE, levee,
            lift["lifted_at"], claim,
        )  # fmt: skip
    request.session["flash"] = {
        "text": f"Votre contestation de la levée {levee} est envoyée au service propreté. "
        "L'agent rassemble la preuve et décide ; sa décision paraîtra ici, et un avoir "
        "éventuel sur votre facture suivante."
    }
    return RedirectResponse(f"/portail/dechets?periode={quote(periode)}#contestations", 303)
