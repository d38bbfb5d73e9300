"""School canteen enrolments (Excel), children aged 3 to 11 with their legal guardians."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta

from territoria.sandbox.context import Context, SourceResult
from territoria.sandbox.noise import Noiser
from territoria.sandbox.population import Household, Person
from territoria.sandbox.sinks import XlsxSink

HEADER = (
    "N° inscription", "Nom de l'enfant", "Prénom de l'enfant", "Date de naissance", "Sexe",
    "École", "Niveau", "Jours de cantine par semaine", "Tranche tarifaire",
    "Responsable 1 - Nom", "Responsable 1 - Prénom", "Responsable 1 - Téléphone",
    "Responsable 1 - Courriel", "Responsable 2 - Nom", "Responsable 2 - Prénom",
    "Responsable 2 - Téléphone", "Responsable 2 - Courriel", "Adresse", "Code postal",
    "Commune", "Date d'inscription",
)  # fmt: skip
LEVELS = ("PS", "MS", "GS", "CP", "CE1", "CE2", "CM1", "CM2")
# Monthly quotient familial ceilings of the canteen tariff bands (last band has no ceiling).
TARIFF_BANDS: tuple[tuple[str, int], ...] = (
    ("A", 400), ("B", 600), ("C", 800), ("D", 1000), ("E", 1300), ("F", 1700), ("G", 10**9),
)  # fmt: skip
_SCHOOL_NAMES = (
    "Jean Jaurès", "Victor Hugo", "Jules Ferry", "Louis Pasteur", "Marie Curie", "Jean Moulin",
    "Les Tilleuls", "Les Marronniers", "Anatole France", "Lucie Aubrac", "Simone Veil",
    "Paul Bert", "Jean Macé", "Les Glycines", "Antoine de Saint-Exupéry", "Condorcet",
)  # fmt: skip


def tariff_band(quotient: int) -> str:
    return next(band for band, ceiling in TARIFF_BANDS if quotient <= ceiling)


def _school(rng: random.Random, commune: str, level: str) -> str:
    kind = "maternelle" if level in ("PS", "MS", "GS") else "élémentaire"
    return (
        f"École {kind} {rng.choice(_SCHOOL_NAMES[:8] if commune < '69100' else _SCHOOL_NAMES[6:])}"
    )


def _guardians(rng: random.Random, h: Household, child: Person) -> list[Person]:
    parents = [p for p in h.adults if p.birth_date.year + 16 < child.birth_date.year]
    parents = parents[:2]
    if len(parents) == 2 and rng.random() < 0.65:
        parents.sort(key=lambda p: p.sex)  # mothers are more often the first contact
    return parents


def write_school(ctx: Context) -> SourceResult:
    name = "school_enrolments.xlsx"
    rng, noise = ctx.rng("school"), ctx.noiser("school")
    created = datetime(ctx.year, 9, 1, 8, 0, 0)
    counter = 0
    with (
        XlsxSink(ctx.out / name, HEADER, sheet="Inscriptions", created=created) as sink,
        ctx.truth_sink("school_enrolments") as truth,
    ):
        for h in ctx.population.households:
            for child in h.children:
                level_index = ctx.year - 3 - child.birth_date.year
                if not 0 <= level_index < len(LEVELS) or child.death_date or rng.random() > 0.93:
                    continue
                guardians = _guardians(rng, h, child)
                copies = 2 if noise.hit(ctx.rates.duplicate) else 1
                for _ in range(copies):
                    counter += 1
                    rid = f"INS{ctx.year}-{counter:07d}"
                    sink.write(_row(ctx, rng, noise, h, child, guardians, LEVELS[level_index], rid))
                    truth.write(
                        ("school_enrolments", rid, "child", child.person_id, h.household_id)
                    )
                    for slot, g in zip(("guardian_1", "guardian_2"), guardians, strict=False):
                        truth.write(("school_enrolments", rid, slot, g.person_id, h.household_id))
    return SourceResult("school_enrolments", {name: sink.rows})


def _row(
    ctx: Context, rng: random.Random, noise: Noiser, h: Household, child: Person,
    guardians: list[Person], level: str, rid: str,
) -> list[object]:  # fmt: skip
    family, given, _ = noise.names(child)
    guardian_cells: list[object] = []
    for g in (*guardians, None, None)[:2]:
        if g is None:
            guardian_cells.extend(("", "", "", ""))
        else:
            g_family, g_given, _ = noise.names(g)
            guardian_cells.extend((g_family, g_given, noise.phone(g), noise.email(g)))
    d = h.dwelling
    street = noise.street(d)
    complement = noise.complement(d)
    enrolled = date(ctx.year, 3, 1) + timedelta(days=rng.randrange(180))
    return [
        rid, family, given, noise.birth_date(child.birth_date, "%d/%m/%Y", partial_formats=("%m/%Y",)),
        "F" if child.sex == "F" else "M", _school(rng, d.commune.code_insee, level), level,
        rng.choice((0, 2, 3, 4, 4, 4, 4)), tariff_band(h.quotient_familial), *guardian_cells,
        f"{street} {complement}".strip(), d.postcode, d.commune.name,
        enrolled.strftime("%d/%m/%Y"),
    ]  # fmt: skip
