"""Stewardship: source contracts and their loads, quarantined rows, the linkage review queue
and its decisions, and the synergies between services.

Nothing here decides. ``governance.steward`` (review queue, explanations, pair decisions,
quarantined rows) and ``Governance.synergies`` decide and leave the ledger record; the listing
of contracts and loads carries no personal data and needs no decision. The console's pages
(``pages/console_admin.py``) call the helpers of this module, so a page and the API cannot
show different things.

The acting purpose is the ``purpose`` parameter; without it, the first of the agent's grants
that opens the view (``Governance.purpose_for``). Every response names the purpose used.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from territoria.backends import LoadRecord
from territoria.core.errors import GovernanceError, TerritoriaError
from territoria.core.types import LEGAL_BASIS_LABELS, LOAD_STATUS_LABELS, FieldCategory
from territoria.governance.register_export import plain_durations
from territoria.governance.steward import (
    decide_pair,
    explain_records,
    quarantine_rows,
    review_queue,
)
from territoria.governance.synergies import DEFAULT_MIN_CELL
from territoria.interfaces.web.api.persons import ERRORS
from territoria.interfaces.web.api.schemas import PURPOSE_PATTERN
from territoria.interfaces.web.errors import error_responses
from territoria.interfaces.web.meta import governed
from territoria.interfaces.web.principals import AgentPrincipal, web_state
from territoria.interfaces.web.state import WebState

__all__ = [
    "DECISION_LABELS",
    "MENTION_PATTERN",
    "SOURCE_PATTERN",
    "SYNERGY_EXPLANATION",
    "acting_purpose",
    "distinct_mentions",
    "explanation_of",
    "list_sources",
    "loads_out",
    "quarantine_of",
    "record_decision",
    "review_of",
    "router",
    "synergies_of",
]

router = APIRouter(tags=["intendance des données"])

SOURCE_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
# A record of the resident index: ``source|identifier|slot`` (see ``identity.mentions``).
MENTION_PATTERN = r"^[a-z][a-z0-9_]{0,63}\|[^|/\x00-\x1f]{1,128}\|[a-z][a-z0-9_]{0,31}$"
LOAD_PATTERN = r"^[A-Za-z0-9_.:\-]{1,128}$"
DECISION_LABELS = {"same": "même personne", "different": "personnes différentes"}
_PERSONAL: tuple[FieldCategory, ...] = ("identifying", "sensitive", "special_category")
FATE_LABELS = {"eliminate": "élimination", "archive": "versement aux archives", "sort": "tri"}
SYNERGY_EXPLANATION = (
    "Chaque case compte les personnes de l'index des résidents qui ont au moins une fiche dans "
    "les sources des deux services (sources que la finalité permet de compter). Un effectif "
    "inférieur à {min_cell} est publié « moins de {min_cell} » et jamais en chiffres : c'est le "
    "seuil usuel du secret statistique, qui empêche de reconnaître un petit groupe de "
    "personnes. Aucune personne n'est visible ; la consultation est inscrite au journal "
    "d'audit sans nommer personne."
)

Purpose = Annotated[
    str | None,
    Query(
        pattern=PURPOSE_PATTERN,
        description="Finalité du registre sous laquelle on agit (par défaut : la première "
        "habilitation de l'agent qui ouvre cette vue)",
    ),
]
PAIR_ERRORS = error_responses(s400="Paire invalide (une fiche comparée à elle-même)")
Mention = Annotated[
    str,
    Path(
        pattern=MENTION_PATTERN,
        max_length=230,
        description="Fiche de l'index : source|identifiant|rôle (« | » encodé %7C)",
    ),
]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- sources and loads -------------------------------------------------------------------------


class LoadOut(_Out):
    """One delivery of a source (the load ledger): counts only, no personal data."""

    load_id: str
    source: str
    file_name: str
    status: str = Field(description="loaded, skipped_duplicate, failed ou superseded")
    status_label: str
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    started_at: str
    finished_at: str
    sha256_prefix: str = Field(description="Début de l'empreinte SHA-256 du fichier livré")
    message: str


class LoadsOut(_Out):
    loads: list[LoadOut]


class SourceOut(_Out):
    """A source's data contract, as the steward sees it."""

    id: str
    title: str
    owner_service: str
    owner_service_name: str
    operator: str | None = Field(description="Délégataire qui livre la source, s'il y en a un")
    legal_basis: str
    legal_basis_label: str
    legal_reference: str
    retention: str = Field(description="Durée ISO 8601")
    retention_label: str = Field(description="La durée en mots")
    final_fate: str
    personal: bool = Field(description="La source contient des données personnelles")
    quarantine_purpose: str | None = Field(
        description="Finalité de l'agent qui ouvre la quarantaine de cette source (aucune : refus)"
    )
    last_load: LoadOut | None


