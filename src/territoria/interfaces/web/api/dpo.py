"""The DPO's API: the audit ledger searched and verified, and the public register.

Searching the ledger and verifying its chain are consultations of the ledger (view
``ledger``, purpose ``audit_control`` in the sandbox's policy): each is decided by
``Governance.authorise`` and leaves its own ledger record, a refusal included. The register of
processing activities (GDPR art. 30) is a public document: it names no agent and needs no
login. The console's DPO page (``pages/console_admin.py``) calls the helpers of this module.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from territoria.core.types import LEGAL_BASIS_LABELS
from territoria.governance import load_anchors, register_rows
from territoria.governance.ledger import LedgerRecord
from territoria.governance.policy import OUTPUT_LABELS, VIEW_LABELS, Policy
from territoria.governance.register_export import REGISTER_COLUMNS
from territoria.interfaces.web.api.persons import ERRORS
from territoria.interfaces.web.api.schemas import PURPOSE_PATTERN, SUBJECT_PATTERN
from territoria.interfaces.web.meta import governed
from territoria.interfaces.web.principals import AgentPrincipal, web_state
from territoria.interfaces.web.state import WebState

__all__ = [
    "ACTOR_PATTERN",
    "ANCHORS_FILE",
    "LedgerFilters",
    "grant_rows",
    "ledger_page",
    "router",
    "verify_ledger",
]

router = APIRouter(tags=["DPO et transparence"])

ANCHORS_FILE = "audit-anchors.jsonl"  # as ``territoria audit head --save`` writes it
ACTOR_PATTERN = r"^[A-Za-z0-9._:?\-]{1,128}$"
Purpose = Annotated[
    str | None,
    Query(
        pattern=PURPOSE_PATTERN,
        description="Finalité sous laquelle on agit (par défaut : celle qui ouvre le journal)",
    ),
]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- ledger search -----------------------------------------------------------------------------


class LedgerFilters(BaseModel):
    """What the DPO looks for in the ledger (every filter given must match)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    actor: str | None = None
    purpose: str | None = None
    person: str | None = None
    decision: Literal["allow", "deny"] | None = None
    kind: Literal["read", "write", "policy"] | None = None
    since: date | None = None
    until: date | None = None

    def query(self) -> dict[str, Any]:
        return {
            "actor": self.actor,
            "purpose": self.purpose,
            "person": self.person,
            "decision": self.decision,
            "kind": self.kind,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
        }


class LedgerRecordOut(_Out):
    seq: int
    at: str
    kind: str
    actor: str
    service: str
    role: str
    purpose: str
    legal_basis: str
    view: str
    decision: str
    rule: str
    reason: str
    persons: list[str] = Field(description="Clés pseudonymes des personnes concernées")
    fields: list[str]
    hash: str


class LedgerPageOut(_Out):
    purpose: str | None
    total: int = Field(description="Enregistrements qui répondent aux filtres")
    ledger_count: int = Field(description="Enregistrements de tout le journal")
    limit: int
    offset: int
    records: list[LedgerRecordOut]


def _record_out(record: LedgerRecord) -> LedgerRecordOut:
    e = record.entry
    return LedgerRecordOut(
        seq=record.seq,
        at=record.at,
        kind=e.kind,
        actor=e.actor,
        service=e.service,
        role=e.role,
        purpose=e.purpose,
        legal_basis=e.legal_basis,
        view=e.view,
        decision=e.decision,
        rule=e.rule,
        reason=e.reason,
        persons=list(e.persons),
        fields=list(e.fields),
        hash=record.hash,
    )


def ledger_page(
    state: WebState,
    actor: str,
    wanted: str | None,
    filters: LedgerFilters,
    limit: int = 50,
    offset: int = 0,
) -> LedgerPageOut:
    """One page of the ledger, newest first; the search itself is recorded (and refused to
    anyone whose grants do not open the ledger)."""
    gov = state.gov
    with state.lock:
        purpose = wanted or gov.purpose_for(actor, "ledger")
        persons = (filters.person,) if filters.person else ()
        gov.authorise(actor, purpose, "ledger", persons=persons)
        query = filters.query()
        records = gov.ledger.records(**query, limit=limit, offset=offset)
        total = gov.ledger.count(**query)
        ledger_count = gov.ledger.head().count
    return LedgerPageOut(
        purpose=purpose,
        total=total,
        ledger_count=ledger_count,
        limit=limit,
        offset=offset,
        records=[_record_out(r) for r in records],
    )


