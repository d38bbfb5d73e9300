"""A grid, for one billing period, as small arrow tables the billing SQL joins on.

Annual amounts become integer cents once (rounded as the grid says); each period's share of an
annual amount is rounded cumulatively so that the shares of a year add up to the annual amount.
"""

from __future__ import annotations

import pyarrow as pa

from territoria.apps.waste.grids import CategoryTariff, TariffGrid
from territoria.apps.waste.money import period_share, price
from territoria.apps.waste.periods import Period
from territoria.apps.waste.sql import Connection


def _volumes_label(volumes: tuple[int, ...]) -> str:
    if len(volumes) == 1:
        return f"{volumes[0]} L"
    return " / ".join(str(v) for v in volumes) + " L"


def _share(grid: TariffGrid, annual: int, period: Period) -> int:
    return period_share(annual, period.index, period.count, grid.rounding)


def bins_table(grid: TariffGrid, period: Period) -> pa.Table:
    rows = []
    for name, cat in grid.categories.items():
        for rate in cat.bins:
            annual = grid.cents(rate.annual_fixed)
            for volume in rate.volumes:
                rows.append(
                    {
                        "category": name,
                        "volume_l": volume,
                        "annual_cents": annual,
                        "share_cents": _share(grid, annual, period),
                        "included": rate.included_lifts,
                        "extra_cents": None
                        if rate.extra_lift is None
                        else grid.cents(rate.extra_lift),
                        "minimum": rate.minimum_lifts,
                        "rate_label": f"bac {_volumes_label(rate.volumes)}",
                    }
                )
    return pa.Table.from_pylist(rows, schema=_BINS_SCHEMA)


def bands_table(grid: TariffGrid, period: Period) -> pa.Table:
    rows = []
    for name, cat in grid.categories.items():
        for band in cat.household_bands:
            annual = grid.cents(band.annual_fixed)
            rows.append(
                {
                    "category": name,
                    "min_p": band.min_persons,
                    "max_p": band.max_persons,
                    "annual_cents": annual,
                    "share_cents": _share(grid, annual, period),
                    "included": band.included_openings,
                    "band_label": band.label,
                }
            )
    return pa.Table.from_pylist(rows, schema=_BANDS_SCHEMA)


def _category_row(
    grid: TariffGrid, name: str, cat: CategoryTariff, period: Period
) -> dict[str, object]:
    subscription = grid.cents(cat.subscription)
    nobin_annual = None
    if cat.no_bin is not None:
        rate = cat.bin_rate(cat.no_bin.volume_l)
        nobin_annual = None if rate is None else grid.cents(rate.annual_fixed)
    return {
        "category": name,
        "label": cat.label,
        "basis": cat.fixed_basis,
        "subscription_annual": subscription,
        "subscription_share": _share(grid, subscription, period),
        "per_kg": cat.per_kg,
        "per_kg_label": None if cat.per_kg is None else price(cat.per_kg),
        "included_kg": cat.included_kg,
        "opening_cents": None if cat.openings is None else grid.cents(cat.openings.price),
        "opening_included": 0 if cat.openings is None else cat.openings.included,
        "nobin_volume": None if cat.no_bin is None else cat.no_bin.volume_l,
        "nobin_annual": nobin_annual,
        "nobin_share": None if nobin_annual is None else _share(grid, nobin_annual, period),
        "nobin_included": None if cat.no_bin is None else cat.no_bin.included_openings,
    }


def categories_table(grid: TariffGrid, period: Period) -> pa.Table:
    rows = [_category_row(grid, n, c, period) for n, c in grid.categories.items()]
    return pa.Table.from_pylist(rows, schema=_CATEGORIES_SCHEMA)


def exemptions_table(grid: TariffGrid) -> pa.Table:
    rows = [
        {
            "code": e.code,
            "label": e.label,
            "waives_fixed": "fixed" in e.waives,
            "waives_variable": "variable" in e.waives,
            "reference": e.reference,
        }
        for e in grid.exemptions
    ]
    return pa.Table.from_pylist(rows, schema=_EXEMPTIONS_SCHEMA)


def register_grid(con: Connection, grid: TariffGrid, period: Period) -> None:
    """Register ``g_bins``, ``g_bands``, ``g_cat`` and ``g_exempt`` on the connection."""
    con.register("g_bins", bins_table(grid, period))
    con.register("g_bands", bands_table(grid, period))
    con.register("g_cat", categories_table(grid, period))
    con.register("g_exempt", exemptions_table(grid))


_BINS_SCHEMA = pa.schema(
    [
        ("category", pa.string()),
        ("volume_l", pa.int32()),
        ("annual_cents", pa.int64()),
        ("share_cents", pa.int64()),
        ("included", pa.int64()),
        ("extra_cents", pa.int64()),
        ("minimum", pa.int64()),
        ("rate_label", pa.string()),
    ]
)
_BANDS_SCHEMA = pa.schema(
    [
        ("category", pa.string()),
        ("min_p", pa.int32()),
        ("max_p", pa.int32()),
        ("annual_cents", pa.int64()),
        ("share_cents", pa.int64()),
        ("included", pa.int64()),
        ("band_label", pa.string()),
    ]
)
_CATEGORIES_SCHEMA = pa.schema(
    [
        ("category", pa.string()),
        ("label", pa.string()),
        ("basis", pa.string()),
        ("subscription_annual", pa.int64()),
        ("subscription_share", pa.int64()),
        ("per_kg", pa.decimal128(12, 4)),
        ("per_kg_label", pa.string()),
        ("included_kg", pa.decimal128(12, 3)),
        ("opening_cents", pa.int64()),
        ("opening_included", pa.int64()),
        ("nobin_volume", pa.int32()),
        ("nobin_annual", pa.int64()),
        ("nobin_share", pa.int64()),
        ("nobin_included", pa.int64()),
    ]
)
_EXEMPTIONS_SCHEMA = pa.schema(
    [
        ("code", pa.string()),
        ("label", pa.string()),
        ("waives_fixed", pa.bool_()),
        ("waives_variable", pa.bool_()),
        ("reference", pa.string()),
    ]
)
