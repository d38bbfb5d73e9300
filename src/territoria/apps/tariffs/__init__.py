"""Social tariffs and non-take-up: OpenFisca screening, local grids, worklist, CRPA notice.

``screen(households, "2025-01")`` runs one vectorised OpenFisca-France simulation for every
household (quotient familial of ``openfisca-france-local``, RSA, prime d'activité, housing aid,
family benefits, ASPA, CSS); ``assign_bands`` places each service use in its local grid band;
``non_take_up_worklist`` ranks the households by the monthly amount they appear to forgo;
``explain_household`` and ``trace`` say how each figure was computed; ``crpa_notice`` writes the
CRPA L311-3-1 notice. Inputs are plain ``Household`` records: the caller reads them through the
governed read, this package never opens a store.
"""

from territoria.apps.tariffs.bands import BandAssignment, assign_bands
from territoria.apps.tariffs.explain import (
    FamilleFigures,
    Figure,
    InputUsed,
    VariableValue,
    explain_household,
)
from territoria.apps.tariffs.grids import (
    Band,
    Grid,
    GridVersion,
    default_grids,
    load_grid,
    load_grids,
)
from territoria.apps.tariffs.model import (
    Household,
    Housing,
    Income,
    Member,
    Provenance,
    Receipt,
    ServiceUse,
    TariffInputError,
)
from territoria.apps.tariffs.non_take_up import (
    InMemoryOutreachBook,
    Outreach,
    OutreachBook,
    TakeUpReport,
    Worklist,
    WorklistEntry,
    WorklistLine,
    evaluation_groups,
    non_take_up_worklist,
    take_up_report,
)
from territoria.apps.tariffs.notice import CrpaNotice, crpa_notice
from territoria.apps.tariffs.openfisca_sim import (
    Screening,
    ScreeningError,
    screen,
    tax_benefit_system,
    trace,
)
from territoria.apps.tariffs.parameters import default_assumptions, default_catalogue
from territoria.apps.tariffs.report import screening_summary
from territoria.apps.tariffs.scenario import household_from_mapping, load_scenario
from territoria.apps.tariffs.sources import household_from_records
from territoria.apps.tariffs.yamlio import ParameterFileError

__all__ = [
    "Band",
    "BandAssignment",
    "CrpaNotice",
    "FamilleFigures",
    "Figure",
    "Grid",
    "GridVersion",
    "Household",
    "Housing",
    "InMemoryOutreachBook",
    "Income",
    "InputUsed",
    "Member",
    "Outreach",
    "OutreachBook",
    "ParameterFileError",
    "Provenance",
    "Receipt",
    "Screening",
    "ScreeningError",
    "ServiceUse",
    "TakeUpReport",
    "TariffInputError",
    "VariableValue",
    "Worklist",
    "WorklistEntry",
    "WorklistLine",
    "assign_bands",
    "crpa_notice",
    "default_assumptions",
    "default_catalogue",
    "default_grids",
    "evaluation_groups",
    "explain_household",
    "household_from_mapping",
    "household_from_records",
    "load_grid",
    "load_grids",
    "load_scenario",
    "non_take_up_worklist",
    "screen",
    "screening_summary",
    "take_up_report",
    "tax_benefit_system",
    "trace",
]
