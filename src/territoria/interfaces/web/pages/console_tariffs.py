"""The CCAS console pages: the non-take-up worklist, a household's explanation, contacts.

The pages show what ``territoria tariffs`` prints, from the same governed run
(``interfaces.runs.tariffs.run_screening``): one batch read under the purpose (one ledger
record naming every person read), the OpenFisca screening, the tariff bands and the worklist
ranked by the monthly amount forgone. The run takes seconds, so it is kept in the web state's
run cache per agent, purpose and reference month; the page says when it was made and which
ledger record its read is. The worklist is a suggestion for an interview: the agent records a
contact and its outcome (a governed case); nothing is decided automatically.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response

from territoria.apps.tariffs import (
    Outreach,
    crpa_notice,
    default_grids,
    explain_household,
    screen,
    take_up_report,
)
from territoria.apps.tariffs.explain import euros, number
from territoria.apps.tariffs.non_take_up import OUTCOME_LABELS, Channel, Outcome
from territoria.core.errors import GovernanceError, TerritoriaError
from territoria.governance.policy import Purpose
from territoria.interfaces.runs.tariffs import (
    PURPOSE,
    SOURCES,
    Run,
    band_counts,
    notice_data,
    reference_month,
    run_screening,
)
from territoria.interfaces.runs.tariffs_book import GovernedOutreachBook
from territoria.interfaces.web.api.schemas import PURPOSE_PATTERN, SUBJECT_PATTERN
from territoria.interfaces.web.meta import governed
from territoria.interfaces.web.pages.guard import guarded, purpose_context, reading, require_purpose
from territoria.interfaces.web.principals import AgentPrincipal, Principal, web_state
from territoria.interfaces.web.run_cache import CachedRun
from territoria.interfaces.web.security import check_csrf
from territoria.interfaces.web.state import WebState
from territoria.interfaces.web.templates import render

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
Finalite = Annotated[str, Query(pattern=PURPOSE_PATTERN)]
Mois = Annotated[str | None, Query(max_length=20)]
HouseholdKey = Annotated[str, Path(pattern=SUBJECT_PATTERN)]
VIEW = "records"
BASE = "/console/non-recours"
PAGE_SIZE = 25
FLASH = "tariffs_flash"
CHANNEL_LABELS: dict[Channel, str] = {
    "telephone": "téléphone",
    "courrier": "courrier",
    "courriel": "courriel",
    "visite": "visite",
    "accueil": "accueil",
}
SKIP_LABELS = {
    "tariffs_commune": "commune inconnue (ni abonnement d'eau ni code postal connu)",
    "tariffs_empty": "aucun adulte connu des fiches",
}
_READS_SOURCES = reading(SOURCES)


class MonthError(Exception):
    """A reference month that cannot be read: shown beside the field, status 422."""

    def __init__(self, text: str, message: str) -> None:
        super().__init__(message)
        self.text = text
        self.message = message


# -- shared pieces ------------------------------------------------------------------------------


def _month(state: WebState, text: str | None) -> date:
    try:
        return reference_month(text or None, state.gov.clock().date())
    except TerritoriaError as exc:
        message = f"{exc.message} ; attendu : AAAA-MM, par exemple 2025-11"
        raise MonthError(text or "", message) from None


def _offered(purpose: Purpose) -> bool:
    """The purposes to offer: ``records`` on every source read, an algorithm declared.

    Only a suggestion of the form: the governance decides what a purpose may read (the CCAS
    social-support purpose reads the same sources but declares no screening algorithm, so it
    is not offered).
    """
    return _READS_SOURCES(purpose) and purpose.algorithm is not None


def _shown(value: float | str | bool) -> str:
    """An OpenFisca variable's value as a French reader expects it."""
    if isinstance(value, bool):
        return "oui" if value else "non"
    return number(value) if isinstance(value, float | int) else str(value)


def _frame(
    request: Request, principal: Principal, purpose: str, month: str, error: str | None = None
) -> dict[str, Any]:
    """What every page shows: the purpose acted under, the month, the links between pages."""
    query = {"finalite": purpose, "mois": month} if month else {"finalite": purpose}
    return {
        **purpose_context(web_state(request), principal, VIEW, purpose, _offered),
        "mois": month,
        "month_error": error,
        "query": urlencode(query),
        "euros": euros,
        "shown_value": _shown,
        "base": BASE,
    }


