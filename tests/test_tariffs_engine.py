"""The OpenFisca screening: vectorised, explicit about periods, unknowns and assumptions."""

from __future__ import annotations

import inspect
import math
from datetime import date
from typing import Any

import numpy as np
import pytest

from territoria.apps.tariffs import (
    Household,
    ScreeningError,
    TariffInputError,
    crpa_notice,
    default_assumptions,
    default_grids,
    explain_household,
    household_from_mapping,
    screen,
    tax_benefit_system,
    trace,
)

AS_OF = date(2025, 10, 1)


def _household(key: str, **body: Any) -> Household:
    return household_from_mapping({"key": key, "commune": "69266", **body}, "ccas_aid", AS_OF)


def _adult(
    key: str, role: str, born: str, net: float | None, kind: str = "salaire"
) -> dict[str, Any]:
    incomes = None if net is None else [{"kind": kind, "monthly_net": net}]
    return {"key": key, "role": role, "birth_date": born, "incomes": incomes}


def _varied() -> list[Household]:
    child = {"key": "c", "role": "enfant", "birth_date": "2018-05-01"}
    rent = {"status": "locataire_vide", "monthly_rent": 520}
    return [
        _household("seul_sans_revenu", members=[_adult("a", "demandeur", "1979-01-01", 0)], housing=rent),
        _household("couple_2_enfants", members=[
            _adult("a", "demandeur", "1984-01-01", 1700), _adult("b", "conjoint", "1986-01-01", 600),
            child, {"key": "d", "role": "enfant", "birth_date": "2021-03-01"}], housing=rent),
        _household("retraitee", members=[_adult("a", "demandeur", "1945-06-01", 700, "retraite")],
                   housing={"status": "locataire_hlm", "monthly_rent": 380}),
        _household("parent_isole_chomage", members=[_adult("a", "demandeur", "1992-01-01", 950, "chomage"), child]),
        _household("colocation", members=[_adult("a", "demandeur", "1999-01-01", 1300),
                                          _adult("b", "autre_adulte", "2000-01-01", 400)], housing=rent),
        _household("inconnu", members=[_adult("a", "demandeur", "1990-01-01", None), child]),
    ]  # fmt: skip


def test_one_simulation_for_all_equals_one_per_household() -> None:
    households = _varied()
    together = screen(households, "2025-11").table().to_pylist()
    alone = [row for h in households for row in screen([h], "2025-11").table().to_pylist()]
    chunked = screen(households, "2025-11", chunk_size=4).table().to_pylist()
    assert together == alone == chunked
    keys = [(r["household_key"], r["famille"]) for r in together]
    assert ("colocation", 1) in keys  # the flatmate is a famille of their own


def test_the_reference_month_is_explicit_and_checked() -> None:
    assert inspect.signature(screen).parameters["reference"].default is inspect.Parameter.empty
    with pytest.raises(ScreeningError) as caught:
        screen(_varied()[:1], "2025-13")
    assert caught.value.code == "tariffs_reference_month"
    assert caught.value.expected == "AAAA-MM, par exemple 2025-01"
    assert screen(_varied()[:1], date(2025, 11, 17)).period == "2025-11"


def test_a_month_earlier_can_give_other_amounts() -> None:
    # RSA is revalued every April: the same household, two reference months, two amounts.
    h = _varied()[:1]
    march, april = screen(h, "2025-03").amount("rsa")[0], screen(h, "2025-04").amount("rsa")[0]
    assert april > march > 0


def test_unknown_incomes_are_never_zero() -> None:
    screening = screen(_varied(), "2025-11")
    row = screening.famille_rows("inconnu")[0]
    assert not screening.known[row]
    assert math.isnan(screening.quotient("quotient_familial_caf")[row])
    assert math.isnan(screening.amount("rsa")[row])
    figure = explain_household(screening, "inconnu")[0].entitlements["rsa"]
    assert figure.value is None and figure.status == "inconnu"
    assert "revenus inconnus de a (demandeur)" in figure.how
    table = screening.table()
    assert table.column("rsa").null_count == 1


