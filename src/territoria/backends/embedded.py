"""The embedded default: a SQLite catalog (WAL mode) beside immutable Parquet files.

Layout of ``<workspace>/store``::

    catalog.sqlite                     load ledger (and, later, registry state)
    raw/<source>/<load_id>/*.parquet   the rows of each successful load, never rewritten
    quarantine/<source>/<load_id>.parquet
    staging/                           files of loads in progress (removed on recovery)

Why this shape: SQLite in WAL mode lets any number of processes read while one writes, so
the web server and batch commands share a workspace; Parquet files are written under a
temporary name and renamed, then the ledger row is committed: a reader sees a load only once
its ledger row exists, so an interrupted load is never partially visible.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from territoria.backends.base import (
    QUARANTINE_SCHEMA,
    Capabilities,
    LoadRecord,
    StagedLoad,
    Store,
    as_duplicate,
    staging_in_use,
)
from territoria.backends.tables import SQLiteTables, TableDB
from territoria.backends.validation_sql import quote_ident, quote_literal
from territoria.core.errors import StoreError
from territoria.core.faults import fault_point

_SCHEMA = """
CREATE TABLE IF NOT EXISTS loads (
    load_id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    file_name TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    status TEXT NOT NULL,
    rows_read INTEGER NOT NULL DEFAULT 0,
    rows_loaded INTEGER NOT NULL DEFAULT 0,
    rows_quarantined INTEGER NOT NULL DEFAULT 0,
    started_at TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    message TEXT NOT NULL DEFAULT '',
    contract_hash TEXT NOT NULL DEFAULT '',
    details TEXT NOT NULL DEFAULT '{}'
);
CREATE UNIQUE INDEX IF NOT EXISTS loads_one_per_content
    ON loads (source, content_hash) WHERE status = 'loaded';