class SourcesOut(_Out):
    sources: list[SourceOut]


def loads_out(records: list[LoadRecord]) -> list[LoadOut]:
    return [
        LoadOut(
            load_id=r.load_id,
            source=r.source,
            file_name=r.file_name,
            status=r.status,
            status_label=LOAD_STATUS_LABELS.get(r.status, r.status),
            rows_read=r.rows_read,
            rows_loaded=r.rows_loaded,
            rows_quarantined=r.rows_quarantined,
            started_at=r.started_at,
            finished_at=r.finished_at,
            sha256_prefix=r.content_hash[:12],
            message=r.message,
        )
        for r in records
    ]


def load_sources(state: WebState, actor: str) -> set[str]:
    """Sources whose loads (dates, row counts) the agent may see: those its purposes read, and
    those without personal data. A delivery to another service's source (the CCAS's aid
    files) tells how many residents it concerns: that is not everyone's business."""
    readable = {
        source
        for _role, _grant, purpose in state.gov.policy.grants_of(actor)
        for source in purpose.sources
    }
    return readable | {c.id for c in state.gov.catalog if not c.fields_of(*_PERSONAL)}


def list_sources(state: WebState, actor: str) -> list[SourceOut]:
    """Every contract, its last load if the agent may see it, and whether the agent may open
    its quarantine."""
    gov, out = state.gov, []
    visible = load_sources(state, actor)
    with state.lock:
        for contract in gov.catalog:
            personal = bool(contract.fields_of(*_PERSONAL))
            owner = gov.policy.services.get(contract.owner_service)
            last = loads_out(state.store.loads(contract.id, 1)) if contract.id in visible else []
            out.append(
                SourceOut(
                    id=contract.id,
                    title=contract.title,
                    owner_service=contract.owner_service,
                    owner_service_name=owner.name if owner else contract.owner_service,
                    operator=contract.operator.name if contract.operator else None,
                    legal_basis=contract.legal_basis,
                    legal_basis_label=LEGAL_BASIS_LABELS.get(
                        contract.legal_basis, contract.legal_basis
                    ),
                    legal_reference=contract.legal_reference,
                    retention=contract.retention.duration,
                    retention_label=plain_durations(contract.retention.duration),
                    final_fate=FATE_LABELS.get(
                        contract.retention.final_fate, contract.retention.final_fate
                    ),
                    personal=personal,
                    quarantine_purpose=gov.purpose_for(actor, "quarantine", contract.id)
                    if personal
                    else None,
                    last_load=last[0] if last else None,
                )
            )
    return out


def acting_purpose(
    state: WebState, actor: str, wanted: str | None, view: str, source: str | None = None
) -> str | None:
    """The purpose asked for, else the first of the actor's grants opening the view."""
    return wanted or state.gov.purpose_for(actor, view, source)


@router.get(
    "/sources",
    response_model=SourcesOut,
    responses=ERRORS,
    openapi_extra=governed("agent"),
    summary="Contrats des sources et leur dernier chargement (aucune donnée personnelle)",
)
def sources(request: Request, principal: AgentPrincipal) -> SourcesOut:
    return SourcesOut(sources=list_sources(web_state(request), principal.actor))


