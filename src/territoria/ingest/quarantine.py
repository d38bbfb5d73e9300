"""Hand rejected rows back: the quarantine of a source as a CSV its sender can open and fix."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

from territoria.backends import Store

_PAGE = 10_000
_FIXED = ["chargement", "ligne", "enregistrement", "champ", "raison", "toutes_les_erreurs"]


def export_quarantine(store: Store, source: str, path: Path, load_id: str | None = None) -> int:
    """Write every quarantined row of a source to ``path`` (CSV, ``;``, UTF-8 with BOM so that
    Excel opens it in French) with the raw row's own columns; returns the number of rows.

    The file is written under a temporary name and renamed: never half a file.
    """
    rows = _all_rows(store, source, load_id)
    raw_columns: dict[str, None] = {}
    for row in rows:
        raw_columns.update(dict.fromkeys(row["raw"]))
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out, delimiter=";")
        writer.writerow([*_FIXED, *raw_columns])
        for row in rows:
            reasons = " | ".join(f"{e.get('field')} : {e.get('reason')}" for e in row["errors"])
            fixed = [
                row["load_id"],
                row["line"],
                row["record"],
                row["field"],
                row["reason"],
                reasons,
            ]
            writer.writerow([*fixed, *(row["raw"].get(c) for c in raw_columns)])
    os.replace(tmp, path)
    return len(rows)


def _all_rows(store: Store, source: str, load_id: str | None) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    offset = 0
    while page := store.quarantine(source, load_id, _PAGE, offset).to_pylist():
        for row in page:
            row["errors"] = json.loads(row["errors"]) if row["errors"] else []
            row["raw"] = json.loads(row["raw"]) if row["raw"] else {}
        rows.extend(page)
        offset += _PAGE
    return rows
