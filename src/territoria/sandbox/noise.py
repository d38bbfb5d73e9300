"""The noise real files have, at rates declared in one place.

``NoiseRates`` holds every rate; ``NoiseRates.scaled(factor)`` multiplies them (``--noise``).
``Noiser`` applies them to identifying fields with the random stream of one source.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, fields, replace
from datetime import date

from territoria.sandbox.population import Person, ascii_fold
from territoria.sandbox.territory import Dwelling

NOISE_LEVELS: dict[str, float] = {"aucun": 0.0, "faible": 0.5, "realiste": 1.0, "fort": 2.0}

_STREET_ABBREVIATIONS: dict[str, tuple[str, ...]] = {
    "rue": ("r.", "R", "RUE"),
    "avenue": ("av.", "av", "Av.", "AVE"),
    "boulevard": ("bd", "Bd.", "BD", "bld"),
    "place": ("pl.", "PL"),
    "chemin": ("ch.", "chem.", "CHE"),
    "impasse": ("imp.", "IMP"),
    "allée": ("all.", "allee", "ALL"),
    "quai": ("q.", "QU"),
    "cours": ("crs", "CRS"),
    "montée": ("mtée", "montee", "MTE"),
}
_SUFFIX_VARIANTS = {"bis": ("b", "B", "BIS"), "ter": ("t", "T", "TER")}


@dataclass(frozen=True)
class NoiseRates:
    """Probability of each kind of noise on one identifying value (default: realistic)."""

    typo: float = 0.02
    missing_accents: float = 0.12
    case_change: float = 0.05
    swapped_names: float = 0.01
    birth_name_shown: float = 0.25  # a married woman recorded with her birth name
    married_form: float = 0.15  # "X épouse Y" or "Y née X"
    missing_birth_date: float = 0.03
    partial_birth_date: float = 0.03
    birth_date_typo: float = 0.01  # day and month swapped, or one digit off
    street_abbreviation: float = 0.3
    suffix_variant: float = 0.5
    missing_flat: float = 0.3
    address_typo: float = 0.02
    missing_phone: float = 0.15
    missing_email: float = 0.2
    duplicate: float = 0.01  # the same person recorded twice in one source

    def scaled(self, factor: float) -> NoiseRates:
        """Every rate multiplied by ``factor``, capped at 1."""
        return replace(
            self, **{f.name: min(1.0, getattr(self, f.name) * factor) for f in fields(self)}
        )


def typo(rng: random.Random, text: str) -> str:
    """One substituted, deleted or transposed character."""
    if len(text) < 3:
        return text
    i = rng.randrange(1, len(text) - 1)
    kind = rng.randrange(3)
    if kind == 0:
        letter = rng.choice(string.ascii_lowercase)
        letter = letter.upper() if text[i].isupper() else letter
        return text[:i] + letter + text[i + 1 :]
    if kind == 1:
        return text[:i] + text[i + 1 :]
    return text[: i - 1] + text[i] + text[i - 1] + text[i + 1 :]


class Noiser:
    """Applies ``NoiseRates`` with one source's random stream."""

    def __init__(self, rng: random.Random, rates: NoiseRates) -> None:
        self.rng, self.rates = rng, rates

    def hit(self, rate: float) -> bool:
        return rate > 0 and self.rng.random() < rate

    def name(self, text: str, *, upper: bool = False) -> str:
        """A name with the service's habit (``upper``) and random typos, accents, case."""
        if self.hit(self.rates.typo):
            text = typo(self.rng, text)
        if self.hit(self.rates.missing_accents):
            text = ascii_fold(text)
        if upper:
            text = text.upper()
        if self.hit(self.rates.case_change):
            text = text.lower() if self.rng.random() < 0.5 else text.upper()
        return text

    def names(self, person: Person, *, upper_family: bool = True) -> tuple[str, str, str]:
        """(family name as recorded, given name as recorded, birth name or "")."""
        family, birth = person.family_name, ""
        if person.birth_name != person.family_name:
            if self.hit(self.rates.birth_name_shown):
                family = person.birth_name
            elif self.hit(self.rates.married_form):
                pattern = self.rng.choice(
                    ("{u} épouse {b}", "{u} née {b}", "{b} épouse {u}", "{b} ép. {u}")
                )
                family = pattern.format(u=person.family_name, b=person.birth_name)
            else:
                birth = person.birth_name
        family = self.name(family, upper=upper_family)
        given = self.name(person.given_name)
        birth = self.name(birth, upper=upper_family) if birth else ""
        if self.hit(self.rates.swapped_names):
            family, given = given, family
        return family, given, birth

    def birth_date(
        self, day: date, fmt: str, *, partial_formats: tuple[str, ...] = ("%Y", "%m/%Y")
    ) -> str:
        if self.hit(self.rates.missing_birth_date):
            return ""
        if self.hit(self.rates.partial_birth_date):
            return day.strftime(self.rng.choice(partial_formats))
        if self.hit(self.rates.birth_date_typo) and day.day <= 12 and day.day != day.month:
            day = day.replace(day=day.month, month=day.day)
        return day.strftime(fmt)

    def street(self, dwelling: Dwelling) -> str:
        """``12 bis rue Victor Hugo`` and its variants (``12B R. Victor Hugo``, ``12 bd ...``)."""
        b = dwelling.building
        street_type = b.street.street_type
        if self.hit(self.rates.street_abbreviation):
            street_type = self.rng.choice(_STREET_ABBREVIATIONS[street_type])
        suffix = b.suffix
        if suffix and self.hit(self.rates.suffix_variant):
            suffix = self.rng.choice(_SUFFIX_VARIANTS[suffix])
        sep = "" if len(suffix) == 1 and self.rng.random() < 0.5 else " "
        number = f"{b.number}{sep}{suffix}" if suffix else str(b.number)
        name = b.street.name
        if self.hit(self.rates.address_typo):
            name = typo(self.rng, name)
        if self.hit(self.rates.missing_accents):
            name = ascii_fold(name)
        return f"{number} {street_type} {name}"

    def complement(self, dwelling: Dwelling) -> str:
        if not dwelling.flat or self.hit(self.rates.missing_flat):
            return ""
        parts = []
        if dwelling.wing:
            parts.append(self.rng.choice(("Bât. ", "Bat ", "BAT ", "Bâtiment ")) + dwelling.wing)
        parts.append(
            self.rng.choice(("Apt ", "Appt ", "apt. ", "Appartement ", "n° ")) + str(dwelling.flat)
        )
        return " ".join(parts)

    def phone(self, person: Person) -> str:
        if not person.phone or self.hit(self.rates.missing_phone):
            return ""
        p = person.phone
        style = self.rng.randrange(3)
        if style == 0:
            return p
        if style == 1:
            return " ".join(p[i : i + 2] for i in range(0, 10, 2))
        return "+33" + p[1:]

    def email(self, person: Person) -> str:
        if not person.email or self.hit(self.rates.missing_email):
            return ""
        return person.email.upper() if self.hit(self.rates.case_change) else person.email
