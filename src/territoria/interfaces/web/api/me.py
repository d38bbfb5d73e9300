"""The resident's own space through the API (``/api/v1/me/...``): my records, who accessed
them, my consents and objections, the art. 15 export, rectification requests.

Every route acts as the resident under their own purpose (``resident_access``: self only) and
goes through the governance: the governed read, ``who_accessed``, ``change_consent``,
``change_objection``, ``access_export``, ``file_rectification``. The helpers below build the
answers the portal's pages show too, so that pages and API say the same thing.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from territoria.core.errors import GovernanceError
from territoria.governance import (
    ConsentRecord,
    ObjectionRecord,
    ReadRequest,
    access_export,
    file_rectification,
)
from territoria.governance.rights import receipt, rectifications_of
from territoria.interfaces.web.api.schemas import PURPOSE_PATTERN, FieldValue, guard_rows
from territoria.interfaces.web.errors import error_responses
from territoria.interfaces.web.meta import governed
from territoria.interfaces.web.principals import ResidentPrincipal, web_state
from territoria.interfaces.web.state import WebState

__all__ = [
    "RESIDENT_PURPOSE",
    "AccessesOut",
    "ChoiceChangeOut",
    "ChoiceOut",
    "ChoicesOut",
    "MyRecordsOut",
    "RectificationIn",
    "RectificationOut",
    "change_choice",
    "export",
    "my_accesses",
    "my_choices",
    "my_receipt",
    "my_records",
    "rectify",
    "router",
]

RESIDENT_PURPOSE = "resident_access"
router = APIRouter(prefix="/me", tags=["mon espace"])
ERRORS = error_responses(
    s403="Réservé aux résidents, ou jeton CSRF absent", s404="Finalité ou fiche inconnue"
)
PurposePath = Annotated[
    str, Path(pattern=PURPOSE_PATTERN, description="Finalité du registre visée par le choix")
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- my records ------------------------------------------------------------------------------


class FieldOut(_Model):
    field: str
    title: str
    value: FieldValue


class RecordOut(_Model):
    record_id: str | None = Field(description="Numéro de la fiche dans la source")
    fields: list[FieldOut]


class ServiceRecordsOut(_Model):
    source: str
    title: str
    service: str
    service_name: str
    operator: str | None = Field(description="Délégataire qui gère la source, s'il y en a un")
    records: list[RecordOut]


class MyRecordsOut(_Model):
    person: str = Field(description="Votre référence dans l'espace résident (pseudonyme)")
    sources: list[ServiceRecordsOut]


def my_records(state: WebState, actor: str) -> MyRecordsOut:
    """The resident's records in every service, with field titles: the governed read."""
    with state.lock:
        result = state.gov.read(ReadRequest(actor, RESIDENT_PURPOSE, "person_360"))
    if result.status == "denied":
        raise GovernanceError(
            f"refusé : {result.decision.reason}",
            code="access_denied",
            details={"rule": result.decision.rule},
        )
    if result.status == "not_found":  # every record eliminated: nothing held any more
        return MyRecordsOut(person="", sources=[])
    gov, out = state.gov, []
    for source, block in result.data["sources"].items():
        rows = guard_rows(result.decision, source, block["records"])
        contract = gov.contracts[source]
        service = gov.policy.services.get(contract.owner_service)
        key = contract.linkage.record_id
        titles = {f.name: f.title or f.name for f in contract.fields}
        out.append(
            ServiceRecordsOut(
                source=source,
                title=contract.title,
                service=contract.owner_service,
                service_name=service.name if service else contract.owner_service,
                operator=contract.operator.name if contract.operator else None,
                records=[
                    RecordOut(
                        record_id=str(row[key]) if key and row.get(key) is not None else None,
                        fields=[
                            FieldOut(field=name, title=titles.get(name, name), value=value)
                            for name, value in row.items()
                        ],
                    )
                    for row in rows
                ],
            )
        )
    return MyRecordsOut(person=result.data["person"], sources=out)


