"""The engine's own in-memory connection (``backends.compute``), and its SQL scripts.

The engine computes in memory on the arrow tables it is given (by the governed read) and
never opens a store: its connection comes from ``territoria.backends.compute``.
"""

from __future__ import annotations

import re
from typing import Any

from territoria.backends.compute import ComputeConnection, compute_connection

Connection = ComputeConnection

_PARAM = re.compile(r"\$([a-z_]+)")

# French money in SQL: integer cents → « 1 234,56 € » (narrow no-break space between thousands).
MACROS = """
CREATE OR REPLACE TEMP MACRO eur(c) AS
    (CASE WHEN c < 0 THEN '-' ELSE '' END)
    || replace(format('{:,}', abs(c) // 100), ',', '\u202f')
    || ',' || lpad(CAST(abs(c) % 100 AS VARCHAR), 2, '0') || ' €';
CREATE OR REPLACE TEMP MACRO frdate(d) AS strftime(d, '%d/%m/%Y');
CREATE OR REPLACE TEMP MACRO clip_days(s, e, lo, hi) AS
    greatest(datediff('day', greatest(s, lo), least(coalesce(e, hi), hi)), 0);
CREATE OR REPLACE TEMP MACRO first_anchor(s) AS
    CASE WHEN day(s) = 1 THEN s ELSE CAST(date_trunc('month', s) + INTERVAL 1 MONTH AS DATE) END;
CREATE OR REPLACE TEMP MACRO clip_months(s, e, lo, hi) AS
    CASE WHEN least(coalesce(e, hi), hi) > first_anchor(greatest(s, lo))
         THEN datediff('month', first_anchor(greatest(s, lo)),
                       CAST(least(coalesce(e, hi), hi) - INTERVAL 1 DAY AS DATE)) + 1
         ELSE 0 END;
CREATE OR REPLACE TEMP MACRO units(d, m, policy, total_d, total_m) AS
    CASE policy WHEN 'day' THEN least(d, total_d)
                WHEN 'month' THEN least(m, total_m)
                ELSE CASE WHEN d > 0 THEN 1 ELSE 0 END END;
CREATE OR REPLACE TEMP MACRO dec_fr(x) AS replace(CAST(x AS VARCHAR), '.', ',');
CREATE OR REPLACE TEMP MACRO rdiv(n, d, mode) AS
    CASE WHEN mode = 'down' THEN n // d
         WHEN mode = 'up' THEN (n + d - 1) // d
         ELSE (2 * n + d) // (2 * d) END;
"""


def run_script(con: Connection, script: str, params: dict[str, Any]) -> None:
    """Run each statement of ``script`` with the named parameters it uses."""
    for statement in script.split(";\n"):
        if not statement.strip():
            continue
        used = {name: params[name] for name in _PARAM.findall(statement)}
        con.execute(statement, used or None)


def install_macros(con: Connection) -> None:
    run_script(con, MACROS, {})


def connect() -> Connection:
    """The engine's own in-memory DuckDB, with its macros.

    Its temporary tables are scratch space: no automatic checkpoint (it would compress every
    table after each statement) and no insertion order to keep (every read orders its rows).
    """
    con = compute_connection()
    install_macros(con)
    return con


def fetch_dicts(con: Connection, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    """Rows of a query as dicts (small results: one payer's lines or lifts)."""
    cursor = con.execute(sql, params)
    names = [d[0] for d in cursor.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def fetch_row(con: Connection, sql: str, params: list[Any] | None = None) -> tuple[Any, ...] | None:
    """The first row of a query (the whole result is fetched: the connection stays usable)."""
    rows = con.execute(sql, params).fetchall()
    return rows[0] if rows else None