def _url(path: str, purpose: str, month: str, **more: Any) -> str:
    return f"{path}?{urlencode({'finalite': purpose, 'mois': month, **more})}"


def _household_url(key: str, purpose: str, month: str) -> str:
    return _url(f"{BASE}/foyers/{quote(key, safe='')}", purpose, month)


def _month_refused(
    request: Request, principal: Principal, purpose: str, error: MonthError, title: str
) -> Response:
    return render(
        request,
        "console/non_recours_mois.html",
        {"title": title, **_frame(request, principal, purpose, error.text, error.message)},
        status_code=422,
    )


def _page(
    request: Request,
    principal: Principal,
    purpose: str,
    title: str,
    build: Callable[[], Response],
) -> Response:
    """The page, the month's error (422) or the policy's refusal (403, already in the ledger)."""

    def checked() -> Response:
        try:
            return build()
        except MonthError as error:
            return _month_refused(request, principal, purpose, error, title)

    return guarded(request, principal, VIEW, purpose, checked, page=BASE, offered=_offered)


def _screened(state: WebState, actor: str, purpose: str, reference: date) -> CachedRun[Run]:
    """The run of this agent, purpose and month: kept, or made now (one governed read; only
    the read holds the state's lock, OpenFisca computes outside it)."""

    def make() -> Run:
        return run_screening(state.gov, actor, purpose, reference, lock=state.lock)

    key = ("tariffs", actor, purpose, f"{reference:%Y-%m}")
    return state.runs.get_or_make(key, make, state.gov.clock)


# -- the worklist -------------------------------------------------------------------------------


