"""The console's stewardship and DPO pages: sources and loads, quarantine, the linkage review
queue, synergies between services, and the DPO's register, ledger search and verification.

Each page calls the helpers of ``api/steward.py`` and ``api/dpo.py`` (the API's own code), so
it shows exactly what the API answers; each names the purpose it acts under (``finalite``,
defaulting to the agent's first grant that opens the view). A refusal of the policy is a 403
page that says which rule refused and what to do; it is in the ledger like any refusal.
Forms work without JavaScript; htmx only swaps the verification's result in place.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response

from territoria.interfaces.web.api.dpo import (
    ACTOR_PATTERN,
    LedgerFilters,
    grant_rows,
    ledger_page,
    verify_ledger,
)
from territoria.interfaces.web.api.schemas import PURPOSE_PATTERN, SUBJECT_PATTERN
from territoria.interfaces.web.api.steward import (
    DECISION_LABELS,
    MENTION_PATTERN,
    SOURCE_PATTERN,
    distinct_mentions,
    list_sources,
    load_sources,
    loads_out,
    pair_explanation,
    quarantine_of,
    record_decision,
    review_of,
    synergies_of,
)
from territoria.interfaces.web.meta import governed
from territoria.interfaces.web.pages.guard import guarded, purpose_context
from territoria.interfaces.web.principals import AgentPrincipal, web_state
from territoria.interfaces.web.security import check_csrf
from territoria.interfaces.web.templates import render

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
Finalite = Annotated[str | None, Query(pattern=PURPOSE_PATTERN)]
FLASH = "admin_flash"
PAGE_ROWS = 50
LOADS_PER_SOURCE = 5


def _optional(pattern: str) -> str:
    """A form field's pattern that also accepts the empty string (field left blank)."""
    return f"^$|{pattern}"


# -- sources, loads and quarantine -------------------------------------------------------------


@router.get("/console/sources", openapi_extra=governed("agent"))
def sources_page(request: Request, principal: AgentPrincipal) -> Response:
    state = web_state(request)
    sources = list_sources(state, principal.actor)
    visible = load_sources(state, principal.actor)
    with state.lock:
        loads = {
            s.id: loads_out(state.store.loads(s.id, LOADS_PER_SOURCE))
            for s in sources
            if s.id in visible
        }
    return render(
        request,
        "console/admin_sources.html",
        {"title": "Sources et chargements", "sources": sources, "loads": loads},
    )


