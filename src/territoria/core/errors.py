"""Errors a person can act on.

Every error carries a French message for the person at the keyboard and, where it applies,
the file, line and field it is about and what was expected. Interfaces print these; they never
print a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class TerritoriaError(Exception):
    """Base of every error Territoria raises on purpose."""

    message: str
    code: str = "error"
    file: Path | str | None = None
    line: int | None = None
    field_name: str | None = None
    expected: str | None = None
    hint: str | None = None
    details: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        parts = []
        where = []
        if self.file is not None:
            where.append(f"fichier {self.file}")
        if self.line is not None:
            where.append(f"ligne {self.line}")
        if self.field_name is not None:
            where.append(f"champ « {self.field_name} »")
        if where:
            parts.append(", ".join(where) + " : ")
        parts.append(self.message)
        if self.expected:
            parts.append(f" (attendu : {self.expected})")
        if self.hint:
            parts.append(f"\n  → {self.hint}")
        return "".join(parts)

    def as_dict(self) -> dict[str, object]:
        """The error as JSON-ready data (for ``--json`` output and the API)."""
        return {
            "code": self.code,
            "message": self.message,
            "file": None if self.file is None else str(self.file),
            "line": self.line,
            "field": self.field_name,
            "expected": self.expected,
            "hint": self.hint,
            **self.details,
        }


class WorkspaceError(TerritoriaError):
    """The workspace folder or its ``territoria.toml`` is missing or invalid."""


class ContractError(TerritoriaError):
    """A source contract is invalid, unknown, or does not fit the file given."""


class InputFileError(TerritoriaError):
    """A file cannot be read as a whole (encoding, truncation, binary, empty...)."""


class StoreError(TerritoriaError):
    """The data store refused or failed an operation."""


class GovernanceError(TerritoriaError):
    """A policy file, a purpose, an actor, a key or the audit ledger is invalid or refused."""
