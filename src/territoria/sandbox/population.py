"""Persons and households of the sandbox territory (the ground truth every export derives from)."""

from __future__ import annotations

import math
import random
import unicodedata
from dataclasses import dataclass, field
from datetime import date, timedelta

from territoria.sandbox.names import NameBank
from territoria.sandbox.territory import Dwelling, Territory

HOUSEHOLD_KINDS: tuple[tuple[str, float], ...] = (
    ("single", 0.27),
    ("elderly_alone", 0.12),
    ("couple_no_children", 0.23),
    ("couple_with_children", 0.22),
    ("single_parent", 0.09),
    ("shared_flat", 0.04),
)
EMAIL_DOMAINS = ("example.com", "example.net", "example.org", "mail.example")


@dataclass(slots=True)
class Person:
    person_id: str
    given_name: str
    family_name: str  # name in use (married name for a wife who took it)
    birth_name: str
    sex: str  # "F" or "M"
    birth_date: date
    household_id: str
    is_child: bool
    death_date: date | None = None
    phone: str = ""
    email: str = ""
    income: int = 0  # annual net income (revenu net), euros
    twin_of: str = ""
    homonym_of: str = ""


@dataclass(slots=True)
class Household:
    household_id: str
    kind: str
    dwelling: Dwelling
    members: list[Person]
    married: bool = False
    previous_dwelling: Dwelling | None = None
    move_date: date | None = None  # moved within the métropole during the year
    arrival_date: date | None = None  # came from outside during the year
    end_date: date | None = None  # last member died
    revenu_fiscal: int = 0
    family_benefits: int = 0
    parts: float = 1.0

    @property
    def adults(self) -> list[Person]:
        return [p for p in self.members if not p.is_child]

    @property
    def children(self) -> list[Person]:
        return [p for p in self.members if p.is_child]

    @property
    def quotient_familial(self) -> int:
        """Monthly CAF-style quotient familial, in euros."""
        return int((self.revenu_fiscal / 12 + self.family_benefits / 12) / self.parts)


@dataclass(frozen=True, slots=True)
class Event:
    kind: str  # birth, death, move, arrival
    day: date
    person_id: str
    household_id: str
    from_dwelling: str
    to_dwelling: str


@dataclass
class Population:
    households: list[Household]
    events: list[Event]
    year: int
    person_count: int = 0
    homonym_pool: list[Person] = field(default_factory=list)


