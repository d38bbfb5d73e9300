"""Local tariff grids: dated versions, whole-euro bands, and errors that name file, line, field."""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from territoria.apps.tariffs import ParameterFileError, default_grids, load_grid

GOOD = """\
id: cantine_test
label: Cantine (test)
service: Éducation
unit: repas
amount: price
quotient: quotient_familial_cnaf
unknown_quotient_band: C
versions:
  - valid_from: 2025-01-01
    valid_to: 2025-08-31
    deliberation: Délibération n° 1
    bands:
      - {band: A, from: 0, to: 400, amount: 1.00}
      - {band: B, from: 401, to: 800, amount: 2.00}
      - {band: C, from: 801, to: null, amount: 3.00}
  - valid_from: 2025-09-01
    deliberation: Délibération n° 2
    bands:
      - {band: A, from: 0, to: 500, amount: 1.10}
      - {band: C, from: 501, to: null, amount: 3.10}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "grille.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _error(tmp_path: Path, old: str, new: str) -> ParameterFileError:
    assert old in GOOD
    with pytest.raises(ParameterFileError) as caught:
        load_grid(_write(tmp_path, GOOD.replace(old, new, 1)))
    return caught.value


def test_shipped_grids_load_and_name_their_deliberation() -> None:
    grids = default_grids()
    assert set(grids) == {
        "restauration_scolaire",
        "periscolaire",
        "transport_solidaire",
        "eau_tarif_social",
    }
    for grid in grids.values():
        assert grid.version_at(date(2025, 11, 1)) is not None, grid.id
        for version in grid.versions:
            assert "délibération" in version.deliberation.lower()


def test_versions_are_chosen_by_date(tmp_path: Path) -> None:
    grid = load_grid(_write(tmp_path, GOOD))
    assert grid.version_at(date(2024, 12, 31)) is None
    assert grid.version_at(date(2025, 8, 31)).deliberation == "Délibération n° 1"  # type: ignore[union-attr]
    assert grid.version_at(date(2025, 9, 1)).deliberation == "Délibération n° 2"  # type: ignore[union-attr]


def test_band_boundaries_round_the_quotient_down_to_the_euro(tmp_path: Path) -> None:
    version = load_grid(_write(tmp_path, GOOD)).versions[0]
    assert [version.band_for(q).band for q in (0, 400, 400.99, 401, 800.5, 801, 10**6)] == [
        "A", "A", "A", "B", "B", "C", "C",
    ]  # fmt: skip


def test_overlapping_bands_are_refused_with_file_line_and_field(tmp_path: Path) -> None:
    error = _error(tmp_path, "{band: B, from: 401,", "{band: B, from: 390,")
    assert error.code == "tariffs_grid"
    assert error.line == 14
    assert error.field_name == "versions.0.bands.1.from"
    assert "chevauche" in error.message
    assert str(error.file).endswith("grille.yaml")
    assert "ligne 14" in str(error)


def test_gapped_bands_are_refused(tmp_path: Path) -> None:
    error = _error(tmp_path, "{band: C, from: 801,", "{band: C, from: 850,")
    assert "trou entre les tranches B et C (de 801 à 849 €)" in error.message
    assert error.line == 15
    assert error.expected == "début à 801 €"


def test_first_band_starts_at_zero_and_last_has_no_ceiling(tmp_path: Path) -> None:
    assert (
        "commencer à 0"
        in _error(tmp_path, "{band: A, from: 0, to: 400", "{band: A, from: 1, to: 400").message
    )
    error = _error(tmp_path, "{band: C, from: 801, to: null", "{band: C, from: 801, to: 900")
    assert "dernière tranche" in error.message and error.line == 15


def test_overlapping_versions_are_refused(tmp_path: Path) -> None:
    error = _error(tmp_path, "valid_to: 2025-08-31", "valid_to: 2025-09-30")
    assert "chevauche la précédente" in error.message
    assert error.field_name == "versions.1.valid_from"
    assert error.line == 16


def test_default_band_must_exist_in_every_version(tmp_path: Path) -> None:
    error = _error(tmp_path, "unknown_quotient_band: C", "unknown_quotient_band: Z")
    assert error.field_name == "unknown_quotient_band"


def test_schema_errors_name_line_and_field(tmp_path: Path) -> None:
    error = _error(tmp_path, "amount: 2.00}", "amount: -2.00}")
    assert error.code == "tariffs_invalid"
    assert error.field_name == "versions.0.bands.1.amount"
    assert error.line == 14


def test_yaml_syntax_errors_give_the_line(tmp_path: Path) -> None:
    error = _error(tmp_path, "label: Cantine (test)", "label: [Cantine")
    assert error.code == "tariffs_yaml"
    assert error.line is not None


@given(st.floats(min_value=0, max_value=1e6, allow_nan=False))
def test_every_quotient_falls_in_exactly_one_band(quotient: float) -> None:
    for grid in default_grids().values():
        for version in grid.versions:
            euros = math.floor(quotient)
            matches = [
                b for b in version.bands if b.from_ <= euros and (b.to is None or euros <= b.to)
            ]
            assert len(matches) == 1
            assert version.band_for(quotient) == matches[0]
