"""Persons under a purpose: search, suggestions, the 360° view, counts and a source's records.

Every route is the governed read (``Governance.read``): one decision, one ledger record.
A refusal answers 403 with the rule; a person outside the purpose's scope and a person who
does not exist both answer the same 404.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from territoria.core.errors import GovernanceError
from territoria.governance import ReadRequest, ReadResult
from territoria.governance.read import NOT_FOUND
from territoria.interfaces.web.api.schemas import (
    PURPOSE_PATTERN,
    SUBJECT_PATTERN,
    CountOut,
    MeOut,
    Person360Out,
    RecordsOut,
    SearchOut,
    SuggestionsOut,
    decision_out,
    guard_rows,
)
from territoria.interfaces.web.errors import error_responses
from territoria.interfaces.web.meta import governed
from territoria.interfaces.web.principals import AgentPrincipal, AnyPrincipal, web_state

__all__ = ["governed_read", "router"]

router = APIRouter(tags=["personnes"])
Purpose = Annotated[
    str, Query(pattern=PURPOSE_PATTERN, description="Finalité du registre sous laquelle on agit")
]
ERRORS = error_responses(s404="Introuvable dans le périmètre de la finalité")


def governed_read(request: Request, read: ReadRequest) -> ReadResult:
    """The governed read, with refusals and absences as API errors."""
    state = web_state(request)
    with state.lock:
        result = state.gov.read(read)
    if result.status == "denied":
        raise GovernanceError(
            f"refusé : {result.decision.reason}",
            code="access_denied",
            details={"rule": result.decision.rule},
        )
    if result.status == "not_found":
        raise GovernanceError(NOT_FOUND, code="person_not_found")
    return result


@router.get(
    "/me",
    response_model=MeOut,
    responses=ERRORS,
    openapi_extra=governed("any"),
    summary="Qui suis-je, et sous quelles finalités puis-je agir",
)
def me(request: Request, principal: AnyPrincipal) -> MeOut:
    policy = web_state(request).gov.policy
    grants = [
        {
            "purpose": grant.purpose,
            "name": purpose.name,
            "views": list(grant.views),
            "output": purpose.output,
        }
        for _role, grant, purpose in policy.grants_of(principal.actor)
    ]
    return MeOut.model_validate(
        {
            "actor": principal.actor,
            "kind": principal.kind,
            "name": principal.name,
            "via": principal.via,
            "grants": grants,
        }
    )


@router.get(
    "/persons",
    response_model=SearchOut,
    responses=ERRORS,
    openapi_extra=governed("agent", "search", "from_query"),
    summary="Rechercher une personne dans la population de la finalité",
)
def search(
    request: Request,
    principal: AgentPrincipal,
    purpose: Purpose,
    q: Annotated[str, Query(min_length=2, max_length=100, description="Nom et prénom")],
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> SearchOut:
    result = governed_read(
        request, ReadRequest(principal.actor, purpose, "search", query=q, limit=limit)
    )
    return SearchOut.model_validate({"decision": decision_out(result.decision), **result.data})


@router.get(
    "/persons/suggestions",
    response_model=SuggestionsOut,
    responses=ERRORS,
    openapi_extra=governed("agent", "autocomplete", "from_query"),
    summary="Suggestions de noms de famille (finalités nominatives seulement)",
)
def suggestions(
    request: Request,
    principal: AgentPrincipal,
    purpose: Purpose,
    prefix: Annotated[str, Query(min_length=2, max_length=60)],
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> SuggestionsOut:
    result = governed_read(
        request, ReadRequest(principal.actor, purpose, "autocomplete", query=prefix, limit=limit)
    )
    return SuggestionsOut.model_validate({"decision": decision_out(result.decision), **result.data})


def person_360(request: Request, actor: str, purpose: str, subject: str | None) -> Person360Out:
    result = governed_read(request, ReadRequest(actor, purpose, "person_360", subject=subject))
    data = result.data
    for source, block in data["sources"].items():
        guard_rows(result.decision, source, block["records"])
    return Person360Out.model_validate({"decision": decision_out(result.decision), **data})


@router.get(
    "/persons/{person}",
    response_model=Person360Out,
    responses=ERRORS,
    openapi_extra=governed("agent", "person_360", "from_query"),
    summary="Vue 360° d'une personne : ce que la finalité permet de voir, rien d'autre",
)
def person(
    request: Request,
    principal: AgentPrincipal,
    purpose: Purpose,
    person: Annotated[str, Path(pattern=SUBJECT_PATTERN, description="Pseudonyme")],
) -> Person360Out:
    return person_360(request, principal.actor, purpose, person)


@router.get(
    "/population",
    response_model=CountOut,
    responses=ERRORS,
    openapi_extra=governed("agent", "count", "from_query"),
    summary="Nombre de personnes dans la population de la finalité",
)
def population(request: Request, principal: AgentPrincipal, purpose: Purpose) -> CountOut:
    result = governed_read(request, ReadRequest(principal.actor, purpose, "count"))
    return CountOut.model_validate({"decision": decision_out(result.decision), **result.data})


@router.get(
    "/sources/{source}/records",
    response_model=RecordsOut,
    responses=ERRORS,
    openapi_extra=governed("agent", "records", "from_query"),
    summary="Fiches d'une source pour la population de la finalité (par pages)",
)
def records(
    request: Request,
    principal: AgentPrincipal,
    purpose: Purpose,
    source: Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{0,63}$")],
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> RecordsOut:
    result = governed_read(
        request,
        ReadRequest(principal.actor, purpose, "records", source=source, limit=limit, offset=offset),
    )
    rows = guard_rows(result.decision, source, result.data["rows"], frozenset({"person"}))
    return RecordsOut.model_validate(
        {"decision": decision_out(result.decision), **result.data, "rows": rows}
    )