def _worklist_context(cached: CachedRun[Run], page: int) -> dict[str, Any]:
    run = cached.value
    w = run.worklist
    pages = max(1, -(-len(w.entries) // PAGE_SIZE))
    page = min(page, pages)
    rows, gaps = band_counts(run.bands)
    return {
        "run": run,
        "worklist": w,
        "made_at": cached.made_at,
        "ledger_seq": run.ledger_seq,
        "evaluated": len(run.households) - len(w.households_unknown),
        "skipped": [
            (SKIP_LABELS.get(code, f"fiches incohérentes ({code})"), n)
            for code, n in sorted(run.skipped.items())
        ],
        "skipped_total": sum(run.skipped.values()),
        "bands": rows,
        "gaps": gaps,
        "entries": w.entries[(page - 1) * PAGE_SIZE : page * PAGE_SIZE],
        "page": page,
        "pages": pages,
    }


@router.get(BASE, openapi_extra=governed("agent", VIEW, "from_query"))
def worklist_page(
    request: Request,
    principal: AgentPrincipal,
    finalite: Finalite = PURPOSE,
    mois: Mois = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    state = web_state(request)
    title = "Repérage du non-recours"

    def build() -> Response:
        reference = _month(state, mois)
        month = f"{reference:%Y-%m}"
        cached = _screened(state, principal.actor, finalite, reference)
        context = _worklist_context(cached, page)
        shown = context["page"]
        return render(
            request,
            "console/non_recours_liste.html",
            {
                "title": title,
                "flash": request.session.pop(FLASH, None),
                "household_url": lambda key: _household_url(key, finalite, month),
                "prev_url": _url(BASE, finalite, month, page=shown - 1) if shown > 1 else None,
                "next_url": (
                    _url(BASE, finalite, month, page=shown + 1)
                    if shown < context["pages"]
                    else None
                ),
                **context,
                **_frame(request, principal, finalite, month),
            },
        )

    return _page(request, principal, finalite, title, build)


@router.post(f"{BASE}/recalcul", openapi_extra=governed("agent", VIEW, "from_query"))
def recompute(
    request: Request,
    principal: AgentPrincipal,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    finalite: Annotated[str, Form(pattern=PURPOSE_PATTERN)] = PURPOSE,
    mois: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """Forget the kept screening runs; the worklist page reads the sources again."""
    check_csrf(request, csrf_token)
    state = web_state(request)

    def build() -> Response:
        require_purpose(state, principal.actor, finalite, VIEW, recorded_as="tariffs.page")
        state.runs.drop(("tariffs",))
        request.session[FLASH] = {
            "kind": "ok",
            "text": "Repérage recalculé : les résultats conservés ont été oubliés et cette page "
            "vient de relire les fiches actuelles (une nouvelle lecture au journal d'audit).",
        }
        return RedirectResponse(_url(BASE, finalite, mois), status_code=303)

    return _page(request, principal, finalite, "Repérage du non-recours", build)


# -- one household ------------------------------------------------------------------------------


def _not_found(request: Request, principal: Principal, purpose: str, month: str) -> Response:
    """The same page whatever the reason: not in the run, objector, or no such household."""
    return render(
        request,
        "console/non_recours_introuvable.html",
        {"title": "Foyer introuvable", **_frame(request, principal, purpose, month)},
        status_code=404,
    )


def _still_admitted(state: WebState, actor: str, purpose: str, run: Run, key: str) -> bool:
    """Whether the household's contact person is still in the purpose's population.

    A resident who objected since the run was kept disappears at once (the refusal, if any,
    is recorded by the governance).
    """
    subject = run.contacts.get(key)
    if subject is None or key not in {h.key for h in run.households}:
        return False
    try:
        with state.lock:
            state.gov.acting(actor, purpose, subject, VIEW)
    except GovernanceError as exc:
        if exc.code == "access_denied":
            raise
        return False
    return True


def _household_context(
    state: WebState, actor: str, purpose: str, run: Run, key: str
) -> dict[str, Any]:
    book = GovernedOutreachBook(state.gov, actor, purpose, run.contacts.get)
    with state.lock:
        contacts = book.for_household(key)
    familles = explain_household(run.screening, key)
    entry = run.worklist.entry(key)
    return {
        "key": key,
        "run": run,
        "entry": entry,
        "item_labels": {line.item: line.label for line in entry.lines} if entry else {},
        "familles": familles,
        "bands": [b for b in run.bands if b.household_key == key],
        "contacts": contacts,
        "channel_labels": CHANNEL_LABELS,
        "outcome_labels": OUTCOME_LABELS,
        "today": state.gov.clock().date().isoformat(),
    }


@router.get(f"{BASE}/foyers/{{household}}", openapi_extra=governed("agent", VIEW, "from_query"))
def household_page(
    request: Request,
    principal: AgentPrincipal,
    household: HouseholdKey,
    finalite: Finalite = PURPOSE,
    mois: Mois = None,
) -> Response:
    state = web_state(request)
    title = "Détail du calcul pour un foyer"

    def build() -> Response:
        reference = _month(state, mois)
        month = f"{reference:%Y-%m}"
        run = _screened(state, principal.actor, finalite, reference).value
        if not _still_admitted(state, principal.actor, finalite, run, household):
            return _not_found(request, principal, finalite, month)
        return render(
            request,
            "console/non_recours_foyer.html",
            {
                "title": title,
                "flash": request.session.pop(FLASH, None),
                "action": f"{BASE}/foyers/{quote(household, safe='')}/contacts",
                **_household_context(state, principal.actor, finalite, run, household),
                **_frame(request, principal, finalite, month),
            },
        )

    return _page(request, principal, finalite, title, build)


def _contact_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        problem = {"loc": ("body", "date_contact"), "msg": "date attendue au format AAAA-MM-JJ"}
        raise RequestValidationError([{**problem, "type": "date_from_datetime_parsing"}]) from None


def _check_items(run: Run, key: str, items: list[str]) -> None:
    """The rights or tariffs a contact is about must be lines of the household's entry."""
    entry = run.worklist.entry(key)
    known = {line.item for line in entry.lines} if entry else set()
    unknown = sorted(set(items) - known)
    if unknown:
        problem = {
            "loc": ("body", "elements"),
            "msg": f"droit ou tarif absent de la liste pour ce foyer : {', '.join(unknown)}",
        }
        raise RequestValidationError([{**problem, "type": "value_error"}])


@router.post(
    f"{BASE}/foyers/{{household}}/contacts", openapi_extra=governed("agent", VIEW, "from_query")
)
def record_contact(
    request: Request,
    principal: AgentPrincipal,
    household: HouseholdKey,
    canal: Annotated[Channel, Form()],
    suite: Annotated[Outcome, Form()],
    date_contact: Annotated[str, Form(max_length=10)],
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    note: Annotated[str, Form(max_length=1000)] = "",
    elements: Annotated[list[str] | None, Form(max_length=40)] = None,
    finalite: Annotated[str, Form(pattern=PURPOSE_PATTERN)] = PURPOSE,
    mois: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """Record the contact as a governed case, then back to the household (post/redirect/get)."""
    check_csrf(request, csrf_token)
    state = web_state(request)
    day = _contact_day(date_contact)

    def build() -> Response:
        reference = _month(state, mois)
        month = f"{reference:%Y-%m}"
        run = _screened(state, principal.actor, finalite, reference).value
        if household not in {h.key for h in run.households}:
            return _not_found(request, principal, finalite, month)
        _check_items(run, household, elements or [])
        book = GovernedOutreachBook(state.gov, principal.actor, finalite, run.contacts.get)
        outreach = Outreach(
            household_key=household,
            contact_date=day,
            channel=canal,
            outcome=suite,
            agent=principal.actor,
            items=sorted(set(elements or ())),
            note=note.strip(),
        )
        try:
            with state.lock:
                case_id = book.record_case(outreach)
        except GovernanceError as exc:
            if exc.code == "access_denied":
                raise
            return _not_found(request, principal, finalite, month)
        except TerritoriaError:  # not a household of the run (tariffs_household_unknown)
            return _not_found(request, principal, finalite, month)
        request.session[FLASH] = {
            "kind": "ok",
            "text": f"Contact noté (dossier {case_id}) : {CHANNEL_LABELS[canal]}, le "
            f"{day:%d/%m/%Y}, suite « {OUTCOME_LABELS[suite]} ». Il est inscrit au journal "
            "d'audit et ne peut plus être modifié.",
        }
        target = _household_url(household, finalite, month) + "#contacts"
        return RedirectResponse(target, status_code=303)

    return _page(request, principal, finalite, "Noter un contact", build)


# -- take-up and the notice ---------------------------------------------------------------------


def _percent(rate: float | None) -> str:
    return "—" if rate is None else f"{100 * rate:.1f} %".replace(".", ",")


@router.get(f"{BASE}/suivi", openapi_extra=governed("agent", VIEW, "from_query"))
def take_up_page(
    request: Request, principal: AgentPrincipal, finalite: Finalite = PURPOSE, mois: Mois = None
) -> Response:
    state = web_state(request)
    title = "Recours après contact"

    def build() -> Response:
        reference = _month(state, mois)
        month = f"{reference:%Y-%m}"
        run = _screened(state, principal.actor, finalite, reference).value
        book = GovernedOutreachBook(state.gov, principal.actor, finalite, run.contacts.get)
        with state.lock:
            contacts = list(book.all())  # one ledger record; the report reuses the book's copy
        report = take_up_report(run.worklist, book)
        labels = {line.item: line.label for e in run.worklist.entries for line in e.lines}
        return render(
            request,
            "console/non_recours_suivi.html",
            {
                "title": title,
                "run": run,
                "report": report,
                "contacts": len(contacts),
                "counted": sum(c.contact_date >= reference for c in contacts),
                "item_labels": labels,
                "percent": _percent,
                **_frame(request, principal, finalite, month),
            },
        )

    return _page(request, principal, finalite, title, build)


@router.get(f"{BASE}/notice", openapi_extra=governed("agent", VIEW, "from_query"))
def notice_page(
    request: Request, principal: AgentPrincipal, finalite: Finalite = PURPOSE, mois: Mois = None
) -> Response:
    """The CRPA L311-3-1 notice; reads no personal data (nothing in the ledger when allowed)."""
    state = web_state(request)
    title = "Notice de l'algorithme de repérage"

    def build() -> Response:
        reference = _month(state, mois)
        require_purpose(state, principal.actor, finalite, VIEW, recorded_as="tariffs.page")
        notice = crpa_notice(screen([], reference), default_grids())
        notice = notice.model_copy(
            update={
                "data": notice_data(state.gov.policy.purposes[finalite], state.gov.contracts.get)
            }
        )
        return render(
            request,
            "console/non_recours_notice.html",
            {
                "title": title,
                "notice": notice,
                "reads_nothing": True,
                **_frame(request, principal, finalite, f"{reference:%Y-%m}"),
            },
        )

    return _page(request, principal, finalite, title, build)
