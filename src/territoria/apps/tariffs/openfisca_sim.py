"""OpenFisca screening: one vectorised simulation for every household at once.

``screen(households, reference_month)`` builds OpenFisca-France's entities as arrays
(``SimulationBuilder.declare_person_entity`` / ``declare_entity`` / ``join_with_persons``), sets
the inputs month by month (``inputs``), and computes, for the explicit reference month, the CAF
quotient familial of ``openfisca-france-local`` and the national entitlements of
``entitlements.yaml``, with the intermediate variables that explain each. The result is a table
(one row per famille) plus, on demand, each famille's figures with their explanation
(``explain``) and OpenFisca's full computation trace for one household (``trace``).

Known traps: the reference month is a required argument (never "now"); a quotient of 0 is a
value, an unknown one is ``None`` (a famille whose adults' incomes no source gives); monthly and
annual periods are set explicitly, month by month.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from importlib.metadata import version
from typing import Any

import numpy as np
import pyarrow as pa

from territoria.apps.tariffs.inputs import set_housing, set_incomes, set_not_held
from territoria.apps.tariffs.layout import Layout, build_layout, ids
from territoria.apps.tariffs.model import Household
from territoria.apps.tariffs.parameters import (
    QUARTER,
    Assumptions,
    Catalogue,
    default_assumptions,
    default_catalogue,
)
from territoria.core.errors import TerritoriaError


class ScreeningError(TerritoriaError):
    """The screening cannot run (missing OpenFisca package, bad reference month...)."""


@cache
def tax_benefit_system() -> Any:
    """OpenFisca-France with ``openfisca-france-local`` loaded as its extension (once)."""
    try:
        from openfisca_france import FranceTaxBenefitSystem
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ScreeningError(
            "OpenFisca-France n'est pas installé",
            code="tariffs_openfisca_missing",
            hint="pip install openfisca-france==176.1.8 openfisca-france-local==6.17.11",
        ) from exc
    with warnings.catch_warnings():
        # openfisca-france-local 6.17.11 has labels with invalid escapes ("\\%") and imports
        # numpy.core.defchararray: Python and NumPy warn while it loads; not ours to fix.
        warnings.simplefilter("ignore", SyntaxWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        system = FranceTaxBenefitSystem()
        system.load_extension("openfisca_france_local")
    return system


def openfisca_versions() -> str:
    return (
        f"OpenFisca-France {version('openfisca-france')}, "
        f"openfisca-france-local {version('openfisca-france-local')}, "
        f"OpenFisca-Core {version('openfisca-core')}"
    )


def reference_month(value: date | str) -> date:
    """The first day of the reference month; refuses anything but a month."""
    if isinstance(value, str):
        try:
            year, month = (int(p) for p in value.split("-"))
            return date(year, month, 1)
        except ValueError as exc:
            raise ScreeningError(
                f"mois de référence invalide : « {value} »",
                code="tariffs_reference_month",
                field_name="reference_month",
                expected="AAAA-MM, par exemple 2025-01",
            ) from exc
    return date(value.year, value.month, 1)


@dataclass
class Screening:
    """The simulation's results: one row per famille, and what explains each figure."""

    reference: date
    households: list[Household]
    layout: Layout
    values: dict[str, np.ndarray]  # OpenFisca variable → value per famille
    catalogue: Catalogue
    assumptions: Assumptions
    versions: str
    timings: dict[str, float] = field(default_factory=dict)
    household_index: dict[str, int] = field(init=False, repr=False)
    _rows: dict[int, list[int]] = field(init=False, repr=False)
    _cache: dict[str, np.ndarray] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.household_index = {h.key: i for i, h in enumerate(self.households)}
        self._rows = {}
        for row, h_index in enumerate(self.layout.famille_household):
            self._rows.setdefault(h_index, []).append(row)
        self._cache = {}

    @property
    def period(self) -> str:
        return f"{self.reference.year:04d}-{self.reference.month:02d}"

    def quotient(self, quotient_id: str) -> np.ndarray:
        """The quotient per famille, NaN where the famille's incomes are unknown."""
        if f"q:{quotient_id}" not in self._cache:
            self._cache[f"q:{quotient_id}"] = self._quotient(quotient_id)
        return self._cache[f"q:{quotient_id}"]

    def _quotient(self, quotient_id: str) -> np.ndarray:
        definition = self.catalogue.quotient(quotient_id)
        value = self.values[definition.variable].astype(np.float64)
        if definition.add_monthly:
            benefits = sum(self.values[v].astype(np.float64) for v in definition.add_monthly)
            value = value + benefits / self.values[definition.parts or ""]
        return np.where(self.known, np.round(value, 2), np.nan)

    @property
    def known(self) -> np.ndarray:
        return np.array(self.layout.famille_known, dtype=bool)

    def amount(self, entitlement_id: str) -> np.ndarray:
        """Monthly amount per famille (NaN: unknown); for a non-cash right, 1.0 if eligible."""
        if f"e:{entitlement_id}" not in self._cache:
            self._cache[f"e:{entitlement_id}"] = self._amount(entitlement_id)
        return self._cache[f"e:{entitlement_id}"]

    def _amount(self, entitlement_id: str) -> np.ndarray:
        entitlement = self.catalogue.entitlement(entitlement_id)
        raw: np.ndarray = np.zeros(self.layout.familles)
        if entitlement.variable is not None:
            raw = np.round(self.values[entitlement.variable].astype(np.float64), 2)
        else:
            for test in entitlement.eligibility:
                raw = np.maximum(raw, (self.values[test.variable] > 0).astype(np.float64))
        return np.where(self.known, raw, np.nan)

    def famille_rows(self, household_key: str) -> list[int]:
        """The rows of the household's familles (its applicant's first)."""
        return self._rows[self.household_index[household_key]]

    def household(self, household_key: str) -> Household:
        return self.households[self.household_index[household_key]]

    def table(self) -> pa.Table:
        """One row per famille: keys, quotients, amounts, explanation variables."""
        columns: dict[str, Any] = {
            "household_key": [self.layout.household_keys[h] for h in self.layout.famille_household],
            "famille": _famille_numbers(self.layout.famille_household),
            "members": self.layout.famille_members,
            "known": self.known,
            "unknown_reason": self.layout.famille_unknown_reason,
        }
        for q in self.catalogue.quotients:
            columns[q.id] = _nullable(self.quotient(q.id))
        for e in self.catalogue.entitlements:
            columns[e.id] = _nullable(self.amount(e.id))
        return pa.table(columns)


