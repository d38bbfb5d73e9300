"""Tariff grids as dated data: each grid is a YAML file with the deliberation it comes from.

A grid says who fixed it (authority, deliberation reference and date, source), when it applies
(validity), how often it is billed (year, semester, four months) and how the variable part is
settled (each period, or on the year's last bill), and, per category of payer (households,
professionals…), the fixed part (by bin volume — several bins add up —, by household size, or
for the TEOMi by the tax base), the lifts or openings included, the price of each extra lift by
volume, per kg and per column opening, the "no bin" rule and the exemptions. A TEOMi grid
declares its expected incentive share, which the law bounds to 10–45 % of the tax's product
(CGI art. 1522 bis); the bound is checked when the grid is loaded.

Loading keeps the line of every key, so a bad grid is refused with its file, line and field.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from territoria.apps.waste.money import Rounding, to_cents
from territoria.apps.waste.periods import PERIODS_PER_YEAR, BillingPeriodKind, Period
from territoria.core.errors import TerritoriaError

TEOMI_MIN_SHARE = Decimal("0.10")
TEOMI_MAX_SHARE = Decimal("0.45")
FixedBasis = Literal["bin_volume", "household_size", "tax_base"]
Scheme = Literal["reomi", "teomi"]


def _decimal(value: Any, places: int, what: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise PydanticCustomError("waste_amount", "{what} : nombre attendu", {"what": what})
    try:
        number = Decimal(str(value).replace(",", ".").replace(" ", ""))
    except ArithmeticError:
        raise PydanticCustomError(
            "waste_amount", "{what} : nombre attendu", {"what": what}
        ) from None
    if not number.is_finite() or number < 0:
        raise PydanticCustomError("waste_amount", "{what} : positif attendu", {"what": what})
    if -number.as_tuple().exponent > places:  # type: ignore[operator]
        raise PydanticCustomError(
            "waste_amount",
            "{what} : au plus {places} décimales",
            {"what": what, "places": places},
        )
    return number


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _drop_lines(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: v for k, v in value.items() if k not in ("__line__", "__lines__")}
        return value


class Deliberation(_Entry):
    """The decision that fixed the grid."""

    reference: str
    date: dt.date | None = None
    url: str | None = None
    note: str | None = None


class Source(_Entry):
    """Where the published figures were read."""

    url: str
    consulted: str | None = None
    note: str | None = None


class BinRate(_Entry):
    """Fixed part and lift prices of one bin volume (or a range of volumes priced alike)."""

    volume_l: int | list[int]
    annual_fixed: Decimal = Decimal(0)
    included_lifts: int = Field(default=0, ge=0)
    extra_lift: Decimal | None = None
    minimum_lifts: int = Field(default=0, ge=0)

    @field_validator("annual_fixed", "extra_lift", mode="before")
    @classmethod
    def _money(cls, value: Any) -> Any:
        return None if value is None else _decimal(value, 2, "montant en euros")

    @property
    def volumes(self) -> tuple[int, ...]:
        return tuple(self.volume_l) if isinstance(self.volume_l, list) else (self.volume_l,)


class HouseholdBand(_Entry):
    """Fixed part by household size (``max_persons`` absent: and more)."""

    min_persons: int = Field(ge=1)
    max_persons: int | None = None
    annual_fixed: Decimal
    included_openings: int = Field(default=0, ge=0)

    @field_validator("annual_fixed", mode="before")
    @classmethod
    def _money(cls, value: Any) -> Any:
        return _decimal(value, 2, "montant en euros")

    @property
    def label(self) -> str:
        if self.max_persons is None:
            return f"{self.min_persons} pers. et plus"
        if self.max_persons == self.min_persons:
            return f"{self.min_persons} pers."
        return f"{self.min_persons} à {self.max_persons} pers."


class Openings(_Entry):
    """Drop-off column openings (badge): price per opening, openings included per year."""

    price: Decimal
    included: int = Field(default=0, ge=0)

    @field_validator("price", mode="before")
    @classmethod
    def _money(cls, value: Any) -> Any:
        return _decimal(value, 2, "prix de l'ouverture")


class NoBin(_Entry):
    """Payers without a bin (column users) pay the fixed part of a reference volume."""

    volume_l: int
    included_openings: int = Field(default=0, ge=0)
    description: str | None = None


class CategoryTariff(_Entry):
    """The tariff of one category of payer."""

    label: str
    fixed_basis: FixedBasis = "bin_volume"
    subscription: Decimal = Decimal(0)
    bins: list[BinRate] = Field(default_factory=list)
    household_bands: list[HouseholdBand] = Field(default_factory=list)
    per_kg: Decimal | None = None
    included_kg: Decimal = Decimal(0)
    openings: Openings | None = None
    no_bin: NoBin | None = None

    @field_validator("subscription", mode="before")
    @classmethod
    def _money(cls, value: Any) -> Any:
        return _decimal(value, 2, "abonnement")

    @field_validator("per_kg", mode="before")
    @classmethod
    def _per_kg(cls, value: Any) -> Any:
        return None if value is None else _decimal(value, 4, "prix au kg")

    @field_validator("included_kg", mode="before")
    @classmethod
    def _kg(cls, value: Any) -> Any:
        return _decimal(value, 3, "kg inclus")

    @model_validator(mode="after")
    def _consistent(self) -> CategoryTariff:
        seen: set[int] = set()
        for rate in self.bins:
            for volume in rate.volumes:
                if volume in seen:
                    raise PydanticCustomError(
                        "waste_grid", "volume {v} L présent deux fois", {"v": volume}
                    )
                seen.add(volume)
        if self.fixed_basis == "household_size" and not self.household_bands:
            raise PydanticCustomError(
                "waste_grid", "part fixe par taille de foyer sans tranches (household_bands)"
            )
        if self.no_bin is not None and self.no_bin.volume_l not in seen:
            raise PydanticCustomError(
                "waste_grid",
                "règle « sans bac » : volume {v} L absent des bacs de la catégorie",
                {"v": self.no_bin.volume_l},
            )
        self._check_bands()
        return self

    def _check_bands(self) -> None:
        bands = sorted(self.household_bands, key=lambda b: b.min_persons)
        for low, high in itertools.pairwise(bands):
            if low.max_persons is None or low.max_persons >= high.min_persons:
                raise PydanticCustomError(
                    "waste_grid",
                    "tranches de taille de foyer qui se chevauchent ({a} / {b})",
                    {"a": low.label, "b": high.label},
                )

    def bin_rate(self, volume: int) -> BinRate | None:
        return next((r for r in self.bins if volume in r.volumes), None)

    def band(self, persons: int) -> HouseholdBand | None:
        for band in self.household_bands:
            if band.min_persons <= persons and (
                band.max_persons is None or persons <= band.max_persons
            ):
                return band
        return None


class Exemption(_Entry):
    """An exemption: which parts it waives and the rule it comes from."""

    code: str
    label: str
    waives: list[Literal["fixed", "variable"]]
    reference: str


class Proration(_Entry):
    """How the fixed part (and the included lifts) follow arrivals, departures and changes.

    ``day``: active days / days of the period; ``month``: months whose first day is covered /
    months of the period (each month goes to exactly one allocation of a chain); ``none``:
    the whole share as soon as the allocation is active one day.
    """

    policy: Literal["day", "month", "none"] = "day"
    included: Literal["prorata", "full"] = "prorata"
    included_rounding: Literal["nearest", "down", "up"] = "nearest"


class Teomi(_Entry):
    """TEOMi: the fixed part is the TEOM rate on the tax base; bound on the incentive share."""

    rate: Decimal
    expected_incentive_share: Decimal
    reference: str = "CGI art. 1522 bis"

    @field_validator("rate", mode="before")
    @classmethod
    def _rate(cls, value: Any) -> Any:
        return _decimal(value, 6, "taux")

    @field_validator("expected_incentive_share", mode="before")
    @classmethod
    def _share(cls, value: Any) -> Any:
        share = _decimal(value, 4, "part incitative")
        if not TEOMI_MIN_SHARE <= share <= TEOMI_MAX_SHARE:
            raise PydanticCustomError(
                "waste_teomi_share",
                "part incitative de {share} % hors des bornes légales de 10 à 45 % du produit "
                "total de la taxe (CGI art. 1522 bis)",
                {"share": format((share * 100).normalize(), "f")},
            )
        return share


class TariffGrid(_Entry):
    """A dated tariff grid, with the deliberation it comes from."""

    id: str = Field(pattern=r"^[a-z0-9_]+$")
    title: str
    authority: str
    scheme: Scheme = "reomi"
    published: bool
    source: Source | None = None
    deliberation: Deliberation
    valid_from: dt.date
    valid_to: dt.date
    billing_period: BillingPeriodKind
    variable_settlement: Literal["period", "year"] = "period"
    rounding: Rounding = "half_up"
    proration: Proration = Field(default_factory=Proration)
    default_category: str = "menage"
    categories: dict[str, CategoryTariff]
    exemptions: list[Exemption] = Field(default_factory=list)
    teomi: Teomi | None = None
    notes: list[str] = Field(default_factory=list)

    @field_validator("categories", mode="before")
    @classmethod
    def _category_names(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: v for k, v in value.items() if k not in ("__line__", "__lines__")}
        return value

    @model_validator(mode="after")
    def _consistent(self) -> TariffGrid:
        if self.valid_to < self.valid_from:
            raise PydanticCustomError("waste_grid", "valid_to précède valid_from")
        if self.default_category not in self.categories:
            raise PydanticCustomError(
                "waste_grid",
                "catégorie par défaut « {c} » absente de categories",
                {"c": self.default_category},
            )
        uses_tax_base = any(c.fixed_basis == "tax_base" for c in self.categories.values())
        if (self.scheme == "teomi") != (self.teomi is not None) or (
            uses_tax_base and self.scheme != "teomi"
        ):
            raise PydanticCustomError(
                "waste_grid",
                "une TEOMi (scheme: teomi) a une section teomi et seule elle a une part fixe "
                "sur la base d'imposition (fixed_basis: tax_base)",
            )
        codes = [e.code for e in self.exemptions]
        if len(codes) != len(set(codes)):
            raise PydanticCustomError("waste_grid", "code d'exonération présent deux fois")
        return self

    @property
    def periods_per_year(self) -> int:
        return PERIODS_PER_YEAR[self.billing_period]

    def check_period(self, period: Period, *, check_validity: bool = True) -> None:
        """Refuse a period the grid does not bill (finer than its billing period, or outside)."""
        if period.count > self.periods_per_year:
            raise TerritoriaError(
                f"la grille « {self.id} » facture par "
                f"{_KIND_FR[self.billing_period]} : la période {period.label} est trop fine",
                code="waste_period_not_billed",
                field_name="period",
            )
        outside = period.start < self.valid_from or period.end > _day_after(self.valid_to)
        if check_validity and outside:
            raise TerritoriaError(
                f"la période {period.label} sort de la validité de la grille « {self.id} » "
                f"({self.valid_from.isoformat()} – {self.valid_to.isoformat()})",
                code="waste_period_outside_grid",
                field_name="period",
            )

    def exemption(self, code: str) -> Exemption | None:
        return next((e for e in self.exemptions if e.code == code), None)

    def cents(self, euros: Decimal) -> int:
        return to_cents(euros, self.rounding)


_KIND_FR = {"year": "année", "semester": "semestre", "four_months": "quadrimestre"}


def _day_after(day: dt.date) -> dt.date:
    return dt.date.fromordinal(day.toordinal() + 1)


# --- loading -------------------------------------------------------------------------------


class _LineLoader(yaml.SafeLoader):
    """A YAML loader that notes the line of every mapping and of each of its keys."""


def _mapping_with_lines(loader: _LineLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    mapping = loader.construct_mapping(node, deep=True)
    mapping["__line__"] = node.start_mark.line + 1
    mapping["__lines__"] = {
        key.value: key.start_mark.line + 1 for key, _ in node.value if isinstance(key.value, str)
    }
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_with_lines)


def _line_of(data: Any, loc: tuple[int | str, ...]) -> int | None:
    """The line of the innermost key on the error's path."""
    line = data.get("__line__") if isinstance(data, dict) else None
    for part in loc:
        if isinstance(data, dict):
            line = data.get("__lines__", {}).get(part, line)
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            break
        if isinstance(data, dict) and "__line__" in data:
            line = data["__line__"]
    return line if isinstance(line, int) else None


