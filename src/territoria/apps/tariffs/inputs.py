"""Month-by-month inputs of the simulation, from monthly amounts (the periods trap, guarded).

OpenFisca-France reads incomes over many periods: the three months before the reference month
(RSA, prime d'activité), a rolling year ending two months before (housing aid), the calendar
year N-2 (family benefits, the CAF quotient), sometimes ten years back. The sources hold one
monthly amount with the date it was declared. The rule applied, the same for every household
and said in every explanation:

* from January N-2 to December N: the monthly amount, stable (from ``since`` if given);
  in the months of N-2 the annual taxable amount of N-2 ÷ 12 when a source gives it;
* before January N-2: 0 (no source knows; only rules the screening does not report look there).

Every month gets an explicit value: an unset income would make OpenFisca rebuild it from gross
pay through the social contributions, for nothing (0) and at great cost. Arrays equal from one
month to the next are one array, so ten years of history cost little memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np

from territoria.apps.tariffs.layout import Layout
from territoria.apps.tariffs.model import Household, Income, IncomeKind
from territoria.apps.tariffs.parameters import Assumptions

# Income kind → OpenFisca variables (net, taxable, gross) set for every month.
INCOME_VARIABLES: dict[IncomeKind, tuple[str, str | None, str | None]] = {
    "salaire": ("salaire_net", "salaire_imposable", "salaire_de_base"),
    "chomage": ("chomage_net", "chomage_imposable", "chomage_brut"),
    "retraite": ("retraite_nette", "retraite_imposable", "retraite_brute"),
    "pension_alimentaire": ("pensions_alimentaires_percues", None, None),
}
NO_HOUSING = "non_renseigne"


@dataclass(frozen=True)
class Month:
    year: int
    month: int

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def index(self) -> int:
        return self.year * 12 + self.month - 1


def month_of(day: date) -> Month:
    return Month(day.year, day.month)


def months(reference: date, history_years: int) -> list[Month]:
    """January of N − history_years to December N, N the reference month's year."""
    first = (reference.year - history_years) * 12
    last = reference.year * 12 + 11
    return [Month(i // 12, i % 12 + 1) for i in range(first, last + 1)]


def taxable_monthly(income: Income, assumptions: Assumptions) -> float:
    if income.monthly_taxable is not None:
        return income.monthly_taxable
    return income.monthly_net * assumptions.taxable_ratio[income.kind].value


def n2_monthly(income: Income, assumptions: Assumptions) -> tuple[float, float]:
    """(net, taxable) monthly amounts for the months of year N-2."""
    taxable = taxable_monthly(income, assumptions)
    if income.annual_taxable_n2 is None:
        return income.monthly_net, taxable
    ratio = taxable / income.monthly_net if income.monthly_net and taxable else 1.0
    return income.annual_taxable_n2 / 12 / ratio, income.annual_taxable_n2 / 12


class _Series:
    """One income kind's per-person arrays, and the array for any month."""

    def __init__(self, persons: int) -> None:
        self.net = np.zeros(persons, np.float32)
        self.taxable = np.zeros(persons, np.float32)
        self.n2_net = np.zeros(persons, np.float32)
        self.n2_taxable = np.zeros(persons, np.float32)
        self.start = np.zeros(persons, np.int64)  # month index the income starts
        self.n2_start = np.zeros(persons, np.int64)  # the same, unless N-2 is given as a year
        self._cache: dict[tuple[str, int], np.ndarray] = {}

    def at(self, which: str, month: Month, n2_year: int) -> np.ndarray:
        phase_n2 = month.year == n2_year
        if which == "net":
            base = self.n2_net if phase_n2 else self.net
        else:
            base = self.n2_taxable if phase_n2 else self.taxable
        start = self.n2_start if phase_n2 else self.start
        started = not len(start) or month.index >= int(start.max())
        key = (which + ("_n2" if phase_n2 else ""), -1 if started else month.index)
        if key not in self._cache:
            value = base if started else np.where(start <= month.index, base, 0)
            self._cache[key] = _frozen(value.astype(np.float32))
        return self._cache[key]


def _frozen(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


def income_series(layout: Layout, assumptions: Assumptions) -> dict[IncomeKind, _Series]:
    series = {kind: _Series(layout.persons) for kind in INCOME_VARIABLES}
    for person, member in enumerate(layout.members):
        for income in member.incomes or []:
            s = series[income.kind]
            n2_net, n2_taxable = n2_monthly(income, assumptions)
            s.net[person] += income.monthly_net
            s.taxable[person] += taxable_monthly(income, assumptions)
            s.n2_net[person] += n2_net
            s.n2_taxable[person] += n2_taxable
            if income.since is not None:
                begins = max(int(s.start[person]), month_of(income.since).index)
                s.start[person] = begins
                if income.annual_taxable_n2 is None:
                    s.n2_start[person] = begins
    return series


def set_incomes(simulation: Any, layout: Layout, reference: date, assumptions: Assumptions) -> None:
    """Every income variable for every month of the history (see the module docstring)."""
    all_months = months(reference, assumptions.history_years)
    n2_year = reference.year - 2
    zeros = _frozen(np.zeros(layout.persons, np.float32))
    for kind, series in income_series(layout, assumptions).items():
        net_var, taxable_var, gross_var = INCOME_VARIABLES[kind]
        gross_ratio = np.float32(assumptions.gross_ratio[kind].value)
        gross_cache: dict[int, np.ndarray] = {}
        for month in all_months:
            if month.year < n2_year:
                values = {net_var: zeros, taxable_var: zeros, gross_var: zeros}
            else:
                net = series.at("net", month, n2_year)
                gross = gross_cache.setdefault(id(net), _frozen(net * gross_ratio))
                values = {
                    net_var: net,
                    taxable_var: series.at("taxable", month, n2_year),
                    gross_var: gross,
                }
            for variable, value in values.items():
                if variable is not None:
                    simulation.set_input(variable, str(month), value)


def set_housing(
    simulation: Any,
    households: list[Household],
    reference: date,
    assumptions: Assumptions,
    tax_benefit_system: Any,
) -> None:
    """Commune, occupancy status and rent of each ménage, from the date it holds."""
    count = len(households)
    depcom = _frozen(np.array([h.commune.encode("ascii") for h in households], dtype="S5"))
    rent = np.zeros(count, np.float32)
    status = np.full(count, NO_HOUSING, dtype=object)
    start = np.zeros(count, np.int64)
    for index, household in enumerate(households):
        if household.housing is not None:
            rent[index] = household.housing.monthly_rent
            status[index] = household.housing.status
            if household.housing.since is not None:
                start[index] = month_of(household.housing.since).index
    enum = tax_benefit_system.variables["statut_occupation_logement"].possible_values
    latest = int(start.max()) if count else 0
    full = (_frozen(rent), enum.encode(status.astype(str)))
    for month in months(reference, assumptions.history_years):
        simulation.set_input("depcom", str(month), depcom)
        if month.index >= latest:
            month_rent, month_status = full
        else:
            held = start <= month.index
            month_rent = np.where(held, rent, 0).astype(np.float32)
            month_status = enum.encode(np.where(held, status, NO_HOUSING).astype(str))
        simulation.set_input("loyer", str(month), month_rent)
        simulation.set_input("statut_occupation_logement", str(month), month_status)


def set_not_held(simulation: Any, reference: date, assumptions: Assumptions) -> None:
    """0 for every variable of ``not_held``, every month (or year) of the history."""
    all_months = months(reference, assumptions.history_years)
    years = sorted({m.year for m in all_months})
    for entry in assumptions.not_held:
        variable = simulation.tax_benefit_system.variables[entry.variable]
        count = simulation.populations[variable.entity.key].count
        zeros = _frozen(np.zeros(count, dtype=variable.dtype))
        periods = all_months if variable.definition_period == "month" else years
        for period in periods:
            simulation.set_input(entry.variable, str(period), zeros)
