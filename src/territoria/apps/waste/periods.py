"""Billing periods: a civil year, a semester or a four-month period, named by a short label.

``2024`` is the year, ``2024-S1`` / ``2024-S2`` its semesters, ``2024-Q1`` … ``2024-Q3`` its
four-month periods (quadrimestres: January–April, May–August, September–December). A period
knows its place in the year (``index`` of ``count``), which the fixed part's shares use.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Literal

from territoria.core.errors import TerritoriaError

BillingPeriodKind = Literal["year", "semester", "four_months"]

PERIODS_PER_YEAR: dict[BillingPeriodKind, int] = {"year": 1, "semester": 2, "four_months": 3}
_LABEL = re.compile(r"^(?P<year>\d{4})(?:-(?P<kind>[SQ])(?P<index>[1-3]))?$")
_ORDINAL = {1: "1er", 2: "2e", 3: "3e"}


@dataclass(frozen=True)
class Period:
    """A billing period: ``start`` included, ``end`` excluded."""

    label: str
    year: int
    kind: BillingPeriodKind
    index: int  # 1-based place in the year
    start: date
    end: date

    @property
    def count(self) -> int:
        """How many periods of this kind make a year."""
        return PERIODS_PER_YEAR[self.kind]

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    @property
    def months(self) -> int:
        return 12 // self.count

    @property
    def year_start(self) -> date:
        return date(self.year, 1, 1)

    @property
    def year_end(self) -> date:
        return date(self.year + 1, 1, 1)

    @property
    def is_last_of_year(self) -> bool:
        return self.index == self.count

    @property
    def title(self) -> str:
        """French name: « 1er semestre 2024 »."""
        if self.kind == "year":
            return f"année {self.year}"
        noun = "semestre" if self.kind == "semester" else "quadrimestre"
        return f"{_ORDINAL[self.index]} {noun} {self.year}"


def parse_period(label: str) -> Period:
    """``2024``, ``2024-S2`` or ``2024-Q3`` as a :class:`Period`."""
    match = _LABEL.match(label.strip())
    if match is None:
        raise TerritoriaError(
            f"période de facturation « {label} » incompréhensible",
            code="waste_period_invalid",
            field_name="period",
            expected="AAAA, AAAA-S1, AAAA-S2, AAAA-Q1, AAAA-Q2 ou AAAA-Q3",
        )
    year = int(match["year"])
    if match["kind"] is None:
        return Period(label, year, "year", 1, date(year, 1, 1), date(year + 1, 1, 1))
    index = int(match["index"])
    kind: BillingPeriodKind = "semester" if match["kind"] == "S" else "four_months"
    count = PERIODS_PER_YEAR[kind]
    if index > count:
        raise TerritoriaError(
            f"période « {label} » : une année n'a que {count} périodes de ce type",
            code="waste_period_invalid",
            field_name="period",
        )
    months = 12 // count
    first = 1 + (index - 1) * months
    end = date(year + 1, 1, 1) if index == count else date(year, first + months, 1)
    return Period(label, year, kind, index, date(year, first, 1), end)


def year_periods(year: int, kind: BillingPeriodKind) -> list[Period]:
    """The periods of a year, in order."""
    if kind == "year":
        return [parse_period(str(year))]
    letter = "S" if kind == "semester" else "Q"
    return [parse_period(f"{year}-{letter}{i}") for i in range(1, PERIODS_PER_YEAR[kind] + 1)]
