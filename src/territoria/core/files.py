"""Files written whole or not at all (exports, policy copies, documents for residents)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from territoria.core.errors import TerritoriaError

__all__ = ["write_atomically"]


def write_atomically(path: Path, data: bytes, *, what: str = "fichier") -> None:
    """Write beside ``path``, flush to disk, then rename: ``path`` is never half-written.

    An ``OSError`` becomes a ``TerritoriaError`` (``output_unwritable``) naming the file.
    """
    temp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    try:
        with temp.open("xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise TerritoriaError(
            f"écriture du {what} impossible : {exc.strerror or exc}",
            code="output_unwritable",
            file=path,
            expected="un chemin de fichier dans un dossier existant et accessible en écriture",
        ) from None
