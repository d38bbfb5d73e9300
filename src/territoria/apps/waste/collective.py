"""Collective buildings: the manager's bill apportioned between the dwellings.

In vertical collective housing the law lets the service bill the building as one user (CGCT
art. L2333-76): the manager (syndic, landlord) pays and apportions the bill with a key it
chooses — number of residents, surface, equal shares or, for the TEOMi, the rental value
(CGI art. 1522 bis: quantities known only for a group of premises are apportioned pro rata of
the valeur locative). With optional individual counting (each dwelling's badge on the
building's drop-off columns), the variable part follows each dwelling's own openings.

Amounts are split to the cent by the largest-remainder method: the shares always add up to the
bill exactly; leftover cents go to the largest fractional parts (ties: unit order).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Literal

import pyarrow as pa
from pydantic import BaseModel

from territoria.apps.waste.billing import VARIABLE_KINDS, BillingRun
from territoria.apps.waste.money import euros
from territoria.core.errors import TerritoriaError

ApportionmentKey = Literal["residents", "surface", "equal", "valeur_locative"]
KEY_COLUMNS: dict[ApportionmentKey, str | None] = {
    "residents": "residents",
    "surface": "surface_m2",
    "valeur_locative": "valeur_locative",
    "equal": None,
}
KEY_LABELS: dict[ApportionmentKey, str] = {
    "residents": "nombre de résidents",
    "surface": "surface (m²)",
    "valeur_locative": "valeur locative",
    "equal": "parts égales",
}


class UnitShare(BaseModel):
    """One dwelling's share of the building's bill."""

    unit_id: str
    occupant: str | None
    key_value: Decimal
    openings: int | None
    fixed_cents: int
    variable_cents: int
    amount_cents: int
    amount: str
    explanation: str


class Apportionment(BaseModel):
    """A building's bill split between its dwellings."""

    building_payer: str
    period: str
    key: ApportionmentKey
    individual_counting: bool
    total_cents: int
    fixed_cents: int
    variable_cents: int
    units: list[UnitShare]
    explanation: list[str]


def split_cents(total: int, weights: Sequence[Decimal]) -> list[int]:
    """``total`` cents split pro rata of ``weights``; the parts add up to ``total`` exactly."""
    weight_sum = sum(weights, Decimal(0))
    if weight_sum <= 0 or any(w < 0 for w in weights):
        raise ValueError("weights must be non-negative and not all zero")
    sign, magnitude = (-1 if total < 0 else 1), abs(total)
    exact = [Decimal(magnitude) * w / weight_sum for w in weights]
    parts = [int(x) for x in exact]  # floor (non-negative)
    leftover = magnitude - sum(parts)
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - parts[i]), i))
    for i in order[:leftover]:
        parts[i] += 1
    return [sign * p for p in parts]


def _key_values(rows: list[dict[str, Any]], key: ApportionmentKey) -> list[Decimal]:
    column = KEY_COLUMNS[key]
    values = []
    for row in rows:
        raw = Decimal(1) if column is None else row.get(column)
        if raw is None:
            raise TerritoriaError(
                f"logement {row['unit_id']} : valeur de la clé « {KEY_LABELS[key]} » manquante",
                code="waste_key_missing",
                field_name=column,
            )
        values.append(Decimal(str(raw)))
    if sum(values, Decimal(0)) <= 0:
        raise TerritoriaError(
            f"clé « {KEY_LABELS[key]} » nulle pour tout l'immeuble", code="waste_key_missing"
        )
    return values


def _openings(run: BillingRun, tags: list[str | None]) -> list[int]:
    known = [t for t in tags if t]
    counts: dict[str, int] = {}
    if known:
        run.con.register("unit_tags", pa.table({"tag": pa.array(known, pa.string())}))
        counts = {
            str(tag): int(n)
            for tag, n in run.con.execute(
                "SELECT tag, count(*) FROM ev WHERE tag IN (SELECT tag FROM unit_tags) "
                "AND rowid NOT IN (SELECT rid FROM dupw) AND ts >= ? GROUP BY tag",
                [(run.windows.count or run.windows.fixed)[0]],
            ).fetchall()
        }
    return [counts.get(t, 0) if t else 0 for t in tags]


