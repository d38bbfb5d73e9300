"""What every store offers: the load ledger, quarantine, and the raw records of each load.

A store is the only code that talks to a database engine. The embedded default keeps a
SQLite catalog (WAL, so the web server and batch commands run at the same time) beside
immutable Parquet files; PostgreSQL keeps everything in tables of one schema.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import pyarrow as pa

from territoria.backends.tables import TableDB
from territoria.core.types import LoadStatus


@dataclass(frozen=True)
class Capabilities:
    """What a store can do, declared as data (read by generic code, never by branching)."""

    name: str
    concurrent_readers: bool
    transactional_loads: bool
    description: str


@dataclass(frozen=True)
class LoadRecord:
    """One entry of the load ledger: a file delivered for a source, and what became of it."""

    load_id: str
    source: str
    file_name: str
    content_hash: str
    status: LoadStatus
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    started_at: str = ""
    finished_at: str = ""
    message: str = ""
    contract_hash: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> LoadRecord:
        data = dict(row)
        details = data.get("details") or {}
        data["details"] = json.loads(details) if isinstance(details, str) else details
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def as_duplicate(record: LoadRecord, existing: LoadRecord | None) -> LoadRecord:
    """The outcome of delivering content already loaded for the same source: nothing changes."""
    when = f" du {existing.finished_at[:10]}" if existing else ""
    return replace(
        record,
        status="skipped_duplicate",
        rows_read=0,
        rows_loaded=0,
        rows_quarantined=0,
        message="fichier déjà chargé"
        + (f" (chargement {existing.load_id}{when})" if existing else ""),
        details={"existing_load_id": existing.load_id} if existing else {},
    )


QUARANTINE_SCHEMA = pa.schema(
    [
        ("load_id", pa.string()),
        ("source", pa.string()),
        ("record", pa.int64()),
        ("line", pa.int64()),
        ("field", pa.string()),
        ("reason", pa.string()),
        ("errors", pa.string()),
        ("raw", pa.string()),
    ]
)


@dataclass(frozen=True)
class StagedLoad:
    """A load validated and written to staging files, ready to be committed atomically."""

    record: LoadRecord
    valid_dir: Path | None
    quarantine: pa.Table
    columns: list[tuple[str, str]]
    supersedes: str | None = None  # a load of the same content this one replaces


# A staging folder younger than this is never cleaned up: its owner may not have locked it yet.
_STAGING_GRACE_SECONDS = 120


@contextmanager
def claim_staging(folder: Path) -> Iterator[Path]:
    """Hold a load's staging folder for the whole load (an exclusive lock), then remove it."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / ".lock", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        os.close(fd)


def staging_in_use(folder: Path) -> bool:
    """Whether a load still holds this staging folder (or may be about to)."""
    try:
        if time.time() - folder.stat().st_mtime < _STAGING_GRACE_SECONDS:
            return True
        fd = os.open(folder / ".lock", os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


class Store(ABC):
    """The interface every backend implements; see the module docstring."""

    capabilities: Capabilities

    @abstractmethod
    def staging_dir(self) -> Path:
        """A private folder on the same file system as the store, for files being loaded."""

    @abstractmethod
    def find_loaded(self, source: str, content_hash: str) -> LoadRecord | None:
        """The successful load of this exact file content for this source, if any."""

    @abstractmethod
    def commit_load(self, staged: StagedLoad) -> LoadRecord:
        """Make a staged load visible, all or nothing; a duplicate becomes ``skipped_duplicate``.

        With ``staged.supersedes``, the earlier load of the same content becomes
        ``superseded`` (invisible to readers) in the same transaction.
        """

    @abstractmethod
    def record_failed_load(self, record: LoadRecord) -> None:
        """Write a failed load in the ledger (nothing of its rows is kept)."""

    @abstractmethod
    def loads(self, source: str | None = None, limit: int = 1000) -> list[LoadRecord]:
        """The load ledger, newest first."""

    @abstractmethod
    def quarantine(
        self, source: str, load_id: str | None = None, limit: int = 100, offset: int = 0
    ) -> pa.Table:
        """Quarantined rows of a source (schema ``QUARANTINE_SCHEMA``), oldest load first."""

    @abstractmethod
    def quarantine_count(self, source: str, load_id: str | None = None) -> int:
        """How many rows of a source are in quarantine."""

    @abstractmethod
    def raw_batches(
        self, source: str, columns: list[str] | None = None, batch_size: int = 100_000
    ) -> Iterator[pa.RecordBatch]:
        """The raw records of every successful load of a source, each with its ``_load_id``."""

    def raw_table(self, source: str, columns: list[str] | None = None) -> pa.Table:
        """All raw records of a source as one Arrow table (small sources only)."""
        tables = [pa.Table.from_batches([b]) for b in self.raw_batches(source, columns)]
        if not tables:
            return pa.table({})
        # Loads may differ in columns (kept extras, a contract that evolved): union them.
        return pa.concat_tables(tables, promote_options="permissive")

    @abstractmethod
    def raw_records(
        self, source: str, key_field: str, keys: list[str], columns: list[str] | None = None
    ) -> pa.Table:
        """The raw records of a source whose ``key_field`` is one of ``keys`` (latest load wins)."""

    def raw_rows(
        self, source: str, key_field: str, keys: list[str], columns: list[str]
    ) -> dict[str, dict[str, Any]]:
        """The records of ``keys`` as row dicts of ``columns`` (those the source has), by
        record id, dates as ISO text: what a governed read shows. Stores may serve it from
        a cache; the default goes through ``raw_records``."""
        wanted = list(dict.fromkeys([key_field, *columns]))
        return rows_by_key(self.raw_records(source, key_field, keys, wanted), key_field, columns)

    @abstractmethod
    def tables(self) -> TableDB:
        """The SQL session on the workspace's own tables (resident index, …)."""

    @abstractmethod
    def recover(self) -> int:
        """Remove what an interrupted load left behind; returns how many leftovers went."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def rows_by_key(table: pa.Table, key_field: str, columns: list[str]) -> dict[str, dict[str, Any]]:
    """Rows of ``table`` by their ``key_field`` value, ``columns`` only, dates as ISO text."""
    if key_field not in table.column_names:
        return {}
    present = set(table.column_names)
    shown = table.select([c for c in columns if c in present])
    for position, column in enumerate(shown.schema):
        if pa.types.is_temporal(column.type):
            shown = shown.set_column(
                position, column.name, shown.column(position).cast(pa.string())
            )
    keys = table.column(key_field).cast(pa.string()).to_pylist()
    return dict(zip(keys, shown.to_pylist(), strict=True))
