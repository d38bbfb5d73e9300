"""In-memory computation for the 4P apps: a DuckDB connection with no file and no store.

Apps compute on the Arrow tables the governed read gives them (a billing run over a year of
bin lifts); this is the one place they get an engine from, so that nothing outside
``backends`` imports one. The connection opens no database file, attaches nothing and
loads no extension.
"""

from __future__ import annotations

from typing import Any

import duckdb

__all__ = ["ComputeConnection", "compute_connection"]

ComputeConnection = duckdb.DuckDBPyConnection


def compute_connection(*, scratch: bool = True) -> ComputeConnection:
    """A fresh in-memory connection; ``scratch`` tables are never checkpointed or ordered
    (every read orders its own rows)."""
    con: Any = duckdb.connect()
    con.execute("SET enable_external_access = false")
    if scratch:
        con.execute("SET checkpoint_threshold = '1TB'")
        con.execute("SET preserve_insertion_order = false")
    con.execute("SET enable_progress_bar = false")
    return con  # type: ignore[no-any-return]
