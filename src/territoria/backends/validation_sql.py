"""Compile a source contract's checks into one vectorised DuckDB query.

Each field yields three expressions: its cleaned text (missing values become NULL), its typed
value, and its error (NULL when the value is fine, else a French reason). No Python runs per
row: the whole file is checked in one scan.
"""

from __future__ import annotations

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


def clean_expr(plan: FieldPlan, missing_values: Sequence[str]) -> str:
    if plan.column is None:
        return "CAST(NULL AS VARCHAR)"
    col = f"trim({quote_ident(plan.column)})"
    missing = sorted({v.strip() for v in missing_values} | {""})
    return f"CASE WHEN {col} IN ({', '.join(quote_literal(m) for m in missing)}) THEN NULL ELSE {col} END"


def typed_expr(spec: FieldSpec, v: str, iso_fallback: bool) -> str:
    """``v`` is the cleaned-text column; returns the typed value (NULL if it does not parse)."""
    if spec.type == "string":
        return v
    if spec.type in ("integer", "number"):
        text = v
        if spec.group_char:
            text = f"replace({text}, {quote_literal(spec.group_char)}, '')"
        if spec.type == "number" and spec.decimal_char != ".":
            text = f"replace({text}, {quote_literal(spec.decimal_char)}, '.')"
        return f"TRY_CAST({text} AS {sql_type(spec)})"
    if spec.type == "boolean":
        return (
            f"CASE WHEN {v} IN ({', '.join(quote_literal(x) for x in spec.true_values)}) THEN TRUE "
            f"WHEN {v} IN ({', '.join(quote_literal(x) for x in spec.false_values)}) THEN FALSE END"
        )
    if spec.type == "year":
        return f"CASE WHEN regexp_full_match({v}, '\\d{{4}}') THEN CAST({v} AS INTEGER) END"
    formats = list(spec.formats)
    if iso_fallback:
        formats += (
            ["%Y-%m-%d"] if spec.type == "date" else ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]
        )
    parsed = f"try_strptime({v}, {_list_literal(formats)})"
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
        allowed = ", ".join(c.enum)
        whens.append(
            (
                f"{t} IS NOT NULL AND CAST({t} AS VARCHAR) NOT IN ({', '.join(quote_literal(x) for x in c.enum)})",
                f"valeur hors liste (attendu : {allowed})",
            )
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


def expected_label(spec: FieldSpec) -> str:
    """What a value of this field must look like, in French (used in quarantine reasons)."""
    if spec.type == "integer":
        return "nombre entier attendu"
    if spec.type == "number":
        return f"nombre attendu (séparateur décimal « {spec.decimal_char} »)"
    if spec.type == "boolean":
        values = "/".join(spec.true_values[:2] + spec.false_values[:2])
        return f"booléen attendu ({values})"
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