# -- who accessed my data --------------------------------------------------------------------


class AccessOut(_Model):
    at: str
    service: str = Field(description="Le service (jamais le nom de l'agent)")
    purpose: str
    legal_basis: str
    what: str
    data: list[str]
    by_yourself: bool


class AccessesOut(_Model):
    accesses: list[AccessOut]


def my_accesses(state: WebState, actor: str) -> AccessesOut:
    """Who looked at the resident's data, newest first (« qui a consulté mes données »)."""
    with state.lock:
        entries = state.gov.who_accessed(actor, RESIDENT_PURPOSE, None)
    return AccessesOut(accesses=[AccessOut(**e.as_dict()) for e in entries])


# -- consents and objections -----------------------------------------------------------------


class ChoiceOut(_Model):
    purpose: str
    name: str
    description: str
    service_name: str
    legal_basis: str
    active: bool = Field(description="Consentement donné, ou opposition en cours")
    since: str | None = None
    record_id: str | None = Field(default=None, description="Dernier enregistrement (reçu)")


class HistoryOut(_Model):
    record_id: str
    kind: Literal["consent", "objection"]
    purpose: str
    purpose_name: str
    event: str
    at: str


class ChoicesOut(_Model):
    consents: list[ChoiceOut] = Field(description="Finalités facultatives (sur consentement)")
    objections: list[ChoiceOut] = Field(description="Traitements proactifs (opposition)")
    history: list[HistoryOut]


def _choice(
    state: WebState, purpose_id: str, latest: ConsentRecord | ObjectionRecord | None
) -> ChoiceOut:
    policy = state.gov.policy
    purpose = policy.purposes[purpose_id]
    service = policy.services.get(purpose.service)
    active = latest is not None and latest.event in ("given", "objected")
    return ChoiceOut(
        purpose=purpose.id,
        name=purpose.name,
        description=" ".join((purpose.description or purpose.name).split()),
        service_name=service.name if service else purpose.service,
        legal_basis=purpose.legal_reference,
        active=active,
        since=latest.at if latest else None,
        record_id=latest.record_id if latest else None,
    )


def my_choices(state: WebState, actor: str) -> ChoicesOut:
    """The optional and proactive purposes with the resident's current choice; one ledger record.

    (The consent book is read under the resident's own decision, as ``access_export`` does.)
    """
    gov = state.gov
    with state.lock:
        history = gov.choices(actor, RESIDENT_PURPOSE, None)
    consents: dict[str, ConsentRecord] = {}
    objections: dict[str, ObjectionRecord] = {}
    for record in history:
        if isinstance(record, ConsentRecord):
            consents[record.purpose] = record
        else:
            objections[record.purpose] = record
    purposes = gov.policy.purposes.values()
    names = {p.id: p.name for p in purposes}
    return ChoicesOut(
        consents=[_choice(state, p.id, consents.get(p.id)) for p in purposes if p.optional],
        objections=[_choice(state, p.id, objections.get(p.id)) for p in purposes if p.proactive],
        history=[
            HistoryOut(
                record_id=r.record_id,
                kind="consent" if isinstance(r, ConsentRecord) else "objection",
                purpose=r.purpose,
                purpose_name=names.get(r.purpose, r.purpose),
                event=r.event,
                at=r.at,
            )
            for r in reversed(history)
        ],
    )


class ChoiceChangeOut(_Model):
    purpose: str
    active: bool = Field(description="Consentement donné, ou opposition en cours, après l'appel")
    changed: bool = Field(description="Faux si le choix était déjà celui demandé")
    record_id: str | None = None
    at: str | None = None
    receipt: dict[str, Any] | None = Field(
        default=None, description="Reçu ISO/IEC TS 27560 (consentement) ou enregistrement"
    )


# Asking for the state one is already in changes nothing (PUT is idempotent).
_ALREADY = {"consent_not_given": False, "not_objected": False, "already_objected": True}