_CODES = {"waste_teomi_share": "waste_teomi_share_out_of_bounds"}


def load_grid(path: Path) -> TariffGrid:
    """Read and check one grid file; a bad grid raises an error naming file, line and field."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_LineLoader)
    except FileNotFoundError:
        raise TerritoriaError(
            "grille tarifaire introuvable", code="waste_grid_missing", file=path
        ) from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise TerritoriaError(
            f"grille tarifaire illisible : {exc}", code="waste_grid_unreadable", file=path
        ) from None
    try:
        return TariffGrid.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(p for p in first["loc"] if p not in ("function-after", "function-before"))
        raise TerritoriaError(
            f"grille tarifaire invalide : {first['msg']}",
            code=_CODES.get(first["type"], "waste_grid_invalid"),
            file=path,
            line=_line_of(data, loc),
            field_name=".".join(str(p) for p in loc) or None,
            details={"errors": len(exc.errors())},
        ) from None


def builtin_grids_dir() -> Path:
    """The grids shipped with the package (published French grids and the sandbox's example)."""
    return Path(str(resources.files("territoria.apps.waste") / "grids"))


@dataclass(frozen=True)
class GridEntry:
    """A grid file and its identifier."""

    id: str
    path: Path


def builtin_grids() -> list[GridEntry]:
    """Every shipped grid, by identifier."""
    return [GridEntry(p.stem, p) for p in sorted(builtin_grids_dir().glob("*.yaml"))]


def get_grid(name: str | Path) -> TariffGrid:
    """A shipped grid by identifier (``estuaire_sillon_2024``) or any grid file by path."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml"):
        return load_grid(path)
    candidate = builtin_grids_dir() / f"{name}.yaml"
    if not candidate.exists():
        known = ", ".join(g.id for g in builtin_grids())
        raise TerritoriaError(
            f"grille « {name} » inconnue",
            code="waste_grid_unknown",
            expected=f"un fichier .yaml ou l'une de : {known}",
        )
    return load_grid(candidate)
