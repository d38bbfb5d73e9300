"""Local social tariffs as dated grids, each version with the deliberation that set it.

A grid (``grids/*.yaml``) prices one service by quotient familial bands: canteen meals,
périscolaire hours, the transport solidarity pass, the water social aid. Each version holds from
``valid_from`` to ``valid_to`` (inclusive) and names its deliberation. Bands are ranges of whole
euros, as published (« de 401 à 600 € »): the quotient is rounded down to the euro, the first
band starts at 0, each next one starts one euro after the previous ends, the last one has no
end. Overlapping or gapped bands, overlapping versions, an unknown band name: refused, with the
file, line and field.
"""

from __future__ import annotations

import math
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from territoria.apps.tariffs.yamlio import ParameterFileError, load_yaml, parse_model
from territoria.core.yaml_lines import LINE

GRIDS_DIR = Path(__file__).resolve().parent / "grids"
AmountKind = Literal["price", "aid"]
AMOUNT_LABELS = {"price": "prix", "aid": "aide"}


class _Entry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Band(_Entry):
    """One band: whole-euro quotient range (``to`` None: no ceiling) and its amount."""

    band: str = Field(min_length=1)
    from_: int = Field(alias="from", ge=0)
    to: int | None = Field(default=None, ge=0)
    amount: float = Field(ge=0)

    def range_label(self) -> str:
        if self.to is None:
            return f"à partir de {self.from_} €"
        return f"de {self.from_} à {self.to} €"


class GridVersion(_Entry):
    """The bands in force from ``valid_from`` to ``valid_to``, and the deliberation."""

    valid_from: date
    valid_to: date | None = None
    deliberation: str = Field(min_length=1)
    bands: list[Band] = Field(min_length=1)

    def band(self, name: str) -> Band | None:
        return next((b for b in self.bands if b.band == name), None)

    def band_for(self, quotient: float) -> Band:
        euros = math.floor(quotient)
        return next(b for b in self.bands if b.from_ <= euros and (b.to is None or euros <= b.to))


class Grid(_Entry):
    """A local tariff: the service, what the band amount means, and its dated versions."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label: str
    service: str
    unit: str
    amount: AmountKind
    quotient: str
    unknown_quotient_band: str
    versions: list[GridVersion] = Field(min_length=1)
    current_band_field: str = ""  # where the sources hold the band applied today

    def version_at(self, day: date) -> GridVersion | None:
        return next(
            (
                v
                for v in self.versions
                if v.valid_from <= day and (v.valid_to is None or day <= v.valid_to)
            ),
            None,
        )

    def saving(self, current: Band, applicable: Band) -> float:
        """What the household gains per unit by moving from ``current`` to ``applicable``."""
        if self.amount == "price":
            return current.amount - applicable.amount
        return applicable.amount - current.amount


def _fail(path: Path, line: Any, field: str, message: str, expected: str | None = None) -> None:
    raise ParameterFileError(
        message,
        code="tariffs_grid",
        file=path,
        line=line if isinstance(line, int) else None,
        field_name=field,
        expected=expected,
    )


def _check_bands(path: Path, raw: dict[str, Any], where: str, version: GridVersion) -> None:
    raw_bands = raw.get("bands", [])
    names = [b.band for b in version.bands]
    previous: Band | None = None
    for index, band in enumerate(version.bands):
        line = raw_bands[index].get(LINE) if index < len(raw_bands) else None
        field = f"{where}.bands.{index}"
        if names.count(band.band) > 1:
            _fail(path, line, f"{field}.band", f"tranche « {band.band} » en double")
        if band.to is not None and band.to < band.from_:
            _fail(path, line, f"{field}.to", f"la tranche {band.band} finit avant de commencer")
        if previous is None and band.from_ != 0:
            _fail(path, line, f"{field}.from", "la première tranche doit commencer à 0 €")
        if previous is not None:
            if previous.to is None:
                _fail(path, line, f"{field}.from", f"la tranche {previous.band} n'a pas de fin")
            expected = (previous.to or 0) + 1
            if band.from_ < expected:
                _fail(
                    path,
                    line,
                    f"{field}.from",
                    f"la tranche {band.band} chevauche la tranche {previous.band}",
                    f"début à {expected} €",
                )
            if band.from_ > expected:
                _fail(
                    path,
                    line,
                    f"{field}.from",
                    f"trou entre les tranches {previous.band} et {band.band} "
                    f"(de {expected} à {band.from_ - 1} €)",
                    f"début à {expected} €",
                )
        previous = band
    if previous is not None and previous.to is not None:
        line = raw_bands[-1].get(LINE) if raw_bands else None
        _fail(
            path,
            line,
            f"{where}.bands.{len(names) - 1}.to",
            "la dernière tranche ne doit pas avoir de plafond",
            "to: null",
        )


def _check(path: Path, raw: dict[str, Any], grid: Grid) -> None:
    raw_versions = raw.get("versions", [])
    for index, version in enumerate(grid.versions):
        raw_version = raw_versions[index]
        where = f"versions.{index}"
        line = raw_version.get(LINE)
        if version.valid_to is not None and version.valid_to < version.valid_from:
            _fail(path, line, f"{where}.valid_to", "la version finit avant de commencer")
        if index and grid.versions[index - 1].valid_from >= version.valid_from:
            _fail(path, line, f"{where}.valid_from", "versions à ranger par date de début")
        before = grid.versions[index - 1] if index else None
        if before is not None and (
            before.valid_to is None or before.valid_to >= version.valid_from
        ):
            _fail(
                path,
                line,
                f"{where}.valid_from",
                "cette version chevauche la précédente",
                f"valid_to de la précédente avant le {version.valid_from.isoformat()}",
            )
        _check_bands(path, raw_version, where, version)
        if version.band(grid.unknown_quotient_band) is None:
            _fail(
                path,
                raw.get(LINE),
                "unknown_quotient_band",
                f"tranche « {grid.unknown_quotient_band} » absente de la version {index}",
            )


def load_grid(path: Path) -> Grid:
    """A grid file, validated (see the module docstring)."""
    raw = load_yaml(path)
    grid = parse_model(Grid, raw, path)
    _check(path, raw, grid)
    return grid


@cache
def default_grids() -> dict[str, Grid]:
    """The grids shipped with Territoria (the sandbox territory's, fictitious deliberations)."""
    return load_grids(GRIDS_DIR)


def load_grids(folder: Path) -> dict[str, Grid]:
    grids: dict[str, Grid] = {}
    for path in sorted(folder.glob("*.yaml")):
        grid = load_grid(path)
        if grid.id in grids:
            _fail(path, 1, "id", f"grille « {grid.id} » déjà définie par un autre fichier")
        grids[grid.id] = grid
    return grids