@router.get(
    "/loads",
    response_model=LoadsOut,
    responses=ERRORS,
    openapi_extra=governed("agent"),
    summary="Registre des chargements, le plus récent d'abord (aucune donnée personnelle)",
)
def loads(
    request: Request,
    principal: AgentPrincipal,
    source: Annotated[str | None, Query(pattern=SOURCE_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> LoadsOut:
    state = web_state(request)
    visible = load_sources(state, principal.actor)
    with state.lock:
        if source is not None:
            state.gov.catalog.get(source)  # an unknown source is a 404, not an empty list
            if source not in visible:
                raise GovernanceError(
                    "refusé : aucune de vos finalités ne lit cette source (refus par défaut)",
                    code="access_denied",
                    details={"rule": "deny:source_not_in_purpose"},
                )
            records = state.store.loads(source, limit)
        else:
            wanted = sorted(visible)
            records = [r for s in wanted for r in state.store.loads(s, limit)]
            records = sorted(records, key=lambda r: r.started_at, reverse=True)[:limit]
    return LoadsOut(loads=loads_out(records))


# -- quarantine --------------------------------------------------------------------------------


class RejectionOut(_Out):
    """Why a field of a row was rejected; ``value`` is hidden when the purpose cannot see it."""

    field: str | None
    column: str | None = Field(description="Colonne du fichier livré")
    reason: str
    value: str | None
    masked: bool = Field(description="Valeur masquée : la finalité ne voit pas ce champ")


class QuarantineRowOut(_Out):
    load_id: str
    line: int | None = Field(description="Ligne du fichier (CSV)")
    record: int | None = Field(description="Numéro d'enregistrement (JSON, Parquet, tableur)")
    field: str | None
    reason: str
    errors: list[RejectionOut]


class QuarantineOut(_Out):
    source: str
    purpose: str | None = Field(description="Finalité (aucune : source sans donnée personnelle)")
    total: int
    limit: int
    offset: int
    rows: list[QuarantineRowOut]


def _rejections(row: dict[str, Any], visible: frozenset[str] | None) -> list[RejectionOut]:
    raw = json.loads(row["raw"]) if row["raw"] else {}
    errors = json.loads(row["errors"]) if row["errors"] else []
    out = []
    for error in errors or [{"field": row["field"], "reason": row["reason"]}]:
        field, column = error.get("field"), error.get("column")
        shown = visible is None or field in visible
        value = raw.get(column) if shown and column in raw else None
        out.append(
            RejectionOut(
                field=field,
                column=column,
                reason=str(error.get("reason") or row["reason"]),
                value=None if value is None else str(value),
                masked=not shown,
            )
        )
    return out


def quarantine_of(
    state: WebState,
    actor: str,
    wanted: str | None,
    source: str,
    load_id: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> QuarantineOut:
    """Quarantined rows of a source (decided and recorded by ``quarantine_rows``)."""
    gov = state.gov
    with state.lock:
        contract = gov.catalog.get(source)
        personal = bool(contract.fields_of(*_PERSONAL))
        purpose = acting_purpose(state, actor, wanted, "quarantine", source) if personal else None
        total, table = quarantine_rows(gov, actor, purpose, source, load_id, limit, offset)
        visible = None  # a source without personal data: every value may be shown
        if personal and purpose:  # else quarantine_rows has refused
            # Rejected values are shown only for the fields the purpose sees on this source.
            visible = frozenset(gov.decide(actor, purpose, "quarantine").fields.get(source, ()))
    rows = [
        QuarantineRowOut(
            load_id=row["load_id"],
            line=row["line"],
            record=row["record"],
            field=row["field"],
            reason=row["reason"],
            errors=_rejections(row, visible),
        )
        for row in table.to_pylist()
    ]
    return QuarantineOut(
        source=source, purpose=purpose, total=total, limit=limit, offset=offset, rows=rows
    )


@router.get(
    "/sources/{source}/quarantine",
    response_model=QuarantineOut,
    responses=ERRORS,
    openapi_extra=governed("agent", "quarantine", "from_query"),
    summary="Lignes rejetées au chargement, pour le service qui détient la source",
)
def quarantine(
    request: Request,
    principal: AgentPrincipal,
    source: Annotated[str, Path(pattern=SOURCE_PATTERN)],
    purpose: Purpose = None,
    load: Annotated[str | None, Query(pattern=LOAD_PATTERN, description="Un chargement")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> QuarantineOut:
    return quarantine_of(web_state(request), principal.actor, purpose, source, load, limit, offset)


# -- linkage review ----------------------------------------------------------------------------


class EvidenceOut(_Out):
    """One field's comparison and its weight (bits: positive for the same person)."""

    field: str
    level: str
    weight: float
    tf_weight: float = Field(description="Part du poids due à la rareté de la valeur")
    value_a: str
    value_b: str


class ExplanationOut(_Out):
    mention_a: str
    mention_b: str
    probability: float = Field(description="Probabilité que ce soit la même personne")
    total_weight: float
    prior_weight: float = Field(description="Poids a priori (deux fiches au hasard)")
    conflict: str | None
    review_reason: str | None = Field(description="Pourquoi la paire attend un agent")
    fields: list[EvidenceOut]


class ReviewQueueOut(_Out):
    purpose: str | None
    pending: int = Field(description="Paires en attente de décision")
    pairs: list[ExplanationOut]


class PairDecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["same", "different"] = Field(
        description="same : même personne ; different : personnes différentes"
    )
    note: str = Field("", max_length=1000, description="Motif de la décision")


class PairDecisionOut(_Out):
    mention_a: str
    mention_b: str
    decision: str
    decision_label: str
    agent: str
    purpose: str | None
    message: str


def distinct_mentions(a: str, b: str) -> None:
    """A pair is two different records: the same one twice is refused (400)."""
    if a == b:
        raise TerritoriaError(
            "une fiche ne peut pas être comparée à elle-même",
            code="pair_invalid",
            expected="deux fiches différentes de l'index",
        )


def explanation_of(a: str, b: str, data: dict[str, Any]) -> ExplanationOut:
    """An explanation (``Explanation.as_dict``, French keys) as the API's English fields."""
    return ExplanationOut(
        mention_a=a,
        mention_b=b,
        probability=float(data["probabilite"]),
        total_weight=float(data["poids_total"]),
        prior_weight=float(data["poids_a_priori"]),
        conflict=data.get("conflit"),
        review_reason=data.get("motif"),
        fields=[
            EvidenceOut(
                field=str(f["champ"]),
                level=str(f["niveau"]),
                weight=float(f["poids"]),
                tf_weight=float(f.get("dont_frequence") or 0.0),
                value_a=str(f.get("valeur_a") or ""),
                value_b=str(f.get("valeur_b") or ""),
            )
            for f in data.get("champs", [])
        ],
    )


def review_of(state: WebState, actor: str, wanted: str | None, limit: int = 10) -> ReviewQueueOut:
    """The pending pairs, the most uncertain first, with their explanation."""
    with state.lock:
        purpose = acting_purpose(state, actor, wanted, "review")
        total, pending = review_queue(state.gov, actor, purpose, limit)
    pairs = [explanation_of(p["mention_a"], p["mention_b"], p["explanation"]) for p in pending]
    return ReviewQueueOut(purpose=purpose, pending=total, pairs=pairs)


def pair_explanation(
    state: WebState, actor: str, wanted: str | None, a: str, b: str
) -> tuple[str | None, ExplanationOut]:
    """The pair explained with the model in service now (decided and recorded)."""
    distinct_mentions(a, b)
    with state.lock:
        purpose = acting_purpose(state, actor, wanted, "review")
        explanation = explain_records(state.gov, actor, purpose, a, b)
    return purpose, explanation_of(a, b, explanation.as_dict())


def record_decision(
    state: WebState,
    actor: str,
    wanted: str | None,
    a: str,
    b: str,
    decision: Literal["same", "different"],
    note: str,
) -> PairDecisionOut:
    """An agent's decision on a pair: a write of the resident index, in the ledger."""
    distinct_mentions(a, b)
    with state.lock:
        purpose = acting_purpose(state, actor, wanted, "review")
        decide_pair(state.gov, actor, purpose, a, b, decision, note)
    label = DECISION_LABELS[decision]
    return PairDecisionOut(
        mention_a=a,
        mention_b=b,
        decision=decision,
        decision_label=label,
        agent=actor,
        purpose=purpose,
        message=f"décision « {label} » enregistrée : la prochaine liaison la respectera",
    )


@router.get(
    "/review",
    response_model=ReviewQueueOut,
    responses=ERRORS,
    openapi_extra=governed("agent", "review", "from_query"),
    summary="File de revue des rapprochements incertains, avec leur explication",
)
def review(
    request: Request,
    principal: AgentPrincipal,
    purpose: Purpose = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> ReviewQueueOut:
    return review_of(web_state(request), principal.actor, purpose, limit)


@router.get(
    "/review/{mention_a}/{mention_b}",
    response_model=ExplanationOut,
    responses=PAIR_ERRORS,
    openapi_extra=governed("agent", "review", "from_query"),
    summary="Pourquoi deux fiches sont (ou non) la même personne, champ par champ",
)
def explain(
    request: Request,
    principal: AgentPrincipal,
    mention_a: Mention,
    mention_b: Mention,
    purpose: Purpose = None,
) -> ExplanationOut:
    return pair_explanation(web_state(request), principal.actor, purpose, mention_a, mention_b)[1]


@router.post(
    "/review/{mention_a}/{mention_b}/decision",
    response_model=PairDecisionOut,
    responses=PAIR_ERRORS,
    openapi_extra=governed("agent", "review", "from_query"),
    summary="Trancher une paire : même personne ou personnes différentes",
)
def decide(
    request: Request,
    principal: AgentPrincipal,
    mention_a: Mention,
    mention_b: Mention,
    body: PairDecisionIn,
    purpose: Purpose = None,
) -> PairDecisionOut:
    return record_decision(
        web_state(request), principal.actor, purpose, mention_a, mention_b, body.decision, body.note
    )


# -- synergies ---------------------------------------------------------------------------------


class SynergyCellOut(_Out):
    service_a: str
    service_b: str
    label_a: str
    label_b: str
    shared: int | None = Field(description="Effectif, absent sous la taille minimale")
    published: str = Field(description="Ce qui peut être affiché : l'effectif ou « moins de N »")


class ServiceOut(_Out):
    id: str
    label: str


class SynergiesOut(_Out):
    purpose: str
    rule: str
    min_cell: int
    services: list[ServiceOut]
    pairs: list[SynergyCellOut]
    explanation: str


def synergies_of(
    state: WebState, actor: str, wanted: str | None, min_cell: int = DEFAULT_MIN_CELL
) -> SynergiesOut:
    """Residents shared by each pair of services, small cells suppressed (aggregate only)."""
    with state.lock:
        purpose = acting_purpose(state, actor, wanted, "synergies")
        if purpose is None:
            state.gov.authorise(actor, None, "synergies")  # records the refusal, then raises
            raise AssertionError("unreachable: no purpose opens this view")
        decision, cells = state.gov.synergies(actor, purpose, min_cell)
    if not decision.allowed:
        raise GovernanceError(
            f"refusé : {decision.reason}", code="access_denied", details={"rule": decision.rule}
        )
    services: dict[str, str] = {}
    for cell in cells:
        services.setdefault(cell.service_a, cell.label_a)
        services.setdefault(cell.service_b, cell.label_b)
    return SynergiesOut(
        purpose=purpose,
        rule=decision.rule,
        min_cell=min_cell,
        services=[ServiceOut(id=k, label=v) for k, v in sorted(services.items())],
        pairs=[SynergyCellOut(**cell.as_dict()) for cell in cells],
        explanation=SYNERGY_EXPLANATION.format(min_cell=min_cell),
    )


@router.get(
    "/synergies",
    response_model=SynergiesOut,
    responses=ERRORS,
    openapi_extra=governed("agent", "synergies", "from_query"),
    summary="Usagers communs à chaque paire de services, sans voir personne",
)
def synergies(
    request: Request,
    principal: AgentPrincipal,
    purpose: Purpose = None,
    min_cell: Annotated[
        int, Query(ge=DEFAULT_MIN_CELL, le=10_000, description="Taille minimale publiée")
    ] = DEFAULT_MIN_CELL,
) -> SynergiesOut:
    return synergies_of(web_state(request), principal.actor, purpose, min_cell)
