"""French, household-rich linkage data for the identity benchmarks (imported, not run).

People come from the sandbox's own generator (INSEE-like names, households sharing a surname
and a dwelling, twins, homonyms, married names); each source then records every person once,
through ``Noiser`` with its own habits:

- ``source_a``: family name in capitals, dates ``31/12/1980``, sex, full address with its
  complement (``12 bis rue X, Bât. B Apt 3``), commune in capitals; no phone, no e-mail;
- ``source_b``: family name as written (``Dupont``), dates ``1980-12-31``, address without
  complement, phone and e-mail when the person has them (and ``Noiser`` keeps them);
- ``source_c``: like ``source_a`` with a phone number (the new records of ``link_incremental``).

    >>> a, b, truth = make_pair(1_000, seed=1)  # doctest: +SKIP
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

import pyarrow as pa

from territoria.identity.mentions import MENTION_COLUMNS, MENTION_SCHEMA, mention_id
from territoria.sandbox.names import name_bank, title_name
from territoria.sandbox.noise import Noiser, NoiseRates
from territoria.sandbox.population import Person, build_population
from territoria.sandbox.territory import Dwelling, build_territory

REFERENCE_YEAR = 2025
SLOT = "personne"
TRUTH_SCHEMA = pa.schema(
    [("unique_id", pa.string()), ("entity", pa.string()), ("household", pa.string())]
)


@dataclass(frozen=True, slots=True)
class Resident:
    person: Person
    dwelling: Dwelling


Habit = Callable[[Noiser, Resident], dict[str, str]]


def residents(n: int, seed: int) -> list[Resident]:
    """``n`` persons of the sandbox, whole households one after the other (the last one may
    be cut to reach exactly ``n``)."""
    territory = build_territory(random.Random(f"linkdata:{seed}:territory"), n)
    population = build_population(
        random.Random(f"linkdata:{seed}:population"), territory, name_bank(), n, REFERENCE_YEAR
    )
    out = [Resident(p, h.dwelling) for h in population.households for p in h.members]
    return out[:n]


def _address(noise: Noiser, dwelling: Dwelling, *, complement: bool) -> str:
    street = noise.street(dwelling)
    extra = noise.complement(dwelling) if complement else ""
    return f"{street}, {extra}" if extra else street


def _habit_a(noise: Noiser, r: Resident) -> dict[str, str]:
    family, given, birth = noise.names(r.person, upper_family=True)
    return {
        "family_name": family,
        "given_name": given,
        "birth_name": birth,
        "birth_date": noise.birth_date(r.person.birth_date, "%d/%m/%Y"),
        "sex": r.person.sex,
        "address": _address(noise, r.dwelling, complement=True),
        "postcode": r.dwelling.postcode,
        "commune": r.dwelling.commune.name.upper(),
    }


def _habit_b(noise: Noiser, r: Resident) -> dict[str, str]:
    written = replace(
        r.person,
        family_name=title_name(r.person.family_name),
        birth_name=title_name(r.person.birth_name),
    )
    family, given, birth = noise.names(written, upper_family=False)
    return {
        "family_name": family,
        "given_name": given,
        "birth_name": birth,
        "birth_date": noise.birth_date(
            r.person.birth_date, "%Y-%m-%d", partial_formats=("%Y", "%Y-%m")
        ),
        "address": _address(noise, r.dwelling, complement=False),
        "postcode": r.dwelling.postcode,
        "commune": r.dwelling.commune.name,
        "phone": noise.phone(r.person),
        "email": noise.email(r.person),
    }


def _habit_c(noise: Noiser, r: Resident) -> dict[str, str]:
    return {**_habit_a(noise, r), "phone": noise.phone(r.person)}


HABITS: dict[str, Habit] = {"source_a": _habit_a, "source_b": _habit_b, "source_c": _habit_c}


def records(people: Iterable[Resident], source: str, seed: int) -> tuple[pa.Table, pa.Table]:
    """One record per person in ``source``'s habit, in shuffled order (record ids carry no
    trace of the person): (``MENTION_SCHEMA`` table, truth table)."""
    rng = random.Random(f"linkdata:{seed}:{source}")
    order = list(people)
    rng.shuffle(order)
    noise, habit = Noiser(rng, NoiseRates()), HABITS[source]
    columns: dict[str, list[str | None]] = {c: [] for c in MENTION_COLUMNS}
    truth: dict[str, list[str]] = {c: [] for c in TRUTH_SCHEMA.names}
    for i, resident in enumerate(order):
        record_id = f"{source[-1].upper()}{i:07d}"
        uid = mention_id(source, record_id, SLOT)
        fields = habit(noise, resident)
        row = {"mention_id": uid, "source": source, "record_id": record_id, "slot": SLOT}
        for column in MENTION_COLUMNS:
            value = row.get(column) or fields.get(column)
            columns[column].append(value or None)
        truth["unique_id"].append(uid)
        truth["entity"].append(resident.person.person_id)
        truth["household"].append(resident.person.household_id)
    return pa.table(columns, schema=MENTION_SCHEMA), pa.table(truth, schema=TRUTH_SCHEMA)


def make_pair(n: int, seed: int) -> tuple[pa.Table, pa.Table, pa.Table]:
    """Sources A and B of the same ``n`` persons (one true record per person in each) and the
    truth (``unique_id``, ``entity`` = person, ``household``)."""
    people = residents(n, seed)
    a, truth_a = records(people, "source_a", seed)
    b, truth_b = records(people, "source_b", seed)
    return a, b, pa.concat_tables([truth_a, truth_b])
