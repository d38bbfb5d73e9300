"""The residents' transparency ledger: « qui a consulté mes données, quand, pourquoi ».

Built from the audit ledger: for one person, every allowed read that touched them, with the
service, the purpose, its legal basis, what was looked at (field titles) and when. Entries the
law requires to defer (a control purpose's ``transparency_delay``) stay hidden until their
date; an entry never names another person, nor the agent (only the service), so that reading
it reveals nothing of anyone else.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from territoria.core.contract import SourceContract
from territoria.core.types import LEGAL_BASIS_LABELS
from territoria.governance.ledger import AuditLedger
from territoria.governance.policy import VIEW_LABELS, Policy

__all__ = ["AccessEntry", "transparency_entries"]


@dataclass(frozen=True)
class AccessEntry:
    at: str
    service: str
    purpose: str
    legal_basis: str
    what: str
    data: list[str]
    by_yourself: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _titles(fields: tuple[str, ...], contracts: dict[str, SourceContract]) -> list[str]:
    out = []
    for name in fields:
        source, _, field_name = name.partition(".")
        contract = contracts.get(source)
        try:
            title = contract.field(field_name).title if contract else None
        except KeyError:
            title = None
        out.append(f"{contract.title if contract else source} : {title or field_name}")
    return out


def transparency_entries(
    ledger: AuditLedger,
    policy: Policy,
    contracts: dict[str, SourceContract],
    person: str,
    today: date,
    limit: int = 500,
) -> list[AccessEntry]:
    """Who looked at this person's data, newest first (deferred entries hidden until due)."""
    out = []
    for record in ledger.records(person=person, kind="read", decision="allow", limit=limit):
        entry = record.entry
        if entry.defer_until and entry.defer_until > today.isoformat():
            continue
        service = policy.services.get(entry.service)
        purpose = policy.purposes.get(entry.purpose)
        out.append(
            AccessEntry(
                at=record.at,
                service=service.name if service else entry.service,
                purpose=purpose.name if purpose else entry.purpose,
                legal_basis=LEGAL_BASIS_LABELS.get(entry.legal_basis, entry.legal_basis),
                what=VIEW_LABELS.get(entry.view, entry.view),
                data=_titles(entry.fields, contracts),
                by_yourself=entry.actor == f"resident:{person}",
            )
        )
    return out
