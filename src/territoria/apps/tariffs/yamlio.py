"""Reading the shipped YAML parameters with the line of every mapping, for errors one can act on."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from territoria.core.errors import TerritoriaError

LINE = "__line__"


M = TypeVar("M", bound=BaseModel)


class ParameterFileError(TerritoriaError):
    """A tariff grid or a screening parameter file is unreadable or invalid."""


class _LineLoader(yaml.SafeLoader):
    """A YAML loader that notes the line of every mapping under ``__line__``."""


def _mapping_with_line(loader: _LineLoader, node: yaml.MappingNode) -> dict[str, Any]:
    mapping: dict[Any, Any] = loader.construct_mapping(node, deep=True)
    mapping[LINE] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_with_line)


def load_yaml(path: Path) -> dict[str, Any]:
    """The file's top mapping, each nested mapping carrying its ``__line__``."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_LineLoader)
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


def strip_lines(value: Any) -> Any:
    """The same data without the ``__line__`` notes."""
    if isinstance(value, dict):
        return {k: strip_lines(v) for k, v in value.items() if k != LINE}
    if isinstance(value, list):
        return [strip_lines(v) for v in value]
    return value


def line_of(data: Any, location: tuple[int | str, ...]) -> int | None:
    """The line of the innermost mapping on ``location`` (a pydantic error path)."""
    line = data.get(LINE) if isinstance(data, dict) else None
    node = data
    for step in location:
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            break
        if isinstance(node, dict) and LINE in node:
            line = node[LINE]
    return line if isinstance(line, int) else None


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
