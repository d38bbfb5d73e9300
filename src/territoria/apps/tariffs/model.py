"""What the screening receives: households as the sources hold them, each fact with its origin.

The engine never opens a store. The caller (the governed read, a test, a benchmark) hands it
``Household`` records whose key is opaque (a governed pseudonym), whose members carry their
birth date and role, whose incomes are monthly amounts by kind, and where every input says which
source gave it and as of which date (``Provenance``). Two traps are guarded here by the types:

* an unknown income is ``incomes=None``; a known absence of income is an ``Income`` of 0 € with
  its provenance. An empty list is refused, because it would say neither.
* monthly and annual amounts have different names (``monthly_*`` and ``annual_*``).
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from territoria.core.errors import TerritoriaError

Role = Literal["demandeur", "conjoint", "enfant", "autre_adulte"]
ROLE_LABELS: dict[str, str] = {
    "demandeur": "demandeur",
    "conjoint": "conjoint ou conjointe",
    "enfant": "enfant à charge",
    "autre_adulte": "autre adulte du logement",
}
IncomeKind = Literal["salaire", "chomage", "retraite", "pension_alimentaire"]
INCOME_LABELS: dict[str, str] = {
    "salaire": "salaire",
    "chomage": "allocation chômage",
    "retraite": "retraite",
    "pension_alimentaire": "pension alimentaire reçue",
}
HousingStatus = Literal[
    "locataire_vide", "locataire_meuble", "locataire_hlm", "proprietaire", "loge_gratuitement"
]
HOUSING_LABELS: dict[str, str] = {
    "locataire_vide": "locataire d'un logement vide",
    "locataire_meuble": "locataire d'un meublé",
    "locataire_hlm": "locataire d'un logement social",
    "proprietaire": "propriétaire",
    "loge_gratuitement": "logé gratuitement",
}


class TariffInputError(TerritoriaError):
    """A household handed to the screening is inconsistent (roles, keys, references)."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Provenance(_Frozen):
    """Where a value comes from: the source, the date it holds for, the record if known."""

    source: str = Field(min_length=1)
    as_of: date
    record: str | None = None

    def label(self) -> str:
        where = f"{self.source}, fiche {self.record}" if self.record else self.source
        return f"{where}, au {self.as_of.strftime('%d/%m/%Y')}"


class Income(_Frozen):
    """One monthly income of a member, as the source gives it.

    ``monthly_taxable`` and ``annual_taxable_n2`` are the taxable amounts when a source holds
    them (a tax notice); when absent the screening estimates them from the net amount with the
    dated ratios of ``assumptions.yaml`` and says so in every figure that uses them.
    """

    kind: IncomeKind
    monthly_net: float = Field(ge=0)
    monthly_taxable: float | None = Field(default=None, ge=0)
    annual_taxable_n2: float | None = Field(default=None, ge=0)
    since: date | None = None
    provenance: Provenance


class Member(_Frozen):
    """A person of the household: an opaque key, a role, a birth date, incomes."""

    key: str = Field(min_length=1)
    role: Role
    birth_date: date | None = None
    incomes: list[Income] | None = None
    provenance: Provenance

    @model_validator(mode="after")
    def _incomes_say_something(self) -> Member:
        if self.incomes is not None and not self.incomes:
            raise TariffInputError(
                "liste de revenus vide : une absence de revenus se déclare par un revenu de 0 € "
                "avec sa provenance, un revenu inconnu par « incomes: null »",
                code="tariffs_empty_incomes",
                field_name="incomes",
            )
        return self


class Housing(_Frozen):
    """The dwelling's occupancy status and monthly rent (or loan repayment), since when."""

    status: HousingStatus
    monthly_rent: float = Field(default=0.0, ge=0)
    since: date | None = None
    provenance: Provenance


class ServiceUse(_Frozen):
    """A local service the household uses, with the band applied today (None: not known).

    ``quantity`` is per month, in the unit of the service's grid (meals, hours, passes,
    subscriptions).
    """

    service: str = Field(min_length=1)
    member: str | None = None
    monthly_quantity: float = Field(ge=0)
    current_band: str | None = None
    provenance: Provenance


class Receipt(_Frozen):
    """Whether the household receives a national entitlement, as a source says."""

    entitlement: str = Field(min_length=1)
    received: bool
    monthly_amount: float | None = Field(default=None, ge=0)
    provenance: Provenance


class Household(_Frozen):
    """A household as the sources hold it; ``key`` is an opaque governed pseudonym."""

    key: str = Field(min_length=1)
    commune: str = Field(pattern=r"^(\d[\dAB]\d{3})$")
    commune_provenance: Provenance
    members: list[Member] = Field(min_length=1)
    housing: Housing | None = None
    services: list[ServiceUse] = Field(default_factory=list)
    receipts: list[Receipt] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> Household:
        roles = [m.role for m in self.members]
        if roles.count("demandeur") != 1:
            raise TariffInputError(
                f"le foyer {self.key} doit avoir exactement un demandeur "
                f"({roles.count('demandeur')} trouvé(s))",
                code="tariffs_applicant",
                field_name="members",
            )
        if roles.count("conjoint") > 1:
            raise TariffInputError(
                f"le foyer {self.key} a plus d'un conjoint",
                code="tariffs_spouse",
                field_name="members",
            )
        keys = [m.key for m in self.members]
        if len(set(keys)) != len(keys):
            raise TariffInputError(
                f"le foyer {self.key} a deux membres de même clé",
                code="tariffs_member_key",
                field_name="members",
            )
        for use in self.services:
            if use.member is not None and use.member not in keys:
                raise TariffInputError(
                    f"le service {use.service} du foyer {self.key} désigne un membre inconnu",
                    code="tariffs_service_member",
                    field_name="services",
                )
        return self

    def member(self, key: str) -> Member:
        return next(m for m in self.members if m.key == key)

    def receipt(self, entitlement: str) -> Receipt | None:
        """The most recent statement about an entitlement, if any source makes one."""
        found = [r for r in self.receipts if r.entitlement == entitlement]
        return max(found, key=lambda r: r.provenance.as_of) if found else None
