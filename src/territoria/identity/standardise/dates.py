"""Birth dates as French services type them, with their precision and what is wrong."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from territoria.identity.standardise.text import fold

_TIME = r"(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
_YMD = re.compile(rf"(\d{{4}})[-/.](\d{{1,2}})[-/.](\d{{1,2}}){_TIME}", re.ASCII)
_DMY = re.compile(rf"(\d{{1,2}})[-/. ](\d{{1,2}})[-/. ](\d{{4}}|\d{{2}}){_TIME}", re.ASCII)
_COMPACT = re.compile(r"(\d{4})(\d{2})(\d{2})", re.ASCII)
_YM = re.compile(r"(\d{4})[-/.](\d{1,2})", re.ASCII)
_MY = re.compile(r"(\d{1,2})[-/.](\d{4})", re.ASCII)
_YEAR = re.compile(r"(\d{4})(?:\.0+)?", re.ASCII)
_WORDS = re.compile(r"(?:LE )?(?:(\d{1,2})(?:ER|E)? )?([A-Z]+) (\d{4}|\d{2})")
MONTHS = {
    "JANVIER": 1, "JANV": 1, "JAN": 1, "FEVRIER": 2, "FEVR": 2, "FEV": 2, "MARS": 3, "MAR": 3,
    "AVRIL": 4, "AVR": 4, "MAI": 5, "JUIN": 6, "JUILLET": 7, "JUIL": 7, "AOUT": 8,
    "SEPTEMBRE": 9, "SEPT": 9, "SEP": 9, "OCTOBRE": 10, "OCT": 10, "NOVEMBRE": 11, "NOV": 11,
    "DECEMBRE": 12, "DEC": 12,
}  # fmt: skip
OLDEST_YEAR = 1890
_MAX_LENGTH = 64

Parts = tuple[int | None, int | None, int | None]  # year, month, day


@dataclass(frozen=True, slots=True)
class BirthDate:
    """A birth date; ``iso`` only when the day is known and the date exists and is plausible."""

    iso: str | None
    year: int | None
    month: int | None
    day: int | None
    precision: str  # "day" | "month" | "year" | "none"
    problem: str  # "" or a French reason


UNKNOWN = BirthDate(None, None, None, None, "none", "")
UNREADABLE = BirthDate(None, None, None, None, "none", "format non reconnu")


def standardise_birth_date(text: str | None, *, today: date | None = None) -> BirthDate:
    """Read a birth date: ``standardise_birth_date("3 avril 1971").iso == "1971-04-03"``."""
    if not isinstance(text, str):
        return UNKNOWN
    stripped = text.strip()
    if not stripped:
        return UNKNOWN
    if len(stripped) > _MAX_LENGTH:
        return UNREADABLE
    return _standardise(stripped, today if isinstance(today, date) else date.today())


@lru_cache(maxsize=1 << 16)
def _standardise(text: str, today: date) -> BirthDate:
    parts = _parse(text, today)
    if parts is None:
        return UNREADABLE
    return _checked(*parts, today)


def _parse(text: str, today: date) -> Parts | None:
    for parse in (_numeric, _compact, _partial, _in_words):
        parts = parse(text, today)
        if parts is not None:
            return parts
    return None


def _numeric(text: str, today: date) -> Parts | None:
    if match := _YMD.fullmatch(text):
        y, m, d = (int(g) for g in match.groups())
        return y, m, d
    if match := _DMY.fullmatch(text):
        d, m = int(match.group(1)), int(match.group(2))
        return _full_year(match.group(3), m, d, today), m, d
    return None


def _compact(text: str, today: date) -> Parts | None:
    """YYYYMMDD, or DDMMYYYY when the first reading cannot be a date."""
    match = _COMPACT.fullmatch(text)
    if match is None:
        return None
    y, m, d = (int(g) for g in match.groups())
    if y >= OLDEST_YEAR and 1 <= m <= 12:
        return y, m, d
    d2, m2, y2 = int(text[:2]), int(text[2:4]), int(text[4:])
    if y2 >= OLDEST_YEAR and 1 <= m2 <= 12 and 1 <= d2 <= 31:
        return y2, m2, d2
    return y, m, d


def _partial(text: str, today: date) -> Parts | None:
    if match := _YEAR.fullmatch(text):
        return int(match.group(1)), None, None
    if match := _YM.fullmatch(text):
        return int(match.group(1)), int(match.group(2)), None
    if match := _MY.fullmatch(text):
        return int(match.group(2)), int(match.group(1)), None
    return None


def _in_words(text: str, today: date) -> Parts | None:
    """ "3 avril 1971", "1er mai 53", "avril 1971"."""
    match = _WORDS.fullmatch(fold(text))
    if match is None or match.group(2) not in MONTHS:
        return None
    m = MONTHS[match.group(2)]
    d = int(match.group(1)) if match.group(1) else None
    return _full_year(match.group(3), m, d, today), m, d


def _full_year(digits: str, m: int, d: int | None, today: date) -> int:
    """A two-digit year is the latest century that does not put the date in the future."""
    if len(digits) == 4:
        return int(digits)
    year = today.year // 100 * 100 + int(digits)
    if (year, m, d or 1) > (today.year, today.month, today.day):
        year -= 100
    return year


def _checked(y: int | None, m: int | None, d: int | None, today: date) -> BirthDate:
    if y is None:
        return UNREADABLE
    if y < OLDEST_YEAR:
        return BirthDate(None, None, None, None, "none", f"année improbable ({y})")
    if _in_future(y, m, d, today):
        return BirthDate(None, None, None, None, "none", "date dans le futur")
    if m is not None and not 1 <= m <= 12:
        shown = f"{d:02d}/{m:02d}/{y}" if d is not None else f"{m:02d}/{y}"
        return BirthDate(None, y, None, None, "year", f"date impossible ({shown})")
    if d is not None and m is not None and not _exists(y, m, d):
        return BirthDate(None, y, m, None, "month", f"date impossible ({d:02d}/{m:02d}/{y})")
    return _known(y, m, d)


def _in_future(y: int, m: int | None, d: int | None, today: date) -> bool:
    """After today (an impossible month or day counts as its month's or year's start)."""
    if m is None or not 1 <= m <= 12:
        return y > today.year
    day = d if d is not None and _exists(y, m, d) else 1
    return date(y, m, day) > today


def _known(y: int, m: int | None, d: int | None) -> BirthDate:
    if m is None:
        return BirthDate(None, y, None, None, "year", "")
    if d is None:
        return BirthDate(None, y, m, None, "month", "")
    return BirthDate(f"{y:04d}-{m:02d}-{d:02d}", y, m, d, "day", "")


def _exists(y: int, m: int, d: int) -> bool:
    try:
        date(y, m, d)
    except ValueError:
        return False
    return True
