"""The residents' portal (``/portail``): my services, who accessed my data, my consents and
objections, my rights (art. 15 export, rectification) and the notices of the algorithms that
help decisions about residents (CRPA L311-3-1).

Pages call the same helpers as the resident API (``api.me``), which call the governance. Every
form posts its CSRF token and answers with a redirect (post/redirect/get) and a message kept
in the session for the next page; the consent and objection forms also work through htmx,
which swaps only the purpose's card. Every page works without JavaScript.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from territoria.core.errors import GovernanceError
from territoria.governance import render_access_html
from territoria.governance.policy import CONTRIBUTION_LABELS, Purpose
from territoria.interfaces.web.api.me import (
    RESIDENT_PURPOSE,
    ChoiceChangeOut,
    ChoiceOut,
    RectificationIn,
    change_choice,
    export,
    my_accesses,
    my_choices,
    my_receipt,
    my_records,
    my_rectifications,
    rectify,
)
from territoria.interfaces.web.api.schemas import PURPOSE_PATTERN
from territoria.interfaces.web.meta import governed
from territoria.interfaces.web.principals import Principal, ResidentPrincipal, web_state
from territoria.interfaces.web.security import check_csrf
from territoria.interfaces.web.state import WebState
from territoria.interfaces.web.templates import render

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
PurposePath = Annotated[str, Path(pattern=PURPOSE_PATTERN)]
FormText = Annotated[str | None, Form()]
_ISO_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_RECEIPT = r"^(CR|OB)-[0-9A-F]{16}$"
try:
    _PARIS: ZoneInfo | None = ZoneInfo("Europe/Paris")
except ZoneInfoNotFoundError:  # no tz database: times stay in UTC
    _PARIS = None


def _meta(view: str | None) -> dict[str, Any]:
    return governed("resident", view, RESIDENT_PURPOSE if view else None)


def shown(value: Any) -> str:
    """A value as a resident reads it: French dates and decimals, « — » when empty."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "oui" if value else "non"
    if isinstance(value, float):
        return f"{value:.2f}".replace(".", ",")
    text = str(value)
    day = _ISO_DAY.match(text)
    return f"{day[3]}/{day[2]}/{day[1]}" if day else text


def when(iso: str | None) -> str:
    """An ISO timestamp as « 03/06/2026 à 14 h 05 » (Paris time)."""
    if not iso:
        return "—"
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if _PARIS is not None and moment.tzinfo is not None:
        moment = moment.astimezone(_PARIS)
    return moment.strftime("%d/%m/%Y à %H h %M")


def _page(request: Request, template: str, title: str, **context: Any) -> Response:
    flash = request.session.pop("flash", None) if "session" in request.scope else None
    status = int(context.pop("status_code", 200))
    full = {"title": title, "flash": flash, "shown": shown, "when": when, **context}
    return render(request, f"portal/{template}", full, status_code=status)


def _flash(request: Request, text: str, **extra: str) -> None:
    request.session["flash"] = {"text": text, **extra}


def _is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


# -- my services ------------------------------------------------------------------------------


@router.get("/portail", openapi_extra=_meta("person_360"))
def services(request: Request, principal: ResidentPrincipal) -> Response:
    records = my_records(web_state(request), principal.actor)
    return _page(request, "services.html", "Mes services", records=records)


@router.get("/portail/consultations", openapi_extra=_meta("rights_export"))
def accesses(
    request: Request,
    principal: ResidentPrincipal,
    tout: Annotated[bool, Query(description="Montrer aussi mes propres consultations")] = False,
) -> Response:
    found = my_accesses(web_state(request), principal.actor).accesses
    listed = found if tout else [a for a in found if not a.by_yourself]
    return _page(
        request,
        "accesses.html",
        "Qui a consulté mes données",
        accesses=listed,
        hidden=len(found) - len(listed),
        everything=tout,
    )


# -- consents and objections ------------------------------------------------------------------


@router.get("/portail/choix", openapi_extra=_meta("rights_export"))
def choices(request: Request, principal: ResidentPrincipal) -> Response:
    found = my_choices(web_state(request), principal.actor)
    return _page(request, "choices.html", "Consentements et oppositions", choices=found)


