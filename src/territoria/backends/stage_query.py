"""The one DuckDB query that checks a whole file: read as text, clean, type, check, split.

File columns are renamed by position (``c0``, ``c1``…) as soon as they are read, so a header
can never collide with an internal name (``_ok``, ``_raw``, ``f0_t``…) nor inject SQL.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from territoria.backends.validation_sql import (
    FieldPlan,
    clean_expr,
    error_expr,
    quote_ident,
    quote_literal,
    typed_expr,
)

ReaderKind = Literal["csv", "json", "ndjson", "parquet"]


@dataclass(frozen=True)
class ReaderSpec:
    """How to read a file as text columns (the file has been sniffed beforehand)."""

    kind: ReaderKind
    path: Path
    columns: tuple[str, ...]
    delimiter: str = ","
    header_lines: int = 1


@dataclass(frozen=True)
class StagePlan:
    """What to check: the reader, each contract field's source column, the columns kept."""

    reader: ReaderSpec
    fields: Sequence[FieldPlan]
    missing_values: Sequence[str]
    extra_columns: Sequence[tuple[str, str]] = ()  # (file column, stored name)
    iso_fallback: bool = False


def position_of(reader: ReaderSpec) -> dict[str, str]:
    """File column name → its positional name in the query."""
    return {name: f"c{i}" for i, name in enumerate(reader.columns)}


def lines_sql(path: Path) -> str:
    """Every physical line of a text file, numbered from 1 (one cheap sequential pass)."""
    return (
        f"SELECT row_number() OVER () AS n, l FROM read_csv({quote_literal(str(path))}, "
        "columns={'l': 'VARCHAR'}, delim=chr(1), quote='', escape='', header=false, "
        "auto_detect=false, strict_mode=false, null_padding=true, ignore_errors=true)"
    )


def reader_sql(spec: ReaderSpec) -> str:
    """The file as text columns ``c0…`` plus ``_record`` (its line or record number)."""
    path = quote_literal(str(spec.path))
    names = position_of(spec)
    if spec.kind == "csv":
        cols = ", ".join(f"'{names[c]}': 'VARCHAR'" for c in spec.columns)
        return (
            f"SELECT *, CAST(NULL AS BIGINT) AS _record FROM read_csv({path}, "
            f"delim={quote_literal(spec.delimiter)}, header=true, quote='\"', escape='\"', "
            f"auto_detect=false, columns={{{cols}}}, ignore_errors=true, store_rejects=true, "
            "max_line_size=1048576)"
        )
    if spec.kind in ("json", "ndjson"):
        picks = ", ".join(
            f"json_extract_string(json, {quote_literal('$.' + json.dumps(c, ensure_ascii=False))})"
            f" AS {names[c]}"
            for c in spec.columns
        )
        if spec.kind == "ndjson":  # numbered by physical line, blank lines skipped
            return (
                f"SELECT {picks}, n AS _record FROM (SELECT n, l AS json FROM ({lines_sql(spec.path)})"
                " WHERE trim(l) <> '')"
            )
        return (
            f"SELECT {picks}, row_number() OVER () AS _record "
            f"FROM read_json_objects({path}, format='array')"
        )
    picks = ", ".join(f"CAST({quote_ident(c)} AS VARCHAR) AS {names[c]}" for c in spec.columns)
    return f"SELECT {picks}, row_number() OVER () AS _record FROM read_parquet({path})"


def checked_query(plan: StagePlan) -> str:
    """Typed values of every row, ``_ok``, and for failing rows ``_raw`` and ``_errors``."""
    names = position_of(plan.reader)
    cleaned, typed, checks, items, outputs = [], [], [], [], []
    for i, fp in enumerate(plan.fields):
        source = names[fp.column] if fp.column is not None else None
        v, t, e = f"f{i}_v", f"f{i}_t", f"f{i}_e"
        cleaned.append(f"{clean_expr(source, plan.missing_values)} AS {v}")
        typed.append(f"{typed_expr(fp.spec, v, plan.iso_fallback)} AS {t}")
        checks.append(f"{error_expr(fp.spec, v, t)} AS {e}")
        items.append(
            f"CASE WHEN {e} IS NOT NULL THEN {{'field': {quote_literal(fp.spec.name)}, "
            f"'column': {quote_literal(fp.column or '')}, 'reason': {e}}} END"
        )
        outputs.append(f"{t} AS {quote_ident(fp.spec.name)}")
    outputs += [f"{names[col]} AS {quote_ident(stored)}" for col, stored in plan.extra_columns]
    ok = " AND ".join(f"f{i}_e IS NULL" for i in range(len(plan.fields))) or "TRUE"
    raw = ", ".join(f"{quote_literal(c)}: {names[c]}" for c in plan.reader.columns)
    errors = f"list_filter([{', '.join(items)}], lambda x: x IS NOT NULL)" if items else "[]"
    return f"""
        WITH src AS ({reader_sql(plan.reader)}),
        cleaned AS (SELECT *{_more(cleaned)} FROM src),
        typed AS (SELECT *{_more(typed)} FROM cleaned),
        checked AS (SELECT *{_more(checks)} FROM typed)
        SELECT _record{_more(outputs)},
            ({ok}) AS _ok,
            CASE WHEN NOT ({ok}) THEN to_json({{{raw}}}) END AS _raw,
            CASE WHEN NOT ({ok}) THEN to_json({errors}) END AS _errors
        FROM checked
    """


def _more(expressions: list[str]) -> str:
    return "".join(f", {x}" for x in expressions)
