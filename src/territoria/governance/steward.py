"""Data stewards' views, governed: the linkage review queue and quarantined rows.

The review queue shows identifying values of two records to the agents of the linkage
service (view ``review`` under a purpose such as ``identity_resolution``); quarantined rows
hold a delivery's raw values and are shown to the service that owns the source (view
``quarantine``). Both are decided and recorded like every governed read; a source without
any personal field (traffic counts) needs no decision.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

from territoria.core.errors import GovernanceError
from territoria.governance.service import Governance
from territoria.identity import Explanation, Registry, explain_pair
from territoria.identity.registry import Decision as PairDecision
from territoria.ingest.quarantine import export_quarantine

__all__ = ["decide_pair", "explain_records", "quarantine_export", "quarantine_rows", "review_queue"]

_PERSONAL = ("identifying", "sensitive", "special_category")


def _persons(registry: Registry, mentions: list[str]) -> tuple[str, ...]:
    return tuple(sorted({p for m in mentions if (p := registry.person_of(m))}))


def review_queue(
    gov: Governance, actor: str, purpose: str | None, limit: int = 10
) -> tuple[int, list[dict[str, Any]]]:
    """Pending pairs with their explanation, for the linkage service's agents."""
    registry = gov.index
    pending = registry.reviews(limit)
    mentions = [m for item in pending for m in (item["mention_a"], item["mention_b"])]
    gov.authorise(actor, purpose, "review", persons=_persons(registry, mentions))
    return registry.pending_reviews(), pending


def decide_pair(
    gov: Governance,
    actor: str,
    purpose: str | None,
    a: str,
    b: str,
    decision: PairDecision,
    note: str = "",
) -> None:
    """Record an agent's decision on a pair (a write of the resident index, recorded)."""
    persons = _persons(gov.index, [a, b])
    verdict = gov.authorise(actor, purpose, "review", persons=persons)
    unknown = [m for m in (a, b) if gov.index.person_of(m) is None]
    if unknown:  # decided only after the authorisation: existence is no hint to outsiders
        raise GovernanceError(
            f"fiche inconnue de l'index : {unknown[0]}",
            code="mention_unknown",
            hint="« territoria identity review » liste les paires en attente",
        )
    gov.index.decide(a, b, decision, actor, note)
    gov.record(
        verdict,
        kind="write",
        view="review.decide",
        persons=persons,
        reason=f"décision « {decision} » sur la paire {a} / {b}",
    )


def explain_records(
    gov: Governance, actor: str, purpose: str | None, a: str, b: str
) -> Explanation:
    gov.authorise(actor, purpose, "review", persons=_persons(gov.index, [a, b]))
    return explain_pair(gov.store, a, b)


def _personal(gov: Governance, source: str) -> bool:
    contract = gov.catalog.get(source)
    return any(f.category in _PERSONAL for f in contract.fields)


def quarantine_rows(
    gov: Governance,
    actor: str,
    purpose: str | None,
    source: str,
    load_id: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[int, pa.Table]:
    """Quarantined rows of a source, for its owner service (decided and recorded)."""
    if _personal(gov, source):
        gov.authorise(actor, purpose, "quarantine", source=source, owner_only=True)
    return gov.store.quarantine_count(source, load_id), gov.store.quarantine(
        source, load_id, limit, offset
    )


def quarantine_export(
    gov: Governance,
    actor: str,
    purpose: str | None,
    source: str,
    path: Path,
    load_id: str | None = None,
) -> int:
    """Every quarantined row of a source as a CSV for the service or operator that sent it."""
    if _personal(gov, source):
        gov.authorise(actor, purpose, "quarantine", source=source, owner_only=True)
    return export_quarantine(gov.store, source, path, load_id)
