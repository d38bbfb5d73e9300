"""Synergies between services: how many residents two services share, without seeing anyone.

For each pair of services whose sources the purpose counts, the number of persons of the
resident index with a record in both. A count under the minimum cell size (11 by default, the
usual threshold of French statistical secrecy) is published as « moins de 11 », never as a
number, so no small group can be singled out. The result is aggregate only: the ledger record
of the read names no person.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from itertools import combinations
from typing import Any

from territoria.backends import TableDB, marks
from territoria.core.contract import SourceContract
from territoria.governance.decide import Decision
from territoria.governance.policy import Policy

__all__ = ["DEFAULT_MIN_CELL", "SynergyCell", "service_pairs"]

DEFAULT_MIN_CELL = 11


@dataclass(frozen=True)
class SynergyCell:
    service_a: str
    service_b: str
    label_a: str
    label_b: str
    shared: int | None  # None when under the minimum cell size
    published: str  # what may be shown: the count, or « moins de N »

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _persons_by_service(
    db: TableDB, decision: Decision, contracts: dict[str, SourceContract]
) -> dict[str, set[str]]:
    sources = sorted(decision.fields)
    out: dict[str, set[str]] = {}
    if not sources:
        return out
    rows = db.query(
        "SELECT DISTINCT source, person_key FROM id_mentions WHERE source IN ("
        + marks(sources)
        + ")",
        sources,
    )
    for source, person in rows:
        out.setdefault(contracts[str(source)].owner_service, set()).add(str(person))
    return out


def service_pairs(
    db: TableDB,
    policy: Policy,
    decision: Decision,
    contracts: dict[str, SourceContract],
    min_cell: int = DEFAULT_MIN_CELL,
) -> list[SynergyCell]:
    """Every pair of services with the persons they share, small cells suppressed."""
    persons = _persons_by_service(db, decision, contracts)
    services = sorted({contracts[s].owner_service for s in decision.fields})
    cells = []
    for a, b in combinations(services, 2):
        shared = len(persons.get(a, set()) & persons.get(b, set()))
        ok = shared >= min_cell
        cells.append(
            SynergyCell(
                service_a=a,
                service_b=b,
                label_a=policy.services[a].name if a in policy.services else a,
                label_b=policy.services[b].name if b in policy.services else b,
                shared=shared if ok else None,
                published=str(shared) if ok else f"moins de {min_cell}",
            )
        )
    return cells
