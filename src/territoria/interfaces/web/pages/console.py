"""The agents' console: choose the purpose you act under, search, open a resident's 360° view.

Every figure and record comes from the governed read, under the purpose the agent chose
(``finalite``); the page says which rule allowed it and that the read is in the ledger (and
shown to the resident). A resident outside the purpose's scope and one who does not exist get
the same page: nothing hints at records the agent may not know of.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from territoria.governance import ReadRequest, ReadResult
from territoria.governance.policy import VIEW_LABELS, Policy
from territoria.interfaces.web.api.schemas import PURPOSE_PATTERN, SUBJECT_PATTERN
from territoria.interfaces.web.meta import governed
from territoria.interfaces.web.principals import AgentPrincipal, Principal, web_state
from territoria.interfaces.web.state import WebState
from territoria.interfaces.web.templates import render

__all__ = ["acting_purposes", "field_titles", "router"]

router = APIRouter(include_in_schema=False)
Finalite = Annotated[str | None, Query(pattern=PURPOSE_PATTERN)]
SEARCH_VIEWS = ("search", "person_360")


def acting_purposes(policy: Policy, actor: str, views: tuple[str, ...]) -> list[dict[str, Any]]:
    """The purposes the agent's grants open for any of these views, with their labels."""
    return [
        {
            "id": purpose.id,
            "name": purpose.name,
            "views": list(grant.views),
            "output": purpose.output,
            "role": role.name,
        }
        for role, grant, purpose in policy.grants_of(actor)
        if any(v in grant.views for v in views)
    ]


def field_titles(state: WebState, source: str, names: list[str]) -> list[tuple[str, str]]:
    """(field, French title) for a source's fields, in the order given."""
    contract = state.gov.contracts.get(source)
    titles = {f.name: (f.title or f.name) for f in contract.fields} if contract else {}
    return [(name, titles.get(name, name)) for name in names]


def _choose(purposes: list[dict[str, Any]], wanted: str | None) -> dict[str, Any] | None:
    if wanted:
        return next((p for p in purposes if p["id"] == wanted), None)
    return purposes[0] if purposes else None


def _read(state: WebState, request: ReadRequest) -> ReadResult:
    with state.lock:
        return state.gov.read(request)


def _search_context(
    state: WebState, principal: Principal, purpose: dict[str, Any] | None, q: str
) -> dict[str, Any]:
    context: dict[str, Any] = {"purpose": purpose, "q": q, "results": None, "result": None}
    if purpose is None or len(q.strip()) < 2 or "search" not in purpose["views"]:
        return context
    result = _read(state, ReadRequest(principal.actor, purpose["id"], "search", query=q, limit=50))
    context.update(result=result, results=(result.data or {}).get("results", []))
    return context


@router.get("/console", openapi_extra=governed("agent", "search", "from_query"))
def console_home(
    request: Request,
    principal: AgentPrincipal,
    finalite: Finalite = None,
    q: Annotated[str, Query(max_length=100)] = "",
) -> Response:
    state = web_state(request)
    purposes = acting_purposes(state.gov.policy, principal.actor, SEARCH_VIEWS)
    purpose = _choose(purposes, finalite)
    context = _search_context(state, principal, purpose, q)
    population = None
    if purpose and "count" in purpose["views"]:
        population = _read(state, ReadRequest(principal.actor, purpose["id"], "count"))
    return render(
        request,
        "console/home.html",
        {
            "title": "Rechercher un usager",
            "purposes": purposes,
            "unknown_purpose": bool(finalite) and purpose is None,
            "population": population,
            "view_labels": VIEW_LABELS,
            **context,
        },
    )


@router.get("/console/recherche", openapi_extra=governed("agent", "search", "from_query"))
def console_search(
    request: Request,
    principal: AgentPrincipal,
    finalite: Finalite = None,
    q: Annotated[str, Query(max_length=100)] = "",
) -> Response:
    """The results fragment (htmx); without htmx, the whole console page."""
    if request.headers.get("hx-request") != "true":
        return console_home(request, principal, finalite, q)
    state = web_state(request)
    purpose = _choose(acting_purposes(state.gov.policy, principal.actor, SEARCH_VIEWS), finalite)
    context = _search_context(state, principal, purpose, q)
    return render(request, "console/_results.html", context)


@router.get("/console/suggestions", openapi_extra=governed("agent", "autocomplete", "from_query"))
def console_suggestions(
    request: Request,
    principal: AgentPrincipal,
    finalite: Finalite = None,
    q: Annotated[str, Query(max_length=60)] = "",
) -> Response:
    """``<option>`` elements for the search field's datalist (identified purposes only)."""
    state = web_state(request)
    purpose = _choose(acting_purposes(state.gov.policy, principal.actor, SEARCH_VIEWS), finalite)
    names: list[str] = []
    if purpose and "autocomplete" in purpose["views"] and len(q.strip()) >= 2:
        result = _read(
            state, ReadRequest(principal.actor, purpose["id"], "autocomplete", query=q, limit=10)
        )
        names = (result.data or {}).get("suggestions", [])
    return render(request, "console/_suggestions.html", {"names": names})


@router.get(
    "/console/personnes/{person}", openapi_extra=governed("agent", "person_360", "from_query")
)
def console_person(
    request: Request,
    principal: AgentPrincipal,
    person: Annotated[str, Path(pattern=SUBJECT_PATTERN)],
    finalite: Finalite = None,
) -> Response:
    state = web_state(request)
    purposes = acting_purposes(state.gov.policy, principal.actor, ("person_360",))
    purpose = _choose(purposes, finalite)
    if purpose is None:
        return render(
            request,
            "console/person.html",
            {"title": "Fiche introuvable", "purpose": None, "result": None, "person": person},
            status_code=404,
        )
    result = _read(state, ReadRequest(principal.actor, purpose["id"], "person_360", subject=person))
    status = {"ok": 200, "denied": 403, "not_found": 404}[result.status]
    blocks = []
    if result.status == "ok":
        for source, block in result.data["sources"].items():
            names = list(result.decision.fields.get(source, ()))
            blocks.append(
                {
                    "source": source,
                    "title": block["title"],
                    "owner_service": state.gov.policy.services.get(block["owner_service"]),
                    "columns": field_titles(state, source, names),
                    "records": block["records"],
                }
            )
    gov_purpose = state.gov.policy.purposes[purpose["id"]]
    return render(
        request,
        "console/person.html",
        {
            "title": "Vue d'ensemble de l'usager" if result.status == "ok" else "Fiche introuvable",
            "purpose": purpose,
            "result": result,
            "person": person,
            "blocks": blocks,
            "deferred": gov_purpose.transparency_delay,
        },
        status_code=status,
    )
