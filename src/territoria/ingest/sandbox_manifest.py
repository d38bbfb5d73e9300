"""Read a sandbox's ``manifest.json``: which files belong to which source."""

from __future__ import annotations

import json
from pathlib import Path

from territoria.core.errors import InputFileError


def sandbox_items(folder: Path) -> list[tuple[str, Path]]:
    """(source id, file) pairs of a generated sandbox, in the manifest's order."""
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        raise InputFileError(
            "ce dossier n'est pas un bac à sable Territoria (manifest.json introuvable)",
            code="manifest_missing",
            file=manifest,
            hint="générez-en un avec « territoria sandbox generate --out DOSSIER »",
        )
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
        sources = data["sources"]
        return [(str(s), folder / str(f)) for s, files in sources.items() for f in files]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InputFileError(
            f"manifest.json invalide : {exc}",
            code="manifest_invalid",
            file=manifest,
            expected='{"sources": {"source_id": ["fichier", ...]}}',
        ) from None
