"""The engine's inputs: pyarrow tables with the source contracts' field names.

``allocations`` are the rows of the ``waste_bins`` contract (one per bin allocation) plus a
``payer`` column: an opaque payer key (the lead passes the governed pseudonym), never a name.
``lifts`` are the rows of ``waste_lifts``. Optional columns: ``service`` on allocations
(``bac``, the default, or ``badge`` for a drop-off column access card, whose events are
openings), ``place``/``latitude``/``longitude`` on lifts (shown in a dispute's evidence).
``payers`` (optional) gives, per payer, ``category`` (the grid's category, default the grid's),
``household_size``, ``income_decile`` (1–10, for the simulator), ``exemption`` (a grid's
exemption code) and ``tax_base`` (TEOMi: the property's tax base in euros). ``suspensions``
(optional) lists temporary suspensions of an allocation (start included, end excluded).

The engine never opens a store: it registers these tables in its own in-memory DuckDB.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from territoria.apps.waste.sql import Connection
from territoria.core.errors import TerritoriaError


@dataclass(frozen=True)
class Columns:
    """Required and optional columns of one input table, with the SQL type of each."""

    name: str
    required: tuple[tuple[str, str], ...]
    optional: tuple[tuple[str, str], ...] = ()


ALLOCATIONS = Columns(
    "allocations",
    required=(
        ("allocation_id", "VARCHAR"),
        ("bin_id", "VARCHAR"),
        ("rfid_tag", "VARCHAR"),
        ("volume_l", "INTEGER"),
        ("payer", "VARCHAR"),
        ("start_date", "DATE"),
    ),
    optional=(
        ("end_date", "DATE"),
        ("end_reason", "VARCHAR"),
        ("housing_type", "VARCHAR"),
        ("service", "VARCHAR"),
    ),
)
LIFTS = Columns(
    "lifts",
    required=(
        ("lift_id", "VARCHAR"),
        ("truck_id", "VARCHAR"),
        ("lifted_at", "TIMESTAMP"),
        ("rfid_tag", "VARCHAR"),
        ("read_status", "VARCHAR"),
    ),
    optional=(
        ("weight_kg", "DECIMAL(9,3)"),
        ("place", "VARCHAR"),
        ("latitude", "DOUBLE"),
        ("longitude", "DOUBLE"),
    ),
)
PAYERS = Columns(
    "payers",
    required=(("payer", "VARCHAR"),),
    optional=(
        ("category", "VARCHAR"),
        ("household_size", "INTEGER"),
        ("income_decile", "INTEGER"),
        ("exemption", "VARCHAR"),
        ("tax_base", "DECIMAL(14,2)"),
    ),
)
SUSPENSIONS = Columns(
    "suspensions",
    required=(("allocation_id", "VARCHAR"), ("start_date", "DATE"), ("end_date", "DATE")),
    optional=(("reason", "VARCHAR"),),
)
EMPTY_PAYERS = pa.table({"payer": pa.array([], pa.string())})


def select_list(table: pa.Table, columns: Columns) -> str:
    """The typed SELECT list of an input table; absent optional columns are NULL.

    Raises a ``waste_input_missing_column`` error naming the first missing required column.
    """
    present = set(table.column_names)
    for name, _ in columns.required:
        if name not in present:
            raise TerritoriaError(
                f"colonne « {name} » absente de la table {columns.name}",
                code="waste_input_missing_column",
                field_name=name,
                expected=", ".join(n for n, _ in columns.required),
            )
    items = []
    for name, sql_type in (*columns.required, *columns.optional):
        source = f'"{name}"' if name in present else "NULL"
        cast = "TRY_CAST" if name == "lifted_at" else "CAST"
        items.append(f"{cast}({source} AS {sql_type}) AS {name}")
    return ", ".join(items)


def register(con: Connection, name: str, table: pa.Table, columns: Columns) -> None:
    """Register an arrow table and a typed view ``name`` over it (zero copy)."""
    select = select_list(table, columns)
    con.register(f"{name}_arrow", table)
    con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT {select} FROM {name}_arrow")


def as_table(rows: list[dict[str, object]] | pa.Table | None) -> pa.Table | None:
    """Rows (a list of dicts) or a table, as a table."""
    if rows is None or isinstance(rows, pa.Table):
        return rows
    return pa.Table.from_pylist(rows)
