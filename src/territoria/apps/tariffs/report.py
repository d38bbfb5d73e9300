"""One JSON-ready summary of a screening run, for ``territoria tariffs screen --json`` and pages."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from territoria.apps.tariffs.bands import BandAssignment
from territoria.apps.tariffs.non_take_up import Worklist
from territoria.apps.tariffs.openfisca_sim import Screening


def screening_summary(
    screening: Screening, bands: Sequence[BandAssignment], worklist: Worklist
) -> dict[str, Any]:
    """Counts and amounts of the run, per item, with the worklist and the bands."""
    per_item: dict[str, dict[str, float]] = {}
    for entry in worklist.entries:
        for line in entry.lines:
            item = per_item.setdefault(line.item, {"households": 0, "monthly_amount": 0.0})
            item["households"] += 1
            item["monthly_amount"] = round(item["monthly_amount"] + (line.monthly_amount or 0), 2)
    return {
        "reference_month": screening.period,
        "computed_with": screening.versions,
        "households": len(screening.households),
        "households_assessed": len(screening.households) - len(worklist.households_unknown),
        "households_unknown": len(worklist.households_unknown),
        "households_listed": len(worklist.entries),
        "monthly_forgone": round(sum(e.monthly_total for e in worklist.entries), 2),
        "per_item": per_item,
        "timings_s": {k: round(v, 3) for k, v in screening.timings.items()},
        "worklist": worklist.model_dump(mode="json"),
        "bands": [b.model_dump(mode="json") for b in bands],
    }