CREATE INDEX IF NOT EXISTS loads_by_source ON loads (source, finished_at);
"""
_COLUMNS = (
    "load_id, source, file_name, content_hash, status, rows_read, rows_loaded, "
    "rows_quarantined, started_at, finished_at, message, contract_hash, details"
)


class EmbeddedStore(Store):
    capabilities = Capabilities(
        name="embedded",
        concurrent_readers=True,
        transactional_loads=True,
        description="SQLite (WAL) + Parquet dans le dossier de l'espace de travail",
    )

    def __init__(self, root: Path) -> None:
        self.root = root
        self._tables: SQLiteTables | None = None
        self._files_cache: dict[tuple[str, str, str | None], list[Path]] = {}
        self._files_version: tuple[int, int] = (-1, -1)
        self._lookup_cache: dict[
            tuple[str, str], tuple[tuple[Path, ...], pa.Table, dict[str, int]]
        ] = {}
        self._row_cache: dict[tuple[str, str], dict[int, dict[str, Any]]] = {}
        for sub in ("raw", "quarantine", "staging"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        catalog = root / "catalog.sqlite"
        try:
            self._db = sqlite3.connect(
                catalog, timeout=30, isolation_level=None, check_same_thread=False
            )
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError(
                f"catalogue du magasin illisible : {exc}",
                code="catalog_unreadable",
                file=catalog,
                hint="le fichier est abîmé ou verrouillé : restaurez la sauvegarde de l'espace "
                "de travail, ou vérifiez qu'aucun autre outil ne l'a ouvert en écriture",
            ) from None

    # -- writing -------------------------------------------------------------------------

    def staging_dir(self) -> Path:
        return self.root / "staging"

    def find_loaded(self, source: str, content_hash: str) -> LoadRecord | None:
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM loads WHERE source = ? AND content_hash = ? AND status = 'loaded'",
            (source, content_hash),
        ).fetchone()
        return None if row is None else LoadRecord.from_row(dict(row))

    def commit_load(self, staged: StagedLoad) -> LoadRecord:
        record = staged.record
        raw_target = self._folder("raw", record.source) / record.load_id
        q_target = self._folder("quarantine", record.source) / f"{record.load_id}.parquet"
        moved: list[Path] = []
        try:
            if staged.valid_dir is not None:
                moved.append(_publish_dir(staged.valid_dir, raw_target))
            if staged.quarantine.num_rows:
                tmp = q_target.with_name(q_target.name + ".tmp")
                pq.write_table(staged.quarantine, tmp, compression="zstd")
                moved.append(_publish(tmp, q_target))
            _fsync_dir(raw_target.parent)
            fault_point("embedded_before_ledger")
            self._insert(record, supersedes=staged.supersedes)
        except sqlite3.IntegrityError:
            _remove(moved)
            existing = self.find_loaded(record.source, record.content_hash)
            return as_duplicate(record, existing)
        except BaseException:
            _remove(moved)
            raise
        return record

    def record_failed_load(self, record: LoadRecord) -> None:
        self._insert(record)

    def _insert(self, record: LoadRecord, supersedes: str | None = None) -> None:
        values = record.as_dict()
        values["details"] = json.dumps(values["details"], ensure_ascii=False, sort_keys=True)
        placeholders = ", ".join("?" for _ in _COLUMNS.split(","))
        with self._transaction():
            if supersedes is not None:
                self._db.execute(
                    "UPDATE loads SET status = 'superseded' WHERE load_id = ? AND status = 'loaded'",
                    (supersedes,),
                )
            self._db.execute(
                f"INSERT INTO loads ({_COLUMNS}) VALUES ({placeholders})",
                [values[c.strip()] for c in _COLUMNS.split(",")],
            )

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _folder(self, kind: str, source: str) -> Path:
        folder = self.root / kind / source
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def recover(self) -> int:
        """Remove what interrupted loads left: dead staging folders and unreferenced files.

        A load still running in another process holds its staging folder locked: it is
        left alone, and so are the data files it may be about to register.
        """
        removed = 0
        for child in self.staging_dir().iterdir():
            if child.is_dir() and not staging_in_use(child):
                _remove([child])
                removed += 1
        known = {r[0] for r in self._db.execute("SELECT load_id FROM loads")}
        for kind in ("raw", "quarantine"):
            for path in (self.root / kind).glob("*/*"):
                load_id = path.name.split(".")[0]
                if load_id in known or (self.staging_dir() / load_id).exists():
                    continue
                if self._known(load_id):  # registered since the snapshot: a load just ended
                    continue
                _remove([path])
                removed += 1
        return removed

    def _known(self, load_id: str) -> bool:
        row = self._db.execute("SELECT 1 FROM loads WHERE load_id = ?", (load_id,)).fetchone()
        return row is not None

    # -- reading -------------------------------------------------------------------------

    def loads(self, source: str | None = None, limit: int = 1000) -> list[LoadRecord]:
        where, params = ("WHERE source = ?", [source]) if source else ("", [])
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM loads {where} ORDER BY finished_at DESC, rowid DESC LIMIT ?",
            [*params, limit],
        ).fetchall()
        return [LoadRecord.from_row(dict(r)) for r in rows]

    def _load_ids(self, source: str, load_id: str | None) -> list[str]:
        sql = "SELECT load_id FROM loads WHERE source = ? AND status = 'loaded'"
        params: list[Any] = [source]
        if load_id is not None:
            sql += " AND load_id = ?"
            params.append(load_id)
        return [r[0] for r in self._db.execute(sql + " ORDER BY finished_at, rowid", params)]

    def _files(self, kind: str, source: str, load_id: str | None) -> list[Path]:
        """Data files of committed loads only: a file no ledger row names is invisible.

        Remembered until the catalog changes (a commit by this or any other process)."""
        version = (self._db.execute("PRAGMA data_version").fetchone()[0], self._db.total_changes)
        if version != self._files_version:
            self._files_cache.clear()
            self._files_version = version
        key = (kind, source, load_id)
        if key not in self._files_cache:
            self._files_cache[key] = self._list_files(kind, source, load_id)
        return list(self._files_cache[key])

    def _list_files(self, kind: str, source: str, load_id: str | None) -> list[Path]:
        folder = self.root / kind / source
        if kind == "quarantine":
            paths = [folder / f"{i}.parquet" for i in self._load_ids(source, load_id)]
            return [p for p in paths if p.exists()]
        return [
            p
            for i in self._load_ids(source, load_id)
            for p in sorted((folder / i).glob("*.parquet"))
        ]

    def quarantine(
        self, source: str, load_id: str | None = None, limit: int = 100, offset: int = 0
    ) -> pa.Table:
        files = self._files("quarantine", source, load_id)
        if not files:
            return QUARANTINE_SCHEMA.empty_table()
        listing = ", ".join(quote_literal(str(p)) for p in files)
        with duckdb.connect() as con:
            table = con.sql(
                f"SELECT * FROM read_parquet([{listing}]) LIMIT {int(limit)} OFFSET {int(offset)}"
            ).to_arrow_table()
        return table.cast(QUARANTINE_SCHEMA)

    def quarantine_count(self, source: str, load_id: str | None = None) -> int:
        return sum(pq.read_metadata(p).num_rows for p in self._files("quarantine", source, load_id))

    def raw_batches(
        self, source: str, columns: list[str] | None = None, batch_size: int = 100_000
    ) -> Iterator[pa.RecordBatch]:
        for path in self._files("raw", source, None):
            load_id = path.parent.name
            with pq.ParquetFile(path) as parquet:
                names = [n for n in parquet.schema_arrow.names if not n.startswith("_")]
                wanted = names if columns is None else [c for c in columns if c in names]
                for batch in parquet.iter_batches(batch_size=batch_size, columns=wanted):
                    ids = pa.array([load_id] * batch.num_rows, pa.string())
                    yield pa.RecordBatch.from_arrays(
                        [ids, *batch.columns], names=["_load_id", *batch.schema.names]
                    )

    def raw_sql_source(self, source: str) -> str:
        """A DuckDB table expression over every loaded file of a source (for analytics)."""
        files = self._files("raw", source, None)
        if not files:
            return "(SELECT NULL AS _load_id WHERE FALSE)"
        listing = ", ".join(quote_literal(str(p)) for p in files)
        return f"read_parquet([{listing}], union_by_name=true, filename={quote_ident('_file')})"

    def raw_records(
        self, source: str, key_field: str, keys: list[str], columns: list[str] | None = None
    ) -> pa.Table:
        """Lookup by key (the latest load wins) in an in-memory index of the source's files
        (dates and times come back as ISO text).

        The index (an Arrow table and key → row) is built once per set of committed loads
        and rebuilt when a load is committed or superseded, so a 360° view costs a few
        dictionary lookups instead of a scan of every Parquet file.
        """
        found = self._index(source, key_field) if keys else None
        if found is None:
            return pa.table({})
        table, index = found
        rows = sorted({index[k] for k in keys if k in index})
        if not rows:
            return table.schema.empty_table() if table.num_columns else pa.table({})
        names = set(table.column_names)
        wanted = (
            table.column_names
            if columns is None
            else [c for c in dict.fromkeys(columns) if c in names]
        )
        return table.select(wanted).take(pa.array(rows, pa.int64()))

    def _index(self, source: str, key_field: str) -> tuple[pa.Table, dict[str, int]] | None:
        """The source's in-memory index (Arrow table, key → row), rebuilt after a commit."""
        files = tuple(self._files("raw", source, None))
        if not files:
            return None
        cached = self._lookup_cache.get((source, key_field))
        if cached is None or cached[0] != files:
            cached = (files, *_record_index(files, key_field))
            self._lookup_cache[(source, key_field)] = cached
            self._row_cache.pop((source, key_field), None)
        return cached[1], cached[2]

    def raw_rows(
        self, source: str, key_field: str, keys: list[str], columns: list[str]
    ) -> dict[str, dict[str, Any]]:
        """As ``Store.raw_rows``, from the in-memory index, each record converted to a row
        dict once and kept (a 360° view then costs dictionary lookups, no Arrow call)."""
        found = self._index(source, key_field) if keys else None
        if found is None:
            return {}
        table, index = found
        rows = self._row_cache.setdefault((source, key_field), {})
        if len(rows) > _ROW_CACHE_LIMIT:
            rows.clear()
        present = set(table.column_names)
        wanted = [c for c in columns if c in present]
        out: dict[str, dict[str, Any]] = {}
        for key in keys:
            position = index.get(key)
            if position is None:
                continue
            row = rows.get(position)
            if row is None:
                row = rows[position] = table.slice(position, 1).to_pylist()[0]
            out[key] = {c: row[c] for c in wanted}
        return out

    def tables(self) -> TableDB:
        if self._tables is None:
            self._tables = SQLiteTables(self.root / "tables.sqlite")
        return self._tables

    def close(self) -> None:
        if self._tables is not None:
            self._tables.close()
            self._tables = None
        self._db.close()