def _famille_numbers(famille_household: list[int]) -> list[int]:
    numbers, previous, n = [], -1, 0
    for h in famille_household:
        n = n + 1 if h == previous else 0
        numbers.append(n)
        previous = h
    return numbers


def _nullable(values: np.ndarray) -> pa.Array:
    return pa.array(values, mask=np.isnan(values), type=pa.float64())


def build_simulation(
    households: list[Household], reference: date, assumptions: Assumptions
) -> tuple[Any, Layout]:
    """The vectorised OpenFisca simulation of ``households`` and its layout."""
    from openfisca_core.simulation_builder import SimulationBuilder

    system = tax_benefit_system()
    layout = build_layout(households, reference, assumptions)
    builder = SimulationBuilder()
    builder.create_entities(system)
    builder.declare_person_entity("individu", ids(layout.persons))
    groups = {
        "famille": (layout.familles, layout.person_famille, layout.person_famille_role),
        "foyer_fiscal": (layout.foyer_count, layout.person_foyer, layout.person_foyer_role),
        "menage": (len(households), layout.person_household, layout.person_menage_role),
    }
    for entity, (count, assignment, roles) in groups.items():
        population = builder.declare_entity(entity, ids(count))
        builder.join_with_persons(
            population, np.array(assignment, dtype=np.int64), np.array(roles, dtype=np.int64)
        )
    simulation = builder.build(system)
    births = np.array(layout.birth_dates, dtype="datetime64[D]")
    simulation.set_input("date_naissance", "ETERNITY", births)
    set_incomes(simulation, layout, reference, assumptions)
    set_housing(simulation, households, reference, assumptions, system)
    set_not_held(simulation, reference, assumptions)
    return simulation, layout


