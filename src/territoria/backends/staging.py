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
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from territoria.backends.base import QUARANTINE_SCHEMA
from territoria.backends.validation_sql import (
    FieldPlan,
    clean_expr,
    error_expr,
    quote_ident,
    quote_literal,
    sql_type,
    typed_expr,
)
from territoria.core.contract import normalise_header
from territoria.core.errors import InputFileError, StoreError

ReaderKind = Literal["csv", "json", "ndjson", "parquet"]
_MALFORMED_LABELS = {
    "MISSING COLUMNS": "ligne mal formée : colonnes manquantes",
    "TOO MANY COLUMNS": "ligne mal formée : colonnes en trop",
    "UNQUOTED VALUE": "ligne mal formée : guillemets incorrects",
    "LINE SIZE OVER MAXIMUM": "ligne trop longue",
    "INVALID ENCODING": "encodage invalide",
    "INVALID UNICODE": "encodage invalide",
}


@dataclass(frozen=True)
class ReaderSpec:
    """How to read a file as text columns (the file has been sniffed beforehand)."""

    kind: ReaderKind
    path: Path
    columns: tuple[str, ...]
    delimiter: str = ","
    header_lines: int = 1
    one_line_per_record: bool = False


@dataclass(frozen=True)
class StagePlan:
    reader: ReaderSpec
    fields: Sequence[FieldPlan]
    missing_values: Sequence[str]
    extra_columns: Sequence[str] = ()
    iso_fallback: bool = False


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

    Engine failures become errors a person can act on (memory, disk, unreadable file).
    """
    memory = os.environ.get("TERRITORIA_DUCKDB_MEMORY", memory_limit)
    try:
        return _stage(plan, out_dir, load_id, source, memory)
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
            f"écriture impossible pendant le contrôle : {_first_line(exc)}",
            code="engine_io_error",
            file=plan.reader.path,
            hint="vérifiez l'espace disque de l'espace de travail ; rien n'a été chargé",
        ) from None
    except duckdb.Error as exc:
        raise InputFileError(
            f"fichier illisible par le moteur : {_first_line(exc)}",
            code="file_unreadable",
            file=plan.reader.path,
            hint="rien n'a été chargé ; vérifiez le fichier à l'endroit indiqué",
        ) from None


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _stage(plan: StagePlan, out_dir: Path, load_id: str, source: str, memory: str) -> StageResult:
    out_dir.mkdir(parents=True, exist_ok=True)
    config: dict[str, str | bool | int | float | list[str]] = {
        "memory_limit": memory,
        "temp_directory": str(out_dir / "spill"),
    }
    con = duckdb.connect(config=config)
    try:
        # Row numbers (JSON, Parquet) need file order; CSV rows are located by content instead,
        # and dropping the order lets DuckDB write with bounded memory.
        ordered = "false" if plan.reader.kind == "csv" else "true"
        con.execute(f"SET preserve_insertion_order = {ordered}")
        con.execute("SET enable_progress_bar = false")
        query = _checked_query(plan)
        target = out_dir / "rows"
        con.execute(
            f"COPY ({query}) TO {quote_literal(str(target))} "
            "(FORMAT parquet, PARTITION_BY (_ok), OVERWRITE_OR_IGNORE, COMPRESSION zstd)"
        )
        valid = sorted((target / "_ok=true").glob("*.parquet"))
        rejected = _rejected_rows(sorted((target / "_ok=false").glob("*.parquet")))
        malformed = []
        if plan.reader.kind == "csv":
            malformed = _malformed_rows(con)
            _locate_csv_lines(con, plan.reader, rejected)
    finally:
        con.close()
    rows_loaded = sum(pq.read_metadata(p).num_rows for p in valid)
    quarantine = _quarantine_table(plan.reader, rejected, malformed, load_id, source)
    columns = [(f.spec.name, sql_type(f.spec)) for f in plan.fields]
    columns += [(extra_name(c), "VARCHAR") for c in plan.extra_columns]
    return StageResult(valid, rows_loaded, quarantine, columns)


def extra_name(column: str) -> str:
    """Stored name of a column kept by the ``keep`` drift policy (``"Commentaire"`` → ``x_commentaire``)."""
    return "x_" + (normalise_header(column) or "colonne")


def _reader_sql(spec: ReaderSpec) -> str:
    path = quote_literal(str(spec.path))
    if spec.kind == "csv":
        cols = ", ".join(f"{quote_literal(c)}: 'VARCHAR'" for c in spec.columns)
        return (
            f"SELECT *, CAST(NULL AS BIGINT) AS _record FROM read_csv({path}, "
            f"delim={quote_literal(spec.delimiter)}, header=true, quote='\"', escape='\"', "
            f"auto_detect=false, columns={{{cols}}}, ignore_errors=true, store_rejects=true, "
            "max_line_size=1048576)"
        )
    if spec.kind in ("json", "ndjson"):
        fmt = "array" if spec.kind == "json" else "newline_delimited"
        picks = ", ".join(
            f"json_extract_string(json, {quote_literal('$.' + json.dumps(c, ensure_ascii=False))}) AS {quote_ident(c)}"
            for c in spec.columns
        )
        return (
            f"SELECT {picks}, row_number() OVER () AS _record "
            f"FROM read_json_objects({path}, format='{fmt}')"
        )
    picks = ", ".join(
        f"CAST({quote_ident(c)} AS VARCHAR) AS {quote_ident(c)}" for c in spec.columns
    )
    return f"SELECT {picks}, row_number() OVER () AS _record FROM read_parquet({path})"


def _checked_query(plan: StagePlan) -> str:
    cleaned, typed, errors, raw = [], [], [], []
    for fp in plan.fields:
        name = fp.spec.name
        v, t, e = quote_ident(f"{name}__v"), quote_ident(f"{name}__t"), quote_ident(f"{name}__e")
        cleaned.append(f"{clean_expr(fp, plan.missing_values)} AS {v}")
        typed.append(f"{typed_expr(fp.spec, v, plan.iso_fallback)} AS {t}")
        errors.append((name, e, f"{error_expr(fp.spec, v, t)} AS {e}"))
    extras = [f"{quote_ident(c)} AS {quote_ident(extra_name(c))}" for c in plan.extra_columns]
    raw = [f"{quote_literal(c)}: {quote_ident(c)}" for c in plan.reader.columns]
    ok = " AND ".join(f"{e} IS NULL" for _, e, _ in errors) or "TRUE"
    columns = {fp.spec.name: fp.column or "" for fp in plan.fields}
    error_items = ", ".join(
        f"CASE WHEN {e} IS NOT NULL THEN {{'field': {quote_literal(n)}, "
        f"'column': {quote_literal(columns[n])}, 'reason': {e}}} END"
        for n, e, _ in errors
    )
    error_list = f"list_filter([{error_items}], lambda x: x IS NOT NULL)" if errors else "[]"
    raw_json = f"to_json({{{', '.join(raw)}}})" if raw else "'{}'"
    outputs = [
        f"{quote_ident(fp.spec.name + '__t')} AS {quote_ident(fp.spec.name)}" for fp in plan.fields
    ]
    outputs += [quote_ident(extra_name(c)) for c in plan.extra_columns]
    return f"""
        WITH src AS ({_reader_sql(plan.reader)}),
        cleaned AS (SELECT *, {", ".join(cleaned) or "NULL AS _none"} FROM src),
        typed AS (SELECT *, {", ".join(typed) or "NULL AS _none2"} FROM cleaned),
        checked AS (SELECT *, {", ".join(e for _, _, e in errors) or "NULL AS _none3"}, {", ".join(extras) or "NULL AS _none4"} FROM typed)
        SELECT _record, {", ".join(outputs) + "," if outputs else ""}
            ({ok}) AS _ok,
            CASE WHEN NOT ({ok}) THEN {raw_json} END AS _raw,
            CASE WHEN NOT ({ok}) THEN to_json({error_list}) END AS _errors
        FROM checked
    """


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
    """Find the physical line of each rejected CSV row (sets ``_line``).

    The hot path reads the file in parallel and does not number rows (numbering would halve
    the speed). Rejected rows are few: their text is rebuilt from the raw values, as a CSV
    writer would quote them, and looked up among the file's numbered lines in one pass.
    """
    if not rejected:
        return
    for row in rejected:
        row["_candidates"] = _line_texts(json.loads(row["_raw"]), reader)
    texts = {t for row in rejected for t in row["_candidates"]}
    wanted = sorted(texts | {t + "\r" for t in texts})  # CRLF files keep the \r
    con.execute("CREATE TEMP TABLE wanted AS SELECT unnest(?::VARCHAR[]) AS text", [wanted])
    found = con.execute(
        f"""SELECT n, l FROM (
                SELECT row_number() OVER () AS n, l
                FROM read_csv({quote_literal(str(reader.path))}, columns={{'l': 'VARCHAR'}},
                    delim=chr(1), quote='', escape='', header=false, auto_detect=false,
                    strict_mode=false, null_padding=true, ignore_errors=true)
            ) WHERE l IN (SELECT text FROM wanted) ORDER BY n"""
    ).fetchall()
    lines: dict[str, list[int]] = {}
    for number, text in found:
        lines.setdefault(text.removesuffix("\r"), []).append(int(number))
    for row in rejected:
        row["_line"] = next((lines[t].pop(0) for t in row["_candidates"] if lines.get(t)), None)


def _line_texts(raw: dict[str, Any], reader: ReaderSpec) -> list[str]:
    values = ["" if raw.get(c) is None else str(raw[c]) for c in reader.columns]
    texts = []
    for quoting in (csv.QUOTE_MINIMAL, csv.QUOTE_ALL):
        buffer = io.StringIO()
        csv.writer(buffer, delimiter=reader.delimiter, lineterminator="", quoting=quoting).writerow(
            values
        )
        texts.append(buffer.getvalue())
    return list(dict.fromkeys(texts))


def _quarantine_table(
    reader: ReaderSpec,
    rejected: list[dict[str, Any]],
    malformed: list[_Malformed],
    load_id: str,
    source: str,
) -> pa.Table:
    rows: list[dict[str, object]] = []
    for rec in rejected:
        errors = json.loads(rec["_errors"])
        first = errors[0] if errors else {"field": None, "reason": "rejeté"}
        rows.append(
            {
                "load_id": load_id,
                "source": source,
                "record": rec["_record"],
                "line": rec.get("_line", _line_of(reader, rec["_record"])),
                "field": first["field"],
                "reason": first["reason"],
                "errors": rec["_errors"],
                "raw": rec["_raw"],
            }
        )
    for m in malformed:
        rows.append(
            {
                "load_id": load_id,
                "source": source,
                "record": None,
                "line": m.line,
                "field": m.column,
                "reason": m.reason,
                "errors": json.dumps(
                    [{"field": m.column, "column": m.column, "reason": m.reason}],
                    ensure_ascii=False,
                ),
                "raw": json.dumps({"_line": m.text}, ensure_ascii=False),
            }
        )
    rows.sort(key=lambda r: (r["line"] is None, r["line"] or 0, r["record"] or 0))
    return pa.Table.from_pylist(rows, schema=QUARANTINE_SCHEMA)


def _line_of(reader: ReaderSpec, record: int | None) -> int | None:
    """The line of a record numbered by the reader, for formats with one line per record."""
    if record is None or not reader.one_line_per_record:
        return None
    return record + reader.header_lines
