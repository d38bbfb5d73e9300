"""Ingestion end to end on every store: contract checks, quarantine, ledger, duplicates."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from helpers import GOOD_ROWS, HEADER, PEOPLE_CONTRACT, add_contract, write_csv
from territoria.backends import Store
from territoria.core.config import WorkspaceConfig
from territoria.ingest import ContractCatalog, ingest_file


def _contract(config: WorkspaceConfig):  # type: ignore[no-untyped-def]
    add_contract(config)
    return ContractCatalog.load(*config.contract_paths).get("test_people")


def test_good_file_loads_every_row(
    workspace: WorkspaceConfig, store: Store, tmp_path: Path
) -> None:
    contract = _contract(workspace)
    path = write_csv(tmp_path / "people.csv", GOOD_ROWS, encoding="cp1252")
    outcome = ingest_file(store, contract, path)
    r = outcome.record
    assert (r.status, r.rows_read, r.rows_loaded, r.rows_quarantined) == ("loaded", 3, 3, 0)
    assert r.details["encoding"] in ("cp1252", "latin-1") and r.details["delimiter"] == ";"
    rows = store.raw_table("test_people").to_pylist()
    assert sorted(x["family_name"] for x in rows) == ["Dupont", "Lefèvre", "Œuvray"]
    p1 = next(x for x in rows if x["person_id"] == "P1")
    assert p1["amount"] == 12.5 and str(p1["joined"]) == "2024-02-01"
    assert all(x["_load_id"] == r.load_id for x in rows)


def test_bad_rows_go_to_quarantine_with_line_field_and_reason(
    workspace: WorkspaceConfig, store: Store, tmp_path: Path
) -> None:
    contract = _contract(workspace)
    rows = [
        *GOOD_ROWS,
        ["", "SansId", "1990", "01/01/2024", "1", "actif"],  # line 5: required missing
        ["P5", "Martin", "1990", "2024-01-31", "1", "actif"],  # line 6: date format
        ["P6", "Petit", "1990", "01/01/2024", "-3", "actif"],  # line 7: below minimum
        ["P7", "Durand", "1990", "01/01/2024", "1", "radié"],  # line 8: not in enum
        ["P8", "Trop;de;colonnes", "1990", "01/01/2024", "1", "actif"],  # line 9: malformed
        ["P9", "Roux", "1990", "01/01/2024", "douze", "actif"],  # line 10: not a number
    ]
    outcome = ingest_file(store, contract, write_csv(tmp_path / "bad.csv", rows))
    r = outcome.record
    assert r.status == "loaded"
    assert (r.rows_read, r.rows_loaded, r.rows_quarantined) == (9, 3, 6)
    q = {row["line"]: row for row in store.quarantine("test_people").to_pylist()}
    assert sorted(q) == [5, 6, 7, 8, 9, 10]
    assert (q[5]["field"], q[5]["reason"]) == ("person_id", "valeur obligatoire manquante")
    assert q[6]["field"] == "joined" and "JJ/MM/AAAA" in q[6]["reason"]
    assert q[7]["field"] == "amount" and "minimum" in q[7]["reason"]
    assert q[8]["field"] == "status" and "actif" in q[8]["reason"]
    assert "colonnes en trop" in q[9]["reason"] and "Trop;de" in json.loads(q[9]["raw"])["_line"]
    assert q[10]["field"] == "amount" and json.loads(q[10]["raw"])["Montant"] == "douze"
    assert store.quarantine_count("test_people") == 6


def test_same_file_twice_changes_nothing(
    workspace: WorkspaceConfig, store: Store, tmp_path: Path
) -> None:
    contract = _contract(workspace)
    path = write_csv(tmp_path / "people.csv", GOOD_ROWS)
    first = ingest_file(store, contract, path).record
    copy = tmp_path / "renamed.csv"
    copy.write_bytes(path.read_bytes())
    again = ingest_file(store, contract, copy).record
    assert first.status == "loaded" and again.status == "skipped_duplicate"
    assert first.load_id in again.message
    assert [x.load_id for x in store.loads()] == [first.load_id]
    assert store.raw_table("test_people").num_rows == 3


def test_missing_required_column_fails_the_whole_load(
    workspace: WorkspaceConfig, store: Store, tmp_path: Path
) -> None:
    contract = _contract(workspace)
    header = [h for h in HEADER if h != "N° personne"]
    path = write_csv(tmp_path / "nocol.csv", [r[1:] for r in GOOD_ROWS], header=header)
    outcome = ingest_file(store, contract, path)
    assert outcome.record.status == "failed" and outcome.error is not None
    assert outcome.error.code == "column_missing" and outcome.error.field_name == "person_id"
    assert "N° personne" in str(outcome.error)
    assert store.raw_table("test_people").num_rows == 0
    assert store.loads()[0].status == "failed"


def test_schema_drift_policies(workspace: WorkspaceConfig, store: Store, tmp_path: Path) -> None:
    header = [*HEADER, "Commentaire"]
    rows = [[*r, "note"] for r in GOOD_ROWS]
    path = write_csv(tmp_path / "extra.csv", rows, header=header)
    for policy, expected in (("reject", "failed"), ("ignore", "loaded"), ("keep", "loaded")):
        contract = {
            **PEOPLE_CONTRACT,
            "id": f"people_{policy}",
            "schema_drift": {"new_columns": policy},
        }
        add_contract(workspace, contract)
        c = ContractCatalog.load(*workspace.contract_paths).get(f"people_{policy}")
        outcome = ingest_file(store, c, path)
        assert outcome.record.status == expected, policy
    kept = store.raw_table("people_keep").to_pylist()
    assert kept[0]["x_commentaire"] == "note"
    assert "x_commentaire" not in store.raw_table("people_ignore").column_names
    assert store.loads("people_ignore")[0].details["ignored_columns"] == ["Commentaire"]


def test_other_formats(workspace: WorkspaceConfig, store: Store, tmp_path: Path) -> None:
    contract = _contract(workspace)
    records = [dict(zip(HEADER, r, strict=True)) for r in GOOD_ROWS]
    ndjson = tmp_path / "p.ndjson"
    ndjson.write_text(
        "\n".join(json.dumps(x, ensure_ascii=False) for x in records) + "\n", encoding="utf-8"
    )
    array = tmp_path / "p.json"
    array.write_text(json.dumps(records[:2], ensure_ascii=False), encoding="utf-8")
    parquet = tmp_path / "p.parquet"
    pq.write_table(pa.Table.from_pylist(records[:1]), parquet)
    xlsx = tmp_path / "p.xlsx"
    _write_xlsx(xlsx, records)
    got = [ingest_file(store, contract, p).record for p in (ndjson, array, parquet, xlsx)]
    assert [(r.status, r.rows_loaded, r.rows_quarantined) for r in got] == [
        ("loaded", 3, 0),
        ("loaded", 2, 0),
        ("loaded", 1, 0),
        ("loaded", 3, 0),
    ]
    assert store.raw_table("test_people").num_rows == 9


def _write_xlsx(path: Path, records: list[dict[str, str]]) -> None:
    import xlsxwriter

    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("Export")
    for col, name in enumerate(HEADER):
        sheet.write(0, col, name)
    for row, record in enumerate(records, start=1):
        for col, name in enumerate(HEADER):
            sheet.write_string(row, col, record[name])
    book.close()


def test_quarantine_lines_with_crlf_quotes_and_repeated_rows(
    workspace: WorkspaceConfig, store: Store, tmp_path: Path
) -> None:
    contract = _contract(workspace)
    lines = [
        ";".join(HEADER),
        "P1;Dupont;1971;01/02/2024;1;actif",
        'P2;"Martin; dit ""Tintin""";1971;99/99/2024;1;actif',  # line 3: bad date, quoted
        "P3;Roux;1971;01/02/2024;1;radié",  # line 4: not in enum
        "P4;Petit;1971;01/02/2024;1;actif",
        "P3;Roux;1971;01/02/2024;1;radié",  # line 6: same text as line 4
        '"P5";"Blanc";"1971";"01/02/2024";"-1";"actif"',  # line 7: all quoted, below minimum
    ]
    path = tmp_path / "crlf.csv"
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("utf-8"))
    r = ingest_file(store, contract, path).record
    assert (r.rows_read, r.rows_loaded, r.rows_quarantined) == (6, 2, 4)
    q = store.quarantine("test_people").to_pylist()
    assert [(x["line"], x["field"]) for x in q] == [
        (3, "joined"),
        (4, "status"),
        (6, "status"),
        (7, "amount"),
    ]
    assert json.loads(q[0]["raw"])["Nom"] == 'Martin; dit "Tintin"'