def apportion(
    run: BillingRun,
    building_payer: str,
    units: pa.Table | list[dict[str, Any]],
    key: ApportionmentKey,
    *,
    individual_counting: bool = False,
) -> Apportionment:
    """Split ``building_payer``'s bill of ``run`` between ``units``.

    ``units`` has ``unit_id``, optionally ``occupant`` (a payer key), the key's column
    (``residents``, ``surface_m2``, ``valeur_locative``) and, for individual counting,
    ``rfid_tag`` (the dwelling's badge). With ``individual_counting`` the variable part is
    split by each dwelling's openings in the run's count window (by the key if none counted).
    """
    rows = units.to_pylist() if isinstance(units, pa.Table) else list(units)
    if not rows:
        raise TerritoriaError("aucun logement à répartir", code="waste_key_missing")
    bill = run.bill(building_payer)
    if not bill.lines:
        raise TerritoriaError(
            f"aucune facture de {run.period.title} pour ce redevable",
            code="waste_no_bill",
            field_name="payer",
        )
    variable = sum(line.amount_cents for line in bill.lines if line.kind in VARIABLE_KINDS)
    fixed = bill.total_cents - variable
    weights = _key_values(rows, key)
    fixed_parts = split_cents(fixed, weights)
    openings = _openings(run, [r.get("rfid_tag") for r in rows]) if individual_counting else None
    by_usage = openings is not None and sum(openings) > 0
    variable_weights = [Decimal(n) for n in openings] if by_usage and openings else weights
    variable_parts = split_cents(variable, variable_weights)
    shares = [
        _share(row, weights[i], fixed_parts[i], variable_parts[i], openings, i, key, by_usage)
        for i, row in enumerate(rows)
    ]
    return Apportionment(
        building_payer=building_payer,
        period=run.period.label,
        key=key,
        individual_counting=by_usage,
        total_cents=bill.total_cents,
        fixed_cents=fixed,
        variable_cents=variable,
        units=shares,
        explanation=_explanation(bill.total_cents, fixed, variable, key, weights, by_usage, run),
    )


def _share(
    row: dict[str, Any],
    weight: Decimal,
    fixed: int,
    variable: int,
    openings: list[int] | None,
    index: int,
    key: ApportionmentKey,
    by_usage: bool,
) -> UnitShare:
    count = None if openings is None else openings[index]
    usage = f" ; part variable selon ses {count} ouverture(s)" if by_usage else ""
    return UnitShare(
        unit_id=str(row["unit_id"]),
        occupant=row.get("occupant"),
        key_value=weight,
        openings=count,
        fixed_cents=fixed,
        variable_cents=variable,
        amount_cents=fixed + variable,
        amount=euros(fixed + variable),
        explanation=(
            f"{KEY_LABELS[key]} : {weight} ; part fixe {euros(fixed)}, part variable "
            f"{euros(variable)}{usage}"
        ),
    )


def _explanation(
    total: int,
    fixed: int,
    variable: int,
    key: ApportionmentKey,
    weights: list[Decimal],
    by_usage: bool,
    run: BillingRun,
) -> list[str]:
    lines = [
        f"Facture de l'immeuble ({run.period.title}) : {euros(total)}, dont part fixe et "
        f"corrections {euros(fixed)} et part variable {euros(variable)}.",
        f"Part fixe répartie selon la clé « {KEY_LABELS[key]} » (total {sum(weights)}), au "
        "centime près (méthode du plus fort reste).",
    ]
    lines.append(
        "Part variable répartie selon les ouvertures de chaque logement (comptage individuel)."
        if by_usage
        else f"Part variable répartie selon la même clé « {KEY_LABELS[key]} »."
    )
    return lines
