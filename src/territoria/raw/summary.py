"""Per-source figures from the load ledger (what the report and the console show)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from territoria.backends import Store
from territoria.ingest.catalog import ContractCatalog


@dataclass(frozen=True)
class SourceSummary:
    source: str
    title: str
    owner_service: str
    loads: int
    failed_loads: int
    rows_loaded: int
    rows_quarantined: int
    last_load: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def source_summaries(store: Store, catalog: ContractCatalog) -> list[SourceSummary]:
    """One line per declared source, from the ledger (no personal data is read)."""
    records = store.loads(limit=1_000_000)
    out = []
    for contract in catalog:
        mine = [r for r in records if r.source == contract.id]
        loaded = [r for r in mine if r.status == "loaded"]
        out.append(
            SourceSummary(
                source=contract.id,
                title=contract.title,
                owner_service=contract.owner_service,
                loads=len(loaded),
                failed_loads=sum(r.status == "failed" for r in mine),
                rows_loaded=sum(r.rows_loaded for r in loaded),
                rows_quarantined=sum(r.rows_quarantined for r in loaded),
                last_load=max((r.finished_at for r in loaded), default=None),
            )
        )
    return out
