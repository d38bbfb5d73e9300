"""Households written by hand (scenario files, the CLI's what-if): plain mappings → ``Household``.

A scenario file states each household once, readably; the provenance every input must carry
defaults to the file's ``source`` and ``as_of`` (an input may give its own). Errors name the
file, the line and the field.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from territoria.apps.tariffs.model import Household, TariffInputError
from territoria.apps.tariffs.yamlio import ParameterFileError, load_yaml
from territoria.core.yaml_lines import LINE, line_of, strip_lines

_WITH_PROVENANCE = ("members", "incomes", "housing", "services", "receipts")


def _with_provenance(value: Any, default: dict[str, Any]) -> Any:
    """Give every input mapping a provenance (its own, or the file's default)."""
    if isinstance(value, list):
        return [_with_provenance(v, default) for v in value]
    if not isinstance(value, dict):
        return value
    out = {
        k: _with_provenance(v, default) if k in _WITH_PROVENANCE else v for k, v in value.items()
    }
    if "provenance" not in out:
        out["provenance"] = default
    return out


def household_from_mapping(data: dict[str, Any], source: str, as_of: date) -> Household:
    """A ``Household`` from a scenario mapping (see the module docstring)."""
    default = {"source": source, "as_of": as_of}
    body = {
        k: _with_provenance(v, default) if k in _WITH_PROVENANCE else v for k, v in data.items()
    }
    body.setdefault("commune_provenance", default)
    return Household.model_validate(strip_lines(body))


def load_scenario(path: Path) -> dict[str, Any]:
    """A scenario file: its fields, with ``households`` turned into ``Household`` records."""
    raw = load_yaml(path)
    source = str(raw.get("source", "scénario"))
    as_of = raw.get("as_of", date(2025, 1, 1))
    households = []
    for index, item in enumerate(raw.get("households", [])):
        try:
            households.append(household_from_mapping(item, source, as_of))
        except ValidationError as exc:
            first = exc.errors()[0]
            location = ("households", index, *first["loc"])
            raise ParameterFileError(
                first["msg"],
                code="tariffs_scenario",
                file=path,
                line=line_of(raw, location),
                field_name=".".join(str(p) for p in location),
            ) from exc
        except TariffInputError as exc:
            exc.file, exc.line = path, item.get(LINE)
            raise
    return {**strip_lines(raw), "households": households}
