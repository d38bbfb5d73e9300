"""``territoria waste``: billing, simulation and disputes on the governed read, end to end.

A copy of the linked 1,500-inhabitant sandbox with the lift events loaded; every command runs
through the CLI as the waste agent (paul.dechets → waste_billing) or as a refused librarian.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from territoria.backends import open_store
from territoria.core.config import load_workspace
from territoria.governance import Governance
from territoria.governance.ledger import LedgerRecord
from territoria.interfaces.cli import app

runner = CliRunner()
AGENT = ["--as", "paul.dechets"]
PERIOD = ["--period", "2025-S2"]


@pytest.fixture
def ws(lifts_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.delenv("TERRITORIA_ACTOR", raising=False)
    monkeypatch.delenv("TERRITORIA_DEBUG", raising=False)
    root = tmp_path / "ws"
    shutil.copytree(lifts_template, root)
    yield root


def invoke(root: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["waste", *args, "-w", str(root)])
    return result.exit_code, result.stdout, result.stderr


def ok_json(root: Path, *args: str) -> Any:
    code, out, err = invoke(root, *args, "--json")
    assert code == 0, out + err
    return json.loads(out)


def ledger(root: Path, limit: int = 50) -> tuple[list[LedgerRecord], Governance]:
    config = load_workspace(root)
    store = open_store(config)
    gov = Governance.open(config, store)
    records = gov.ledger.records(limit=limit)
    store.close()
    return records, gov


def ledger_count(root: Path) -> int:
    config = load_workspace(root)
    store = open_store(config)
    try:
        return Governance.open(config, store).ledger.head().count
    finally:
        store.close()


def test_bill_totals_are_the_sum_of_lines_and_one_extract_names_the_payers(ws: Path) -> None:
    before = ledger_count(ws)
    data = ok_json(ws, "bill", *AGENT, *PERIOD)
    assert data["grid_default"] is True and data["run"]["grid_id"] == "exemple_metropole_2025"
    bills = data["bills"]
    assert bills and data["run"]["bills"] == len(bills)
    for bill in bills:
        assert bill["total_cents"] == sum(line["amount_cents"] for line in bill["lines"])
        assert all(line["explanation"] for line in bill["lines"])
    assert data["run"]["total_cents"] == sum(b["total_cents"] for b in bills)
    residents = {b["payer"] for b in bills if not b["payer"].startswith("GESTIONNAIRE ")}
    managers = {b["payer"] for b in bills if b["payer"].startswith("GESTIONNAIRE ")}
    assert residents and managers  # individual houses and collective buildings

    records, gov = ledger(ws)
    new = records[: ledger_count(ws) - before]
    extracts = [r.entry for r in new if r.entry.reason.startswith("extraction par lot")]
    assert len(extracts) == 1
    entry = extracts[0]
    assert (entry.actor, entry.purpose, entry.view, entry.decision) == (
        "paul.dechets",
        "waste_billing",
        "records",
        "allow",
    )
    assert entry.persons and len(entry.persons) == data["governance"]["persons"]
    domain = gov.policy.purposes["waste_billing"].domain
    named = {gov.pseudonyms.pseudonym(domain, key) for key in entry.persons}
    assert residents <= named  # every resident billed is named by the one extract record
    assert not any(key in json.dumps(data) for key in entry.persons)  # no index key shown


def test_one_payers_bill_line_by_line(ws: Path) -> None:
    data = ok_json(ws, "bill", *AGENT, *PERIOD)
    payer = next(b["payer"] for b in data["bills"] if not b["payer"].startswith("GESTIONNAIRE"))
    code, out, err = invoke(ws, "bill", *AGENT, *PERIOD, "--payer", payer)
    assert code == 0, out + err
    flat = " ".join(out.split())
    assert "Facture de" in flat and "Abonnement" in flat and "grille par défaut" in flat
    one = ok_json(ws, "bill", *AGENT, *PERIOD, "--payer", payer)
    assert [b["payer"] for b in one["bills"]] == [payer]
    assert one["bill"]["total_cents"] == one["bills"][0]["total_cents"]
    code, out, err = invoke(ws, "bill", *AGENT, *PERIOD, "--payer", "DEC.k1.INCONNU")
    assert code == 2 and "absent de la facturation" in err


def test_a_refused_actor_gets_a_clear_french_message_and_the_refusal_is_kept(ws: Path) -> None:
    code, out, err = invoke(ws, "bill", "--as", "lea.biblio", *PERIOD)
    assert code == 2, out + err
    assert "lea.biblio ne peut pas lire les bacs et les levées" in err and "refusé" in err
    assert "Traceback" not in out + err
    last = ledger(ws, limit=1)[0][0].entry
    assert (last.actor, last.decision, last.purpose) == ("lea.biblio", "deny", "waste_billing")
    code, out, _ = invoke(ws, "bill", "--as", "lea.biblio", *PERIOD, "--json")
    assert code == 2 and json.loads(out)["error"]["code"] == "access_denied"
    code, _, err = invoke(ws, "dispute", "list", "--as", "lea.biblio")
    assert code == 2 and "refusé" in err


def _billed_lift(ws: Path) -> tuple[str, str, int]:
    """A resident payer, one of their lifts billed beyond the included ones, their total."""
    data = ok_json(ws, "bill", *AGENT, *PERIOD)
    for bill in data["bills"]:
        if bill["payer"].startswith("GESTIONNAIRE"):
            continue
        one = ok_json(ws, "bill", *AGENT, *PERIOD, "--payer", bill["payer"])
        billed = [lift for lift in one["bill"]["lifts"] if lift["status"] == "facturée"]
        if billed:
            return bill["payer"], billed[-1]["lift_id"], bill["total_cents"]
    raise AssertionError("aucune levée facturée au-delà du forfait dans le bac à sable")


def test_a_credited_dispute_changes_the_next_bill_by_exactly_the_credit(ws: Path) -> None:
    payer, lift, total = _billed_lift(ws)
    opened = ok_json(
        ws, "dispute", "open", *AGENT, "--payer", payer, "--lift", lift, *PERIOD,
        "--claim", "Mon bac n'était pas sorti ce jour-là",
    )  # fmt: skip
    evidence = opened["evidence"]
    assert evidence["found"] and evidence["payer"] == payer and evidence["truck_id"]
    assert evidence["lifted_at"] and "sans elle, la facture baisserait" in evidence["billing"]
    value = evidence["billed_value_cents"]
    assert value > 0 and opened["status"] == "ouverte"

    code, _, err = invoke(
        ws, "dispute", "open", *AGENT, "--payer", payer, "--lift", lift, *PERIOD, "--claim", "x"
    )
    assert code == 2 and "déjà contestée" in err
    code, _, err = invoke(ws, "dispute", "decide", opened["id"], *AGENT, "--reason", "vu")
    assert code == 2 and "--credit" in err

    decided = ok_json(
        ws, "dispute", "decide", opened["id"], *AGENT, "--credit",
        "--reason", "lecture fantôme confirmée par le prestataire",
    )  # fmt: skip
    assert (decided["status"], decided["credit_cents"], decided["agent"]) == (
        "avoir",
        value,
        "paul.dechets",
    )
    listed = ok_json(ws, "dispute", "list", *AGENT)
    assert [(d["id"], d["status"], d["applied_in"]) for d in listed] == [
        (opened["id"], "avoir", None)
    ]

    after = ok_json(ws, "bill", *AGENT, *PERIOD, "--payer", payer)
    assert after["bill"]["total_cents"] == total - value
    correction = after["bill"]["lines"][-1]
    assert correction["kind"] == "correction" and correction["amount_cents"] == -value
    assert opened["id"] in correction["explanation"]

    issued = ok_json(ws, "bill", *AGENT, *PERIOD, "--apply-credits")
    assert issued["credits_applied"] == [opened["id"]]
    mine = next(b for b in issued["bills"] if b["payer"] == payer)
    assert mine["total_cents"] == total - value
    # Once applied, the credit is not carried again; the lift is no longer counted.
    again = ok_json(ws, "bill", *AGENT, *PERIOD, "--payer", payer)
    assert again["bill"]["total_cents"] == total - value
    assert all(line["kind"] != "correction" for line in again["bill"]["lines"])
    assert lift not in {x["lift_id"] for x in again["bill"]["lifts"]}
    assert ok_json(ws, "dispute", "list", *AGENT)[0]["applied_in"] == "2025-S2"

    records, _ = ledger(ws, limit=200)
    writes = [r.entry.view for r in records if r.entry.kind == "write"]
    assert {"waste.dispute.opened", "waste.dispute.decided", "waste.dispute.applied"} <= set(writes)


def test_bad_period_and_bad_grid_are_clear_errors_without_traceback(
    ws: Path, tmp_path: Path
) -> None:
    before = ledger_count(ws)
    code, out, err = invoke(ws, "bill", *AGENT, "--period", "2025-S9")
    assert code == 2 and "période de facturation « 2025-S9 » incompréhensible" in err
    code, out, err = invoke(ws, "bill", *AGENT, "--period", "2024-S2")
    assert code == 2 and "sort de la validité" in err
    bad = tmp_path / "grille.yaml"
    bad.write_text(
        (
            Path(__file__).parent.parent
            / "src/territoria/apps/waste/grids/exemple_metropole_2025.yaml"
        )
        .read_text(encoding="utf-8")
        .replace('extra_lift: "8.00"', 'extra_lift: "huit"'),
        encoding="utf-8",
    )
    code, out, err = invoke(ws, "bill", *AGENT, *PERIOD, "--grid", str(bad))
    assert code == 2 and str(bad) in err.replace("\n", "") and "ligne" in err
    code, out, _ = invoke(ws, "bill", *AGENT, *PERIOD, "--grid", str(bad), "--json")
    error = json.loads(out)["error"]
    assert (
        error["code"] == "waste_grid_invalid" and error["line"] and "extra_lift" in error["field"]
    )
    code, _, err = invoke(ws, "bill", *AGENT, *PERIOD, "--grid", "grille_inconnue")
    assert code == 2 and "inconnue" in err
    code, _, err = invoke(ws, "bill", *AGENT, *PERIOD, "--grid", str(tmp_path / "absente.yaml"))
    assert code == 2 and "introuvable" in err
    for output in (out, err):
        assert "Traceback" not in output
    assert ledger_count(ws) == before  # refused before any read: nothing was extracted


def test_simulate_revenue_budget_distribution_and_chart(ws: Path, tmp_path: Path) -> None:
    chart = tmp_path / "variation.json"
    same = ok_json(
        ws, "simulate", *AGENT, "--grid", "exemple_metropole_2025", *PERIOD,
        "--residual-change", "0", "--chart", str(chart),
    )  # fmt: skip
    # No behaviour change, same grid: the revenue is the baseline's, the budget defaults to it.
    assert same["revenue_cents"] == same["baseline_revenue_cents"] == same["budget_cents"] > 0
    assert same["baseline"] == "grille exemple_metropole_2025"
    assert json.loads(chart.read_text("utf-8"))["$schema"].startswith("https://vega.github.io")
    ademe = ok_json(
        ws, "simulate", *AGENT, "--grid", "exemple_metropole_2025", *PERIOD, "--budget", "250000"
    )
    assert ademe["budget_cents"] == 25_000_000
    assert ademe["lifts_after"] < ademe["lifts_before"]
    assert ademe["revenue_cents"] < same["revenue_cents"]
    assert {g["dimension"] for g in ademe["groups"]} == {"taille du foyer", "décile de revenu"}
    code, out, err = invoke(
        ws, "simulate", *AGENT, "--grid", "exemple_metropole_2025", *PERIOD, "--budget", "-3"
    )
    assert code == 2 and "montant" in err
    code, out, err = invoke(ws, "simulate", *AGENT, "--grid", "exemple_metropole_2025", *PERIOD)
    assert code == 0 and "Taux de couverture" in out and "Recette simulée" in out
