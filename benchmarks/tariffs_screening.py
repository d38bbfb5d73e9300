"""Benchmark: social-tariff and entitlement screening of 100,000 households with OpenFisca.

Target (issue 6, performance): the screening of 100,000 households with OpenFisca's vectorised
simulation in under 120 s on this 2-core machine. The households are synthetic, generated here
(Lyon-area communes, single people, couples, single parents, pensioners, shared flats; salaries,
unemployment benefits, pensions; tenants, social tenants, owners; canteen, transport and water
users with their current band; some national entitlements declared received), all with
provenance. The screening is the whole chain the CLI runs: OpenFisca (quotients and national
entitlements), local bands, and the non-take-up worklist.

The ratio reported is measured in the same run: the time of the full screening divided by
(households ÷ 1,000) × the time of the same screening of 1,000 households, i.e. how far the
vectorised simulation is from linear scaling of a small batch (below 1: the batch amortises
OpenFisca's fixed cost). The tax-benefit system is loaded first and timed apart (a long-lived
process such as the web server loads it once), so both runs find it loaded.

    python benchmarks/tariffs_screening.py            # 100 000 foyers
    python benchmarks/tariffs_screening.py --quick    # 5 000 foyers
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import time
from datetime import date

from territoria.apps.tariffs import (
    Household,
    Housing,
    Income,
    Member,
    Provenance,
    Receipt,
    ServiceUse,
    default_grids,
    non_take_up_worklist,
    screen,
    tax_benefit_system,
)

TARGET_SECONDS = 120.0
REFERENCE = date(2025, 11, 1)
COMMUNES = ("69123", "69266", "69259", "69029", "69290", "69384", "69388", "69387")


def _provenance(source: str, rng: random.Random, record: str) -> Provenance:
    return Provenance(
        source=source, as_of=date(2025, rng.randint(1, 10), rng.randint(1, 28)), record=record
    )


def _adult(rng: random.Random, key: str, role: str, age: tuple[int, int]) -> Member:
    birth = date(REFERENCE.year - rng.randint(*age), rng.randint(1, 12), rng.randint(1, 28))
    kind = rng.choices(("salaire", "chomage", "retraite"), (0.7, 0.12, 0.18))[0]
    if age[0] >= 65:
        kind = "retraite"
    net = 0.0 if rng.random() < 0.15 else round(rng.lognormvariate(7.1, 0.5), 2)
    income = Income(kind=kind, monthly_net=net, provenance=_provenance("ccas_aid", rng, key))
    incomes = None if rng.random() < 0.03 else [income]
    return Member(
        key=key, role=role, birth_date=birth, incomes=incomes, provenance=income.provenance
    )


def synthetic_household(rng: random.Random, index: int) -> Household:
    key = f"H{index:07d}"
    kind = rng.choices(
        ("single", "couple", "couple_children", "single_parent", "pensioner", "shared"),
        (0.25, 0.15, 0.25, 0.12, 0.15, 0.08),
    )[0]
    age = (66, 92) if kind == "pensioner" else (20, 60)
    members = [_adult(rng, f"{key}-1", "demandeur", age)]
    if kind in ("couple", "couple_children"):
        members.append(_adult(rng, f"{key}-2", "conjoint", age))
    if kind == "shared":
        members.append(_adult(rng, f"{key}-2", "autre_adulte", age))
    services: list[ServiceUse] = []
    if kind in ("couple_children", "single_parent"):
        for c in range(rng.choice((1, 1, 2, 2, 3, 4))):
            child = f"{key}-c{c}"
            birth = date(REFERENCE.year - rng.randint(0, 17), rng.randint(1, 12), 15)
            prov = _provenance("school_enrolments", rng, child)
            members.append(Member(key=child, role="enfant", birth_date=birth, provenance=prov))
            if 3 <= REFERENCE.year - birth.year <= 11 and rng.random() < 0.8:
                band = rng.choice("ABCDEFGG")
                services.append(
                    ServiceUse(
                        service="restauration_scolaire",
                        member=child,
                        monthly_quantity=rng.choice((8, 12, 16)),
                        current_band=band,
                        provenance=prov,
                    )
                )
    if rng.random() < 0.3:
        band = rng.choice(("aucun", "aucun", "gratuité", "réduction 50 %"))
        services.append(
            ServiceUse(
                service="transport_solidaire",
                member=members[0].key,
                monthly_quantity=1,
                current_band=band,
                provenance=_provenance("transport_passes", rng, key),
            )
        )
    if rng.random() < 0.5:
        services.append(
            ServiceUse(
                service="eau_tarif_social",
                monthly_quantity=1,
                current_band=rng.choice(("aucune", "aucune", "aide")),
                provenance=_provenance("water_subscribers", rng, key),
            )
        )
    status = rng.choices(
        ("locataire_vide", "locataire_hlm", "proprietaire", "loge_gratuitement"),
        (0.4, 0.3, 0.25, 0.05),
    )[0]
    rent = round(rng.uniform(350, 1100), 2) if status.startswith("locataire") else 0.0
    prov = _provenance("water_subscribers", rng, key)
    receipts = [
        Receipt(entitlement=e, received=True, provenance=_provenance("ccas_aid", rng, key))
        for e in ("aide_logement", "af", "rsa")
        if rng.random() < 0.3
    ]
    return Household(
        key=key,
        commune=rng.choice(COMMUNES),
        commune_provenance=prov,
        members=members,
        housing=Housing(status=status, monthly_rent=rent, provenance=prov),
        services=services,
        receipts=receipts,
    )


def run(households: list[Household]) -> tuple[float, dict[str, float], int]:
    start = time.perf_counter()
    screening = screen(households, REFERENCE)
    worklist = non_take_up_worklist(screening, default_grids())
    return time.perf_counter() - start, screening.timings, len(worklist.entries)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 000 foyers au lieu de 100 000")
    args = parser.parse_args()
    count = 5_000 if args.quick else 100_000
    rng = random.Random(6)
    start = time.perf_counter()
    households = [synthetic_household(rng, i) for i in range(count)]
    generated = time.perf_counter() - start
    small = households[:1_000]
    print(f"{count} foyers fictifs générés en {generated:.1f} s ; chargement d'OpenFisca…")
    start = time.perf_counter()
    tax_benefit_system()
    loaded = time.perf_counter() - start
    print(f"OpenFisca-France et openfisca-france-local chargés en {loaded:.1f} s ; repérage…")
    seconds, timings, listed = run(households)
    small_seconds, _, _ = run(small)
    ratio = seconds / (small_seconds * count / 1_000)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"repérage de {count} foyers : {seconds:.1f} s (cible < {TARGET_SECONDS:.0f} s) — "
        f"entités et entrées {timings['build']:.1f} s, "
        f"calcul {timings['compute']:.1f} s ; {listed} foyers sur la liste de non-recours"
    )
    print(f"référence : 1 000 foyers en {small_seconds:.1f} s ; mémoire max {peak_mb:.0f} Mo")
    print(
        json.dumps(
            {
                "benchmark": "tariffs_screening",
                "value": round(seconds, 2),
                "unit": "s",
                "target": TARGET_SECONDS,
                "ratio": round(ratio, 4),
                "ratio_reference": "seconds / (households/1000 × seconds for 1,000 households)",
                "households": count,
                "seconds_1000": round(small_seconds, 2),
                "compute_s": round(timings["compute"], 2),
                "build_s": round(timings["build"], 2),
                "load_s": round(loaded, 2),
                "generate_s": round(generated, 2),
                "worklist": listed,
                "peak_rss_mb": round(peak_mb),
            }
        )
    )


if __name__ == "__main__":
    main()