def _changed(
    request: Request,
    kind: Literal["consent", "objection"],
    purpose_id: str,
    change: ChoiceChangeOut,
) -> Response:
    """After a change: the purpose's card (htmx), else a redirect to the page with a message."""
    state = web_state(request)
    purpose = state.gov.policy.purposes[purpose_id]
    text = _choice_message(kind, purpose, change)
    if not _is_htmx(request):
        _flash(request, text, receipt=change.record_id or "")
        return RedirectResponse(f"/portail/choix#choix-{purpose_id}", status_code=303)
    service = state.gov.policy.services.get(purpose.service)
    card = ChoiceOut(
        purpose=purpose.id,
        name=purpose.name,
        description=" ".join((purpose.description or purpose.name).split()),
        service_name=service.name if service else purpose.service,
        legal_basis=purpose.legal_reference,
        active=change.active,
        since=change.at,
        record_id=change.record_id,
    )
    context = {"choice": card, "kind": kind, "message": text, "receipt": change.record_id}
    return _page(request, "_choice_card.html", purpose.name, **context)


def _choice_message(
    kind: Literal["consent", "objection"], purpose: Purpose, change: ChoiceChangeOut
) -> str:
    if kind == "consent":
        verb = "donné" if change.active else "retiré"
        text = f"Consentement {verb} pour « {purpose.name} »"
    else:
        verb = "enregistrée" if change.active else "levée"
        text = f"Opposition {verb} pour « {purpose.name} »"
    if not change.changed:
        return f"{text} : c'était déjà votre choix, rien n'a changé."
    return f"{text}. L'effet est immédiat."


def _check(request: Request, token: str | None) -> None:
    check_csrf(request, token)


def _action(value: str | None, on: str, off: str) -> bool:
    if value not in (on, off):
        raise GovernanceError(
            "action inconnue : rechargez la page et recommencez",
            code="action_invalid",
            field_name="action",
            expected=f"{on} ou {off}",
        )
    return value == on


@router.post("/portail/choix/consentements/{purpose}", openapi_extra=_meta("rights_export"))
def post_consent(
    request: Request,
    principal: ResidentPrincipal,
    purpose: PurposePath,
    csrf_token: FormText = None,
    action: FormText = None,
) -> Response:
    _check(request, csrf_token)
    give = _action(action, "give", "withdraw")
    change = change_choice(web_state(request), principal.actor, "consent", purpose, give)
    return _changed(request, "consent", purpose, change)


@router.post("/portail/choix/oppositions/{purpose}", openapi_extra=_meta("rights_export"))
def post_objection(
    request: Request,
    principal: ResidentPrincipal,
    purpose: PurposePath,
    csrf_token: FormText = None,
    action: FormText = None,
    reason: FormText = None,
) -> Response:
    _check(request, csrf_token)
    objected = _action(action, "object", "lift")
    change = change_choice(
        web_state(request), principal.actor, "objection", purpose, objected, (reason or "")[:500]
    )
    return _changed(request, "objection", purpose, change)


@router.get("/portail/choix/recus/{record_id}", openapi_extra=_meta("rights_export"))
def choice_receipt(
    request: Request,
    principal: ResidentPrincipal,
    record_id: Annotated[str, Path(pattern=_RECEIPT)],
) -> Response:
    """A consent receipt (ISO/IEC TS 27560) or objection record, as a JSON file."""
    data = my_receipt(web_state(request), principal.actor, record_id)
    return _download(json.dumps(data, ensure_ascii=False, indent=2), f"recu-{record_id}.json")


def _download(text: str, filename: str, media_type: str = "application/json") -> Response:
    return Response(
        text.encode("utf-8"),
        media_type=f"{media_type}; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{filename}"'},
    )


# -- my rights --------------------------------------------------------------------------------


def _rectifiable(state: WebState) -> list[dict[str, Any]]:
    """The sources a resident may ask to correct, with their fields' titles."""
    gov = state.gov
    out = []
    for source in sorted(gov.policy.purposes[RESIDENT_PURPOSE].sources):
        contract = gov.contracts.get(source)
        if contract is None:
            continue
        service = gov.policy.services.get(contract.owner_service)
        out.append(
            {
                "source": source,
                "title": contract.title,
                "service_name": service.name if service else contract.owner_service,
                "fields": [(f.name, f.title or f.name) for f in contract.fields],
            }
        )
    return out


def _rights_page(
    request: Request,
    principal: Principal,
    form: dict[str, str],
    error: str | None = None,
    status: int = 200,
) -> Response:
    state = web_state(request)
    requests = []
    for item in reversed(my_rectifications(state, principal.actor)):
        contract = state.gov.contracts.get(item.source)
        service = state.gov.policy.services.get(item.owner_service)
        spec = (
            next((f for f in contract.fields if f.name == item.field), None) if contract else None
        )
        requests.append(
            {
                "request_id": item.request_id,
                "at": item.created_at,
                "source": contract.title if contract else item.source,
                "field": (spec.title if spec else None) or item.field,
                "service": service.name if service else item.owner_service,
            }
        )
    return _page(
        request,
        "rights.html",
        "Mes droits",
        sources=_rectifiable(state),
        form=form,
        error=error,
        requests=requests,
        dpo=state.gov.policy.controller,
        status_code=status,
    )


