"""Library members (NDJSON) and public-transport passes (JSON array, delegated operator)."""

from __future__ import annotations

import random
from datetime import date, timedelta

from territoria.sandbox.context import Context, SourceResult
from territoria.sandbox.noise import Noiser
from territoria.sandbox.population import Household, Person
from territoria.sandbox.sinks import JsonArraySink, NdjsonSink

LIBRARY_KEYS = (
    "numero_carte", "nom", "prenom", "date_naissance", "adresse", "code_postal", "ville",
    "courriel", "telephone", "categorie", "date_adhesion", "date_expiration", "nb_prets_annee",
    "bibliotheque",
)  # fmt: skip
TRANSPORT_KEYS = (
    "idTitre", "numeroClient", "nomPorteur", "prenomPorteur", "dateNaissance", "typeAbonnement",
    "tarifSolidaire", "debutValidite", "finValidite", "codePostal", "commune",
)  # fmt: skip
SOLIDARITY_BANDS: tuple[tuple[int, str], ...] = (
    (400, "gratuité"), (600, "réduction 75 %"), (800, "réduction 50 %"),
)  # fmt: skip


def _age(ctx: Context, p: Person) -> int:
    return ctx.year - p.birth_date.year


def write_library(ctx: Context) -> SourceResult:
    name = "library_members.ndjson"
    rng, noise = ctx.rng("library"), ctx.noiser("library")
    cards = 0
    with (
        NdjsonSink(ctx.out / name, LIBRARY_KEYS) as sink,
        ctx.truth_sink("library_members") as truth,
    ):
        for h in ctx.population.households:
            for p in h.members:
                age = _age(ctx, p)
                if age < 2 or rng.random() > (0.3 if age < 15 else 0.15):
                    continue
                for _ in range(2 if noise.hit(ctx.rates.duplicate * 2) else 1):
                    cards += 1
                    rid = f"{rng.randint(10, 99)}{cards:08d}"
                    sink.write(_library_row(ctx, rng, noise, h, p, rid))
                    truth.write(("library_members", rid, "member", p.person_id, h.household_id))
    return SourceResult("library_members", {name: sink.rows})


def _library_row(
    ctx: Context, rng: random.Random, noise: Noiser, h: Household, p: Person, rid: str
) -> list[object]:
    family, given, _ = noise.names(p, upper_family=rng.random() < 0.5)
    age = _age(ctx, p)
    born = "" if rng.random() < 0.05 else str(p.birth_date.year) if rng.random() < 0.12 else None
    birth: object = born if born is not None else noise.birth_date(p.birth_date, "%Y-%m-%d")
    joined = date(rng.randint(max(p.birth_date.year + 2, 2005), ctx.year), rng.randint(1, 12), 1)
    d = h.dwelling
    return [
        rid, family, given, birth if birth != "" else None,
        f"{noise.street(d)} {noise.complement(d)}".strip(), d.postcode, d.commune.name,
        noise.email(p) or None, noise.phone(p) or None,
        "enfant" if age < 14 else "senior" if age >= 65 else "adulte", joined.isoformat(),
        date(ctx.year + 1, joined.month, 1).isoformat(), int(rng.expovariate(1 / 18)),
        f"Médiathèque de {d.commune.name}",
    ]  # fmt: skip


def _pass_type(rng: random.Random, age: int) -> str:
    if 11 <= age <= 25 and rng.random() < 0.8:
        return "jeune"
    if age >= 65 and rng.random() < 0.8:
        return "senior"
    return "mensuel" if rng.random() < 0.45 else "annuel"


def _solidarity(rng: random.Random, h: Household) -> str:
    if rng.random() < 0.25:  # eligible households that do not claim (non-recours)
        return "aucun"
    return next(
        (label for ceiling, label in SOLIDARITY_BANDS if h.quotient_familial <= ceiling), "aucun"
    )


def write_transport(ctx: Context) -> SourceResult:
    name = "transport_passes.json"
    rng, noise = ctx.rng("transport"), ctx.noiser("transport")
    passes = clients = 0
    with (
        JsonArraySink(ctx.out / name, TRANSPORT_KEYS) as sink,
        ctx.truth_sink("transport_passes") as truth,
    ):
        for h in ctx.population.households:
            for p in h.members:
                age = _age(ctx, p)
                share = 0.0 if age < 4 else 0.4 if age <= 25 else 0.25 if age >= 65 else 0.3
                if rng.random() >= share:
                    continue
                clients += 1
                kind, tariff = _pass_type(rng, age), _solidarity(rng, h)
                family, given, _ = noise.names(p)  # one customer account, one spelling
                birth = noise.birth_date(p.birth_date, "%Y-%m-%d", partial_formats=("%Y-%m-%d",))
                for start, end in _validities(ctx, rng, kind):
                    passes += 1
                    rid = f"T{passes:09d}"
                    sink.write([
                        rid, f"C{clients:08d}", family, given, birth or None,
                        kind, tariff, start.isoformat(), end.isoformat(), h.dwelling.postcode,
                        h.dwelling.commune.name,
                    ])  # fmt: skip
                    truth.write(("transport_passes", rid, "holder", p.person_id, h.household_id))
    return SourceResult("transport_passes", {name: sink.rows})


def _validities(ctx: Context, rng: random.Random, kind: str) -> list[tuple[date, date]]:
    if kind == "mensuel":
        first = rng.randint(1, 12)
        months = range(first, min(12, first + rng.randint(0, 11)) + 1)
        return [(date(ctx.year, m, 1), _month_end(ctx.year, m)) for m in months]
    start = date(ctx.year, 1, 1) + timedelta(days=rng.randrange(365))
    return [(start, start + timedelta(days=364))]


def _month_end(year: int, month: int) -> date:
    return (date(year + month // 12, month % 12 + 1, 1)) - timedelta(days=1)