def screen(
    households: list[Household],
    reference: date | str,
    *,
    catalogue: Catalogue | None = None,
    assumptions: Assumptions | None = None,
    chunk_size: int = 10_000,
) -> Screening:
    """Quotients and entitlements of every household for the reference month (see module).

    Households are simulated ``chunk_size`` at a time (one vectorised simulation per chunk):
    the memory of a simulation grows with its size (about 60 kB per household), its time
    barely depends on the split.
    """
    month = reference_month(reference)
    catalogue = catalogue or default_catalogue()
    assumptions = assumptions or default_assumptions()
    timings = {"load": 0.0, "build": 0.0, "compute": 0.0}
    start = time.perf_counter()
    tax_benefit_system()
    timings["load"] = time.perf_counter() - start
    parts: list[dict[str, Any]] = []
    for first in range(0, len(households), max(1, chunk_size)):
        start = time.perf_counter()
        chunk = households[first : first + chunk_size]
        simulation, chunk_layout = build_simulation(chunk, month, assumptions)
        timings["build"] += time.perf_counter() - start
        start = time.perf_counter()
        parts.append(compute(simulation, chunk_layout, catalogue, month))
        _release(simulation)
        timings["compute"] += time.perf_counter() - start
    layout = build_layout(households, month, assumptions)
    values = (
        {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        if parts
        else {k: np.zeros(0) for k in catalogue.variables()}
    )
    return Screening(
        month, households, layout, values, catalogue, assumptions, openfisca_versions(), timings
    )


def _release(simulation: Any) -> None:
    """Drop the simulation's arrays now: it is a cycle (populations ↔ holders) that only a
    full garbage collection would free, and a full collection costs seconds here."""
    for population in simulation.populations.values():
        for holder in population._holders.values():
            holder.delete_arrays()


def compute(simulation: Any, layout: Layout, catalogue: Catalogue, month: date) -> dict[str, Any]:
    """Every catalogue variable for the month, as one value per famille.

    A name ending in ``@3m`` is the mean of the variable over the three months before the
    reference month (the prime d'activité of month M is computed on M-3 to M-1).
    """
    famille_menage = np.array(layout.famille_household, dtype=np.int64)
    out: dict[str, Any] = {}
    for key in catalogue.variables():
        name, quarter = key.removesuffix(QUARTER), key.endswith(QUARTER)
        variable = simulation.tax_benefit_system.variables[name]
        if variable.entity.key not in ("famille", "menage"):
            raise ScreeningError(
                f"la variable {name} n'est pas calculée par famille ou par ménage",
                code="tariffs_entity",
                field_name=name,
            )
        if quarter:
            value = sum(simulation.calculate(name, str(_month(month, -k))) for k in (1, 2, 3)) / 3
        else:
            value = simulation.calculate(name, str(_month(month, 0)))
        if hasattr(value, "decode_to_str"):
            value = value.decode_to_str()
        out[key] = value[famille_menage] if variable.entity.key == "menage" else value
    return out


def _month(day: date, offset: int) -> str:
    index = day.year * 12 + day.month - 1 + offset
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def trace(
    household: Household,
    reference: date | str,
    variable: str,
    *,
    max_depth: int = 3,
    assumptions: Assumptions | None = None,
) -> list[str]:
    """OpenFisca's computation log of one variable for one household (the full trace)."""
    month = reference_month(reference)
    simulation, _ = build_simulation([household], month, assumptions or default_assumptions())
    simulation.trace = True
    simulation.calculate(variable, f"{month.year:04d}-{month.month:02d}")
    lines: list[str] = simulation.tracer.computation_log.lines(max_depth=max_depth)
    return lines
