"""Small relational tables beside the raw data (the resident index, later the ledger).

``TableDB`` is one SQL session with ``?`` placeholders on either store: a SQLite file in WAL
mode in the embedded workspace, or the workspace's PostgreSQL schema. Types are limited to
``TEXT``, ``BIGINT`` and ``DOUBLE PRECISION``, which both engines read the same way.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from territoria.core.errors import StoreError

Row = tuple[Any, ...]


def marks(values: Iterable[Any]) -> str:
    """``?, ?, ?`` — one placeholder per value, for ``IN (…)`` in ``TableDB`` SQL."""
    return ", ".join("?" for _ in values)


class TableDB(ABC):
    """One SQL session on the workspace's tables (SQL written with ``?`` placeholders)."""

    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...

    @abstractmethod
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    @abstractmethod
    def insert(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        """Bulk insert; returns the number of rows."""

    @abstractmethod
    def transaction(self) -> contextlib.AbstractContextManager[None]: ...

    def script(self, sql: str) -> None:
        for statement in sql.split(";"):
            if statement.strip():
                self.execute(statement)

    def close(self) -> None:  # noqa: B027 - optional hook, most sessions have nothing to free
        """Release the session (the store owns shared connections)."""


class SQLiteTables(TableDB):
    def __init__(self, path: Path) -> None:
        try:
            # The web server calls in from its worker threads, one at a time (it holds a lock).
            self._db = sqlite3.connect(
                path, timeout=30, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            # Checkpoint every ~16 MB of WAL rather than 4 MB: the audit ledger appends one small
            # transaction per governed read and rewrites the same few pages (head, last index
            # pages), which a rarer checkpoint copies back once instead of many times.
            self._db.execute("PRAGMA wal_autocheckpoint=4000")
        except sqlite3.Error as exc:
            raise StoreError(
                f"base de l'index des résidents illisible : {exc}",
                code="tables_unreadable",
                file=path,
                hint="restaurez la sauvegarde de l'espace de travail",
            ) from None
        self._depth = 0

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._db.execute(sql, tuple(params))

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return [tuple(r) for r in self._db.execute(sql, tuple(params)).fetchall()]

    def insert(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        sql = (
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
        )
        cur = self._db.executemany(sql, (tuple(r) for r in rows))
        return max(cur.rowcount, 0)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        finally:
            self._depth = 0
        self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()


_PLACEHOLDER = re.compile(r"\?")


class PostgresTables(TableDB):
    """The same tables in the workspace's PostgreSQL schema (psycopg connection, autocommit)."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._conn.execute(_PLACEHOLDER.sub("%s", sql), tuple(params))

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return [tuple(r) for r in self._conn.execute(_PLACEHOLDER.sub("%s", sql), tuple(params))]

    def insert(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        count = 0
        with (
            self._conn.cursor() as cur,
            cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(tuple(row))
                count += 1
        return count

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        return self._conn.transaction()  # type: ignore[no-any-return]
