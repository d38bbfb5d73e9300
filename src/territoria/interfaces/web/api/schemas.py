"""Public response schemas of the API.

A record's fields depend on the purpose; ``guard_rows`` makes sure no response carries a
field the decision did not open (it fails closed: an internal error rather than a leak), and
the models forbid anything they do not declare.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from territoria.core.errors import TerritoriaError
from territoria.governance import Decision

__all__ = [
    "CountOut",
    "DecisionOut",
    "FieldValue",
    "MeOut",
    "Person360Out",
    "RecordsOut",
    "SearchHit",
    "SearchOut",
    "SourceRecordsOut",
    "SuggestionsOut",
    "decision_out",
    "guard_rows",
]

FieldValue = str | int | float | bool | date | None
PURPOSE_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
SUBJECT_PATTERN = r"^[A-Za-z0-9._:\-]{1,128}$"


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DecisionOut(_Out):
    """The decision point's answer: which rule allowed (or refused) and why."""

    allowed: bool
    rule: str = Field(description="grant:<rôle>:<finalité> ou deny:<motif>")
    reason: str
    purpose: str
    view: str
    output: str = Field(description="identified, pseudonymous ou aggregate")


class SearchHit(_Out):
    person: str = Field(description="Pseudonyme de la personne dans le domaine de la finalité")
    family_name: str | None = None
    given_names: str | None = None
    birth_year: int | None = None


class SearchOut(_Out):
    decision: DecisionOut
    query: str
    results: list[SearchHit]


class SuggestionsOut(_Out):
    decision: DecisionOut
    query: str
    suggestions: list[str]


class SourceRecordsOut(_Out):
    title: str
    owner_service: str
    records: list[dict[str, FieldValue]]


class Person360Out(_Out):
    decision: DecisionOut
    person: str
    sources: dict[str, SourceRecordsOut]


class CountOut(_Out):
    decision: DecisionOut
    persons: int = Field(description="Personnes de la population de la finalité")


class RecordsOut(_Out):
    decision: DecisionOut
    source: str
    total: int
    rows: list[dict[str, FieldValue]]


class GrantOut(_Out):
    purpose: str
    name: str
    views: list[str]
    output: str


class MeOut(_Out):
    actor: str
    kind: str
    name: str
    via: str
    grants: list[GrantOut]


def decision_out(decision: Decision) -> DecisionOut:
    return DecisionOut(
        allowed=decision.allowed,
        rule=decision.rule,
        reason=decision.reason,
        purpose=decision.purpose,
        view=decision.view,
        output=decision.output,
    )


def guard_rows(
    decision: Decision, source: str, rows: list[dict[str, Any]], extra: frozenset[str] = frozenset()
) -> list[dict[str, Any]]:
    """Rows whose keys are all fields the decision opened on this source (else fail closed)."""
    allowed = set(decision.fields.get(source, ())) | extra
    for row in rows:
        if not set(row) <= allowed:
            raise TerritoriaError(
                "réponse refusée : elle contiendrait un champ que la finalité ne voit pas",
                code="internal_error",
            )
    return rows
