"""Contract checks as a contract author expects them (every store)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import add_contract
from territoria.backends import Store
from territoria.core.config import WorkspaceConfig
from territoria.ingest import ContractCatalog, ingest_file

RULES = {
    "id": "rules",
    "title": "Règles",
    "owner_service": "test",
    "legal_basis": "public_task",
    "legal_reference": "test",
    "retention": {"duration": "P1Y"},
    "delivery": {"frequency": "monthly"},
    "schema_drift": {"new_columns": "keep"},
    "schema": {
        "fields": [
            {"name": "code", "category": "service", "constraints": {"required": True}},
            {"name": "count", "type": "integer", "category": "service"},
            {
                "name": "amount",
                "type": "number",
                "decimalChar": ",",
                "groupChar": " ",
                "category": "service",
            },
            {
                "name": "zone",
                "type": "integer",
                "category": "service",
                "constraints": {"enum": ["1", "69"]},
            },
            {
                "name": "paid",
                "type": "boolean",
                "category": "service",
                "trueValues": ["O"],
                "falseValues": ["N"],
            },
        ]
    },
}


def _load(workspace: WorkspaceConfig, store: Store, path: Path):  # type: ignore[no-untyped-def]
    add_contract(workspace, RULES)
    contract = ContractCatalog.load(*workspace.contract_paths).get("rules")
    return ingest_file(store, contract, path).record


def test_numbers_enums_and_booleans(
    workspace: WorkspaceConfig, store: Store, tmp_path: Path
) -> None:
    rows = [
        "code;count;amount;zone;paid",
        "A;12;1\u202f234,50;01;O",  # 2: narrow no-break space groups thousands, zone 01 = 1
        "B;12.5;1;1;N",  # 3: not an integer
        "C;0x1F;1;1;N",  # 4: hexadecimal is not accepted
        "D;1;nan;1;N",  # 5: not a number
        "E;1;1.500;1;N",  # 6: '.' is not the decimal mark here
        "F;1;1;2;N",  # 7: not in the list
        "G;1;1;69;oui",  # 8: not one of O/N
    ]
    path = tmp_path / "rules.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    r = _load(workspace, store, path)
    assert (r.rows_loaded, r.rows_quarantined) == (1, 6)
    loaded = store.raw_table("rules").to_pylist()[0]
    assert (loaded["amount"], loaded["zone"], loaded["paid"]) == (1234.5, 1, True)
    q = {x["line"]: x["field"] for x in store.quarantine("rules").to_pylist()}
    assert q == {3: "count", 4: "count", 5: "amount", 6: "amount", 7: "zone", 8: "paid"}


def test_kept_columns_never_collide(
    workspace: WorkspaceConfig, store: Store, tmp_path: Path
) -> None:
    path = tmp_path / "extra.csv"
    path.write_text("code;Commentaire;Commentaire.;_record;f0_v\nA;x;y;z;w\n", encoding="utf-8")
    r = _load(workspace, store, path)
    assert r.status == "loaded" and r.rows_loaded == 1
    row = store.raw_table("rules").to_pylist()[0]
    assert (row["code"], row["x_commentaire"], row["x_commentaire_2"]) == ("A", "x", "y")
    assert (row["x_record"], row["x_f0_v"]) == ("z", "w")


def test_ndjson_lines_count_blank_lines(
    workspace: WorkspaceConfig, store: Store, tmp_path: Path
) -> None:
    path = tmp_path / "rules.ndjson"
    records = [{"code": "A", "count": "1"}, {"code": "B", "count": "x"}]
    path.write_text(json.dumps(records[0]) + "\n\n\n" + json.dumps(records[1]) + "\n", "utf-8")
    r = _load(workspace, store, path)
    assert (r.rows_loaded, r.rows_quarantined) == (1, 1)
    assert store.quarantine("rules").to_pylist()[0]["line"] == 4


def test_partly_quoted_exports_still_get_line_numbers(
    workspace: WorkspaceConfig, store: Store, tmp_path: Path
) -> None:
    path = tmp_path / "q.csv"
    path.write_text('"code";"count"\n"A";1\n"B";x\n', encoding="utf-8")
    _load(workspace, store, path)
    assert store.quarantine("rules").to_pylist()[0]["line"] == 3


def test_a_file_the_contract_does_not_fit_is_refused_whole(
    workspace: WorkspaceConfig, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from territoria.backends import staging

    monkeypatch.setattr(staging, "MAX_QUARANTINE_ROWS", 10)
    path = tmp_path / "wrong.csv"
    path.write_text("code;amount\n" + "".join(f"A{i};{i}.5\n" for i in range(50)), "utf-8")
    r = _load(workspace, store, path)
    assert r.status == "failed" and r.details["error"]["code"] == "contract_mismatch"
    assert "amount" in r.message and store.raw_table("rules").num_rows == 0


def test_lines_ending_with_the_delimiter(
    workspace: WorkspaceConfig, store: Store, tmp_path: Path
) -> None:
    path = tmp_path / "erp.csv"
    path.write_text("code;count;\nA;1;\nB;x;\n", encoding="utf-8")
    r = _load(workspace, store, path)
    assert (r.rows_loaded, r.rows_quarantined) == (1, 1)
    assert "_vide_final" not in str(r.details)
    assert "x__vide_final" not in store.raw_table("rules").column_names


def test_raw_table_unions_loads_with_different_columns(
    workspace: WorkspaceConfig, store: Store, tmp_path: Path
) -> None:
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_text("code;Note\nA;x\n", encoding="utf-8")
    second.write_text("code;count\nB;2\n", encoding="utf-8")
    assert _load(workspace, store, first).status == "loaded"
    assert _load(workspace, store, second).status == "loaded"
    rows = sorted(store.raw_table("rules").to_pylist(), key=lambda r: r["code"])
    assert [(r["code"], r["x_note"], r["count"]) for r in rows] == [
        ("A", "x", None),
        ("B", None, 2),
    ]


def test_mixed_line_endings(workspace: WorkspaceConfig, store: Store, tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    path.write_bytes(b"code;count\r\nA;1\nB;x\r\nC;3\n")
    r = _load(workspace, store, path)
    assert (r.status, r.rows_loaded, r.rows_quarantined) == ("loaded", 2, 1)
    assert store.quarantine("rules").to_pylist()[0]["line"] == 3
