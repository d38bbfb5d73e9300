"""Phone numbers, e-mail addresses and sex codes."""

from __future__ import annotations

import re

from territoria.identity.standardise.text import fold

_MAX_LENGTH = 64
_PHONE_LABEL = re.compile(
    r"^(?:t[ée]l(?:[ée]phone)?|portable|port|mobile|fixe|gsm|domicile|dom)[\s.:]*",
    re.IGNORECASE,
)
_PHONE_CHARS = re.compile(r"\+?[\d\s.\-/]+", re.ASCII)
_TRUNK_ZERO = re.compile(r"\(\s*0\s*\)")
_PARENTHESES = str.maketrans("", "", "()")
_EXCEL_FLOAT = re.compile(r"^(\d+)\.0+$", re.ASCII)
_NATIONAL = re.compile(r"0[1-9]\d{8}", re.ASCII)

_EMAIL_IN_BRACKETS = re.compile(r"<([^<>]*)>")
_EMAIL = re.compile(
    r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,63}",
    re.ASCII,
)

SEXES = {
    "F": "F", "FEMME": "F", "FEMININ": "F", "FEM": "F", "FILLE": "F", "MME": "F",
    "MADAME": "F", "MLLE": "F", "MELLE": "F", "MADEMOISELLE": "F", "2": "F", "2 0": "F",
    "M": "M", "H": "M", "HOMME": "M", "MASCULIN": "M", "MASC": "M", "GARCON": "M", "MR": "M",
    "MONSIEUR": "M", "1": "M", "1 0": "M",
}  # fmt: skip


def standardise_phone(text: str | None) -> str | None:
    """A French number as 10 digits ("0612345678"), another country's as "+<digits>", or None."""
    if not isinstance(text, str) or len(text) > _MAX_LENGTH:
        return None
    raw = _TRUNK_ZERO.sub("", _PHONE_LABEL.sub("", " ".join(text.split())))
    raw = raw.translate(_PARENTHESES).strip()
    if match := _EXCEL_FLOAT.fullmatch(raw):
        raw = match.group(1)
    if not _PHONE_CHARS.fullmatch(raw):
        return None
    digits = "".join(c for c in raw if c.isdigit())
    if raw.startswith("+"):
        return _international(digits)
    if digits.startswith("00") and len(digits) != 10:  # ten digits: a mistyped national number
        return _international(digits[2:])
    return _national(digits)


def _national(digits: str) -> str | None:
    if len(digits) == 11 and digits.startswith("33"):
        return _french(digits[2:])
    if len(digits) == 9 and digits[0] != "0":  # leading zero lost in a spreadsheet
        return _french(digits)
    return digits if _NATIONAL.fullmatch(digits) else None


def _international(digits: str) -> str | None:
    if digits.startswith("33"):
        return _french(digits[2:])
    if 8 <= len(digits) <= 15 and digits[0] != "0":
        return "+" + digits
    return None


def _french(subscriber: str) -> str | None:
    """The national form of the digits after the country code (trunk zero optional)."""
    national = subscriber if subscriber.startswith("0") else "0" + subscriber
    return national if _NATIONAL.fullmatch(national) else None


def standardise_email(text: str | None) -> str | None:
    """Lower-case address without spaces, brackets or "mailto:"; None when not shaped like one."""
    if not isinstance(text, str) or len(text) > 320:
        return None
    value = text.strip()
    if match := _EMAIL_IN_BRACKETS.search(value):
        value = match.group(1)
    value = "".join(value.split()).lower()
    if value.startswith("mailto:"):
        value = value[len("mailto:") :]
    value = value.strip(".,;:'\"")
    if len(value) > 254 or not _EMAIL.fullmatch(value):
        return None
    return value


def standardise_sex(text: str | None) -> str | None:
    """ "F" or "M" from a sex code, word or civility (case and accents ignored), else None."""
    if not isinstance(text, str) or len(text) > _MAX_LENGTH:
        return None
    return SEXES.get(fold(text))