def test_an_empty_income_list_is_refused() -> None:
    with pytest.raises(TariffInputError) as caught:
        _household("x", members=[{"key": "a", "role": "demandeur", "incomes": []}])
    assert caught.value.code == "tariffs_empty_incomes"


@pytest.mark.parametrize(
    ("members", "code"),
    [
        ([{"key": "a", "role": "conjoint"}], "tariffs_applicant"),
        ([{"key": "a", "role": "demandeur"}, {"key": "a", "role": "enfant"}], "tariffs_member_key"),
        (
            [{"key": "a", "role": "demandeur"}, {"key": "b", "role": "demandeur"}],
            "tariffs_applicant",
        ),
    ],
)
def test_inconsistent_households_are_refused(members: list[dict[str, Any]], code: str) -> None:
    with pytest.raises(TariffInputError) as caught:
        _household("x", members=members)
    assert caught.value.code == code


def test_the_taxable_and_gross_ratios_are_openfisca_s() -> None:
    from openfisca_core.simulation_builder import SimulationBuilder

    situation = {
        "individus": {"a": {"date_naissance": {"ETERNITY": "1980-01-01"}, "salaire_de_base": {"2025-01": 1500}}},
        "familles": {"f": {"parents": ["a"]}},
        "foyers_fiscaux": {"ff": {"declarants": ["a"]}},
        "menages": {"m": {"personne_de_reference": ["a"]}},
    }  # fmt: skip
    simulation = SimulationBuilder().build_from_entities(tax_benefit_system(), situation)
    net = float(simulation.calculate("salaire_net", "2025-01")[0])
    taxable = float(simulation.calculate("salaire_imposable", "2025-01")[0])
    assumptions = default_assumptions()
    assert taxable / net == pytest.approx(assumptions.taxable_ratio["salaire"].value, abs=1e-3)
    assert 1500 / net == pytest.approx(assumptions.gross_ratio["salaire"].value, abs=1e-3)


def test_explanations_carry_provenance_and_assumptions() -> None:
    screening = screen(_varied(), "2025-11")
    famille = explain_household(screening, "couple_2_enfants")[0]
    qf = famille.quotients["quotient_familial_caf"]
    assert qf.status == "estimé"
    assert any("imposable estimé = net × 1,036" in note for note in qf.assumptions)
    assert {i.provenance.source for i in qf.inputs if i.provenance} == {"ccas_aid"}
    assert {v.variable for v in qf.variables} == {
        "prestations_familiales_base_ressources",
        "quotient_familial_caf_parts",
    }
    ppa = famille.entitlements["ppa"]
    assert "variable « ppa »" in ppa.how and "OpenFisca-France 176.1.8" in ppa.how
    assert any("moyenne des trois mois précédents" in v.label for v in ppa.variables)
    assert ppa.reference and "L841-1" in ppa.reference


def test_the_full_openfisca_trace_of_one_household() -> None:
    lines = trace(_varied()[0], "2025-11", "rsa", max_depth=2)
    assert lines[0].startswith("  rsa<2025-11>") or lines[0].startswith("rsa<2025-11>")
    assert any("rsa_montant<2025-11>" in line for line in lines)


def test_the_crpa_notice_fits_the_register_and_names_what_was_used() -> None:
    from territoria.governance.policy import AlgorithmNotice

    screening = screen(_varied(), "2025-11")
    notice = crpa_notice(screening, default_grids())
    AlgorithmNotice.model_validate(notice.as_algorithm())
    text = notice.text()
    assert notice.degree == "suggestion"
    assert list(notice.data) == ["ccas_aid"]
    assert "délibération n° 2025-064" in text  # the canteen grid in force in November 2025
    assert "délibération n° 2024-071" not in text  # the previous school year's grid
    for label in ("Revenu de solidarité active", "Prime d'activité", "Complémentaire santé"):
        assert label in text
    assert "L311-3-1" in text and "aucune décision n'est automatique" in text


def test_values_are_per_famille_arrays() -> None:
    screening = screen(_varied(), "2025-11")
    for name, values in screening.values.items():
        assert isinstance(values, np.ndarray) and len(values) == screening.layout.familles, name
