"""The only code that talks to a database engine.

``open_store(config)`` gives the workspace's store: the embedded default (SQLite + Parquet in
the workspace folder) or PostgreSQL (``psycopg``, installed by ``pip install
'territoria[postgresql]'``). ``stage_file`` validates a delivered file in DuckDB.
"""

from __future__ import annotations

from territoria.backends.base import (
    QUARANTINE_SCHEMA,
    Capabilities,
    LoadRecord,
    StagedLoad,
    Store,
    as_duplicate,
    claim_staging,
)
from territoria.backends.stage_query import ReaderSpec, StagePlan
from territoria.backends.staging import StageResult, stage_file
from territoria.backends.tables import TableDB, marks
from territoria.backends.validation_sql import FieldPlan
from territoria.core.config import WorkspaceConfig

__all__ = [
    "QUARANTINE_SCHEMA",
    "Capabilities",
    "FieldPlan",
    "LoadRecord",
    "ReaderSpec",
    "StagePlan",
    "StageResult",
    "StagedLoad",
    "Store",
    "TableDB",
    "as_duplicate",
    "claim_staging",
    "marks",
    "open_store",
    "stage_file",
]


def open_store(config: WorkspaceConfig) -> Store:
    """The store a workspace's ``territoria.toml`` names."""
    if config.store.kind == "postgresql":
        from territoria.backends.postgres import PostgresStore

        return PostgresStore(config.store.url, config.store.schema, config.root / ".staging")
    from territoria.backends.embedded import EmbeddedStore

    return EmbeddedStore(config.store_dir)
