"""Pay-as-you-throw waste billing (REOMi / TEOMi): grids, events, billing runs, disputes.

The engine takes plain inputs — pyarrow tables with the ``waste_bins`` and ``waste_lifts``
contracts' field names plus an opaque ``payer`` key (see :mod:`territoria.apps.waste.inputs`) —
and never opens a store: the governed read feeds it.

- :func:`get_grid` / :func:`load_grid`: dated tariff grids (YAML, with their deliberation);
- :func:`clean_events`: double reads removed, bad reads reported, lifts attributed by date;
- :func:`run_billing`: each payer's bill for a period, every line explained;
- :func:`apportion`: a collective building's bill split between its dwellings;
- :func:`open_dispute`, :func:`decide_dispute`, :func:`corrections_due`: contested lifts;
- :func:`simulate`: a proposed grid replayed on last period's events, with ADEME's response.
"""

from territoria.apps.waste.billing import (
    Bill,
    BillingRun,
    BillLine,
    Correction,
    LiftDetail,
    RunSummary,
    run_billing,
)
from territoria.apps.waste.collective import Apportionment, UnitShare, apportion, split_cents
from territoria.apps.waste.disputes import (
    Dispute,
    DisputeBook,
    Evidence,
    InMemoryDisputeBook,
    corrections_due,
    decide_dispute,
    evidence,
    excluded_lifts,
    mark_applied,
    open_dispute,
)
from territoria.apps.waste.events import CleanedEvents, EventRules, clean_events
from territoria.apps.waste.grids import (
    GridEntry,
    Proration,
    TariffGrid,
    builtin_grids,
    get_grid,
    load_grid,
)
from territoria.apps.waste.periods import Period, parse_period, year_periods
from territoria.apps.waste.simulate import Assumptions, GroupRow, SimulationResult, simulate

__all__ = [
    "Apportionment",
    "Assumptions",
    "Bill",
    "BillLine",
    "BillingRun",
    "CleanedEvents",
    "Correction",
    "Dispute",
    "DisputeBook",
    "EventRules",
    "Evidence",
    "GridEntry",
    "GroupRow",
    "InMemoryDisputeBook",
    "LiftDetail",
    "Period",
    "Proration",
    "RunSummary",
    "SimulationResult",
    "TariffGrid",
    "UnitShare",
    "apportion",
    "builtin_grids",
    "clean_events",
    "corrections_due",
    "decide_dispute",
    "evidence",
    "excluded_lifts",
    "get_grid",
    "load_grid",
    "mark_applied",
    "open_dispute",
    "parse_period",
    "run_billing",
    "simulate",
    "split_cents",
    "year_periods",
]