_ROW_CACHE_LIMIT = 200_000  # rows kept as dicts per source before the cache starts over


def _record_index(files: tuple[Path, ...], key_field: str) -> tuple[pa.Table, dict[str, int]]:
    """All rows of a source's files (in load order) and, per key, its latest row."""
    tables = [pq.read_table(p) for p in files]
    table = pa.concat_tables(tables, promote_options="permissive") if tables else pa.table({})
    for position, column in enumerate(table.schema):  # dates as ISO text, once
        if pa.types.is_temporal(column.type):
            table = table.set_column(
                position, column.name, table.column(position).cast(pa.string())
            )
    if key_field not in table.column_names:
        return table, {}
    index: dict[str, int] = {}
    for position, key in enumerate(table.column(key_field).cast(pa.string()).to_pylist()):
        if key is not None:
            index[key] = position  # later loads come later: the latest row wins
    return table, index


def _publish_dir(tmp: Path, target: Path) -> Path:
    """Flush a finished folder of files and give it its final name (atomic rename)."""
    for path in tmp.iterdir():
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())
    _fsync_dir(tmp)
    os.replace(tmp, target)
    return target


def _remove(paths: list[Path]) -> None:
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _publish(tmp: Path, target: Path) -> Path:
    """Flush a finished file to disk and give it its final name (atomic on one file system)."""
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, target)
    return target


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