@router.get(
    "/audit/records",
    response_model=LedgerPageOut,
    responses=ERRORS,
    openapi_extra=governed("agent", "ledger", "from_query"),
    summary="Rechercher dans le journal d'audit (DPO) ; la recherche est journalisée",
)
def audit_records(
    request: Request,
    principal: AgentPrincipal,
    purpose: Purpose = None,
    actor: Annotated[str | None, Query(pattern=ACTOR_PATTERN, description="Acteur")] = None,
    record_purpose: Annotated[
        str | None, Query(pattern=PURPOSE_PATTERN, description="Finalité des enregistrements")
    ] = None,
    person: Annotated[
        str | None, Query(pattern=SUBJECT_PATTERN, description="Clé de personne (P-…)")
    ] = None,
    decision: Literal["allow", "deny"] | None = None,
    kind: Literal["read", "write", "policy"] | None = None,
    since: Annotated[date | None, Query(description="Depuis ce jour (inclus)")] = None,
    until: Annotated[date | None, Query(description="Jusqu'à ce jour (inclus)")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=100_000_000)] = 0,
) -> LedgerPageOut:
    filters = LedgerFilters(
        actor=actor,
        purpose=record_purpose,
        person=person,
        decision=decision,
        kind=kind,
        since=since,
        until=until,
    )
    return ledger_page(web_state(request), principal.actor, purpose, filters, limit, offset)


# -- verification ------------------------------------------------------------------------------


class HeadOut(_Out):
    count: int
    hash: str
    at: str


class ProblemOut(_Out):
    seq: int | None = Field(description="Enregistrement concerné (aucun : la tête, une ancre)")
    code: str
    message: str


class VerifyOut(_Out):
    purpose: str | None
    ok: bool
    count: int = Field(description="Enregistrements vérifiés")
    head: HeadOut
    problems: list[ProblemOut]
    seconds: float
    records_per_second: float | None
    anchors: int = Field(description="Têtes ancrées hors du magasin comparées à la chaîne")


def verify_ledger(state: WebState, actor: str, wanted: str | None) -> VerifyOut:
    """Recompute the whole chain, with the anchors saved by ``audit head --save`` if any."""
    gov = state.gov
    path = state.config.root / ANCHORS_FILE
    with state.lock:
        purpose = wanted or gov.purpose_for(actor, "ledger")
        gov.authorise(actor, purpose, "ledger")
        anchors = load_anchors(path) if path.is_file() else []
        report = gov.ledger.verify(anchors)
    return VerifyOut(
        purpose=purpose,
        ok=report.ok,
        count=report.count,
        head=HeadOut(**report.head.as_dict()),
        problems=[ProblemOut(**p.as_dict()) for p in report.problems],
        seconds=round(report.seconds, 3),
        records_per_second=round(report.count / report.seconds) if report.seconds > 0 else None,
        anchors=len(anchors),
    )


@router.post(
    "/audit/verify",
    response_model=VerifyOut,
    responses=ERRORS,
    openapi_extra=governed("agent", "ledger", "from_query"),
    summary="Vérifier toute la chaîne du journal d'audit (DPO)",
)
def audit_verify(request: Request, principal: AgentPrincipal, purpose: Purpose = None) -> VerifyOut:
    return verify_ledger(web_state(request), principal.actor, purpose)


# -- the register ------------------------------------------------------------------------------


class ColumnOut(_Out):
    key: str
    title: str


class ControllerOut(_Out):
    name: str
    address: str
    dpo_name: str
    dpo_contact: str


class RegisterOut(_Out):
    controller: ControllerOut
    columns: list[ColumnOut]
    purposes: list[dict[str, str]] = Field(description="Une ligne par traitement, par colonne")


@router.get(
    "/register",
    response_model=RegisterOut,
    openapi_extra=governed("public"),
    summary="Registre des activités de traitement (RGPD art. 30), public",
)
def register(request: Request) -> RegisterOut:
    state = web_state(request)
    with state.lock:
        rows = register_rows(state.gov.policy, state.gov.catalog)
    c = state.gov.policy.controller
    return RegisterOut(
        controller=ControllerOut(
            name=c.name, address=c.address, dpo_name=c.dpo_name, dpo_contact=c.dpo_contact
        ),
        columns=[ColumnOut(key=k, title=t) for k, t in REGISTER_COLUMNS],
        purposes=rows,
    )


def grant_rows(policy: Policy) -> list[dict[str, Any]]:
    """Each purpose with its service, basis, output and the roles that may act under it."""
    rows = []
    for purpose in policy.purposes.values():
        grants = [
            {
                "role": role.name,
                "role_id": role.id,
                "service": policy.services[role.service].name
                if role.service in policy.services
                else role.service,
                "views": [VIEW_LABELS.get(v, v) for v in grant.views],
                "agents": sum(1 for a in policy.agents.values() if role.id in a.roles),
            }
            for role in policy.roles.values()
            for grant in role.grants
            if grant.purpose == purpose.id
        ]
        service = policy.services.get(purpose.service)
        rows.append(
            {
                "id": purpose.id,
                "name": purpose.name,
                "service": service.name if service else purpose.service,
                "legal_basis": LEGAL_BASIS_LABELS.get(purpose.legal_basis or "", "manquante"),
                "output": OUTPUT_LABELS[purpose.output],
                "grants": grants,
            }
        )
    return rows
