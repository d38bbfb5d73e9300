"""The screening's shipped parameters: its assumptions and its catalogue of entitlements."""

from __future__ import annotations

from datetime import date
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from territoria.apps.tariffs.model import IncomeKind
from territoria.apps.tariffs.yamlio import load_yaml, parse_model

HERE = Path(__file__).resolve().parent
ASSUMPTIONS_FILE = HERE / "assumptions.yaml"
ENTITLEMENTS_FILE = HERE / "entitlements.yaml"
QUARTER = "@3m"  # suffix of a variable averaged over the three months before the reference


class _Entry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Justified(_Entry):
    """A value with the reason it was chosen."""

    value: float
    justification: str = Field(min_length=1)


class NotHeld(_Entry):
    """An OpenFisca variable no source holds, set to 0 (and the reason)."""

    variable: str
    label: str
    reason: str


class Assumptions(_Entry):
    """What the screening assumes where the sources are silent (``assumptions.yaml``)."""

    valid_from: date
    decided_by: str
    taxable_ratio: dict[IncomeKind, Justified]
    gross_ratio: dict[IncomeKind, Justified]
    unknown_child_age: Justified
    unknown_adult_age: Justified
    history_years: int = Field(ge=2, le=20)
    not_held: list[NotHeld] = Field(default_factory=list)


class EligibilityTest(_Entry):
    variable: str
    label: str


class Entitlement(_Entry):
    """A national entitlement: its OpenFisca variable (or eligibility tests) and explanation."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label: str
    variable: str | None = None
    eligibility: list[EligibilityTest] = Field(default_factory=list)
    reference: str
    explain: list[str] = Field(default_factory=list)
    explain_over: Literal["month", "last_3_months"] = "month"
    drees_non_take_up: str | None = None

    def explain_keys(self) -> list[str]:
        """Keys of ``Screening.values`` for the explanation (``@3m``: 3-month mean)."""
        suffix = QUARTER if self.explain_over == "last_3_months" else ""
        return [f"{name}{suffix}" for name in self.explain]

    @property
    def monetary(self) -> bool:
        return self.variable is not None


class QuotientDefinition(_Entry):
    """A definition of the quotient familial a local grid may use."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label: str
    variable: str
    add_monthly: list[str] = Field(default_factory=list)
    parts: str | None = None  # the parts the monthly benefits are divided by
    formula: str
    explain: list[str] = Field(default_factory=list)


class Catalogue(_Entry):
    """``entitlements.yaml``: the entitlements and quotients the screening computes."""

    openfisca: str
    entitlements: list[Entitlement] = Field(min_length=1)
    quotients: list[QuotientDefinition] = Field(min_length=1)

    def entitlement(self, entitlement_id: str) -> Entitlement:
        return next(e for e in self.entitlements if e.id == entitlement_id)

    def quotient(self, quotient_id: str) -> QuotientDefinition:
        return next(q for q in self.quotients if q.id == quotient_id)

    def variables(self) -> list[str]:
        """Every OpenFisca variable the screening reads, in a stable order (``@3m``: mean)."""
        names: list[str] = []
        for e in self.entitlements:
            names += [e.variable] if e.variable else []
            names += [t.variable for t in e.eligibility] + e.explain_keys()
        for q in self.quotients:
            names += [q.variable, *q.add_monthly, *q.explain, *([q.parts] if q.parts else [])]
        return list(dict.fromkeys(names))


@cache
def default_assumptions() -> Assumptions:
    return load_assumptions(ASSUMPTIONS_FILE)


@cache
def default_catalogue() -> Catalogue:
    return load_catalogue(ENTITLEMENTS_FILE)


def load_assumptions(path: Path) -> Assumptions:
    return parse_model(Assumptions, load_yaml(path), path)


def load_catalogue(path: Path) -> Catalogue:
    return parse_model(Catalogue, load_yaml(path), path)
