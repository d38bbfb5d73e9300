"""What a file is, before the engine reads it: kind, encoding, delimiter, header, hash.

``sniff_file`` reads the file once in big chunks (constant memory, whatever its size) to hash
it, validate its text encoding and count its lines and quotes, then looks at its head (and,
for JSON, its tail) for the delimiter and header. A file that cannot be read as a whole is
refused with an ``InputFileError`` naming the file, the line and what was expected.

Encoding without hint: a BOM decides (UTF-8 or UTF-16); otherwise UTF-8 if the whole file
decodes, else cp1252. The five bytes cp1252 leaves undefined (0x81 0x8D 0x8F 0x90 0x9D) are
kept as their latin-1 code points (U+0081...) whenever cp1252 is decoded, detected or declared,
so a stray one does not garble every ’ € œ of the file; latin-1 is used only when declared.
No statistical detector is used: for the French exports this targets, these byte rules are
exact where a statistical guess on a sample is not.

A CSV whose lines all end with the delimiter (``a;b;c;``, common in ERP exports) has an empty
last header cell: it is named ``_vide_final`` (see ``TRAILING_EMPTY_COLUMN``), a column the
mapper ignores as unknown. Any other empty or duplicate header cell is refused.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import NoReturn

from territoria.core.contract import FileFormat
from territoria.ingest.sniff_common import (
    FileKind,
    Scan,
    decode_errors,
    fail,
    read_head,
)
from territoria.ingest.sniff_json import json_layout

__all__ = ["TRAILING_EMPTY_COLUMN", "FileInfo", "FileKind", "sniff_file", "utf8_copy"]

TRAILING_EMPTY_COLUMN = "_vide_final"


_CHUNK = 8 * 1024 * 1024
_SAMPLE_RECORDS = 50
_DELIMITERS = {",": "virgule", ";": "point-virgule", "\t": "tabulation", "|": "barre verticale"}
_EXTENSIONS: dict[str, FileKind] = {
    ".csv": "csv",
    ".txt": "csv",
    ".tsv": "csv",
    ".json": "json",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".parquet": "parquet",
    ".xlsx": "xlsx",
}
_MAGIC: dict[bytes, str] = {
    b"PAR1": "un fichier Parquet",
    b"PK\x03\x04": "une archive zip (classeur .xlsx ?)",
    b"\xd0\xcf\x11\xe0": "un ancien classeur Excel (.xls)",
}
_KIND_MAGIC: dict[FileKind, bytes] = {"parquet": b"PAR1", "xlsx": b"PK\x03\x04"}
_CONTROL_BYTES = bytes(c for c in range(32) if c not in (9, 10, 12, 13))


@dataclass(frozen=True)
class FileInfo:
    """What ``sniff_file`` found; ``lines`` counts ``\\n`` (csv and ndjson only)."""

    path: Path
    kind: FileKind
    encoding: str | None
    delimiter: str | None
    size: int
    sha256: str
    header: tuple[str, ...] | None
    lines: int | None


def sniff_file(path: Path, hints: FileFormat | None = None) -> FileInfo:
    """Identify and check a file; raise ``InputFileError`` if it cannot be read as a whole.

    >>> info = sniff_file(Path("redevance_2024.csv"))  # doctest: +SKIP
    >>> info.encoding, info.delimiter, info.header  # doctest: +SKIP
    ('cp1252', ';', ('N° contrat', 'Nom', 'Adresse'))
    """
    hints = hints or FileFormat()
    size = _check_regular(path)
    kind = _kind(path, hints)
    if kind in ("parquet", "xlsx"):
        sha = _hash_file(path)
        header: tuple[str, ...] | None
        header = _parquet_header(path, size) if kind == "parquet" else _xlsx_header(path, hints)
        return FileInfo(path, kind, None, None, size, sha, header, None)
    scan = _scan_text(path, None if hints.encoding == "auto" else hints.encoding)
    delimiter: str | None = None
    if kind == "csv":
        delimiter, header = _csv_layout(path, scan, hints)
    else:
        kind, header = json_layout(path, scan, kind, from_hint=hints.kind != "auto")
    lines = scan.lines if kind in ("csv", "ndjson") else None
    return FileInfo(path, kind, scan.encoding, delimiter, size, scan.sha256, header, lines)


def utf8_copy(info: FileInfo, dest_dir: Path) -> Path:
    """A UTF-8 (no BOM) version of a text file: the file itself if it already is one, else a
    transcoded copy in ``dest_dir`` (which the caller owns and cleans). Parquet and xlsx files
    are returned as they are. The bytes read are checked against the sniffed hash."""
    if info.encoding is None or _codec(info.path, info.encoding) == "utf-8":
        return info.path
    dest = dest_dir / f"{info.path.stem}.{info.sha256[:12]}.utf8{info.path.suffix}"
    decoder = codecs.getincrementaldecoder(info.encoding)(decode_errors(info.encoding))
    try:
        with info.path.open("rb") as src, dest.open("wb") as out, _Hasher() as hasher:
            while chunk := src.read(_CHUNK):
                hasher.update(chunk)
                out.write(decoder.decode(chunk).encode("utf-8"))
            out.write(decoder.decode(b"", final=True).encode("utf-8"))
            sha256 = hasher.hexdigest()
    except (OSError, UnicodeDecodeError) as exc:
        dest.unlink(missing_ok=True)
        fail(info.path, "file_changed", f"fichier modifié ou illisible depuis l'analyse ({exc})")
    if sha256 != info.sha256:
        dest.unlink(missing_ok=True)
        fail(info.path, "file_changed", "le fichier a changé depuis son analyse (SHA-256)")
    return dest


# --- file, kind ---------------------------------------------------------------------------


def _check_regular(path: Path) -> int:
    if not path.exists():
        fail(path, "file_missing", "fichier introuvable")
    if not path.is_file():
        fail(path, "file_not_regular", "ce chemin n'est pas un fichier ordinaire (dossier ?)")
    size = path.stat().st_size
    if size == 0:
        fail(path, "file_empty", "le fichier est vide (0 octet)")
    return size


def _kind(path: Path, hints: FileFormat) -> FileKind:
    suffix = path.suffix.lower()
    if hints.kind != "auto":
        kind: FileKind = hints.kind
    elif suffix in _EXTENSIONS:
        kind = _EXTENSIONS[suffix]
    else:
        hint = "enregistrez le classeur au format .xlsx" if suffix == ".xls" else None
        fail(path, "kind_unknown", f"extension « {path.suffix} » non reconnue", hint=hint)
    with path.open("rb") as f:
        magic = f.read(4)
    expected = _KIND_MAGIC.get(kind)
    if magic != expected and (expected is not None or magic in _MAGIC):
        found = _MAGIC.get(magic, "pas la signature attendue")
        fail(path, "kind_mismatch", f"le contenu n'est pas du type « {kind} » : {found}")
    return kind


# --- parquet, xlsx ------------------------------------------------------------------------


def _hash_file(path: Path) -> str:
    with path.open("rb") as f, _Hasher() as hasher:
        while chunk := f.read(_CHUNK):
            hasher.update(chunk)
        return hasher.hexdigest()


def _parquet_header(path: Path, size: int) -> tuple[str, ...]:
    with path.open("rb") as f:
        f.seek(max(0, size - 4))
        tail = f.read(4)
    message = "fichier Parquet tronqué : pied de fichier (schéma) absent ou illisible"
    if size < 12 or tail != b"PAR1":
        fail(path, "file_truncated", message, expected="un Parquet terminé par PAR1")
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except Exception:  # ArrowInvalid, OSError... : whatever a damaged footer raises
        fail(path, "file_truncated", message)
    return tuple(str(name) for name in schema.names)


def _xlsx_header(path: Path, hints: FileFormat) -> tuple[str, ...]:
    import zipfile

    from territoria.ingest.excel import xlsx_header

    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        fail(path, "file_truncated", "classeur .xlsx tronqué : archive zip incomplète")
    if "xl/workbook.xml" not in names:
        fail(path, "kind_mismatch", "archive zip qui n'est pas un classeur Excel .xlsx")
    header = xlsx_header(path, hints.sheet)
    _check_header(path, header)
    return header


# --- text scan ----------------------------------------------------------------------------


class _Detector:
    """Validates the encoding chunk by chunk; ``declared`` None means detect."""

    def __init__(self, path: Path, declared: str | None, first: bytes) -> None:
        self.path = path
        self.declared = declared
        self.encoding = "utf-8" if declared is None else _codec(path, declared)
        if self.encoding == "utf-8" and first.startswith(codecs.BOM_UTF8):
            self.encoding = "utf-8-sig"
        elif declared is None and first.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            self.encoding = "utf-16"
        self.strict = declared is not None or self.encoding != "utf-8"
        # utf-8-sig's decoder reports error positions after its BOM: validate as plain utf-8
        codec = "utf-8" if self.encoding == "utf-8-sig" else self.encoding
        self.decoder = codecs.getincrementaldecoder(codec)(decode_errors(codec))
        self.ascii_compatible = codecs.encode('\n"', self.encoding).endswith(b'\n"')
        self.utf8_ok = True

    def feed(self, chunk: bytes, offset: int, lines_before: int, final: bool) -> bytes:
        """Check ``chunk``; return it as ASCII-compatible bytes for counting."""
        if not self.strict:
            if self.utf8_ok:
                try:
                    self.decoder.decode(chunk, final=final)
                except UnicodeDecodeError:
                    self.utf8_ok = False
            return chunk
        pending = len(self.decoder.getstate()[0])
        try:
            text = self.decoder.decode(chunk, final=final)
        except UnicodeDecodeError as exc:
            position = exc.start - pending  # negative: in the bytes held from the last chunk
            line = lines_before + chunk.count(b"\n", 0, max(0, position)) + 1
            self._invalid(offset + position, line, exc)
        return chunk if self.ascii_compatible else text.encode("utf-8", "surrogatepass")

    def result(self) -> str:
        # not utf-8: cp1252 decodes anything, its undefined bytes kept as latin-1 code points
        return self.encoding if self.strict or self.utf8_ok else "cp1252"

    def _invalid(self, offset: int, line: int, exc: UnicodeDecodeError) -> NoReturn:
        bad = exc.object[exc.start : exc.start + 1].hex()
        source = "déclaré" if self.declared is not None else "annoncé par la marque BOM"
        message = (
            f"octet invalide (0x{bad}) à l'octet {offset} pour l'encodage {source} "
            f"« {self.encoding} »"
            if bad
            else f"caractère incomplet en fin de fichier pour l'encodage « {self.encoding} »"
        )
        fail(self.path, "encoding_invalid", message, line=line, byte_offset=offset)


class _Hasher:
    """SHA-256 computed in a worker thread (hashlib releases the GIL on big buffers), so
    hashing overlaps decoding and counting; at most one chunk is being hashed at a time."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self._pool = ThreadPoolExecutor(max_workers=1)
        self._pending: Future[None] | None = None

    def __enter__(self) -> _Hasher:
        return self

    def __exit__(self, *_: object) -> None:
        self._pool.shutdown(wait=True)

    def update(self, chunk: bytes) -> None:
        self._wait()
        self._pending = self._pool.submit(self._hash.update, chunk)

    def hexdigest(self) -> str:
        self._wait()
        return self._hash.hexdigest()

    def _wait(self) -> None:
        if self._pending is not None:
            self._pending.result()
            self._pending = None


