"""``territoria tariffs``: the screening on the governed read, outreach cases and take-up.

On the linked 1,500-inhabitant sandbox (the CCAS, school, transport and water files are among
its loaded sources), acting as the CCAS social worker under ``ccas_non_take_up``.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from typer.testing import CliRunner

from territoria.backends import Store
from territoria.core.config import WorkspaceConfig
from territoria.governance import Governance
from territoria.interfaces.cli.app import app
from territoria.interfaces.runs.tariffs import PURPOSE, reference_month

MONTH = "2025-11"
Linked = tuple[WorkspaceConfig, Store]


def _run(config: WorkspaceConfig, *args: str) -> Any:
    return CliRunner().invoke(app, ["tariffs", *args, "-w", str(config.root)])


def _screen(config: WorkspaceConfig, *args: str) -> dict[str, Any]:
    result = _run(config, "screen", "--as", "claire.ccas", "--month", MONTH, "--json", *args)
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_screen_json_has_bands_and_a_worklist_ranked_by_amount_each_explained(
    linked: Linked,
) -> None:
    config, store = linked
    data = _screen(config)
    assert data["reference_month"] == MONTH
    assert data["households"] > 100 and data["households_assessed"] > 0
    assert data["bands"] and all(b["how"] for b in data["bands"])
    entries = data["worklist"]["entries"]
    assert entries, "the sandbox has households forgoing something"
    totals = [e["monthly_total"] for e in entries]
    assert totals == sorted(totals, reverse=True)
    assert [e["rank"] for e in entries] == list(range(1, len(entries) + 1))
    assert all(e["how"] and e["lines"] and all(li["how"] for li in e["lines"]) for e in entries)
    # one ledger record of the batch read, under the purpose, naming the persons read
    gov = Governance.open(config, store)
    last = gov.ledger.records(kind="read", limit=1)[0].entry
    assert (last.actor, last.purpose, last.view) == ("claire.ccas", PURPOSE, "records")
    assert last.persons and last.rule == f"grant:ccas_social_worker:{PURPOSE}"


def test_screen_text_prints_the_month_the_bands_and_the_worklist(linked: Linked) -> None:
    config, _ = linked
    result = _run(config, "screen", "--as", "claire.ccas", "--month", MONTH, "--limit", "3")
    assert result.exit_code == 0, result.output
    assert "Mois de référence : 11/2025" in result.stdout
    assert "Tranches tarifaires" in result.stdout and "Liste de repérage" in result.stdout


def test_one_household_full_explanation_and_an_unknown_household(linked: Linked) -> None:
    config, _ = linked
    top = _screen(config)["worklist"]["entries"][0]["household_key"]
    detail = _screen(config, "--household", top)
    assert detail["household"] == top and detail["worklist_entry"]["rank"] == 1
    assert detail["familles"] and detail["familles"][0]["known"]
    result = _run(config, "screen", "--as", "claire.ccas", "--household", "MEN.inconnu")
    assert result.exit_code == 2
    assert "foyer inconnu" in result.output


def test_an_objector_disappears_from_the_worklist(linked: Linked) -> None:
    config, store = linked
    from territoria.interfaces.runs.tariffs import run_screening

    gov = Governance.open(config, store)
    run = run_screening(gov, "claire.ccas", PURPOSE, reference_month(MONTH))
    top = run.worklist.entries[0].household_key
    subject = run.contacts[top]
    person = gov.reader.resolve(gov.policy.purposes[PURPOSE], subject, "claire.ccas")
    assert person is not None
    gov.change_objection(f"resident:{person}", "resident_access", None, PURPOSE, object_=True)
    keys = {e["household_key"] for e in _screen(config)["worklist"]["entries"]}
    assert top not in keys
    result = _run(
        config,
        "contact",
        top,
        "--as",
        "claire.ccas",
        "--channel",
        "téléphone",
        "--outcome",
        "joint",
    )
    assert result.exit_code == 2 and "foyer inconnu" in result.output


def test_the_librarian_is_refused_and_the_refusal_is_in_the_ledger(linked: Linked) -> None:
    config, store = linked
    result = _run(config, "screen", "--as", "lea.biblio", "--month", MONTH)
    assert result.exit_code == 2
    assert "refusé" in result.output
    last = Governance.open(config, store).ledger.records(limit=1)[0].entry
    assert last.actor == "lea.biblio" and last.purpose == PURPOSE
    assert last.rule.startswith("deny:")


def test_a_contact_recorded_shows_in_takeup(linked: Linked) -> None:
    config, _ = linked
    entries = _screen(config)["worklist"]["entries"]
    household = entries[0]["household_key"]
    result = _run(
        config, "contact", household, "--as", "claire.ccas", "--channel", "téléphone",
        "--outcome", "droit_ouvert", "--date", "2025-12-03", "--note", "dossier CAF déposé",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Contact noté" in result.stdout
    result = _run(config, "takeup", "--as", "claire.ccas", "--month", MONTH, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["contacts"] == 1
    assert report["contacted"] == {"households": 1, "taken_up": 1, "rate": 1.0}
    assert report["not_contacted"]["households"] == len(entries) - 1
    assert report["outcomes"] == {"droit ouvert": 1}


def test_contact_refuses_an_unknown_household_and_a_bad_channel(linked: Linked) -> None:
    config, _ = linked
    base = ["--as", "claire.ccas", "--outcome", "joint"]
    result = _run(config, "contact", "MEN.inconnu", *base, "--channel", "courrier")
    assert result.exit_code == 2 and "foyer inconnu" in result.output
    result = _run(config, "contact", "MEN.inconnu", *base, "--channel", "pigeon")
    assert result.exit_code == 2 and "canal inconnu" in result.output


def test_the_notice_names_the_purpose_data_and_the_grids(linked: Linked) -> None:
    config, _ = linked
    result = _run(config, "notice", "--month", MONTH)
    assert result.exit_code == 0, result.output
    assert "CRPA art. L311-3-1" in result.stdout
    assert "Ressources mensuelles du foyer" in result.stdout
    assert "Restauration scolaire" in result.stdout


@pytest.mark.parametrize(
    ("month", "today", "expected"),
    [
        (None, date(2026, 1, 15), date(2025, 12, 1)),
        (None, date(2026, 7, 1), date(2026, 6, 1)),
        ("2025-03", date(2026, 7, 1), date(2025, 3, 1)),
    ],
)
def test_the_reference_month(month: str | None, today: date, expected: date) -> None:
    assert reference_month(month, today) == expected


def test_the_screening_runs_only_under_a_purpose_that_declares_it(linked: Linked) -> None:
    """The CCAS social worker also holds records under ccas_social_support, which reads the
    same sources but declares no algorithm: the screening is refused there, and recorded."""
    config, store = linked
    result = _run(
        config, "screen", "--as", "claire.ccas", "--month", MONTH, "-p", "ccas_social_support"
    )
    assert result.exit_code != 0
    assert "ne déclare pas l'algorithme" in result.output
    assert "Traceback" not in result.output
    gov = Governance.open(config, store)
    last = gov.ledger.records(limit=1)[0].entry
    assert (last.decision, last.rule, last.purpose) == (
        "deny",
        "deny:algorithm_not_declared",
        "ccas_social_support",
    )
    assert last.persons == ()
