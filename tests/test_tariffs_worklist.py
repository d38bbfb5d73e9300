"""The non-take-up worklist, outreach records and the take-up report."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from territoria.apps.tariffs import (
    InMemoryOutreachBook,
    Outreach,
    OutreachBook,
    Provenance,
    Receipt,
    assign_bands,
    default_grids,
    evaluation_groups,
    load_scenario,
    non_take_up_worklist,
    screen,
    take_up_report,
)

DATA = Path(__file__).parent / "data" / "tariffs_scenarios"


@pytest.fixture(scope="module")
def scenario() -> dict:  # type: ignore[type-arg]
    loaded = load_scenario(DATA / "quotient_zero_or_unknown.yaml")
    extra = load_scenario(DATA / "forgoing_rsa.yaml")
    households = loaded["households"] + extra["households"]
    screening = screen(households, "2025-11")
    return {"households": households, "screening": screening}


def test_ranked_by_monthly_amount_with_the_computation(scenario: dict) -> None:  # type: ignore[type-arg]
    worklist = non_take_up_worklist(scenario["screening"], default_grids())
    totals = [e.monthly_total for e in worklist.entries]
    assert totals == sorted(totals, reverse=True)
    assert [e.rank for e in worklist.entries] == list(range(1, len(totals) + 1))
    top = worklist.entries[0]
    assert top.household_key == "sans_revenus"
    assert top.how == (
        "Montant mensuel non perçu : 707,88 € (Revenu de solidarité active (RSA)) + 200,18 € "
        "(Allocation de soutien familial (ASF)) + 50,40 € (Restauration scolaire (prix du repas))"
        " = 958,46 €. Droits sans montant en euros : Complémentaire santé solidaire (CSS)."
    )
    canteen = next(line for line in top.lines if line.item == "restauration_scolaire")
    assert "|5,00 € − 0,80 €| × 12 repas par mois = 50,40 € de moins à payer" in canteen.how
    assert "délibération n° 2025-064" in canteen.how
    assert worklist.households_unknown == ["revenus_inconnus"]
    assert "aucune décision" in worklist.notice


def test_known_receipts_and_options(scenario: dict) -> None:  # type: ignore[type-arg]
    screening = scenario["screening"]
    strict = non_take_up_worklist(screening, default_grids(), include_unknown_receipts=False)
    assert {line.status for e in strict.entries for line in e.lines} <= {
        "non_percu",
        "tranche_trop_haute",
    }
    assert strict.entry("sans_rsa").lines[0].item == "rsa"  # type: ignore[union-attr]
    high = non_take_up_worklist(screening, default_grids(), minimum_monthly=500)
    assert {e.household_key for e in high.entries} == {"sans_revenus", "sans_rsa"}
    with_unknown = non_take_up_worklist(screening, default_grids(), include_unknown_quotients=True)
    entry = with_unknown.entry("revenus_inconnus")
    assert entry is not None and entry.monthly_total == 0
    assert entry.lines[0].status == "quotient_inconnu" and entry.lines[0].monthly_amount is None
    assert with_unknown.entries[-1].household_key == "revenus_inconnus"


def test_outreach_and_take_up(scenario: dict) -> None:  # type: ignore[type-arg]
    screening = scenario["screening"]
    bands = assign_bands(screening, default_grids())
    worklist = non_take_up_worklist(screening, default_grids(), assignments=bands)
    book: OutreachBook = InMemoryOutreachBook()
    book.record(Outreach(household_key="sans_rsa", contact_date=date(2025, 11, 12),
                         channel="telephone", outcome="demande_deposee", agent="ccas-agent-1"))  # fmt: skip
    book.record(Outreach(household_key="sans_revenus", contact_date=date(2025, 11, 14),
                         channel="visite", outcome="droit_ouvert", agent="ccas-agent-1", items=["asf"]))  # fmt: skip
    book.record(Outreach(household_key="cantine_seulement", contact_date=date(2025, 10, 1),
                         channel="courrier", outcome="pas_joignable", agent="ccas-agent-2"))  # fmt: skip
    # A month later the CCAS file says the RSA is now received.
    later_rsa = next(h for h in scenario["households"] if h.key == "sans_rsa")
    later_rsa = later_rsa.model_copy(update={"receipts": [*later_rsa.receipts, Receipt(
        entitlement="rsa", received=True, provenance=Provenance(source="ccas_aid", as_of=date(2025, 12, 15)))]})  # fmt: skip
    report = take_up_report(worklist, book, later=[later_rsa])
    assert report.contacted.households == 2 and report.contacted.taken_up == 2
    # the October letter predates the worklist: that household counts as not contacted
    assert report.not_contacted.households == 1 and report.not_contacted.taken_up == 0
    assert report.difference_points == 100.0
    assert report.outcomes == {"demande déposée": 1, "droit ouvert": 1}
    assert report.by_item["rsa"] == {"listés": 2, "contactés": 2, "ouverts": 1}
    assert report.by_item["asf"]["ouverts"] == 1
    assert "tirés au sort" in report.how
    assert len(book.for_household("sans_rsa")) == 1 and len(list(book.all())) == 3


def test_evaluation_groups_are_reproducible(scenario: dict) -> None:  # type: ignore[type-arg]
    worklist = non_take_up_worklist(scenario["screening"], default_grids())
    first = evaluation_groups(worklist, 0.5, salt="pilote-2025")
    assert first == evaluation_groups(worklist, 0.5, salt="pilote-2025")
    assert set(first.values()) <= {"témoin", "contacter"} and set(first) == {
        e.household_key for e in worklist.entries
    }
    assert set(evaluation_groups(worklist, 0.0, salt="x").values()) == {"contacter"}
    with pytest.raises(ValueError):
        evaluation_groups(worklist, 1.0, salt="x")


def test_the_json_summary(scenario: dict) -> None:  # type: ignore[type-arg]
    import json

    from territoria.apps.tariffs import screening_summary

    screening = scenario["screening"]
    bands = assign_bands(screening, default_grids())
    worklist = non_take_up_worklist(screening, default_grids(), assignments=bands)
    summary = json.loads(json.dumps(screening_summary(screening, bands, worklist)))
    assert summary["households"] == 4 and summary["households_unknown"] == 1
    assert summary["households_listed"] == 3
    assert summary["per_item"]["rsa"] == {"households": 2, "monthly_amount": 1276.82}
    assert summary["monthly_forgone"] == round(sum(e.monthly_total for e in worklist.entries), 2)
    assert summary["worklist"]["entries"][0]["household_key"] == "sans_revenus"
