"""Tariff grids: every shipped grid loads and cites its source; bad grids name file, line, field."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from territoria.apps.waste import builtin_grids, get_grid, load_grid, parse_period, year_periods
from territoria.apps.waste.money import divide, euros, period_share, price, to_cents
from territoria.core.errors import TerritoriaError

VALID = """\
id: essai
title: Grille d'essai
authority: Collectivité d'essai
published: false
deliberation:
  reference: Délibération d'essai
valid_from: 2024-01-01
valid_to: 2024-12-31
billing_period: semester
categories:
  menage:
    label: Ménages
    bins:
      - {volume_l: 120, annual_fixed: "100.00", included_lifts: 6, extra_lift: "5.00"}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "grille.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_every_shipped_grid_loads_with_its_deliberation() -> None:
    entries = builtin_grids()
    assert len(entries) >= 4
    published = 0
    for entry in entries:
        grid = load_grid(entry.path)
        assert grid.id == entry.id
        assert grid.deliberation.reference
        assert grid.valid_from <= grid.valid_to
        if grid.published:
            published += 1
            assert grid.source is not None and grid.source.url.startswith("https://")
    assert published >= 3


def test_estuaire_grid_reproduces_the_published_figures() -> None:
    grid = get_grid("estuaire_sillon_2024")
    menage = grid.categories["menage"]
    rate = menage.bin_rate(240)
    assert rate is not None
    assert (rate.annual_fixed, rate.included_lifts, rate.extra_lift) == (
        Decimal("312.25"),
        6,
        Decimal("8.78"),
    )
    assert menage.bin_rate(140) == menage.bin_rate(120)
    assert menage.openings is not None and menage.openings.price == Decimal("1.83")
    assert menage.no_bin is not None and menage.no_bin.volume_l == 80
    assert menage.bin_rate(770) is None


def test_a_valid_grid_loads(tmp_path: Path) -> None:
    grid = load_grid(write(tmp_path, VALID))
    assert grid.billing_period == "semester"
    assert grid.proration.policy == "day"


@pytest.mark.parametrize(
    ("old", "new", "code", "line", "field"),
    [
        (
            'annual_fixed: "100.00"',
            'annual_fixed: "100.005"',
            "waste_grid_invalid",
            14,
            "categories.menage.bins.0.annual_fixed",
        ),
        ("billing_period: semester", "billing_period: monthly", "waste_grid_invalid", 9, None),
        ("published: false", "published: false\ncolour: blue", "waste_grid_invalid", 5, "colour"),
        ("valid_to: 2024-12-31", "valid_to: 2023-12-31", "waste_grid_invalid", 1, None),
        (
            "    label: Ménages",
            "    label: Ménages\n    fixed_basis: tax_base",
            "waste_grid_invalid",
            1,
            None,
        ),
    ],
)
def test_a_bad_grid_names_its_line_and_field(
    tmp_path: Path, old: str, new: str, code: str, line: int, field: str | None
) -> None:
    path = write(tmp_path, VALID.replace(old, new))
    with pytest.raises(TerritoriaError) as caught:
        load_grid(path)
    error = caught.value
    assert error.code == code
    assert error.file == path
    assert error.line == line, str(error)
    if field is not None:
        assert error.field_name == field
    assert "grille tarifaire invalide" in str(error)


def test_overlapping_household_bands_are_refused(tmp_path: Path) -> None:
    text = VALID.replace(
        "    bins:",
        "    fixed_basis: household_size\n"
        "    household_bands:\n"
        '      - {min_persons: 1, max_persons: 3, annual_fixed: "100"}\n'
        '      - {min_persons: 3, annual_fixed: "150"}\n'
        "    bins:",
    )
    with pytest.raises(TerritoriaError, match="se chevauchent"):
        load_grid(write(tmp_path, text))


def test_no_bin_rule_needs_a_priced_volume(tmp_path: Path) -> None:
    text = VALID + "    no_bin: {volume_l: 80}\n"
    with pytest.raises(TerritoriaError, match="80 L absent"):
        load_grid(write(tmp_path, text))


def test_teomi_bound_is_checked_on_both_sides(tmp_path: Path) -> None:
    base = VALID.replace("published: false", "published: false\nscheme: teomi").replace(
        "    label: Ménages", "    label: Ménages\n    fixed_basis: tax_base"
    )
    for share, ok in (("0.09", False), ("0.10", True), ("0.45", True), ("0.46", False)):
        path = write(
            tmp_path, base + f'teomi:\n  rate: "0.08"\n  expected_incentive_share: "{share}"\n'
        )
        if ok:
            assert load_grid(path).teomi is not None
            continue
        with pytest.raises(TerritoriaError) as caught:
            load_grid(path)
        assert caught.value.code == "waste_teomi_share_out_of_bounds"
        assert caught.value.line == 19
        assert caught.value.field_name == "teomi.expected_incentive_share"


def test_unreadable_and_missing_grids(tmp_path: Path) -> None:
    with pytest.raises(TerritoriaError) as caught:
        load_grid(write(tmp_path, "id: [unclosed"))
    assert caught.value.code == "waste_grid_unreadable"
    with pytest.raises(TerritoriaError) as caught:
        load_grid(tmp_path / "absente.yaml")
    assert caught.value.code == "waste_grid_missing"
    with pytest.raises(TerritoriaError) as caught:
        get_grid("grille_inexistante")
    assert caught.value.code == "waste_grid_unknown"
    assert "estuaire_sillon_2024" in str(caught.value.expected)


def test_periods() -> None:
    s2 = parse_period("2024-S2")
    assert (s2.start, s2.end, s2.index, s2.count, s2.days) == (
        date(2024, 7, 1),
        date(2025, 1, 1),
        2,
        2,
        184,
    )
    assert s2.title == "2e semestre 2024"
    q2 = parse_period("2024-Q2")
    assert (q2.start, q2.end, q2.months) == (date(2024, 5, 1), date(2024, 9, 1), 4)
    assert [p.label for p in year_periods(2025, "four_months")] == [
        "2025-Q1",
        "2025-Q2",
        "2025-Q3",
    ]
    for bad in ("2024-S3", "2024-Q4", "24", "2024-T1"):
        with pytest.raises(TerritoriaError) as caught:
            parse_period(bad)
        assert caught.value.code == "waste_period_invalid"


def test_a_grid_refuses_periods_it_does_not_bill() -> None:
    siedmto = get_grid("siedmto_professionnels")  # billed yearly
    with pytest.raises(TerritoriaError) as caught:
        siedmto.check_period(parse_period("2024-S1"))
    assert caught.value.code == "waste_period_not_billed"
    estuaire = get_grid("estuaire_sillon_2024")
    estuaire.check_period(parse_period("2024"))  # a year of a semester grid is fine
    with pytest.raises(TerritoriaError) as caught:
        estuaire.check_period(parse_period("2025-S1"))
    assert caught.value.code == "waste_period_outside_grid"
    estuaire.check_period(parse_period("2025-S1"), check_validity=False)


def test_money() -> None:
    assert to_cents(Decimal("312.25")) == 31225
    assert to_cents(Decimal("9.9375")) == 994
    assert to_cents(Decimal("9.9375"), "down") == 993
    assert divide(7, 2) == 4 and divide(7, 2, "down") == 3
    assert [period_share(31225, i, 2, "half_up") for i in (1, 2)] == [15613, 15612]
    assert euros(123456789) == "1\u202f234\u202f567,89 €"
    assert euros(-878) == "-8,78 €"
    assert price(Decimal("0.2500")) == "0,25 €"
    assert price(Decimal("3")) == "3,00 €"