def test_replace_reloads_under_a_corrected_contract(
    workspace: WorkspaceConfig, store: Store, tmp_path: Path
) -> None:
    wrong = {
        **PEOPLE_CONTRACT,
        "schema": {
            "fields": [
                {**f, "format": "%Y-%m-%d"} if f["name"] == "joined" else f
                for f in PEOPLE_CONTRACT["schema"]["fields"]  # type: ignore[index]
            ]
        },
    }
    add_contract(workspace, wrong)
    path = write_csv(tmp_path / "p.csv", GOOD_ROWS)
    catalog = ContractCatalog.load(*workspace.contract_paths)
    first = ingest_file(store, catalog.get("test_people"), path).record
    assert (first.rows_loaded, first.rows_quarantined) == (0, 3)
    add_contract(workspace)  # the DPO fixes the date format
    fixed = ContractCatalog.load(*workspace.contract_paths).get("test_people")
    assert ingest_file(store, fixed, path).record.status == "skipped_duplicate"
    again = ingest_file(store, fixed, path, replace_loaded=True).record
    assert (again.status, again.rows_loaded, again.details["supersedes"]) == (
        "loaded",
        3,
        first.load_id,
    )
    statuses = {r.load_id: r.status for r in store.loads("test_people")}
    assert statuses == {first.load_id: "superseded", again.load_id: "loaded"}
    assert store.raw_table("test_people").num_rows == 3
    assert store.quarantine_count("test_people") == 0