def _scan_text(path: Path, declared: str | None) -> Scan:
    lines = quotes = offset = 0
    last: tuple[bytes, int, int, int] | None = None  # chunk, index, lines before, byte before
    previous_byte = ord("\n")
    with path.open("rb") as f, _Hasher() as hasher:
        chunk = f.read(_CHUNK)
        detector = _Detector(path, declared, chunk)
        while chunk:
            hasher.update(chunk)
            following = f.read(_CHUNK)
            view = detector.feed(chunk, offset, lines, final=not following)
            if b"\x00" in view or (offset == 0 and _mostly_control(view[:65536])):
                fail(path, "file_binary", "le fichier contient des données binaires")
            count = view.count(b'"')
            if count:
                quotes += count
                last = (view, view.rfind(b'"'), lines, previous_byte)
            lines += view.count(b"\n")
            previous_byte = view[-1] if view else previous_byte
            offset += len(chunk)
            chunk = following
        sha256 = hasher.hexdigest()
    quote_line, opens = _quote_position(last)
    return Scan(sha256, detector.result(), lines, quotes, quote_line, opens)


def _quote_position(last: tuple[bytes, int, int, int] | None) -> tuple[int, bool]:
    """Line of the last quote, and whether it starts a field (so it may open a quoted one)."""
    if last is None:
        return 0, False
    view, index, lines_before, previous = last
    before = view[:index].rstrip(b" ")
    opens = (before[-1] if before else previous) in b"\n\r,;\t|"
    return lines_before + view.count(b"\n", 0, index) + 1, opens


