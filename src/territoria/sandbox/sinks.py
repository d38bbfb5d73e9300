"""Row sinks for every file format the services use, streaming and byte-deterministic."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

Row = Sequence[object]


class Sink:
    """Writes rows given as values in header order; counts them."""

    def __init__(self, path: Path, header: Sequence[str]) -> None:
        self.path, self.header, self.rows = path, list(header), 0

    def write(self, row: Row) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class CsvSink(Sink):
    def __init__(
        self, path: Path, header: Sequence[str], *, delimiter: str = ",", encoding: str = "utf-8"
    ) -> None:
        super().__init__(path, header)
        self.handle: IO[str] = path.open("w", encoding=encoding, errors="replace", newline="")
        self.writer = csv.writer(self.handle, delimiter=delimiter, lineterminator="\r\n")
        self.writer.writerow(self.header)

    def write(self, row: Row) -> None:
        self.writer.writerow(row)
        self.rows += 1

    def write_lines(self, lines: list[str]) -> None:
        """Rows already formatted as CSV lines (fast path for large numeric files)."""
        self.handle.write("".join(lines))
        self.rows += len(lines)

    def write_many(self, rows: Sequence[Row]) -> None:
        self.writer.writerows(rows)
        self.rows += len(rows)

    def close(self) -> None:
        self.handle.close()


def _object(header: list[str], row: Row) -> dict[str, Any]:
    return dict(zip(header, row, strict=True))


class NdjsonSink(Sink):
    def __init__(self, path: Path, header: Sequence[str]) -> None:
        super().__init__(path, header)
        self.handle: IO[str] = path.open("w", encoding="utf-8", newline="\n")

    def write(self, row: Row) -> None:
        self.handle.write(json.dumps(_object(self.header, row), ensure_ascii=False) + "\n")
        self.rows += 1

    def close(self) -> None:
        self.handle.close()


class JsonArraySink(Sink):
    def __init__(self, path: Path, header: Sequence[str]) -> None:
        super().__init__(path, header)
        self.handle: IO[str] = path.open("w", encoding="utf-8", newline="\n")
        self.handle.write("[")

    def write(self, row: Row) -> None:
        prefix = "\n  " if self.rows == 0 else ",\n  "
        self.handle.write(prefix + json.dumps(_object(self.header, row), ensure_ascii=False))
        self.rows += 1

    def close(self) -> None:
        self.handle.write("\n]\n")
        self.handle.close()


class XlsxSink(Sink):
    """One sheet, written in constant-memory mode with fixed document properties."""

    def __init__(self, path: Path, header: Sequence[str], *, sheet: str, created: datetime) -> None:
        super().__init__(path, header)
        try:
            import xlsxwriter
        except ImportError as exc:  # pragma: no cover - depends on the installed extras
            raise RuntimeError(
                "l'écriture Excel demande xlsxwriter : pip install xlsxwriter"
            ) from exc
        self.book = xlsxwriter.Workbook(str(path), {"constant_memory": True})
        self.book.set_properties(
            {"title": sheet, "author": "Territoria sandbox", "created": created}
        )
        self.sheet = self.book.add_worksheet(sheet)
        bold = self.book.add_format({"bold": True})
        self.sheet.write_row(0, 0, self.header, bold)

    def write(self, row: Row) -> None:
        self.rows += 1
        self.sheet.write_row(self.rows, 0, ["" if v is None else v for v in row])

    def close(self) -> None:
        self.book.close()
