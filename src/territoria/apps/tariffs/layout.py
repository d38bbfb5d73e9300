"""From household records to OpenFisca's entity arrays (one vectorised simulation for all).

Each household is one *ménage*. Its applicant, spouse and children form the first *famille*
(the CAF unit that benefits are computed for); every other adult of the dwelling forms a famille
of their own. Each adult declares taxes alone (a *foyer fiscal* per adult, children attached to
the applicant's): the benefits screened here are computed on the famille, and separate foyers
avoid guessing whether a couple is married.

A famille whose adults' incomes no source gives is *not known*: it stays in the simulation
(its ménage needs it) with no income, and every figure computed for it is withheld.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np

from territoria.apps.tariffs.model import Household, Member
from territoria.apps.tariffs.parameters import Assumptions

# Role indices in OpenFisca-France's flattened roles (famille, foyer fiscal, ménage).
FAMILLE_ROLE = {"demandeur": 0, "conjoint": 1, "enfant": 2}
FOYER_ROLE = {"declarant_principal": 0, "personne_a_charge": 2}
MENAGE_ROLE = {"demandeur": 0, "conjoint": 1, "enfant": 2, "autre_adulte": 3}


@dataclass
class Layout:
    """Flat arrays over persons and familles, in household order."""

    household_keys: list[str] = field(default_factory=list)
    person_keys: list[str] = field(default_factory=list)
    person_household: list[int] = field(default_factory=list)
    person_famille: list[int] = field(default_factory=list)
    person_famille_role: list[int] = field(default_factory=list)
    person_foyer: list[int] = field(default_factory=list)
    person_foyer_role: list[int] = field(default_factory=list)
    person_menage_role: list[int] = field(default_factory=list)
    birth_dates: list[date] = field(default_factory=list)
    famille_household: list[int] = field(default_factory=list)
    famille_members: list[list[str]] = field(default_factory=list)
    famille_known: list[bool] = field(default_factory=list)
    famille_unknown_reason: list[str | None] = field(default_factory=list)
    foyer_count: int = 0
    members: list[Member] = field(default_factory=list)

    @property
    def persons(self) -> int:
        return len(self.person_keys)

    @property
    def familles(self) -> int:
        return len(self.famille_household)


def age_on(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def assumed_birth_date(member: Member, reference: date, assumptions: Assumptions) -> date:
    """The member's birth date, or the dated assumption when no source gives it."""
    if member.birth_date is not None:
        return member.birth_date
    age = (
        assumptions.unknown_child_age if member.role == "enfant" else assumptions.unknown_adult_age
    )
    return date(reference.year - int(age.value), 1, 1)


def _unknown_reason(adults: list[Member]) -> str | None:
    missing = [m for m in adults if m.incomes is None]
    if not missing:
        return None
    who = ", ".join(f"{m.key} ({m.role})" for m in missing)
    return f"revenus inconnus de {who} : aucune source ne les donne"


def build_layout(households: list[Household], reference: date, assumptions: Assumptions) -> Layout:
    """Persons and familles of every household, with their roles (see the module docstring)."""
    out = Layout()
    for h_index, household in enumerate(households):
        out.household_keys.append(household.key)
        primary = sorted(
            (m for m in household.members if m.role != "autre_adulte"),
            key=lambda m: FAMILLE_ROLE[m.role],
        )
        others = [m for m in household.members if m.role == "autre_adulte"]
        applicant_foyer = out.foyer_count
        _add_famille(out, h_index, primary, applicant_foyer, reference, assumptions)
        for other in others:
            _add_famille(out, h_index, [other], applicant_foyer, reference, assumptions)
    return out


def _add_famille(
    out: Layout,
    h_index: int,
    members: list[Member],
    applicant_foyer: int,
    reference: date,
    assumptions: Assumptions,
) -> None:
    famille = out.familles
    adults = [m for m in members if m.role != "enfant"]
    reason = _unknown_reason(adults)
    out.famille_household.append(h_index)
    out.famille_members.append([m.key for m in members])
    out.famille_known.append(reason is None)
    out.famille_unknown_reason.append(reason)
    for member in members:
        out.members.append(member)
        out.person_keys.append(member.key)
        out.person_household.append(h_index)
        out.person_famille.append(famille)
        if member.role == "enfant":
            out.person_famille_role.append(FAMILLE_ROLE["enfant"])
            out.person_foyer.append(applicant_foyer)
            out.person_foyer_role.append(FOYER_ROLE["personne_a_charge"])
        else:
            role = "conjoint" if member.role == "conjoint" else "demandeur"
            out.person_famille_role.append(FAMILLE_ROLE[role])
            out.person_foyer.append(out.foyer_count)
            out.person_foyer_role.append(FOYER_ROLE["declarant_principal"])
            out.foyer_count += 1
        out.person_menage_role.append(MENAGE_ROLE[member.role])
        out.birth_dates.append(assumed_birth_date(member, reference, assumptions))


def ids(count: int) -> np.ndarray:
    """Entity identifiers for OpenFisca: their order is the order of the layout's lists."""
    return np.arange(count, dtype=np.int64)