def _mostly_control(head: bytes) -> bool:
    controls = len(head) - len(head.translate(None, _CONTROL_BYTES))
    return controls * 100 > len(head) and controls > 2


def _codec(path: Path, name: str) -> str:
    try:
        canonical = codecs.lookup(name).name
    except LookupError:
        fail(path, "encoding_unknown", f"encodage « {name} » inconnu")
    return "latin-1" if canonical == "iso8859-1" else canonical


# --- csv ----------------------------------------------------------------------------------


def _csv_layout(path: Path, scan: Scan, hints: FileFormat) -> tuple[str, tuple[str, ...]]:
    if scan.quotes % 2 and scan.last_quote_opens_field:
        message = "le fichier se termine dans un champ entre guillemets ouvert à cette ligne"
        fail(
            path,
            "file_truncated",
            message,
            line=scan.last_quote_line,
            hint="fichier tronqué, ou guillemet en trop à cette ligne",
        )
    sample, complete = read_head(path, scan.encoding)
    detected = _detect_delimiter(sample, complete)
    delimiter = detected or ","
    if hints.delimiter != "auto":
        delimiter = _hinted_delimiter(path, hints.delimiter)
    header = _named_trailing_cell(_first_record(path, sample, delimiter))
    if hints.delimiter != "auto" and len(header) == 1:
        name = _DELIMITERS.get(delimiter, repr(delimiter))
        seen = f" ; le fichier semble séparé par : {_DELIMITERS[detected]}" if detected else ""
        message = f"une seule colonne avec le séparateur déclaré ({name}){seen}"
        fail(path, "delimiter_invalid", message, line=1)
    _check_header(path, header)
    return delimiter, header