@router.get(
    "/console/sources/{source}/quarantaine",
    openapi_extra=governed("agent", "quarantine", "from_query"),
)
def quarantine_page(
    request: Request,
    principal: AgentPrincipal,
    source: Annotated[str, Path(pattern=SOURCE_PATTERN)],
    finalite: Finalite = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    state = web_state(request)
    with state.lock:
        contract = state.gov.catalog.get(source)  # an unknown source: 404 page

    def build() -> Response:
        result = quarantine_of(
            state, principal.actor, finalite, source, None, PAGE_ROWS, (page - 1) * PAGE_ROWS
        )
        last = max(1, -(-result.total // PAGE_ROWS))
        base = {"finalite": result.purpose} if result.purpose else {}

        def page_url(number: int) -> str:
            query = urlencode({**base, "page": number})
            return f"/console/sources/{source}/quarantaine?{query}"

        return render(
            request,
            "console/admin_quarantine.html",
            {
                "title": f"Quarantaine : {contract.title}",
                "contract": contract,
                "result": result,
                "page": page,
                "pages": last,
                "prev_url": page_url(page - 1) if page > 1 else None,
                "next_url": page_url(page + 1) if page < last else None,
                **purpose_context(state, principal, "quarantine", result.purpose),
            },
        )

    return guarded(request, principal, "quarantine", finalite, build)


# -- linkage review ----------------------------------------------------------------------------


@router.get("/console/rapprochements", openapi_extra=governed("agent", "review", "from_query"))
def review_page(request: Request, principal: AgentPrincipal, finalite: Finalite = None) -> Response:
    state = web_state(request)
    flash = request.session.pop(FLASH, None)

    def build() -> Response:
        queue = review_of(state, principal.actor, finalite, limit=10)
        return render(
            request,
            "console/admin_review.html",
            {
                "title": "Rapprochements à trancher",
                "queue": queue,
                "flash": flash,
                **purpose_context(state, principal, "review", queue.purpose),
            },
        )

    return guarded(request, principal, "review", finalite, build)


Mention = Annotated[str, Query(pattern=MENTION_PATTERN, max_length=230)]


@router.get(
    "/console/rapprochements/explication",
    openapi_extra=governed("agent", "review", "from_query"),
)
def pair_page(
    request: Request, principal: AgentPrincipal, a: Mention, b: Mention, finalite: Finalite = None
) -> Response:
    distinct_mentions(a, b)
    state = web_state(request)

    def build() -> Response:
        purpose, explanation = pair_explanation(state, principal.actor, finalite, a, b)
        return render(
            request,
            "console/admin_pair.html",
            {
                "title": "Explication d'un rapprochement",
                "pair": explanation,
                **purpose_context(state, principal, "review", purpose),
            },
        )

    return guarded(request, principal, "review", finalite, build)


@router.post(
    "/console/rapprochements/decision",
    openapi_extra=governed("agent", "review", "from_query"),
)
def decision_form(
    request: Request,
    principal: AgentPrincipal,
    mention_a: Annotated[str, Form(pattern=MENTION_PATTERN, max_length=230)],
    mention_b: Annotated[str, Form(pattern=MENTION_PATTERN, max_length=230)],
    decision: Annotated[Literal["same", "different", "unsure"], Form()],
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    note: Annotated[str, Form(max_length=1000)] = "",
    finalite: Annotated[str, Form(pattern=_optional(PURPOSE_PATTERN))] = "",
) -> Response:
    """Record the decision, then back to the queue with a confirmation (post/redirect/get)."""
    check_csrf(request, csrf_token)
    distinct_mentions(mention_a, mention_b)
    state = web_state(request)
    target = "/console/rapprochements" + (
        f"?{urlencode({'finalite': finalite})}" if finalite else ""
    )

    def build() -> Response:
        if decision == "unsure":
            text = (
                f"Paire {mention_a} / {mention_b} laissée en attente : rien n'est enregistré, "
                "un autre agent pourra la trancher."
            )
        else:
            record_decision(
                state, principal.actor, finalite or None, mention_a, mention_b, decision, note
            )
            text = (
                f"Décision « {DECISION_LABELS[decision]} » enregistrée pour la paire "
                f"{mention_a} / {mention_b} : la prochaine liaison la respectera."
            )
        request.session[FLASH] = {"kind": "ok", "text": text}
        return RedirectResponse(target, status_code=303)

    return guarded(
        request, principal, "review", finalite or None, build, page="/console/rapprochements"
    )


# -- synergies ---------------------------------------------------------------------------------


@router.get("/console/synergies", openapi_extra=governed("agent", "synergies", "from_query"))
def synergies_page(
    request: Request, principal: AgentPrincipal, finalite: Finalite = None
) -> Response:
    state = web_state(request)

    def build() -> Response:
        result = synergies_of(state, principal.actor, finalite)
        cells = {(c.service_a, c.service_b): c.published for c in result.pairs}
        cells.update({(b, a): v for (a, b), v in list(cells.items())})
        return render(
            request,
            "console/admin_synergies.html",
            {
                "title": "Synergies entre services",
                "result": result,
                "cells": cells,
                **purpose_context(state, principal, "synergies", result.purpose),
            },
        )

    return guarded(request, principal, "synergies", finalite, build)


# -- DPO -----------------------------------------------------------------------------------------


def _day(value: str, name: str) -> date | None:
    """A date typed in the form (left blank: no filter); a wrong one is a 422 page."""
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        problem = {"loc": ("query", name), "msg": "date attendue au format AAAA-MM-JJ"}
        raise RequestValidationError([{**problem, "type": "date_from_datetime_parsing"}]) from None


def _dpo_filters(
    acteur: str,
    finalite_cherchee: str,
    personne: str,
    decision: Literal["", "allow", "deny"],
    du: str,
    au: str,
) -> LedgerFilters:
    return LedgerFilters(
        actor=acteur or None,
        purpose=finalite_cherchee or None,
        person=personne or None,
        decision=decision or None,
        since=_day(du, "du"),
        until=_day(au, "au"),
    )


@router.get("/console/dpo", openapi_extra=governed("agent", "ledger", "from_query"))
def dpo_page(
    request: Request,
    principal: AgentPrincipal,
    finalite: Finalite = None,
    acteur: Annotated[str, Query(pattern=_optional(ACTOR_PATTERN))] = "",
    finalite_cherchee: Annotated[str, Query(pattern=_optional(PURPOSE_PATTERN))] = "",
    personne: Annotated[str, Query(pattern=_optional(SUBJECT_PATTERN))] = "",
    decision: Literal["", "allow", "deny"] = "",
    du: Annotated[str, Query(max_length=10)] = "",
    au: Annotated[str, Query(max_length=10)] = "",
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Response:
    state = web_state(request)
    form = {
        "acteur": acteur,
        "finalite_cherchee": finalite_cherchee,
        "personne": personne,
        "decision": decision,
        "du": du,
        "au": au,
    }
    filters = _dpo_filters(acteur, finalite_cherchee, personne, decision, du, au)

    def build() -> Response:
        found = ledger_page(
            state, principal.actor, finalite, filters, PAGE_ROWS, (page - 1) * PAGE_ROWS
        )
        query = {k: v for k, v in form.items() if v}
        if finalite:
            query["finalite"] = finalite

        def page_url(number: int) -> str:
            return "/console/dpo?" + urlencode({**query, "page": number}) + "#journal"

        last = max(1, -(-found.total // PAGE_ROWS))
        return render(
            request,
            "console/admin_dpo.html",
            {
                "title": "Registre et journal d'audit",
                "found": found,
                "form": form,
                "page": page,
                "pages": last,
                "prev_url": page_url(page - 1) if page > 1 else None,
                "next_url": page_url(page + 1) if page < last else None,
                "grants": grant_rows(state.gov.policy),
                "controller": state.gov.policy.controller,
                "purposes": sorted(state.gov.policy.purposes),
                "finalite": found.purpose,
                **purpose_context(state, principal, "ledger", found.purpose),
            },
        )

    return guarded(request, principal, "ledger", finalite, build)


@router.post("/console/dpo/verification", openapi_extra=governed("agent", "ledger", "from_query"))
def verify_form(
    request: Request,
    principal: AgentPrincipal,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    finalite: Annotated[str, Form(pattern=_optional(PURPOSE_PATTERN))] = "",
) -> Response:
    """Verify the chain; htmx gets the result alone, a plain form the result page."""
    check_csrf(request, csrf_token)
    state = web_state(request)

    def build() -> Response:
        report = verify_ledger(state, principal.actor, finalite or None)
        fragment = request.headers.get("hx-request") == "true"
        return render(
            request,
            "console/admin_verify_result.html" if fragment else "console/admin_verify.html",
            {
                "title": "Vérification du journal d'audit",
                "report": report,
                **purpose_context(state, principal, "ledger", report.purpose),
            },
        )

    return guarded(request, principal, "ledger", finalite or None, build, page="/console/dpo")
