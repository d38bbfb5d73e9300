"""Bad input: a clear message (file, line, field, what was expected), non-zero exit, nothing lost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from helpers import GOOD_ROWS, HEADER, PEOPLE_CONTRACT, add_contract, grant_test_people, write_csv
from territoria.backends import open_store
from territoria.core.config import WorkspaceConfig, init_workspace
from territoria.interfaces.cli import app

runner = CliRunner()


@pytest.fixture
def ws(tmp_path: Path) -> WorkspaceConfig:
    config = init_workspace(tmp_path / "ws")
    add_contract(config)
    utf8 = {**PEOPLE_CONTRACT, "id": "people_utf8", "file_format": {"encoding": "utf-8"}}
    add_contract(config, utf8)
    return config


def _ingest(ws: WorkspaceConfig, source: str, path: Path) -> tuple[int, dict[str, object], str]:
    result = runner.invoke(
        app, ["ingest", source, str(path), "--workspace", str(ws.root), "--json"]
    )
    assert "Traceback" not in result.output
    payload = json.loads(result.stdout)
    return result.exit_code, payload[0] if isinstance(payload, list) else payload, result.output


def _nothing_loaded(ws: WorkspaceConfig) -> None:
    store = open_store(ws)
    try:
        assert all(r.status != "loaded" for r in store.loads())
        assert store.raw_table("test_people").num_rows == 0
    finally:
        store.close()


def test_wrong_declared_encoding_names_the_line(ws: WorkspaceConfig, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "cp.csv", GOOD_ROWS, encoding="cp1252")
    code, out, _ = _ingest(ws, "people_utf8", path)
    assert code == 1 and out["status"] == "failed"
    error = out["error"]
    assert isinstance(error, dict)
    assert error["code"] == "encoding_invalid" and error["line"] == 1 and error["file"] == str(path)


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"", "file_empty"),
        (b"\x00\x01\x02PK\xff\xfe\x00" * 200, "file_binary"),
        ('N° personne;Nom\nP1;"Dupont\n'.encode(), "file_truncated"),
    ],
)
def test_unreadable_files_fail_cleanly(
    ws: WorkspaceConfig, tmp_path: Path, content: bytes, code: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    exit_code, out, _ = _ingest(ws, "test_people", path)
    assert exit_code == 1 and out["status"] == "failed"
    assert isinstance(out["error"], dict) and out["error"]["code"] == code
    _nothing_loaded(ws)
    store = open_store(ws)
    try:
        (failed,) = store.loads()
        assert failed.status == "failed" and failed.content_hash == out["content_hash"]
        assert failed.details["error"]["code"] == code
    finally:
        store.close()


def test_missing_column_and_unknown_source(ws: WorkspaceConfig, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "x.csv", [r[1:] for r in GOOD_ROWS], header=HEADER[1:])
    code, out, _ = _ingest(ws, "test_people", path)
    assert code == 1 and isinstance(out["error"], dict)
    assert out["error"]["code"] == "column_missing" and out["error"]["line"] == 1
    code, out, _ = _ingest(ws, "no_such_source", path)
    assert code == 1 and isinstance(out["error"], dict) and out["error"]["code"] == "source_unknown"
    _nothing_loaded(ws)


def test_missing_file_and_workspace(ws: WorkspaceConfig, tmp_path: Path) -> None:
    code, out, _ = _ingest(ws, "test_people", tmp_path / "absent.csv")
    assert code == 1 and isinstance(out["error"], dict) and out["error"]["code"] == "file_missing"
    result = runner.invoke(app, ["loads", "--workspace", str(tmp_path / "nowhere")])
    assert (
        result.exit_code == 2
        and "territoria init" in result.output
        and "Traceback" not in result.output
    )


def test_unexpected_date_format_is_quarantined_with_expectation(
    ws: WorkspaceConfig, tmp_path: Path
) -> None:
    rows = [*GOOD_ROWS, ["P9", "Roux", "1990", "2024/01/31", "1", "actif"]]
    code, out, _ = _ingest(ws, "test_people", write_csv(tmp_path / "d.csv", rows))
    assert code == 0 and out["rows_quarantined"] == 1 and out["rows_read"] == 4
    agent = grant_test_people(ws)
    result = runner.invoke(
        app, ["quarantine", "test_people", "--as", agent, "--workspace", str(ws.root), "--json"]
    )
    row = json.loads(result.stdout)["rows"][0]
    assert (row["line"], row["field"]) == (5, "joined")
    assert "JJ/MM/AAAA" in row["reason"] and row["raw"]["Inscription"] == "2024/01/31"


def test_human_output_has_no_traceback(ws: WorkspaceConfig, tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    result = runner.invoke(app, ["ingest", "test_people", str(path), "--workspace", str(ws.root)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output and "empty.csv" in result.output


def test_engine_out_of_memory_is_a_clear_error(
    ws: WorkspaceConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [[f"P{i}", "Nom", "1970", "01/02/2024", "1", "actif"] for i in range(300_000)]
    path = write_csv(tmp_path / "big.csv", rows)
    monkeypatch.setenv("TERRITORIA_DUCKDB_MEMORY", "1MB")
    code, out, _ = _ingest(ws, "test_people", path)
    assert code == 1 and isinstance(out["error"], dict)
    assert out["error"]["code"] == "engine_out_of_memory"
    assert "TERRITORIA_DUCKDB_MEMORY" in str(out["error"]["hint"])
    _nothing_loaded(ws)


def test_a_corrupt_catalog_is_a_message_not_a_traceback(ws: WorkspaceConfig) -> None:
    open_store(ws).close()
    (ws.store_dir / "catalog.sqlite").write_bytes(b"ceci n'est pas une base SQLite" * 100)
    for name in ("catalog.sqlite-wal", "catalog.sqlite-shm"):
        (ws.store_dir / name).unlink(missing_ok=True)
    result = runner.invoke(app, ["loads", "--workspace", str(ws.root)])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "catalog" in result.output or "base" in result.output


def test_init_in_a_file_path_is_a_message(tmp_path: Path) -> None:
    (tmp_path / "fichier").write_text("x")
    result = runner.invoke(app, ["init", str(tmp_path / "fichier" / "ws")])
    assert result.exit_code == 2 and "Traceback" not in result.output