def change_choice(
    state: WebState,
    actor: str,
    kind: Literal["consent", "objection"],
    purpose_id: str,
    active: bool,
    reason: str = "",
) -> ChoiceChangeOut:
    """Give or withdraw a consent, object or lift an objection; effective at the next read."""
    gov = state.gov
    with state.lock:
        try:
            record: ConsentRecord | ObjectionRecord
            if kind == "consent":
                record = gov.change_consent(actor, RESIDENT_PURPOSE, None, purpose_id, give=active)
            else:
                record = gov.change_objection(
                    actor, RESIDENT_PURPOSE, None, purpose_id, object_=active, reason=reason
                )
        except GovernanceError as exc:
            if exc.code not in _ALREADY:
                raise
            return ChoiceChangeOut(purpose=purpose_id, active=_ALREADY[exc.code], changed=False)
        shown = _receipt(state, record)
    # The population of a purpose changed: a kept run (a worklist) must not list them any more.
    state.runs.drop(())
    return ChoiceChangeOut(
        purpose=purpose_id,
        active=active,
        changed=True,
        record_id=record.record_id,
        at=record.at,
        receipt=shown,
    )


def _receipt(state: WebState, record: ConsentRecord | ObjectionRecord) -> dict[str, Any]:
    """The receipt naming the resident by their portal pseudonym only."""
    domain = state.gov.policy.purposes[RESIDENT_PURPOSE].domain
    return receipt(record, state.gov.pseudonyms.pseudonym(domain, record.person))


def my_receipt(state: WebState, actor: str, record_id: str) -> dict[str, Any]:
    """One consent receipt or objection record of the resident (never another person's)."""
    gov = state.gov
    with state.lock:
        found = [r for r in gov.choices(actor, RESIDENT_PURPOSE, None) if r.record_id == record_id]
        if not found:
            raise GovernanceError(
                "aucun enregistrement de ce numéro dans vos choix", code="receipt_not_found"
            )
        return _receipt(state, found[0])


# -- export and rectification ----------------------------------------------------------------


class AccessExportOut(_Model):
    """The art. 15 export (see ``territoria.governance.rights.access_export``)."""

    generated_at: str
    controller: dict[str, Any]
    person: str
    records: list[dict[str, Any]]
    links: dict[str, Any]
    purposes: list[dict[str, Any]]
    consents: list[dict[str, Any]]
    rectifications: list[dict[str, Any]]
    accesses: list[dict[str, Any]]


class RectificationIn(_Model):
    source: str = Field(pattern=PURPOSE_PATTERN, description="Source de la fiche")
    record_id: str = Field(min_length=1, max_length=128, description="Numéro de la fiche")
    field: str = Field(pattern=PURPOSE_PATTERN, description="Champ à corriger")
    value: str = Field(min_length=1, max_length=500, description="Valeur demandée")
    reason: str = Field(default="", max_length=1000, description="Motif")


class RectificationOut(_Model):
    request_id: str
    source: str
    record_id: str
    field: str
    requested_value: str
    reason: str
    owner_service: str
    status: str
    created_at: str


def rectify(state: WebState, actor: str, body: RectificationIn) -> RectificationOut:
    """File a rectification request (art. 16), routed to the service that owns the record."""
    with state.lock:
        request = file_rectification(
            state.gov,
            actor,
            RESIDENT_PURPOSE,
            None,
            source=body.source,
            record_id=body.record_id,
            field=body.field,
            value=body.value,
            reason=body.reason,
        )
    return RectificationOut(**request.as_dict())


def my_rectifications(state: WebState, actor: str) -> list[RectificationOut]:
    """The resident's own rectification requests, oldest first (one ledger record)."""
    with state.lock:
        filed = rectifications_of(state.gov, actor, RESIDENT_PURPOSE, None)
    return [RectificationOut(**r.as_dict()) for r in filed]


