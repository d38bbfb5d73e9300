"""Compile a source contract's checks into one vectorised DuckDB query.

Each field yields three expressions: its cleaned text (missing values become NULL), its typed
value, and its error (NULL when the value is fine, else a French reason). No Python runs per
row: the whole file is checked in one scan.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from territoria.core.contract import FieldSpec

_TYPE_SQL = {
    "string": "VARCHAR",
    "integer": "BIGINT",
    "number": "DOUBLE",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "datetime": "TIMESTAMP",
    "year": "INTEGER",
}


def sql_type(spec: FieldSpec) -> str:
    return _TYPE_SQL[spec.type]


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _list_literal(values: Sequence[str]) -> str:
    return "[" + ", ".join(quote_literal(v) for v in values) + "]"


@dataclass(frozen=True)
class FieldPlan:
    """A contract field and the file column it is read from (None: absent from the file)."""

    spec: FieldSpec
    column: str | None


def clean_expr(column: str | None, missing_values: Sequence[str]) -> str:
    """The trimmed text of a column, NULL for missing values (``column``: an SQL name)."""
    if column is None:
        return "CAST(NULL AS VARCHAR)"
    col = f"trim({column})"
    missing = sorted({v.strip() for v in missing_values} | {""})
    return f"CASE WHEN {col} IN ({', '.join(quote_literal(m) for m in missing)}) THEN NULL ELSE {col} END"


_SPACES = (" ", "\u00a0", "\u202f")  # French exports group thousands with (narrow) no-break spaces


def _number_text(spec: FieldSpec, v: str) -> str:
    text = v
    groups = _SPACES if spec.group_char == " " else (spec.group_char,) if spec.group_char else ()
    for char in groups:
        text = f"replace({text}, {quote_literal(char)}, '')"
    return text


def _number_pattern(spec: FieldSpec) -> str:
    """Plain decimal notation only: TRY_CAST alone would take 0x1F, 1_000, 1e3, nan or inf."""
    if spec.type == "integer":
        return "[+-]?[0-9]+"
    d = re.escape(spec.decimal_char)
    return f"[+-]?([0-9]+({d}[0-9]*)?|{d}[0-9]+)"


def typed_expr(spec: FieldSpec, v: str, iso_fallback: bool) -> str:
    """``v`` is the cleaned-text column; returns the typed value (NULL if it does not parse).

    ``iso_fallback`` also accepts the way typed sources (JSON, Parquet, Excel) print their
    values: ISO dates and times, ``true``/``false``.
    """
    if spec.type == "string":
        return v
    if spec.type in ("integer", "number"):
        text = _number_text(spec, v)
        if spec.type == "number" and spec.decimal_char != ".":
            cast = f"TRY_CAST(replace({text}, {quote_literal(spec.decimal_char)}, '.') AS DOUBLE)"
        else:
            cast = f"TRY_CAST({text} AS {sql_type(spec)})"
        pattern = quote_literal(_number_pattern(spec))
        return f"CASE WHEN regexp_full_match({text}, {pattern}) THEN {cast} END"
    if spec.type == "boolean":
        trues, falses = list(spec.true_values), list(spec.false_values)
        if iso_fallback:
            trues, falses = [*trues, "true"], [*falses, "false"]
        return (
            f"CASE WHEN {v} IN ({', '.join(quote_literal(x) for x in trues)}) THEN TRUE "
            f"WHEN {v} IN ({', '.join(quote_literal(x) for x in falses)}) THEN FALSE END"
        )
    if spec.type == "year":
        return f"CASE WHEN regexp_full_match({v}, '[0-9]{{4}}') THEN CAST({v} AS INTEGER) END"
    formats = list(spec.formats)
    if iso_fallback:
        formats += ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S.%f"]
        formats += ["%Y-%m-%d"] if spec.type == "date" else []
    parsed = f"try_strptime({v}, {_list_literal(list(dict.fromkeys(formats)))})"
    return f"CAST({parsed} AS {sql_type(spec)})"


def error_expr(spec: FieldSpec, v: str, t: str) -> str:
    """The first failed check of a value, as a French reason, else NULL."""
    c = spec.constraints
    whens: list[tuple[str, str]] = []
    if c.required:
        whens.append((f"{v} IS NULL", "valeur obligatoire manquante"))
    if spec.type != "string":
        whens.append((f"{v} IS NOT NULL AND {t} IS NULL", expected_label(spec)))
    if c.enum is not None:
        whens.append(
            (_not_in_enum(spec, v, t), f"valeur hors liste (attendu : {', '.join(c.enum)})")
        )
    if c.pattern is not None:
        whens.append(
            (
                f"{v} IS NOT NULL AND NOT regexp_full_match({v}, {quote_literal(c.pattern)})",
                f"ne respecte pas le format attendu ({c.pattern})",
            )
        )
    if c.minimum is not None:
        whens.append((f"{t} < {c.minimum!r}", f"inférieur au minimum ({_fmt(c.minimum)})"))
    if c.maximum is not None:
        whens.append((f"{t} > {c.maximum!r}", f"supérieur au maximum ({_fmt(c.maximum)})"))
    if c.min_length is not None:
        whens.append(
            (f"length({v}) < {c.min_length}", f"trop court (au moins {c.min_length} caractères)")
        )
    if c.max_length is not None:
        whens.append(
            (f"length({v}) > {c.max_length}", f"trop long (au plus {c.max_length} caractères)")
        )
    if not whens:
        return "CAST(NULL AS VARCHAR)"
    body = " ".join(f"WHEN {cond} THEN {quote_literal(reason)}" for cond, reason in whens)
    return f"CASE {body} END"


def _not_in_enum(spec: FieldSpec, v: str, t: str) -> str:
    """Text values compare as written; typed ones compare as values (``01`` equals ``1``)."""
    assert spec.constraints.enum is not None
    if spec.type == "string":
        return f"{v} IS NOT NULL AND {v} NOT IN ({', '.join(map(quote_literal, spec.constraints.enum))})"
    allowed = ", ".join(
        f"TRY_CAST({quote_literal(x)} AS {sql_type(spec)})" for x in spec.constraints.enum
    )
    return f"{t} IS NOT NULL AND {t} NOT IN ({allowed})"


def expected_label(spec: FieldSpec) -> str:
    """What a value of this field must look like, in French (used in quarantine reasons)."""
    if spec.type == "integer":
        return "nombre entier attendu"
    if spec.type == "number":
        return f"nombre attendu (séparateur décimal « {spec.decimal_char} »)"
    if spec.type == "boolean":
        trues = ", ".join(dict.fromkeys(x.lower() for x in spec.true_values))
        falses = ", ".join(dict.fromkeys(x.lower() for x in spec.false_values))
        return f"booléen attendu (vrai : {trues} ; faux : {falses})"
    if spec.type == "year":
        return "année attendue (AAAA)"
    readable = " ou ".join(_readable_format(f) for f in spec.formats)
    noun = "date attendue" if spec.type == "date" else "date et heure attendues"
    return f"{noun} au format {readable}"


def _readable_format(fmt: str) -> str:
    for code, label in (
        ("%d", "JJ"),
        ("%m", "MM"),
        ("%Y", "AAAA"),
        ("%y", "AA"),
        ("%H", "hh"),
        ("%M", "mm"),
        ("%S", "ss"),
    ):
        fmt = fmt.replace(code, label)
    return fmt


def _fmt(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)
