"""YAML that remembers where each mapping starts, so a validation error can name its line.

``load_with_lines`` reads YAML with a safe loader that adds ``__line__`` (1-based) to every
mapping; ``line_of`` walks a pydantic error location down that data to the innermost mapping's
line; ``strip_lines`` gives the data back without the notes.
"""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["LINE", "line_of", "load_with_lines", "strip_lines"]

LINE = "__line__"


class _LineLoader(yaml.SafeLoader):
    """A YAML loader that notes the line of every mapping under ``__line__``."""


def _mapping_with_line(loader: _LineLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    mapping = loader.construct_mapping(node, deep=True)
    mapping[LINE] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_with_line)


def load_with_lines(text: str) -> Any:
    """Parse YAML text (safe loader), every mapping carrying its ``__line__``."""
    return yaml.load(text, Loader=_LineLoader)


def line_of(data: Any, location: tuple[int | str, ...]) -> int | None:
    """The line of the innermost mapping on ``location`` (a pydantic error path)."""
    line = data.get(LINE) if isinstance(data, dict) else None
    for step in location:
        try:
            data = data[step]
        except (KeyError, IndexError, TypeError):
            break
        if isinstance(data, dict) and LINE in data:
            line = data[LINE]
    return line if isinstance(line, int) else None


def strip_lines(value: Any) -> Any:
    """The same data without the ``__line__`` notes."""
    if isinstance(value, dict):
        return {k: strip_lines(v) for k, v in value.items() if k != LINE}
    if isinstance(value, list):
        return [strip_lines(v) for v in value]
    return value