def _hinted_delimiter(path: Path, hint: str) -> str:
    delimiter = {"tab": "\t", "\\t": "\t"}.get(hint.lower(), hint)
    if len(delimiter) != 1 or delimiter in '"\r\n':
        fail(path, "delimiter_invalid", f"séparateur déclaré invalide : « {hint} »")
    return delimiter


def _records(sample: str, delimiter: str, complete: bool) -> list[list[str]]:
    """The first records of the sample; one cut by the sample's end is dropped."""
    reader = csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter, strict=False)
    records: list[list[str]] = []
    try:
        for row in islice(reader, _SAMPLE_RECORDS + 1):
            if row:
                records.append(row)
    except csv.Error:  # a field over the csv module's size limit: keep what was read
        return records[:_SAMPLE_RECORDS]
    if not complete and len(records) <= _SAMPLE_RECORDS:
        records = records[:-1] or records
    return records[:_SAMPLE_RECORDS]


def _detect_delimiter(sample: str, complete: bool) -> str | None:
    """The delimiter giving the header's field count to most records (ties: , ; tab |)."""
    best: tuple[bool, float, int] = (False, 0.0, 1)
    chosen: str | None = None
    for delimiter in _DELIMITERS:
        counts = [len(row) for row in _records(sample, delimiter, complete)]
        if not counts:
            continue
        mode = Counter(counts).most_common(1)[0][0]
        score = (counts[0] == mode, counts.count(mode) / len(counts), mode)
        if mode > 1 and score > best:
            best, chosen = score, delimiter
    return chosen


def _first_record(path: Path, sample: str, delimiter: str) -> tuple[str, ...]:
    reader = csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter, strict=False)
    try:
        row = next(reader, [])
    except csv.Error as exc:
        fail(path, "header_invalid", f"ligne d'en-tête illisible ({exc})", line=1)
    return tuple(_unquote(cell) for cell in row)


def _named_trailing_cell(header: tuple[str, ...]) -> tuple[str, ...]:
    """``a;b;c;``: a header whose only empty cell is the last gets it named ``_vide_final``."""
    if len(header) > 1 and not header[-1] and all(header[:-1]):
        return (*header[:-1], TRAILING_EMPTY_COLUMN)
    return header


def _unquote(cell: str) -> str:
    """A header cell without spaces and quotes, even when spaces kept csv from unquoting it."""
    cell = cell.strip()
    if len(cell) >= 2 and cell[0] == cell[-1] == '"':
        cell = cell[1:-1].replace('""', '"').strip()
    return cell


def _check_header(path: Path, header: tuple[str, ...]) -> None:
    if not any(header):
        fail(path, "header_invalid", "ligne d'en-tête absente ou vide", line=1)
    empty = [i for i, name in enumerate(header, 1) if not name]
    first_seen: dict[str, int] = {}
    duplicates: list[tuple[int, int, str]] = []
    for position, name in enumerate(header, 1):
        key = name.casefold()
        if key and key in first_seen:
            duplicates.append((first_seen[key], position, name))
        first_seen.setdefault(key, position)
    problems = []
    if empty:
        problems.append("colonnes sans nom en position " + ", ".join(map(str, empty)))
    problems.extend(f"colonnes {a} et {b} nommées « {name} »" for a, b, name in duplicates)
    if problems:
        fail(
            path,
            "header_invalid",
            "en-tête invalide : " + " ; ".join(problems),
            line=1,
            empty_columns=empty,
            duplicate_columns=[[a, b] for a, b, _ in duplicates],
        )
