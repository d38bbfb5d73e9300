"""Readable scenarios of the social-tariff screening (``tests/data/tariffs_scenarios/*.yaml``).

Each file states households and what the screening must find for them: quotients, entitlements,
explanation variables, bands, and their place on the non-take-up worklist. A value of ``null``
means "unknown" and is checked as such (never as 0).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from territoria.apps.tariffs import (
    BandAssignment,
    Worklist,
    assign_bands,
    default_grids,
    explain_household,
    non_take_up_worklist,
    screen,
)
from territoria.apps.tariffs.scenario import load_scenario

SCENARIOS = sorted((Path(__file__).parent / "data" / "tariffs_scenarios").glob("*.yaml"))


def _close(actual: float | None, expected: float | None, what: str) -> None:
    if expected is None:
        assert actual is None, f"{what}: attendu inconnu, obtenu {actual}"
    else:
        assert actual is not None, f"{what}: attendu {expected}, obtenu inconnu"
        assert actual == pytest.approx(expected, abs=0.005), what


def _check_household(
    key: str,
    expected: dict[str, Any],
    figures: list[Any],
    bands: list[BandAssignment],
    worklist: Worklist,
) -> None:
    first = figures[0]
    for qid, value in expected.get("quotients", {}).items():
        _close(first.quotients[qid].value, value, f"{key} {qid}")
    for eid, value in expected.get("entitlements", {}).items():
        _close(first.entitlements[eid].value, value, f"{key} {eid}")
    if "status" in expected:
        assert first.entitlements["rsa"].status == expected["status"], key
    variables = {v.variable: v.value for f in first.entitlements.values() for v in f.variables}
    for name, value in expected.get("variables", {}).items():
        _close(float(variables[name]), value, f"{key} {name}")
    for service, wanted in expected.get("bands", {}).items():
        mine = [b for b in bands if b.household_key == key and b.service == service]
        assert mine, f"{key}: aucune tranche pour {service}"
        for band in mine:
            for field, value in wanted.items():
                if field == "monthly_saving":
                    _close(band.monthly_saving, value, f"{key} {service} écart")
                else:
                    assert getattr(band, field) == value, f"{key} {service} {field}"
    _check_worklist(key, expected.get("worklist"), worklist)


def _check_worklist(key: str, expected: dict[str, Any] | None, worklist: Worklist) -> None:
    if expected is None:
        return
    entry = worklist.entry(key)
    assert (entry is not None) == expected["listed"], f"{key}: présence sur la liste"
    assert (key in worklist.households_unknown) == expected.get("unknown", False), key
    if entry is None:
        return
    if "rank" in expected:
        assert entry.rank == expected["rank"], f"{key}: rang"
    if "items" in expected:
        assert [line.item for line in entry.lines] == expected["items"], f"{key}: lignes"
    for item, status in expected.get("statuses", {}).items():
        assert next(line for line in entry.lines if line.item == item).status == status
    if "monthly_total" in expected:
        _close(entry.monthly_total, expected["monthly_total"], f"{key}: total")
    assert entry.how.startswith("Montant mensuel non perçu")


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario(path: Path) -> None:
    scenario = load_scenario(path)
    screening = screen(scenario["households"], scenario["reference_month"])
    grids = default_grids()
    bands = assign_bands(screening, grids)
    worklist = non_take_up_worklist(screening, grids, assignments=bands)
    assert scenario["expected"], path
    for key, expected in scenario["expected"].items():
        figures = explain_household(screening, key)
        _check_household(key, expected, figures, bands, worklist)


def test_every_scenario_is_listed_in_a_readable_file() -> None:
    names = {p.stem for p in SCENARIOS}
    assert {
        "anchor_single_parent_lyon",
        "quotient_zero_or_unknown",
        "band_boundaries",
        "receives_everything",
        "forgoing_rsa",
    } <= names
    for path in SCENARIOS:
        text = path.read_text(encoding="utf-8")
        assert text.startswith("#"), f"{path.name} : commencer par un commentaire qui dit le cas"
