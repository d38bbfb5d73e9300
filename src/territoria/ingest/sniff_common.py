"""What the sniffing modules share: file kinds, the text scan, and errors with guidance."""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NoReturn

from territoria.core.errors import InputFileError

FileKind = Literal["csv", "json", "ndjson", "parquet", "xlsx"]
HEAD_BYTES = 1024 * 1024
RESEND = "le transfert a sans doute été interrompu : demandez un nouvel envoi"
CONTRACT_HINT = "corrigez file_format.{} dans le contrat de la source (ou « auto »)"

# code → (expected, hint): what every error of that code tells the person
GUIDANCE: dict[str, tuple[str, str]] = {
    "file_missing": ("un fichier existant", "vérifiez le chemin et le nom du fichier"),
    "file_not_regular": ("un fichier", "indiquez le fichier, pas le dossier qui le contient"),
    "file_empty": ("un fichier non vide", RESEND),
    "file_binary": (
        "un fichier texte (CSV ou JSON)",
        "fichier compressé ou export binaire ? Un texte UTF-16 sans BOM doit être déclaré "
        "dans file_format.encoding",
    ),
    "file_truncated": ("un fichier complet", RESEND),
    "file_changed": ("le fichier tel qu'il a été analysé", "relancez le chargement"),
    "kind_unknown": (
        "une extension .csv .txt .tsv .json .ndjson .jsonl .parquet ou .xlsx",
        CONTRACT_HINT.format("kind"),
    ),
    "kind_mismatch": ("un contenu conforme à l'extension", CONTRACT_HINT.format("kind")),
    "encoding_unknown": (
        "un encodage comme utf-8, cp1252, latin-1",
        CONTRACT_HINT.format("encoding"),
    ),
    "encoding_invalid": ("un texte dans l'encodage déclaré", CONTRACT_HINT.format("encoding")),
    "delimiter_invalid": ("un séparateur , ; | ou tab", CONTRACT_HINT.format("delimiter")),
    "header_invalid": (
        "un nom unique et non vide pour chaque colonne de la première ligne",
        "nommez chaque colonne, sans doublon (la casse est ignorée)",
    ),
    "json_invalid": (
        "un document JSON complet et valide",
        "vérifiez le fichier à cet endroit ; un export interrompu donne un JSON tronqué",
    ),
}


# The five bytes cp1252 leaves undefined: decoded as their latin-1 code points (U+0081...),
# so one stray byte does not turn a whole cp1252 file (’ € œ) into latin-1 control characters.
CP1252_UNDEFINED = frozenset(b"\x81\x8d\x8f\x90\x9d")
CP1252_ERRORS = "territoria-cp1252"


def _cp1252_undefined_as_latin1(exc: UnicodeError) -> tuple[str, int]:
    if isinstance(exc, UnicodeDecodeError):
        bad = bytes(exc.object[exc.start : exc.end])
        if bad and all(byte in CP1252_UNDEFINED for byte in bad):
            return bad.decode("latin-1"), exc.end
    raise exc


codecs.register_error(CP1252_ERRORS, _cp1252_undefined_as_latin1)


def decode_errors(encoding: str, default: str = "strict") -> str:
    """The error handler to decode ``encoding`` with: cp1252 keeps its undefined bytes."""
    try:
        cp1252 = codecs.lookup(encoding).name == "cp1252"
    except LookupError:
        return default
    return CP1252_ERRORS if cp1252 else default


@dataclass(frozen=True)
class Scan:
    sha256: str
    encoding: str
    lines: int
    quotes: int
    last_quote_line: int
    last_quote_opens_field: bool


def read_head(path: Path, encoding: str) -> tuple[str, bool]:
    with path.open("rb") as f:
        raw = f.read(HEAD_BYTES)
        complete = not f.read(1)
    decoder = codecs.getincrementaldecoder(encoding)(decode_errors(encoding, "replace"))
    return decoder.decode(raw, final=complete), complete


def fail(
    path: Path,
    code: str,
    message: str,
    *,
    line: int | None = None,
    expected: str | None = None,
    hint: str | None = None,
    **details: object,
) -> NoReturn:
    default_expected, default_hint = GUIDANCE[code]
    raise InputFileError(
        message,
        code=code,
        file=path,
        line=line,
        expected=expected or default_expected,
        hint=hint or default_hint,
        details=dict(details),
    )
