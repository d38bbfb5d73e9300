"""Excel workbooks (.xlsx) turned into plain UTF-8 CSV, values written as a person sees them.

The ingestion engine reads CSV; a workbook is first flattened here. Dates become ISO 8601,
integral numbers lose their ``.0``, booleans become ``TRUE``/``FALSE`` and empty cells stay
empty. Leading rows that are entirely empty are skipped, so the first non-empty row is the
header; empty rows after it are kept, so CSV line *n* stays the *n*-th row under the header.

``python-calamine`` loads a whole sheet in memory (it offers no streaming reader); an .xlsx
sheet holds at most 1 048 576 rows, so this stays bounded.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from territoria.core.errors import InputFileError

__all__ = ["cell_text", "sheet_rows", "xlsx_header", "xlsx_to_csv"]

_FLOAT_DIGITS = 15  # what Excel displays in its "Standard" format


def xlsx_to_csv(path: Path, dest: Path, sheet: str | None = None) -> tuple[str, ...]:
    """Stream the sheet into a UTF-8 CSV (comma, all values as text as the user sees them,
    quoted as needed) and return the header.

    >>> xlsx_to_csv(Path("eleves.xlsx"), Path("/tmp/eleves.csv"))  # doctest: +SKIP
    ('nom', 'prenom', 'date_naissance')
    """
    header: tuple[str, ...] = ()
    with dest.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        for index, row in enumerate(sheet_rows(path, sheet)):
            if index == 0:
                header = tuple(cell.strip() for cell in row)
            writer.writerow(row)
    return header


def xlsx_header(path: Path, sheet: str | None = None) -> tuple[str, ...]:
    """The first non-empty row of the sheet, cells stripped; ``()`` for an empty sheet."""
    for row in sheet_rows(path, sheet):
        return tuple(cell.strip() for cell in row)
    return ()


def sheet_rows(path: Path, sheet: str | None = None) -> Iterator[list[str]]:
    """Rows of the sheet as text, from the first non-empty row on."""
    calamine_sheet = _open_sheet(path, sheet)
    started = False
    try:
        for row in calamine_sheet.iter_rows():
            cells = [cell_text(value) for value in row]
            if not started and not any(cells):
                continue
            started = True
            yield cells
    except Exception as exc:  # any failure of the Rust reader on a damaged workbook
        raise _corrupt(path, exc) from None


def cell_text(value: object) -> str:
    """A cell's value as the user sees it (ISO dates, ``12`` not ``12.0``)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:.{_FLOAT_DIGITS}g}"
    if isinstance(value, dt.datetime | dt.time):
        return value.isoformat(timespec="seconds")
    if isinstance(value, dt.timedelta):
        total = int(value.total_seconds())
        sign, total = ("-", -total) if total < 0 else ("", total)
        return f"{sign}{total // 3600}:{total % 3600 // 60:02d}:{total % 60:02d}"
    return str(value)  # str, int, and date (whose str is ISO YYYY-MM-DD)


def _open_sheet(path: Path, sheet: str | None) -> Any:
    from python_calamine import CalamineWorkbook

    try:
        workbook = CalamineWorkbook.from_path(str(path))
    except Exception as exc:  # CalamineError, ZipError, XmlError, OSError...
        raise _corrupt(path, exc) from None
    names: list[str] = list(workbook.sheet_names)
    if sheet is None:
        if not names:
            raise _corrupt(path, ValueError("aucune feuille"))
        sheet = names[0]
    if sheet not in names:
        listed = ", ".join(f"« {name} »" for name in names)
        raise InputFileError(
            f"la feuille « {sheet} » n'existe pas dans ce classeur",
            code="sheet_unknown",
            file=path,
            expected=f"une de ces feuilles : {listed}",
            hint="corrigez file_format.sheet dans le contrat de la source",
            details={"sheets": names},
        )
    try:
        return workbook.get_sheet_by_name(sheet)
    except Exception as exc:
        raise _corrupt(path, exc) from None


def _corrupt(path: Path, exc: BaseException) -> InputFileError:
    return InputFileError(
        f"classeur Excel illisible ({type(exc).__name__} : {exc})",
        code="file_corrupt",
        file=path,
        expected="un classeur .xlsx valide",
        hint="ouvrez le fichier dans un tableur et enregistrez-le de nouveau au format .xlsx",
    )
