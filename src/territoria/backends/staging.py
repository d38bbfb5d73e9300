"""Validate one delivered file against its contract in DuckDB and write it to staging files.

One scan of the file writes the rows that pass as Parquet and the rows that fail, with their
raw text and reasons, beside them (``PARTITION_BY`` on the outcome). Malformed CSV lines
(wrong number of columns) are caught by DuckDB's rejects tables. Nothing here is visible to
readers: the store commits the staged files atomically afterwards.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from territoria.backends.base import QUARANTINE_SCHEMA
from territoria.backends.stage_query import (
    ReaderSpec,
    StagePlan,
    checked_query,
    lines_sql,
)
from territoria.backends.validation_sql import quote_literal, sql_type
from territoria.core.errors import ContractError, InputFileError, StoreError

# Above this many rejected rows, and when they are most of the file, the load is refused:
# the contract almost certainly does not fit the file (wrong decimal mark, date format…).
MAX_QUARANTINE_ROWS = 100_000

_MALFORMED_LABELS = {
    "MISSING COLUMNS": "ligne mal formée : colonnes manquantes",
    "TOO MANY COLUMNS": "ligne mal formée : colonnes en trop",
    "UNQUOTED VALUE": "ligne mal formée : guillemets incorrects",
    "LINE SIZE OVER MAXIMUM": "ligne trop longue",
    "INVALID ENCODING": "encodage invalide",
    "INVALID UNICODE": "encodage invalide",
}


@dataclass
class StageResult:
    valid_files: list[Path]
    rows_loaded: int
    quarantine: pa.Table
    columns: list[tuple[str, str]] = field(default_factory=list)

    @property
    def rows_quarantined(self) -> int:
        return int(self.quarantine.num_rows)


def stage_file(
    plan: StagePlan,
    out_dir: Path,
    *,
    load_id: str,
    source: str,
    memory_limit: str = "2GB",
) -> StageResult:
    """Check every row of the file and write the staged outcome under ``out_dir``.

    Engine failures become errors a person can act on (memory, disk, contract, file).
    """
    memory = os.environ.get("TERRITORIA_DUCKDB_MEMORY", memory_limit)
    try:
        try:
            return _stage(plan, out_dir, load_id, source, memory)
        except duckdb.InvalidInputException as exc:
            if plan.reader.kind != "csv" or "state machine" not in str(exc):
                raise
            # Mixed line endings (\r\n and \n in one file) confuse DuckDB's CSV parser:
            # read a copy with one kind of line ending instead.
            shutil.rmtree(out_dir, ignore_errors=True)
            reader = replace(plan.reader, path=_unix_newlines(plan.reader.path, out_dir.parent))
            return _stage(replace(plan, reader=reader), out_dir, load_id, source, memory)
    except duckdb.OutOfMemoryException:
        raise StoreError(
            f"mémoire insuffisante pour contrôler ce fichier (limite du moteur : {memory})",
            code="engine_out_of_memory",
            file=plan.reader.path,
            hint="augmentez la variable TERRITORIA_DUCKDB_MEMORY (par exemple 4GB) "
            "ou libérez de la mémoire, puis relancez : rien n'a été chargé",
        ) from None
    except duckdb.IOException as exc:
        raise StoreError(
            f"lecture ou écriture impossible pendant le contrôle : {_first_line(exc)}",
            code="engine_io_error",
            file=plan.reader.path,
            hint="vérifiez le fichier et l'espace disque de l'espace de travail ; "
            "rien n'a été chargé",
        ) from None
    except (duckdb.BinderException, duckdb.ParserException) as exc:
        raise ContractError(
            f"le contrat produit un contrôle que le moteur refuse : {_first_line(exc)}",
            code="contract_not_executable",
            file=plan.reader.path,
            hint="vérifiez les contraintes du contrat (territoria contracts check) ; "
            "rien n'a été chargé",
        ) from None
    except duckdb.Error as exc:
        raise InputFileError(
            f"fichier illisible par le moteur : {_first_line(exc)}",
            code="file_unreadable",
            file=plan.reader.path,
            hint="rien n'a été chargé ; vérifiez le fichier à l'endroit indiqué",
        ) from None


def _unix_newlines(path: Path, folder: Path) -> Path:
    """A copy of a text file with every \r\n turned into \n (streamed, constant memory)."""
    target = folder / f"{path.stem}.lf{path.suffix}"
    with path.open("rb") as src, target.open("wb") as out:
        pending = b""
        while chunk := src.read(8 << 20):
            chunk = pending + chunk
            pending = b"\r" if chunk.endswith(b"\r") else b""
            out.write(chunk[: len(chunk) - len(pending)].replace(b"\r\n", b"\n"))
        out.write(pending)
    return target


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _stage(plan: StagePlan, out_dir: Path, load_id: str, source: str, memory: str) -> StageResult:
    out_dir.mkdir(parents=True, exist_ok=True)
    config: dict[str, str | bool | int | float | list[str]] = {
        "memory_limit": memory,
        "temp_directory": str(out_dir / "spill"),
    }
    target = out_dir / "rows"
    with duckdb.connect(config=config) as con:
        # Record numbers (JSON, Parquet) need file order; CSV rows are located by content
        # instead, and dropping the order lets DuckDB write in parallel with bounded memory.
        ordered = "false" if plan.reader.kind == "csv" else "true"
        con.execute(f"SET preserve_insertion_order = {ordered}")
        con.execute("SET enable_progress_bar = false")
        con.execute(
            f"COPY ({checked_query(plan)}) TO {quote_literal(str(target))} "
            "(FORMAT parquet, PARTITION_BY (_ok), OVERWRITE_OR_IGNORE, COMPRESSION zstd)"
        )
        valid = sorted((target / "_ok=true").glob("*.parquet"))
        rejected_files = sorted((target / "_ok=false").glob("*.parquet"))
        rows_loaded = sum(pq.read_metadata(p).num_rows for p in valid)
        _refuse_if_mostly_rejected(con, plan, rejected_files, rows_loaded)
        rejected = _rejected_rows(rejected_files)
        malformed: list[_Malformed] = []
        if plan.reader.kind == "csv":
            malformed = _malformed_rows(con)
            _locate_csv_lines(con, plan.reader, rejected)
    quarantine = _quarantine_table(plan.reader, rejected, malformed, load_id, source)
    columns = [(f.spec.name, sql_type(f.spec)) for f in plan.fields]
    columns += [(stored, "VARCHAR") for _, stored in plan.extra_columns]
    return StageResult(valid, rows_loaded, quarantine, columns)


def _refuse_if_mostly_rejected(
    con: duckdb.DuckDBPyConnection, plan: StagePlan, files: list[Path], rows_loaded: int
) -> None:
    rejected = sum(pq.read_metadata(p).num_rows for p in files)
    if rejected <= MAX_QUARANTINE_ROWS or rejected < rows_loaded:
        return
    listing = ", ".join(quote_literal(str(p)) for p in files)
    top = con.execute(
        "SELECT json_extract_string(_errors, '$[0].field') AS f, "
        "json_extract_string(_errors, '$[0].reason') AS r, count(*) AS n "
        f"FROM read_parquet([{listing}]) GROUP BY ALL ORDER BY n DESC LIMIT 3"
    ).fetchall()
    causes = " ; ".join(f"{f} : {r} ({n} lignes)" for f, r, n in top)
    raise ContractError(
        f"{rejected} lignes rejetées sur {rejected + rows_loaded} : le fichier ne correspond "
        f"probablement pas au contrat. Principales causes : {causes}",
        code="contract_mismatch",
        file=plan.reader.path,
        hint="corrigez le contrat (formats de date, séparateur décimal…) ou le fichier ; "
        "rien n'a été chargé",
    )


@dataclass(frozen=True)
class _Malformed:
    line: int
    column: str | None
    reason: str
    text: str


def _malformed_rows(con: duckdb.DuckDBPyConnection) -> list[_Malformed]:
    try:
        rows = con.execute(
            "SELECT line, any_value(column_name), list(error_type ORDER BY column_idx), "
            "any_value(csv_line) FROM reject_errors GROUP BY line ORDER BY line"
        ).fetchall()
    except duckdb.CatalogException:
        return []
    out = []
    for line, column, types, text in rows:
        reason = _MALFORMED_LABELS.get(str(types[0]), f"ligne illisible ({types[0]})")
        out.append(_Malformed(int(line), column, reason, str(text or "")))
    return out


def _rejected_rows(files: list[Path]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for path in files:
        rows.extend(pq.read_table(path, columns=["_record", "_raw", "_errors"]).to_pylist())
    return rows


def _locate_csv_lines(
    con: duckdb.DuckDBPyConnection, reader: ReaderSpec, rejected: list[dict[str, Any]]
) -> None:
    """Find the physical line of each rejected CSV row (sets ``_record`` to it).

    The hot path reads the file in parallel and does not number rows (numbering would halve
    the speed). Rejected rows are few: their text is rebuilt from the raw values, as a CSV
    writer would quote them, and looked up among the file's numbered lines. Files that quote
    only some columns are matched in a second pass with the quotes taken out.
    """
    for row in rejected:
        raw = json.loads(row["_raw"])
        values = ["" if raw.get(c) is None else str(raw[c]) for c in reader.columns]
        row["_texts"] = _line_texts(values, reader.delimiter)
        row["_bare"] = reader.delimiter.join(v.replace('"', "") for v in values)
    pending = [r for r in rejected if r["_record"] is None]
    _assign_lines(con, reader, pending, "_texts", "l")
    pending = [r for r in pending if r["_record"] is None]
    _assign_lines(con, reader, pending, "_bare", "replace(l, '\"', '')")


def _assign_lines(
    con: duckdb.DuckDBPyConnection,
    reader: ReaderSpec,
    rows: list[dict[str, Any]],
    key: str,
    line_expr: str,
) -> None:
    if not rows:
        return
    texts = {t for r in rows for t in (r[key] if isinstance(r[key], list) else [r[key]])}
    wanted = sorted(texts | {t + "\r" for t in texts})  # CRLF files keep the \r
    con.execute(
        "CREATE OR REPLACE TEMP TABLE wanted AS SELECT unnest(?::VARCHAR[]) AS text", [wanted]
    )
    found = con.execute(
        f"SELECT n, {line_expr} AS t FROM ({lines_sql(reader.path)}) "
        f"WHERE n > {reader.header_lines} AND {line_expr} IN (SELECT text FROM wanted) ORDER BY n"
    ).fetchall()
    lines: dict[str, list[int]] = {}
    for number, text in found:
        lines.setdefault(text.removesuffix("\r"), []).append(int(number))
    for row in rows:
        candidates = row[key] if isinstance(row[key], list) else [row[key]]
        row["_record"] = next((lines[t].pop(0) for t in candidates if lines.get(t)), None)


def _line_texts(values: list[str], delimiter: str) -> list[str]:
    texts = []
    for quoting in (csv.QUOTE_MINIMAL, csv.QUOTE_ALL):
        buffer = io.StringIO()
        csv.writer(buffer, delimiter=delimiter, lineterminator="", quoting=quoting).writerow(values)
        texts.append(buffer.getvalue())
    return list(dict.fromkeys(texts))


def _quarantine_table(
    reader: ReaderSpec,
    rejected: list[dict[str, Any]],
    malformed: list[_Malformed],
    load_id: str,
    source: str,
) -> pa.Table:
    """One row per rejected record: where it was, the first failed field, all errors, raw."""
    by_line = reader.kind in ("csv", "ndjson")
    rows: list[dict[str, object]] = []
    for rec in rejected:
        errors = json.loads(rec["_errors"])
        first = errors[0] if errors else {"field": None, "reason": "rejeté"}
        where = rec["_record"]
        rows.append(
            {
                "load_id": load_id,
                "source": source,
                "record": None if by_line else where,
                "line": where if by_line else None,
                "field": first["field"],
                "reason": first["reason"],
                "errors": rec["_errors"],
                "raw": rec["_raw"],
            }
        )
    for m in malformed:
        error = {"field": m.column, "column": m.column, "reason": m.reason}
        rows.append(
            {
                "load_id": load_id,
                "source": source,
                "record": None,
                "line": m.line,
                "field": m.column,
                "reason": m.reason,
                "errors": json.dumps([error], ensure_ascii=False),
                "raw": json.dumps({"_line": m.text}, ensure_ascii=False),
            }
        )
    rows.sort(key=lambda r: (r["line"] is None, r["line"] or 0, r["record"] or 0))
    return pa.Table.from_pylist(rows, schema=QUARANTINE_SCHEMA)
