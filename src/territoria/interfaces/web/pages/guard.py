"""What a console page shows of the purpose it acts under, and its refusal page.

Every console page acts under a purpose (``finalite``) for one view. It names that purpose,
offers the others the agent's grants open for the view (optionally only those that fit the page,
e.g. the purposes that read every source the page needs), and turns a refusal of the policy
into a 403 page that says which rule refused and under which purposes to retry. The refusal is
already in the ledger: the governance records it before raising.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from territoria.core.errors import GovernanceError
from territoria.governance.policy import VIEW_LABELS, Purpose
from territoria.interfaces.web.pages.console import acting_purposes
from territoria.interfaces.web.principals import Principal, web_state
from territoria.interfaces.web.state import WebState
from territoria.interfaces.web.templates import render

__all__ = ["Offered", "guarded", "purpose_context", "reading", "require_purpose"]

Offered = Callable[[Purpose], bool]
"""Which of the agent's purposes a page offers (all that open its view when not given)."""


def reading(sources: Iterable[str]) -> Offered:
    """The purposes that read every one of these sources."""
    needed = frozenset(sources)
    return lambda purpose: needed.issubset(purpose.sources)


def purpose_context(
    state: WebState,
    principal: Principal,
    view: str,
    purpose: str | None,
    offered: Offered | None = None,
) -> dict[str, Any]:
    """The purpose acted under (its id and name), the purposes the agent may choose instead,
    and the view's label: what every console page and its refusal show."""
    policy = state.gov.policy
    chosen = policy.purposes.get(purpose or "")
    choices = acting_purposes(policy, principal.actor, (view,))
    if offered is not None:
        choices = [p for p in choices if offered(policy.purposes[p["id"]])]
    return {
        "acting": {"id": purpose, "name": chosen.name if chosen else None},
        "choices": choices,
        "view_label": VIEW_LABELS.get(view, view),
    }


def guarded(
    request: Request,
    principal: Principal,
    view: str,
    purpose: str | None,
    build: Callable[[], Response],
    *,
    page: str | None = None,
    offered: Offered | None = None,
) -> Response:
    """``build()``, or the refusal page (403) when the policy refuses it.

    ``purpose``: the one asked for (``None``: the agent's first that opens the view, as the
    governance chose it). ``page``: where to retry under another purpose (a form's page after
    a POST; by default the page asked for). Any other error goes on to the error handlers.
    """
    try:
        return build()
    except GovernanceError as exc:
        if exc.code != "access_denied":
            raise
        state = web_state(request)
        used = purpose or state.gov.purpose_for(principal.actor, view)
        return render(
            request,
            "console/admin_refused.html",
            {
                "title": "Accès refusé",
                "message": exc.message,
                "rule": exc.details.get("rule", ""),
                "retry_path": page or request.url.path,
                **purpose_context(state, principal, view, used, offered),
            },
            status_code=403,
        )


def require_purpose(
    state: WebState, actor: str, purpose: str, view: str, *, recorded_as: str
) -> None:
    """Refuse (``access_denied``, the refusal recorded under ``recorded_as``) unless the
    agent's grants open the purpose for the view: for a page that reads no personal data, so
    that no governed read would refuse it."""
    with state.lock:
        decision = state.gov.decide(actor, purpose, view)
        if not decision.allowed:
            state.gov.record(decision, kind="read", view=recorded_as)
    if not decision.allowed:
        raise GovernanceError(
            f"refusé : {decision.reason}", code="access_denied", details={"rule": decision.rule}
        )
