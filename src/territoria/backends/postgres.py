"""PostgreSQL store: the production store for multi-user deployments.

All tables live in one schema (``[store] schema`` in ``territoria.toml``): ``loads`` (the
ledger), ``quarantine``, and one ``raw_<source>`` table per source. A load is one
transaction (ledger row, rows and quarantine together), so an interrupted load leaves nothing.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from territoria.backends.base import (
    QUARANTINE_SCHEMA,
    Capabilities,
    LoadRecord,
    StagedLoad,
    Store,
    as_duplicate,
    staging_in_use,
)
from territoria.backends.tables import PostgresTables, TableDB
from territoria.backends.validation_sql import quote_literal
from territoria.core.errors import StoreError
from territoria.core.faults import fault_point

_PG_TYPES = {
    "VARCHAR": "text",
    "BIGINT": "bigint",
    "INTEGER": "integer",
    "DOUBLE": "double precision",
    "BOOLEAN": "boolean",
    "DATE": "date",
    "TIMESTAMP": "timestamp",
}
_ARROW_TYPES = {
    "text": pa.string(),
    "bigint": pa.int64(),
    "integer": pa.int32(),
    "double precision": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "timestamp without time zone": pa.timestamp("us"),
}
_LOAD_COLUMNS = [
    "load_id",
    "source",
    "file_name",
    "content_hash",
    "status",
    "rows_read",
    "rows_loaded",
    "rows_quarantined",
    "started_at",
    "finished_at",
    "message",
    "contract_hash",
    "details",
]
_SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS loads (
    load_id text PRIMARY KEY, source text NOT NULL, file_name text NOT NULL,
    content_hash text NOT NULL, status text NOT NULL,
    rows_read bigint NOT NULL DEFAULT 0, rows_loaded bigint NOT NULL DEFAULT 0,
    rows_quarantined bigint NOT NULL DEFAULT 0, started_at text NOT NULL,
    finished_at text NOT NULL, message text NOT NULL DEFAULT '',
    contract_hash text NOT NULL DEFAULT '', details jsonb NOT NULL DEFAULT '{}'
);
CREATE UNIQUE INDEX IF NOT EXISTS loads_one_per_content
    ON loads (source, content_hash) WHERE status = 'loaded';
CREATE TABLE IF NOT EXISTS quarantine (
    load_id text NOT NULL, source text NOT NULL, record bigint, line bigint, field text,
    reason text, errors text, raw text
);
CREATE INDEX IF NOT EXISTS quarantine_by_source ON quarantine (source, load_id);
"""


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise StoreError(
            "le pilote PostgreSQL n'est pas installé",
            code="extra_missing",
            hint="pip install 'territoria[postgresql]'",
        ) from None
    return psycopg


def _ident(name: str) -> str:
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        raise StoreError(f"identifiant SQL refusé : {name!r}", code="identifier_invalid")
    return f'"{name}"'


