"""CCAS social aid (sensitive): Windows-1252 CSV, dates written two ways by different agents."""

from __future__ import annotations

import random
from datetime import date, timedelta

from territoria.sandbox.context import Context, SourceResult
from territoria.sandbox.noise import Noiser
from territoria.sandbox.population import Household, Person
from territoria.sandbox.sinks import CsvSink

HEADER = (
    "N° dossier", "N° aide", "Nom d'usage", "Nom de naissance", "Prénom", "Date de naissance",
    "Sexe", "Adresse", "Complément", "Code postal", "Ville", "Nom conjoint", "Prénom conjoint",
    "Date de naissance conjoint", "Nb adultes", "Nb enfants", "Ressources mensuelles du foyer",
    "Type d'aide", "Date de la demande", "Date de décision", "Montant accordé", "Décision",
    "Situation de handicap",
)  # fmt: skip
# Aid type → (minimum, maximum) amount in euros; None for aid without money.
AID_TYPES: dict[str, tuple[int, int] | None] = {
    "aide alimentaire": (30, 150),
    "aide énergie": (100, 400),
    "secours d'urgence": (50, 300),
    "domiciliation": None,
    "aide au transport": (20, 60),
    "aide à la restauration scolaire": (30, 200),
    "aide au loyer": (150, 500),
}
DECISIONS = ("accordée", "refusée", "en cours")


def _eligible(h: Household) -> bool:
    return h.quotient_familial < 650 or (h.kind == "elderly_alone" and h.revenu_fiscal < 14000)


def write_ccas(ctx: Context) -> SourceResult:
    name = "ccas_aid.csv"
    rng, noise = ctx.rng("ccas"), ctx.noiser("ccas")
    files = aids = 0
    with (
        CsvSink(ctx.out / name, HEADER, delimiter=";", encoding="cp1252") as sink,
        ctx.truth_sink("ccas_aid") as truth,
    ):
        for h in ctx.population.households:
            if not _eligible(h) or rng.random() > 0.3:
                continue
            files += 1
            beneficiary, spouse = _persons(rng, h)
            handicap = "O" if rng.random() < 0.08 else "N"
            for _ in range(rng.choices((1, 2, 3, 4), (0.45, 0.3, 0.15, 0.1))[0]):
                aids += 1
                rid = f"A{ctx.year % 100:02d}-{aids:06d}"
                sink.write(
                    _row(ctx, rng, noise, h, beneficiary, spouse, f"D{files:06d}", rid, handicap)
                )
                truth.write(("ccas_aid", rid, "beneficiary", beneficiary.person_id, h.household_id))
                if spouse is not None:
                    truth.write(("ccas_aid", rid, "spouse", spouse.person_id, h.household_id))
    return SourceResult("ccas_aid", {name: sink.rows})


def _persons(rng: random.Random, h: Household) -> tuple[Person, Person | None]:
    adults = h.adults or h.members
    couple = h.kind in ("couple_no_children", "couple_with_children")
    beneficiary = adults[1] if couple and rng.random() < 0.6 else adults[0]
    spouse = next((p for p in adults[:2] if p is not beneficiary), None) if couple else None
    return beneficiary, spouse


def _date(rng: random.Random, day: date) -> str:
    return day.strftime("%d/%m/%y" if rng.random() < 0.4 else "%d/%m/%Y")


def _row(
    ctx: Context, rng: random.Random, noise: Noiser, h: Household, p: Person,
    spouse: Person | None, file_id: str, rid: str, handicap: str,
) -> list[str]:  # fmt: skip
    family, given, birth = noise.names(p)
    birth_fmt = "%d/%m/%y" if rng.random() < 0.3 else "%d/%m/%Y"
    s_family = s_given = s_birth = ""
    if spouse is not None:
        s_family, s_given, _ = noise.names(spouse)
        s_birth = noise.birth_date(spouse.birth_date, "%d/%m/%Y")
    aid = rng.choice(list(AID_TYPES))
    asked = ctx.year_start + timedelta(days=rng.randrange(350))
    decision = rng.choices(DECISIONS, (0.8, 0.12, 0.08))[0]
    decided = (
        "" if decision == "en cours" else _date(rng, asked + timedelta(days=rng.randrange(1, 15)))
    )
    bounds = AID_TYPES[aid]
    amount = "" if bounds is None or decision != "accordée" else str(rng.randint(*bounds))
    resources = (h.revenu_fiscal / 0.9 + h.family_benefits) / 12 * rng.uniform(0.9, 1.1)
    d = h.dwelling
    return [
        file_id, rid, family, birth, given, noise.birth_date(p.birth_date, birth_fmt),
        p.sex, noise.street(d), noise.complement(d), d.postcode, d.commune.name.upper(),
        s_family, s_given, s_birth, str(len(h.adults)), str(len(h.children)),
        f"{resources:.2f}".replace(".", ","), aid, _date(rng, asked), decided, amount,
        decision, handicap,
    ]  # fmt: skip