def export(state: WebState, actor: str) -> dict[str, Any]:
    with state.lock:
        return access_export(state.gov, actor, RESIDENT_PURPOSE, None)


# -- routes ----------------------------------------------------------------------------------


def _meta(view: str) -> dict[str, Any]:
    return governed("resident", view, RESIDENT_PURPOSE)


@router.get(
    "/records",
    response_model=MyRecordsOut,
    responses=ERRORS,
    openapi_extra=_meta("person_360"),
    summary="Mes fiches dans chaque service",
)
def records(request: Request, principal: ResidentPrincipal) -> MyRecordsOut:
    return my_records(web_state(request), principal.actor)


@router.get(
    "/accesses",
    response_model=AccessesOut,
    responses=ERRORS,
    openapi_extra=_meta("rights_export"),
    summary="Qui a consulté mes données (service, finalité, base légale ; jamais l'agent)",
)
def accesses(request: Request, principal: ResidentPrincipal) -> AccessesOut:
    return my_accesses(web_state(request), principal.actor)


@router.get(
    "/choices",
    response_model=ChoicesOut,
    responses=ERRORS,
    openapi_extra=_meta("rights_export"),
    summary="Mes consentements et mes oppositions",
)
def choices(request: Request, principal: ResidentPrincipal) -> ChoicesOut:
    return my_choices(web_state(request), principal.actor)


class ConsentIn(_Model):
    given: bool = Field(description="Vrai : donner le consentement ; faux : le retirer")


class ObjectionIn(_Model):
    objected: bool = Field(description="Vrai : s'opposer ; faux : lever l'opposition")
    reason: str = Field(default="", max_length=500, description="Motif (facultatif)")


@router.put(
    "/consents/{purpose}",
    response_model=ChoiceChangeOut,
    responses=ERRORS,
    openapi_extra=_meta("rights_export"),
    summary="Donner ou retirer mon consentement à une finalité facultative",
)
def put_consent(
    request: Request, principal: ResidentPrincipal, purpose: PurposePath, body: ConsentIn
) -> ChoiceChangeOut:
    return change_choice(web_state(request), principal.actor, "consent", purpose, body.given)


@router.put(
    "/objections/{purpose}",
    response_model=ChoiceChangeOut,
    responses=ERRORS,
    openapi_extra=_meta("rights_export"),
    summary="M'opposer à un traitement proactif (RGPD art. 21), ou lever mon opposition",
)
def put_objection(
    request: Request, principal: ResidentPrincipal, purpose: PurposePath, body: ObjectionIn
) -> ChoiceChangeOut:
    return change_choice(
        web_state(request), principal.actor, "objection", purpose, body.objected, body.reason
    )


@router.get(
    "/export",
    response_model=AccessExportOut,
    responses=ERRORS,
    openapi_extra=_meta("rights_export"),
    summary="Droit d'accès (RGPD art. 15) : tout ce qui est détenu sur moi",
)
def get_export(request: Request, principal: ResidentPrincipal) -> AccessExportOut:
    return AccessExportOut.model_validate(export(web_state(request), principal.actor))


@router.post(
    "/rectifications",
    response_model=RectificationOut,
    status_code=201,
    responses=ERRORS,
    openapi_extra=_meta("rights_export"),
    summary="Demander la rectification d'une donnée (RGPD art. 16), transmise au service",
)
def post_rectification(
    request: Request, principal: ResidentPrincipal, body: RectificationIn
) -> RectificationOut:
    return rectify(web_state(request), principal.actor, body)


@router.get(
    "/rectifications",
    response_model=list[RectificationOut],
    responses=ERRORS,
    openapi_extra=_meta("rights_export"),
    summary="Mes demandes de rectification et leur état",
)
def get_rectifications(request: Request, principal: ResidentPrincipal) -> list[RectificationOut]:
    return my_rectifications(web_state(request), principal.actor)