class PostgresStore(Store):
    capabilities = Capabilities(
        name="postgresql",
        concurrent_readers=True,
        transactional_loads=True,
        description="PostgreSQL (un schéma par espace de travail)",
    )

    def __init__(self, url: str, schema: str, staging: Path) -> None:
        psycopg = _psycopg()
        self.schema = schema
        self._staging = staging
        staging.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
        except psycopg.OperationalError as exc:
            raise StoreError(
                f"connexion à PostgreSQL impossible : {str(exc).strip().splitlines()[0]}",
                code="store_unreachable",
                hint="vérifiez [store] url dans territoria.toml et que le serveur est démarré",
            ) from None
        with self._conn.transaction():
            self._conn.execute(f"SELECT pg_advisory_xact_lock(hashtext({quote_literal(schema)}))")
            self._conn.execute(f"CREATE SCHEMA IF NOT EXISTS {_ident(schema)}")
            self._conn.execute(f"SET search_path TO {_ident(schema)}")
            self._conn.execute(_SCHEMA_SQL)

    def staging_dir(self) -> Path:
        return self._staging

    def find_loaded(self, source: str, content_hash: str) -> LoadRecord | None:
        rows = self._select_loads(
            "WHERE source = %s AND content_hash = %s AND status = 'loaded'", [source, content_hash]
        )
        return rows[0] if rows else None

    def _select_loads(self, where: str, params: list[Any]) -> list[LoadRecord]:
        cur = self._conn.execute(f"SELECT {', '.join(_LOAD_COLUMNS)} FROM loads {where}", params)
        return [LoadRecord.from_row(dict(zip(_LOAD_COLUMNS, r, strict=True))) for r in cur]

    def _insert_load(self, record: LoadRecord) -> bool:
        values = record.as_dict()
        values["details"] = json.dumps(values["details"], ensure_ascii=False)
        cur = self._conn.execute(
            f"INSERT INTO loads ({', '.join(_LOAD_COLUMNS)}) VALUES "
            f"({', '.join('%s' for _ in _LOAD_COLUMNS)}) ON CONFLICT DO NOTHING",
            [values[c] for c in _LOAD_COLUMNS],
        )
        return bool(cur.rowcount)

    def commit_load(self, staged: StagedLoad) -> LoadRecord:
        record = staged.record
        psycopg = _psycopg()
        try:
            with self._conn.transaction():
                if staged.supersedes is not None:
                    self._supersede(record.source, staged.supersedes)
                if not self._insert_load(record):
                    raise _DuplicateLoadError
                table = self._ensure_raw_table(record.source, staged.columns)
                if staged.valid_dir is not None:
                    self._copy_rows(table, record.load_id, staged)
                self._copy_quarantine(staged.quarantine)
                fault_point("postgres_before_commit")
        except _DuplicateLoadError:
            return as_duplicate(record, self.find_loaded(record.source, record.content_hash))
        except psycopg.Error as exc:
            raise StoreError(
                f"PostgreSQL a refusé le chargement : {exc}", code="store_failed"
            ) from None
        except duckdb.Error as exc:
            raise StoreError(
                f"préparation de l'envoi vers PostgreSQL impossible : {exc}", code="store_failed"
            ) from None
        return record

    def _supersede(self, source: str, load_id: str) -> None:
        """Retire an earlier load: its ledger row stays (history), its rows go."""
        self._conn.execute(
            "UPDATE loads SET status = 'superseded' WHERE load_id = %s AND status = 'loaded'",
            [load_id],
        )
        if self._column_types(f"raw_{source}"):
            self._conn.execute(
                f"DELETE FROM {_ident(f'raw_{source}')} WHERE _load_id = %s", [load_id]
            )
        self._conn.execute("DELETE FROM quarantine WHERE load_id = %s", [load_id])

    def _ensure_raw_table(self, source: str, columns: list[tuple[str, str]]) -> str:
        """Create the source's table, or add only the columns it lacks (an ALTER TABLE, even a
        no-op one, locks out every reader until the load commits)."""
        table = _ident(f"raw_{source}")
        self._conn.execute(
            f"CREATE TABLE IF NOT EXISTS {table} (_load_id text NOT NULL, _row bigserial)"
        )
        existing = dict(self._column_types(f"raw_{source}"))
        for name, kind in columns:
            if name not in existing:
                self._conn.execute(
                    f"ALTER TABLE {table} ADD COLUMN {_ident(name)} {_PG_TYPES[kind]}"
                )
        return table

    def _column_types(self, table: str) -> list[tuple[str, str]]:
        cur = self._conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
            [self.schema, table],
        )
        return [(str(name), str(kind)) for name, kind in cur]

    def _copy_rows(self, table: str, load_id: str, staged: StagedLoad) -> None:
        assert staged.valid_dir is not None
        csv_path = staged.valid_dir.parent / "rows.csv"
        names = [n for n, _ in staged.columns]
        select = ", ".join(f'"{n}"' for n in names)
        with duckdb.connect() as con:
            con.execute(
                f"COPY (SELECT {quote_literal(load_id)} AS _load_id, {select} FROM "
                f"read_parquet({quote_literal(str(staged.valid_dir / '*.parquet'))})) "
                f"TO {quote_literal(str(csv_path))} (FORMAT csv, HEADER false, "
                "TIMESTAMPFORMAT '%Y-%m-%d %H:%M:%S.%f')"
            )
        cols = ", ".join(["_load_id", *(_ident(n) for n in names)])
        with (
            self._conn.cursor().copy(f"COPY {table} ({cols}) FROM STDIN (FORMAT csv)") as copy,
            open(csv_path, "rb") as handle,
        ):
            while chunk := handle.read(1 << 20):
                copy.write(chunk)

    def _copy_quarantine(self, table: pa.Table) -> None:
        if not table.num_rows:
            return
        cols = ", ".join(QUARANTINE_SCHEMA.names)
        with self._conn.cursor().copy(f"COPY quarantine ({cols}) FROM STDIN") as copy:
            for row in table.to_pylist():
                copy.write_row([row[c] for c in QUARANTINE_SCHEMA.names])

    def record_failed_load(self, record: LoadRecord) -> None:
        with self._conn.transaction():
            self._insert_load(record)

    def loads(self, source: str | None = None, limit: int = 1000) -> list[LoadRecord]:
        where = "WHERE source = %s" if source else "WHERE TRUE"
        params: list[Any] = [source] if source else []
        return self._select_loads(
            f"{where} ORDER BY finished_at DESC, load_id DESC LIMIT %s", [*params, limit]
        )

    def quarantine(
        self, source: str, load_id: str | None = None, limit: int = 100, offset: int = 0
    ) -> pa.Table:
        where, params = self._quarantine_where(source, load_id)
        cur = self._conn.execute(
            f"SELECT load_id, source, record, line, field, reason, errors, raw "
            f"FROM quarantine {where} ORDER BY load_id, line NULLS LAST, record "
            "LIMIT %s OFFSET %s",
            [*params, limit, offset],
        )
        rows = [dict(zip(QUARANTINE_SCHEMA.names, r, strict=True)) for r in cur]
        return pa.Table.from_pylist(rows, schema=QUARANTINE_SCHEMA)

    def quarantine_count(self, source: str, load_id: str | None = None) -> int:
        where, params = self._quarantine_where(source, load_id)
        row = self._conn.execute(f"SELECT count(*) FROM quarantine {where}", params).fetchone()
        return int(row[0]) if row else 0

    @staticmethod
    def _quarantine_where(source: str, load_id: str | None) -> tuple[str, list[Any]]:
        if load_id is None:
            return "WHERE source = %s", [source]
        return "WHERE source = %s AND load_id = %s", [source, load_id]

    def raw_batches(
        self, source: str, columns: list[str] | None = None, batch_size: int = 100_000
    ) -> Iterator[pa.RecordBatch]:
        types = dict(self._column_types(f"raw_{source}"))
        if not types:
            return
        wanted = ["_load_id"] + [
            c
            for c in (types if columns is None else columns)
            if c in types and not c.startswith("_")
        ]
        schema = pa.schema([(c, _ARROW_TYPES.get(types[c], pa.string())) for c in wanted])
        select = ", ".join(_ident(c) for c in wanted)
        cursor = f"raw_scan_{secrets.token_hex(4)}"
        with self._conn.transaction(), self._conn.cursor(name=cursor) as scan:
            scan.execute(f"SELECT {select} FROM {_ident(f'raw_{source}')} ORDER BY _row")
            while rows := scan.fetchmany(batch_size):
                yield pa.RecordBatch.from_pylist(
                    [dict(zip(wanted, r, strict=True)) for r in rows], schema=schema
                )

    def raw_records(
        self, source: str, key_field: str, keys: list[str], columns: list[str] | None = None
    ) -> pa.Table:
        """Lookup by key in the source's table (the latest row of a key wins)."""
        types = dict(self._column_types(f"raw_{source}"))
        if key_field not in types or not keys:
            return pa.table({})
        wanted = [c for c in (types if columns is None else columns) if c in types]
        wanted = [c for c in wanted if not c.startswith("_")] or [key_field]
        schema = pa.schema([(c, _ARROW_TYPES.get(types[c], pa.string())) for c in wanted])
        key = _ident(key_field)
        rows = self._conn.execute(
            f"SELECT DISTINCT ON ({key}::text) {', '.join(_ident(c) for c in wanted)} "
            f"FROM {_ident(f'raw_{source}')} WHERE {key}::text = ANY(%s) "
            f"ORDER BY {key}::text, _row DESC",
            [list(keys)],
        ).fetchall()
        return pa.Table.from_pylist(
            [dict(zip(wanted, r, strict=True)) for r in rows], schema=schema
        )

    def recover(self) -> int:
        """Remove staging folders of interrupted loads (the database itself rolled them back)."""
        removed = 0
        for child in self._staging.iterdir():
            if child.is_dir() and not staging_in_use(child):
                shutil.rmtree(child, ignore_errors=True)
                removed += 1
        return removed

    def tables(self) -> TableDB:
        return PostgresTables(self._conn)

    def drop_schema(self) -> None:
        """Remove the whole schema (tests and ``territoria`` reset only)."""
        self._conn.execute(f"DROP SCHEMA IF EXISTS {_ident(self.schema)} CASCADE")

    def close(self) -> None:
        self._conn.close()


class _DuplicateLoadError(Exception):
    pass