@router.get("/portail/droits", openapi_extra=_meta("rights_export"))
def rights(
    request: Request,
    principal: ResidentPrincipal,
    source: Annotated[str | None, Query(pattern=PURPOSE_PATTERN)] = None,
    record: Annotated[str | None, Query(max_length=128)] = None,
) -> Response:
    return _rights_page(request, principal, {"source": source or "", "record_id": record or ""})


@router.get("/portail/droits/export.json", openapi_extra=_meta("rights_export"))
def export_json(request: Request, principal: ResidentPrincipal) -> Response:
    data = export(web_state(request), principal.actor)
    text = json.dumps(data, ensure_ascii=False, indent=2, default=str)
    return _download(text, "mes-donnees.json")


@router.get("/portail/droits/export.html", openapi_extra=_meta("rights_export"))
def export_html(request: Request, principal: ResidentPrincipal) -> Response:
    """The readable export: a self-contained page with its own style (and its own CSP)."""
    page = render_access_html(export(web_state(request), principal.actor))
    response = _download(page, "mes-donnees.html", "text/html")
    response.headers["content-security-policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return response


_FORM_ERRORS = frozenset({"record_not_yours", "field_unknown"})


@router.post("/portail/droits/rectification", openapi_extra=_meta("rights_export"))
def post_rectification(
    request: Request,
    principal: ResidentPrincipal,
    csrf_token: FormText = None,
    target: FormText = None,
    record_id: FormText = None,
    value: FormText = None,
    reason: FormText = None,
) -> Response:
    _check(request, csrf_token)
    source, _, field = (target or "").partition(".")
    form = {
        "source": source,
        "field": field,
        "record_id": (record_id or "").strip(),
        "value": (value or "").strip(),
        "reason": (reason or "").strip(),
    }
    missing = [k for k in ("source", "field", "record_id", "value") if not form[k]]
    if missing:
        text = "Indiquez la donnée à corriger, le numéro de la fiche et la valeur exacte."
        return _rights_page(request, principal, form, text, 422)
    try:
        body = RectificationIn.model_validate(form)
    except ValueError:
        return _rights_page(
            request, principal, form, "Saisie invalide : vérifiez chaque champ.", 422
        )
    state = web_state(request)
    try:
        filed = rectify(state, principal.actor, body)
    except GovernanceError as exc:
        if exc.code not in _FORM_ERRORS:
            raise
        return _rights_page(request, principal, form, str(exc.message), 400)
    service = state.gov.policy.services.get(filed.owner_service)
    service_name = service.name if service else filed.owner_service
    _flash(
        request,
        f"Demande {filed.request_id} transmise au service « {service_name} », "
        "qui vous répondra. Rien n'est modifié avant son examen.",
    )
    return RedirectResponse("/portail/droits#demandes", status_code=303)


# -- algorithms -------------------------------------------------------------------------------


def _notice(state: WebState, purpose: Purpose, mine: set[str]) -> dict[str, Any]:
    """One purpose's notice as the page shows it, with the resident's sources it processes."""
    gov, notice = state.gov, purpose.algorithm
    assert notice is not None
    data = []
    for source, wanted in sorted(purpose.algorithm_data().items()):
        contract = gov.contracts.get(source)
        if contract is None:
            continue
        names = [f.name for f in contract.fields] if wanted == "*" else list(wanted)
        titles = {f.name: f.title or f.name for f in contract.fields}
        data.append(
            {
                "source": source,
                "title": contract.title,
                "fields": [titles.get(n, n) for n in names],
                "yours": source in mine,
            }
        )
    service = gov.policy.services.get(purpose.service)
    controller = gov.policy.controller
    return {
        "purpose": purpose,
        "notice": notice,
        "service_name": service.name if service else purpose.service,
        "degree": CONTRIBUTION_LABELS[notice.degree].capitalize(),
        "data": data,
        "yours": [d["title"] for d in data if d["yours"]],
        "explanation": " ".join(notice.explanation.split())
        or f"Écrivez au délégué à la protection des données ({controller.dpo_contact}).",
    }


@router.get("/portail/algorithmes", openapi_extra=_meta("person_360"))
def algorithms(request: Request, principal: ResidentPrincipal) -> Response:
    state = web_state(request)
    mine = {s.source for s in my_records(state, principal.actor).sources}
    notices = [_notice(state, p, mine) for p in state.gov.policy.purposes.values() if p.algorithm]
    return _page(
        request,
        "algorithms.html",
        "Algorithmes publics",
        concerning=[n for n in notices if n["yours"]],
        others=[n for n in notices if not n["yours"]],
        controller=state.gov.policy.controller,
    )
