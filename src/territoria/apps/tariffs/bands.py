"""Each household's applicable band for each local service it uses, explained.

The band comes from the famille's quotient familial (the definition the grid names), rounded
down to the euro, looked up in the grid version in force on the reference month. When the
quotient is unknown, the grid's default band applies (usually the full price) and the
assignment says so: it never claims that an unknown quotient is 0.
"""

from __future__ import annotations

import math
from datetime import date

from pydantic import BaseModel, ConfigDict

from territoria.apps.tariffs.explain import euros, number
from territoria.apps.tariffs.grids import AMOUNT_LABELS, Band, Grid, GridVersion
from territoria.apps.tariffs.model import Provenance, ServiceUse, TariffInputError
from territoria.apps.tariffs.openfisca_sim import Screening


class BandAssignment(BaseModel):
    """The band a household's use of a service should get, against the one applied today."""

    model_config = ConfigDict(frozen=True)

    household_key: str
    service: str
    service_label: str
    member: str | None
    famille: int
    quotient_id: str
    quotient: float | None
    band: str
    amount: float
    amount_kind: str
    unit: str
    monthly_quantity: float
    current_band: str | None
    current_amount: float | None
    monthly_saving: float | None
    valid_from: date
    deliberation: str
    how: str
    provenance: Provenance


def _member_rows(screening: Screening) -> dict[tuple[int, str], int]:
    layout = screening.layout
    return {
        (layout.person_household[p], layout.person_keys[p]): layout.person_famille[p]
        for p in range(layout.persons)
    }


def _grid_for(grids: dict[str, Grid], use: ServiceUse, day: date) -> tuple[Grid, GridVersion]:
    grid = grids.get(use.service)
    if grid is None:
        raise TariffInputError(
            f"service « {use.service} » sans grille tarifaire",
            code="tariffs_unknown_service",
            field_name="services.service",
            expected=", ".join(sorted(grids)),
        )
    version = grid.version_at(day)
    if version is None:
        raise TariffInputError(
            f"aucune version de la grille « {grid.id} » en vigueur le {day.strftime('%d/%m/%Y')}",
            code="tariffs_no_grid_version",
            field_name=grid.id,
        )
    return grid, version


def assign_bands(screening: Screening, grids: dict[str, Grid]) -> list[BandAssignment]:
    """Every service use of every household, with its applicable band (see module)."""
    rows = _member_rows(screening)
    day = screening.reference
    quotients = {q.id: screening.quotient(q.id) for q in screening.catalogue.quotients}
    out: list[BandAssignment] = []
    for h_index, household in enumerate(screening.households):
        for use in household.services:
            grid, version = _grid_for(grids, use, day)
            row = (
                rows[(h_index, use.member)]
                if use.member
                else screening.famille_rows(household.key)[0]
            )
            value = float(quotients[grid.quotient][row])
            out.append(_assignment(screening, household.key, use, grid, version, row, value))
    return out


def _assignment(
    screening: Screening,
    household_key: str,
    use: ServiceUse,
    grid: Grid,
    version: GridVersion,
    row: int,
    quotient: float,
) -> BandAssignment:
    known = not math.isnan(quotient)
    band = version.band_for(quotient) if known else version.band(grid.unknown_quotient_band)
    assert band is not None  # checked when the grid was loaded
    current = version.band(use.current_band) if use.current_band is not None else None
    saving = None
    if known and current is not None:
        saving = round(grid.saving(current, band) * use.monthly_quantity, 2)
    return BandAssignment(
        household_key=household_key,
        service=grid.id,
        service_label=grid.label,
        member=use.member,
        famille=row - screening.famille_rows(household_key)[0],
        quotient_id=grid.quotient,
        quotient=quotient if known else None,
        band=band.band,
        amount=band.amount,
        amount_kind=grid.amount,
        unit=grid.unit,
        monthly_quantity=use.monthly_quantity,
        current_band=use.current_band,
        current_amount=None if current is None else current.amount,
        monthly_saving=saving,
        valid_from=version.valid_from,
        deliberation=version.deliberation,
        how=_how(screening, grid, version, band, current, use, quotient, saving),
        provenance=use.provenance,
    )


def _how(
    screening: Screening,
    grid: Grid,
    version: GridVersion,
    band: Band,
    current: Band | None,
    use: ServiceUse,
    quotient: float,
    saving: float | None,
) -> str:
    label = screening.catalogue.quotient(grid.quotient).label
    kind = AMOUNT_LABELS[grid.amount]
    grid_line = (
        f"grille « {grid.label} » en vigueur depuis le {version.valid_from.strftime('%d/%m/%Y')} "
        f"({version.deliberation}) : tranche {band.band}, {band.range_label()}, "
        f"{kind} {euros(band.amount)} par {grid.unit}"
    )
    if math.isnan(quotient):
        text = f"{label} inconnu : tranche par défaut de la {grid_line}."
    else:
        text = (
            f"{label} {euros(quotient)} pour {screening.period}, arrondi à {math.floor(quotient)} € ; "
            f"{grid_line}."
        )
    if use.current_band is None:
        return text + " Tranche appliquée aujourd'hui : inconnue des sources."
    if current is None:
        return (
            text + f" Tranche appliquée aujourd'hui « {use.current_band} » : absente de la grille."
        )
    text += (
        f" Tranche appliquée aujourd'hui : {current.band} ({kind} {euros(current.amount)}), "
        f"selon {use.provenance.label()}."
    )
    if saving:
        sign = "de moins à payer" if grid.amount == "price" else "d'aide en plus"
        text += (
            f" Écart : |{euros(current.amount)} − {euros(band.amount)}| × "
            f"{number(use.monthly_quantity)} {grid.unit} par mois = {euros(abs(saving))} {sign} "
            "par mois."
            if saving > 0
            else f" La tranche appliquée est plus favorable que celle du quotient "
            f"({euros(-saving)} par mois)."
        )
    return text