def ascii_fold(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


class _Builder:
    """Draws households one at a time; all randomness comes from one ``random.Random``."""

    def __init__(self, rng: random.Random, territory: Territory, bank: NameBank, year: int):
        self.rng, self.territory, self.bank, self.year = rng, territory, bank, year
        self.start = date(year, 1, 1)
        self.people = 0
        self.households = 0
        self.events: list[Event] = []
        self.recent: list[Person] = []
        self.kinds = [k for k, _ in HOUSEHOLD_KINDS]
        self.kind_weights = [w for _, w in HOUSEHOLD_KINDS]

    def day_in_year(self) -> date:
        return self.start + timedelta(days=self.rng.randrange(365))

    def birth_date(self, age: int) -> date:
        return date(self.year - 1 - age, 1, 1) + timedelta(days=self.rng.randrange(365))

    def person(self, hid: str, sex: str, age: int, family: str, *, child: bool = False) -> Person:
        self.people += 1
        born = self.birth_date(age)
        given = self.bank.given_name(self.rng, sex, born.year)
        return Person(f"P{self.people:08d}", given, family, family, sex, born, hid, child)

    def contact(self, person: Person) -> None:
        rng = self.rng
        if rng.random() < 0.85:
            prefix = rng.choice(("06", "07", "06", "04"))
            person.phone = f"{prefix}{rng.randrange(10**8):08d}"
        if rng.random() < 0.7:
            local = ascii_fold(f"{person.given_name}.{person.family_name}").lower()
            local = local.replace(" ", "").replace("'", "")
            tail = str(rng.randrange(100)) if rng.random() < 0.4 else ""
            person.email = f"{local}{tail}@{rng.choice(EMAIL_DOMAINS)}"

    def income(self, person: Person) -> None:
        rng = self.rng
        age = self.year - person.birth_date.year
        if age < 18:
            return
        if age < 25 and rng.random() < 0.6:
            person.income = rng.randrange(0, 9000)
        elif age >= 63:
            person.income = max(12000, int(rng.lognormvariate(math.log(19000), 0.45)))
        elif rng.random() < 0.1:
            person.income = rng.randrange(6000, 8000)
        else:
            person.income = max(9000, int(rng.lognormvariate(math.log(23000), 0.55)))

    def household(self) -> Household:
        self.households += 1
        hid = f"H{self.households:07d}"
        kind = self.rng.choices(self.kinds, self.kind_weights)[0]
        dwelling = self.territory.pick_stock(self.rng).new_dwelling(self.rng)
        household = Household(hid, kind, dwelling, [])
        getattr(self, f"_fill_{kind}")(household)
        self.finish(household)
        return household

    def _fill_single(self, h: Household) -> None:
        sex = self.rng.choice("FM")
        h.members.append(
            self.person(h.household_id, sex, self.rng.randint(20, 64), self.bank.surname(self.rng))
        )

    def _fill_elderly_alone(self, h: Household) -> None:
        sex = "F" if self.rng.random() < 0.75 else "M"
        p = self.person(h.household_id, sex, self.rng.randint(65, 98), self.bank.surname(self.rng))
        if sex == "F" and self.rng.random() < 0.7:  # widow keeping her married name
            p.family_name = self.bank.surname(self.rng)
        h.members.append(p)

    def _couple(self, h: Household, low: int, high: int) -> tuple[Person, Person]:
        rng = self.rng
        age = rng.randint(low, high)
        man = self.person(h.household_id, "M", age + rng.randint(-2, 5), self.bank.surname(rng))
        woman = self.person(h.household_id, "F", age, self.bank.surname(rng))
        h.married = rng.random() < (0.75 if age > 50 else 0.45)
        if h.married and rng.random() < 0.85:
            woman.family_name = man.family_name
        h.members.extend((man, woman))
        return man, woman

    def _fill_couple_no_children(self, h: Household) -> None:
        if self.rng.random() < 0.5:
            self._couple(h, 22, 40)
        else:
            self._couple(h, 55, 88)

    def _children(self, h: Household, family: str, parent_age: int, father: Person | None) -> None:
        rng = self.rng
        count = rng.choices((1, 2, 3, 4), (0.4, 0.4, 0.15, 0.05))[0]
        max_age = max(0, min(parent_age - 20, 24))
        ages = sorted((rng.randint(0, max_age) for _ in range(count)), reverse=True)
        twins = count >= 2 and rng.random() < 0.04
        for index, age in enumerate(ages):
            child = self.person(h.household_id, rng.choice("FM"), age, family, child=age < 18)
            if twins and index == 1:
                previous = h.members[-1]
                child.birth_date, child.twin_of = previous.birth_date, previous.person_id
                previous.twin_of = child.person_id
            if father and child.sex == "M" and age >= 18 and rng.random() < 0.25:
                child.given_name, child.homonym_of = father.given_name, father.person_id
            h.members.append(child)
        if parent_age < 42 and rng.random() < 0.08:
            baby = self.person(h.household_id, rng.choice("FM"), 0, family, child=True)
            baby.birth_date = self.day_in_year()
            self.events.append(
                Event(
                    "birth",
                    baby.birth_date,
                    baby.person_id,
                    h.household_id,
                    "",
                    h.dwelling.dwelling_id,
                )
            )
            h.members.append(baby)

    def _fill_couple_with_children(self, h: Household) -> None:
        man, woman = self._couple(h, 26, 52)
        family = man.family_name if self.rng.random() < 0.9 else woman.birth_name
        self._children(h, family, self.year - woman.birth_date.year, man)

    def _fill_single_parent(self, h: Household) -> None:
        rng = self.rng
        sex = "F" if rng.random() < 0.85 else "M"
        parent = self.person(h.household_id, sex, rng.randint(24, 55), self.bank.surname(rng))
        h.members.append(parent)
        family = parent.family_name if sex == "M" or rng.random() < 0.4 else self.bank.surname(rng)
        self._children(
            h, family, self.year - parent.birth_date.year, parent if sex == "M" else None
        )

    def _fill_shared_flat(self, h: Household) -> None:
        for _ in range(self.rng.randint(2, 4)):
            sex = self.rng.choice("FM")
            h.members.append(
                self.person(
                    h.household_id, sex, self.rng.randint(19, 32), self.bank.surname(self.rng)
                )
            )

    def finish(self, h: Household) -> None:
        for person in h.members:
            self.maybe_homonym(person)
            if not person.is_child:
                self.contact(person)
            self.income(person)
            self.maybe_death(h, person)
        self.maybe_move(h)
        self.finances(h)

    def maybe_homonym(self, person: Person) -> None:
        """A stranger elsewhere with the same given and family name (beyond chance homonyms)."""
        rng = self.rng
        unmarried_name = person.birth_name == person.family_name
        if self.recent and unmarried_name and not person.is_child and rng.random() < 0.004:
            other = rng.choice(self.recent)
            if other.sex == person.sex and other.household_id != person.household_id:
                person.given_name, person.family_name = other.given_name, other.family_name
                person.birth_name = other.family_name
                person.homonym_of = other.person_id
        if not person.is_child and rng.random() < 0.01:
            self.recent.append(person)
            if len(self.recent) > 500:
                self.recent.pop(0)

    def maybe_death(self, h: Household, person: Person) -> None:
        age = self.year - person.birth_date.year
        if age >= 40 and self.rng.random() < 0.0004 * math.exp(0.085 * (age - 30)):
            person.death_date = self.day_in_year()
            self.events.append(
                Event(
                    "death",
                    person.death_date,
                    person.person_id,
                    h.household_id,
                    h.dwelling.dwelling_id,
                    "",
                )
            )
            if all(p.death_date for p in h.members):
                h.end_date = person.death_date

    def maybe_move(self, h: Household) -> None:
        rng = self.rng
        roll = rng.random()
        if roll < 0.06:
            h.previous_dwelling = self.territory.pick_stock(rng).new_dwelling(rng)
            h.move_date = self.day_in_year()
            for p in h.members:
                if p.birth_date < h.move_date:
                    self.events.append(
                        Event(
                            "move",
                            h.move_date,
                            p.person_id,
                            h.household_id,
                            h.previous_dwelling.dwelling_id,
                            h.dwelling.dwelling_id,
                        )
                    )
        elif roll < 0.09:
            h.arrival_date = self.day_in_year()
            self.events.append(
                Event(
                    "arrival",
                    h.arrival_date,
                    h.members[0].person_id,
                    h.household_id,
                    "",
                    h.dwelling.dwelling_id,
                )
            )

    def finances(self, h: Household) -> None:
        adults = [p for p in h.members if not p.is_child]
        children = [p for p in h.members if p.is_child]
        h.revenu_fiscal = int(sum(p.income for p in adults) * 0.9)
        n = len(children)
        h.parts = (2.0 if len(adults) >= 2 else 1.0) + 0.5 * min(n, 2) + max(0, n - 2)
        if len(adults) == 1 and n:
            h.parts += 0.5
        if h.kind == "shared_flat":
            h.parts = float(len(adults))
        allowances = {0: 0, 1: 0, 2: 1790, 3: 4080}.get(n, 4080 + 2290 * (n - 3))
        school_age = sum(1 for c in children if 6 <= self.year - c.birth_date.year <= 18)
        h.family_benefits = allowances + (
            420 * school_age if h.revenu_fiscal < 26000 + 6000 * n else 0
        )


def build_population(
    rng: random.Random, territory: Territory, bank: NameBank, size: int, year: int
) -> Population:
    """Households drawn until ``size`` persons live in the territory."""
    builder = _Builder(rng, territory, bank, year)
    households: list[Household] = []
    while builder.people < size:
        households.append(builder.household())
    events = sorted(builder.events, key=lambda e: (e.day, e.person_id, e.kind))
    return Population(households, events, year, builder.people)
