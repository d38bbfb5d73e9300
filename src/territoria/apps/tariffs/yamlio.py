"""Reading the shipped YAML parameters with the line of every mapping, for errors one can act on."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from territoria.core.errors import TerritoriaError
from territoria.core.yaml_lines import line_of, load_with_lines, strip_lines

M = TypeVar("M", bound=BaseModel)


class ParameterFileError(TerritoriaError):
    """A tariff grid or a screening parameter file is unreadable or invalid."""


def load_yaml(path: Path) -> dict[str, Any]:
    """The file's top mapping, each nested mapping carrying its ``__line__``."""
    try:
        data = load_with_lines(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ParameterFileError(
            f"fichier illisible : {exc.strerror}", code="tariffs_file", file=path
        ) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ParameterFileError(
            f"YAML invalide : {getattr(exc, 'problem', exc)}",
            code="tariffs_yaml",
            file=path,
            line=None if mark is None else mark.line + 1,
        ) from exc
    if not isinstance(data, dict):
        raise ParameterFileError(
            "le fichier doit contenir un dictionnaire", code="tariffs_yaml", file=path, line=1
        )
    return data


def parse_model(model: type[M], data: dict[str, Any], path: Path) -> M:
    """Validate ``data`` as ``model``; the first error names the file, line and field."""
    try:
        return model.model_validate(strip_lines(data))
    except ValidationError as exc:
        first = exc.errors()[0]
        location = tuple(first["loc"])
        raise ParameterFileError(
            first["msg"],
            code="tariffs_invalid",
            file=path,
            line=line_of(data, location),
            field_name=".".join(str(p) for p in location) or None,
        ) from exc
