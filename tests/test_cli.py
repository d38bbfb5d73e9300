"""The command line: JSON shapes scripts rely on, contract checking, help that teaches."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from helpers import GOOD_ROWS, PEOPLE_CONTRACT, add_contract, grant_test_people, write_csv
from territoria.core.config import init_workspace
from territoria.interfaces.cli import app

runner = CliRunner()


def test_init_ingest_loads_report_json(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    assert runner.invoke(app, ["init", str(ws), "--json"]).exit_code == 0
    add_contract(init_workspace(ws))
    path = write_csv(tmp_path / "p.csv", GOOD_ROWS)
    out = runner.invoke(app, ["ingest", "test_people", str(path), "-w", str(ws), "--json"])
    load = json.loads(out.stdout)[0]
    for key in ("source", "rows_read", "rows_loaded", "rows_quarantined", "content_hash", "status"):
        assert key in load
    assert (load["status"], load["rows_read"]) == ("loaded", 3)
    again = json.loads(
        runner.invoke(app, ["ingest", "test_people", str(path), "-w", str(ws), "--json"]).stdout
    )[0]
    assert again["status"] == "skipped_duplicate" and again["content_hash"] == load["content_hash"]
    loads = json.loads(runner.invoke(app, ["loads", "-w", str(ws), "--json"]).stdout)
    assert [x["load_id"] for x in loads] == [load["load_id"]]
    report = json.loads(runner.invoke(app, ["report", "-w", str(ws), "--json"]).stdout)
    mine = next(s for s in report["sources"] if s["source"] == "test_people")
    assert (mine["loads"], mine["rows_loaded"], mine["rows_quarantined"]) == (1, 3, 0)


def test_workspace_from_environment(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    ws = init_workspace(tmp_path / "ws")
    monkeypatch.setenv("TERRITORIA_WORKSPACE", str(ws.root))
    result = runner.invoke(app, ["loads", "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout) == []


def test_contracts_check_names_the_faulty_key(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    add_contract(init_workspace(tmp_path / "ws"))
    good.write_text((tmp_path / "ws" / "contracts" / "test_people.yaml").read_text(), "utf-8")
    bad = tmp_path / "bad.yaml"
    broken = {**PEOPLE_CONTRACT, "legal_basis": "because"}
    import yaml

    bad.write_text(yaml.safe_dump(broken, allow_unicode=True), "utf-8")
    result = runner.invoke(app, ["contracts", "check", str(good), str(bad), "--json"])
    assert result.exit_code == 1
    first, second = json.loads(result.stdout)
    assert first["ok"] and not second["ok"]
    assert second["error"]["field"] == "legal_basis" and second["error"]["file"] == str(bad)


def test_every_builtin_contract_is_shown(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path / "ws")
    listed = json.loads(
        runner.invoke(app, ["contracts", "list", "-w", str(ws.root), "--json"]).stdout
    )
    ids = {c["id"] for c in listed}
    assert {"water_subscribers", "ccas_aid", "waste_lifts", "traffic_counts"} <= ids
    shown = runner.invoke(app, ["contracts", "show", "ccas_aid", "-w", str(ws.root)])
    assert shown.exit_code == 0 and "sensible" in shown.output


def test_help_is_french_and_has_examples() -> None:
    for args in (["--help"], ["ingest", "--help"], ["sandbox", "generate", "--help"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0
    assert "Exemple" in runner.invoke(app, ["ingest", "--help"]).output


def test_cli_reference_is_up_to_date() -> None:
    from territoria.interfaces.cli.reference import render_reference

    doc = Path(__file__).parents[1] / "docs" / "cli.md"
    assert doc.read_text(encoding="utf-8") == render_reference(), (
        "docs/cli.md est périmé : python -m territoria.interfaces.cli.reference > docs/cli.md"
    )


def test_contract_example_in_the_docs_is_valid(tmp_path: Path) -> None:
    doc = (Path(__file__).parents[1] / "docs" / "contracts.md").read_text(encoding="utf-8")
    example = doc.split("```yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "piscine_abonnes.yaml"
    path.write_text(example, encoding="utf-8")
    result = runner.invoke(app, ["contracts", "check", str(path)])
    assert result.exit_code == 0, result.output


def test_quarantine_exports_a_csv_to_send_back(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path / "ws")
    add_contract(ws)
    rows = [*GOOD_ROWS, ["P9", "Lefèvre", "1990", "2024/01/31", "1", "actif"]]
    path = write_csv(tmp_path / "p.csv", rows)
    runner.invoke(app, ["ingest", "test_people", str(path), "-w", str(ws.root), "--json"])
    out = tmp_path / "rejets.csv"
    refused = runner.invoke(
        app, ["quarantine", "test_people", "-w", str(ws.root), "--csv", str(out)]
    )
    assert refused.exit_code == 2 and "refusé" in refused.output and not out.exists()
    agent = grant_test_people(ws)
    result = runner.invoke(
        app, ["quarantine", "test_people", "--as", agent, "-w", str(ws.root), "--csv", str(out)]
    )
    assert result.exit_code == 0 and "1 ligne" in result.output
    import csv

    with out.open(encoding="utf-8-sig", newline="") as handle:
        (row,) = list(csv.DictReader(handle, delimiter=";"))
    assert (row["ligne"], row["champ"], row["Nom"], row["Inscription"]) == (
        "5",
        "joined",
        "Lefèvre",
        "2024/01/31",
    )
