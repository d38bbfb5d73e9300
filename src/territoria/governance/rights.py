"""Residents' rights: the art. 15 access export and rectification requests.

The access export gathers everything held on one person across services: each record with
its fields' titles and categories, the source's owner, legal basis, retention and operator;
the links of the resident index (which records were joined, and each key event); the
purposes that concern them, with their consent or objection state; and the transparency
ledger. It is produced under a rights purpose (the resident's own space, or the DPO's rights
handling), recorded in the ledger, and never names another person: the household appears
as a pseudonym, not as members.

A rectification request (art. 16) is routed to the service that owns the source; it is a
request, never a silent change of a source's data.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass
from importlib import resources
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from territoria.backends import marks
from territoria.core.contract import SourceContract
from territoria.core.errors import GovernanceError
from territoria.core.types import FIELD_CATEGORY_LABELS, LEGAL_BASIS_LABELS
from territoria.governance.consents import ConsentRecord, ObjectionRecord
from territoria.governance.extract import attached_events
from territoria.governance.policy import OUTPUT_LABELS, Purpose
from territoria.governance.service import Acting, Governance
from territoria.governance.transparency import transparency_entries

__all__ = [
    "RECTIFICATION_SCHEMA",
    "Rectification",
    "access_export",
    "file_rectification",
    "receipt",
    "rectifications",
    "rectifications_of",
    "render_access_html",
]

RECTIFICATION_SCHEMA = """
CREATE TABLE IF NOT EXISTS gov_rectifications (
    request_id TEXT PRIMARY KEY, person_key TEXT NOT NULL, source TEXT NOT NULL,
    record_id TEXT NOT NULL, field TEXT NOT NULL, requested_value TEXT NOT NULL,
    reason TEXT NOT NULL, owner_service TEXT NOT NULL, status TEXT NOT NULL,
    created_at TEXT NOT NULL, actor TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS gov_rectifications_service ON gov_rectifications (owner_service)
"""

# Rights by legal basis (GDPR art. 17, 18, 20, 21); access and rectification always apply.
_RIGHTS = {
    "consent": [
        "accès",
        "rectification",
        "effacement",
        "limitation",
        "portabilité",
        "retrait du consentement",
    ],
    "contract": ["accès", "rectification", "effacement", "limitation", "portabilité"],
    "legal_obligation": ["accès", "rectification", "limitation"],
    "public_task": ["accès", "rectification", "limitation", "opposition (art. 21)"],
    "vital_interests": ["accès", "rectification", "effacement", "limitation"],
    "legitimate_interests": [
        "accès",
        "rectification",
        "effacement",
        "limitation",
        "opposition (art. 21)",
    ],
}


def _field_rows(contract: SourceContract, row: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for name, value in row.items():
        spec = contract.field(name)
        out.append(
            {
                "field": name,
                "title": spec.title or name,
                "category": FIELD_CATEGORY_LABELS[spec.category],
                "value": value,
            }
        )
    return out


def _records(gov: Governance, acting: Acting) -> list[dict[str, Any]]:
    """The person's records, then the events attached to them (the lifts of their bins)."""
    found: dict[str, list[dict[str, Any]]] = {
        source: [row for _, row in rows]
        for source, rows in gov.reader.records(acting.decision, [acting.person]).items()
    }
    for source, visible in acting.decision.fields.items():
        if gov.contracts[source].linkage.attached_to is not None:
            events = attached_events(gov, source, acting.person, visible)
            if events:
                found[source] = events
    out = []
    for source, rows in sorted(found.items()):
        contract = gov.contracts[source]
        out.append(
            {
                "source": source,
                "title": contract.title,
                "owner_service": gov.policy.services[contract.owner_service].name
                if contract.owner_service in gov.policy.services
                else contract.owner_service,
                "legal_basis": LEGAL_BASIS_LABELS[contract.legal_basis],
                "legal_reference": contract.legal_reference.strip(),
                "retention": contract.retention.reference or contract.retention.duration,
                "operator": contract.operator.name if contract.operator else None,
                "records": [_field_rows(contract, row) for row in rows],
            }
        )
    return out


def _links(gov: Governance, person: str, domain: str) -> dict[str, Any]:
    mentions = gov.index.mentions_of(person)
    events = gov.db.query(
        "SELECT at, kind, reason FROM id_events WHERE entity_key = ? AND entity = 'person' "
        "ORDER BY at",
        [person],
    )
    households = sorted({str(h) for _, _, h in mentions if h})
    return {
        "records_joined": [
            {"source": s, "record": m.split("|")[1], "role": m.split("|")[2]}
            for m, s, _ in mentions
        ],
        "household": gov.pseudonyms.pseudonym(domain, households[0]) if households else None,
        "events": [{"at": str(a), "kind": str(k), "reason": str(r)} for a, k, r in events],
    }


def _purposes(gov: Governance, person: str, sources: set[str]) -> list[dict[str, Any]]:
    state = gov.consents.current(person)
    out = []
    for purpose in gov.policy.purposes.values():
        if not set(purpose.sources) & sources or purpose.scope.self_only:
            continue
        out.append(_purpose_entry(purpose, state.get(purpose.id)))
    return out


def _purpose_entry(purpose: Purpose, state: str | None) -> dict[str, Any]:
    basis = purpose.legal_basis or ""
    return {
        "purpose": purpose.id,
        "name": purpose.name,
        "service": purpose.service,
        "legal_basis": LEGAL_BASIS_LABELS.get(basis, "non renseignée"),
        "legal_reference": purpose.legal_reference,
        "output": OUTPUT_LABELS[purpose.output],
        "recipients": purpose.recipients,
        "retention": purpose.retention,
        "proactive": purpose.proactive,
        "consent_required": purpose.optional,
        "your_choice": state,
        "rights": _RIGHTS.get(basis, ["accès", "rectification"]),
    }


def access_export(
    gov: Governance, actor: str, acting_purpose: str, subject: str | None
) -> dict[str, Any]:
    """Everything held on a person (art. 15), as JSON-ready data; recorded in the ledger."""
    acting = gov.acting(actor, acting_purpose, subject, "rights_export")
    records = _records(gov, acting)
    sources = {r["source"] for r in records}
    person_pseudonym = gov.pseudonyms.pseudonym(acting.purpose.domain, acting.person)
    export = {
        "generated_at": gov.clock().isoformat(timespec="seconds"),
        "controller": gov.policy.controller.model_dump(exclude={"line"}),
        "person": person_pseudonym,
        "records": records,
        "links": _links(gov, acting.person, acting.purpose.domain),
        "purposes": _purposes(gov, acting.person, sources),
        "consents": [receipt(r, person_pseudonym) for r in gov.consents.history(acting.person)],
        "rectifications": [r.as_dict() for r in _requests_of(gov, acting.person)],
        "accesses": [
            e.as_dict()
            for e in transparency_entries(
                gov.ledger, gov.policy, gov.contracts, acting.person, gov.clock().date()
            )
        ],
    }
    fields = tuple(
        f"{r['source']}.{f['field']}" for r in records for rec in r["records"] for f in rec
    )
    gov.record(
        acting.decision,
        kind="read",
        view="rights_export",
        persons=(acting.person,),
        fields=tuple(sorted(set(fields))),
    )
    return export


def receipt(record: ConsentRecord | ObjectionRecord, pseudonym: str) -> dict[str, Any]:
    """A consent receipt (ISO/IEC TS 27560) or objection record naming the person by the
    pseudonym of the domain it is shown in, never by the index's internal key."""
    own = f"resident:{record.person}"  # a resident acting for themselves: never the raw key
    if isinstance(record, ConsentRecord):
        data = record.as_iso27560()
        data["pii_principal_id"] = pseudonym
        if data.get("recorded_by") == own:
            data["recorded_by"] = f"resident:{pseudonym}"
        return data
    data = {**record.as_dict(), "person": pseudonym}
    if data.get("actor") == own:
        data["actor"] = f"resident:{pseudonym}"
    return data


def render_access_html(export: dict[str, Any]) -> str:
    """The export as a readable, self-contained French page."""
    folder = str(resources.files("territoria.governance") / "templates")
    env = Environment(loader=FileSystemLoader(folder), autoescape=select_autoescape(["html"]))
    return env.get_template("access_export.html").render(export=export)


@dataclass(frozen=True)
class Rectification:
    request_id: str
    source: str
    record_id: str
    field: str
    requested_value: str
    reason: str
    owner_service: str
    status: str
    created_at: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def file_rectification(
    gov: Governance,
    actor: str,
    acting_purpose: str,
    subject: str | None,
    *,
    source: str,
    record_id: str,
    field: str,
    value: str,
    reason: str = "",
) -> Rectification:
    """Route a rectification request (art. 16) to the service that owns the record."""
    acting = gov.acting(actor, acting_purpose, subject, "rights_export")
    contract = gov.contracts.get(source)
    held = {
        m.split("|")[1]
        for (m,) in gov.db.query(
            "SELECT mention_id FROM id_mentions WHERE person_key = ? AND source = ?",
            [acting.person, source],
        )
    }
    if contract is None or record_id not in held:
        raise GovernanceError(
            "aucune fiche de ce numéro ne vous concerne dans cette source",
            code="record_not_yours",
            field_name="record_id",
        )
    if field not in {f.name for f in contract.fields}:
        raise GovernanceError(
            f"champ inconnu de la source {source} : {field}",
            code="field_unknown",
            field_name="field",
            expected=", ".join(f.name for f in contract.fields),
        )
    gov.db.script(RECTIFICATION_SCHEMA)
    request = Rectification(
        request_id="RR-" + secrets.token_hex(6).upper(),
        source=source,
        record_id=record_id,
        field=field,
        requested_value=value,
        reason=reason,
        owner_service=contract.owner_service,
        status="open",
        created_at=gov.clock().isoformat(timespec="seconds"),
    )
    with gov.db.transaction():
        gov.db.insert(
            "gov_rectifications",
            [
                "request_id",
                "person_key",
                "source",
                "record_id",
                "field",
                "requested_value",
                "reason",
                "owner_service",
                "status",
                "created_at",
                "actor",
            ],
            [
                [
                    request.request_id,
                    acting.person,
                    source,
                    record_id,
                    field,
                    value,
                    reason,
                    contract.owner_service,
                    "open",
                    request.created_at,
                    actor,
                ]
            ],
        )
    gov.record(
        acting.decision,
        kind="write",
        view="rectification.request",
        persons=(acting.person,),
        fields=(f"{source}.{field}",),
        reason=f"demande de rectification transmise au service {contract.owner_service}",
    )
    return request


def rectifications_of(
    gov: Governance, actor: str, acting_purpose: str, subject: str | None
) -> list[Rectification]:
    """One person's own rectification requests (the resident's « mes demandes »); recorded."""
    acting = gov.acting(actor, acting_purpose, subject, "rights_export")
    found = _requests_of(gov, acting.person)
    gov.record(acting.decision, kind="read", view="rectification.list", persons=(acting.person,))
    return found


def _requests_of(gov: Governance, person: str) -> list[Rectification]:
    gov.db.script(RECTIFICATION_SCHEMA)
    rows = gov.db.query(
        "SELECT request_id, source, record_id, field, requested_value, reason, owner_service, "
        "status, created_at FROM gov_rectifications WHERE person_key = ? "
        "ORDER BY created_at, request_id",
        [person],
    )
    return [Rectification(*(str(v) for v in r)) for r in rows]


def rectifications(gov: Governance, actor: str, purpose: str) -> list[Rectification]:
    """Requests on the sources a purpose reads (its service's inbox); recorded in the ledger."""
    decision = gov.decide(actor, purpose, "records")
    if not decision.allowed:
        gov.record(decision, kind="read", view="rectification.list")
        raise GovernanceError(f"refusé : {decision.reason}", code="access_denied")
    gov.db.script(RECTIFICATION_SCHEMA)
    sources = sorted(decision.fields)
    rows = (
        gov.db.query(
            "SELECT request_id, source, record_id, field, requested_value, reason, owner_service, "
            "status, created_at, person_key FROM gov_rectifications WHERE source IN ("
            + marks(sources)
            + ") ORDER BY created_at, request_id",
            sources,
        )
        if sources
        else []
    )
    persons = tuple(sorted({str(r[9]) for r in rows}))
    gov.record(decision, kind="read", view="rectification.list", persons=persons)
    return [Rectification(*(str(v) for v in r[:9])) for r in rows]
