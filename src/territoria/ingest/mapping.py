"""Match a file's header to its contract's fields, and apply the schema-drift policy."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from territoria.backends import FieldPlan
from territoria.core.contract import SourceContract, normalise_header
from territoria.core.errors import ContractError
from territoria.ingest.sniff import TRAILING_EMPTY_COLUMN  # lines ending with ";": ignored


@dataclass(frozen=True)
class ColumnMapping:
    fields: list[FieldPlan]
    extra_columns: list[tuple[str, str]]  # (file column, stored name), for ``keep``
    ignored_columns: list[str]
    missing_columns: list[str]


def map_columns(contract: SourceContract, header: Sequence[str], file: Path) -> ColumnMapping:
    """Which file column feeds each contract field; refuses what the drift policy forbids."""
    by_key: dict[str, str] = {}
    for name in header:
        by_key.setdefault(normalise_header(name), name)
    plans: list[FieldPlan] = []
    used: set[str] = set()
    missing: list[str] = []
    for spec in contract.fields:
        column: str | None = next(
            (by_key[k] for k in map(normalise_header, spec.header_names()) if k in by_key), None
        )
        if column is None:
            missing.append(spec.name)
        else:
            used.add(column)
        plans.append(FieldPlan(spec, column))
    unknown = [c for c in header if c not in used and c != TRAILING_EMPTY_COLUMN]
    _check_missing(contract, missing, header, file)
    drift = contract.schema_drift
    if unknown and drift.new_columns == "reject":
        raise ContractError(
            f"colonnes non prévues par le contrat : {', '.join(unknown)}",
            code="column_unexpected",
            file=file,
            line=1,
            expected=f"les colonnes du contrat « {contract.id} »",
            hint="la politique de dérive du contrat (schema_drift.new_columns) est « reject »",
        )
    keep = drift.new_columns == "keep"
    return ColumnMapping(
        fields=plans,
        extra_columns=stored_names(unknown, {f.name for f in contract.fields}) if keep else [],
        ignored_columns=[] if keep else unknown,
        missing_columns=missing,
    )


def stored_names(columns: Sequence[str], taken: set[str]) -> list[tuple[str, str]]:
    """Unique stored names for kept columns (``"Commentaire"`` → ``x_commentaire``, then ``_2``…)."""
    out: list[tuple[str, str]] = []
    used = set(taken)
    for column in columns:
        base = "x_" + (normalise_header(column) or "colonne")
        name, n = base, 1
        while name in used:
            n += 1
            name = f"{base}_{n}"
        used.add(name)
        out.append((column, name))
    return out


def _check_missing(
    contract: SourceContract, missing: list[str], header: Sequence[str], file: Path
) -> None:
    required = [n for n in missing if contract.field(n).constraints.required]
    if required:
        spec = contract.field(required[0])
        names = " ou ".join(f"« {n} »" for n in spec.header_names())
        raise ContractError(
            f"colonne obligatoire absente : {', '.join(required)}",
            code="column_missing",
            file=file,
            line=1,
            field_name=required[0],
            expected=f"une colonne {names}",
            hint=f"colonnes trouvées : {', '.join(header) or '(aucune)'}",
        )
    if missing and contract.schema_drift.missing_optional_columns == "reject":
        raise ContractError(
            f"colonnes absentes : {', '.join(missing)}",
            code="column_missing",
            file=file,
            line=1,
            field_name=missing[0],
            hint="la politique de dérive du contrat (schema_drift.missing_optional_columns) "
            "est « reject »",
        )
