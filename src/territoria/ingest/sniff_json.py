"""JSON and NDJSON files: check they are whole and read the keys of their first record."""

from __future__ import annotations

import codecs
import json
from pathlib import Path
from typing import NoReturn

from territoria.ingest.sniff_common import (
    RESEND,
    FileKind,
    Scan,
    decode_errors,
    fail,
    read_head,
)

_JSON_FULL_PARSE_LIMIT = 64 * 1024 * 1024


def json_layout(
    path: Path, scan: Scan, kind: FileKind, from_hint: bool
) -> tuple[FileKind, tuple[str, ...] | None]:
    head = read_head(path, scan.encoding)[0]
    if kind == "json" and not from_hint and _looks_like_ndjson(head):
        kind = "ndjson"
    if kind == "ndjson":
        return kind, _check_ndjson(path, scan.encoding)
    body = head.lstrip()
    if body[:1] not in ("[", "{"):
        line = head.count("\n", 0, len(head) - len(body)) + 1
        _json_error(path, "le fichier ne commence pas par [ ou {", line, 1)
    if path.stat().st_size <= _JSON_FULL_PARSE_LIMIT:
        errors = decode_errors(scan.encoding)
        with path.open(encoding=scan.encoding, errors=errors, newline="") as f:
            text = f.read()
        try:
            return kind, _record_keys(json.loads(text))
        except json.JSONDecodeError as exc:
            _json_error(path, exc.msg, exc.lineno, exc.colno)
    _check_json_tail(path, scan, "]" if body[0] == "[" else "}")
    return kind, _first_keys(body)


def _looks_like_ndjson(head: str) -> bool:
    """A first line that is a whole JSON object, followed by more content."""
    first, _, rest = head.lstrip().partition("\n")
    try:
        value = json.loads(first)
    except json.JSONDecodeError:
        return False
    return isinstance(value, dict) and bool(rest.strip())


def _check_ndjson(path: Path, encoding: str) -> tuple[str, ...]:
    header: tuple[str, ...] | None = None
    with path.open(encoding=encoding, errors=decode_errors(encoding), newline="") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                _json_error(path, exc.msg, number, exc.colno, ndjson=True)
            if not isinstance(value, dict):
                _json_error(path, "la ligne n'est pas un objet JSON", number, 1, ndjson=True)
            if header is None:
                header = tuple(str(key) for key in value)
    return header or ()


def _check_json_tail(path: Path, scan: Scan, closing: str) -> None:
    if not codecs.encode("]}", scan.encoding).endswith(b"]}"):
        return  # a big UTF-16 JSON: the engine's parser judges it
    with path.open("rb") as f:
        f.seek(max(0, path.stat().st_size - 65536))
        tail = f.read()
    if not tail.rstrip().endswith(closing.encode()):
        message = f"le fichier s'arrête avant le « {closing} » final"
        fail(path, "json_invalid", message, line=scan.lines + 1, hint=RESEND)


def _first_keys(body: str) -> tuple[str, ...] | None:
    start = body.find("{")
    if start < 0:
        return None
    try:
        value, _ = json.JSONDecoder().raw_decode(body, start)
    except json.JSONDecodeError:
        return None  # a first record longer than the head: header unknown
    return _record_keys(value)


def _record_keys(value: object) -> tuple[str, ...] | None:
    if isinstance(value, list):
        if not value:
            return ()
        value = value[0]
    return tuple(str(key) for key in value) if isinstance(value, dict) else None


def _json_error(path: Path, message: str, line: int, column: int, ndjson: bool = False) -> NoReturn:
    expected = "un objet JSON par ligne" if ndjson else None
    fail(
        path,
        "json_invalid",
        f"JSON invalide : {message} (colonne {column})",
        line=line,
        expected=expected,
        column=column,
    )
