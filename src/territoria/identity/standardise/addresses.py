"""Postal addresses: street number, type and name, flat complement, postcode and commune."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from territoria.identity.standardise.address_terms import (
    ARRONDISSEMENTS,
    ARTICLES,
    COMMUNE_ABBREVIATIONS,
    GROUND_FLOOR,
    NAME_ABBREVIATIONS,
    NUMBER_WORDS,
    POSTAL_BOXES,
    RESIDENCE_WORDS,
    SEPARATE_SUFFIXES,
    STREET_TYPES,
    SUFFIX_WORDS,
    TWO_WORD_STREET_TYPES,
    UNIT_KINDS,
    UNIT_ORDER,
)
from territoria.identity.standardise.text import fold

_MAX_LENGTH = 300  # longer fields are not addresses; only their start is read
_NUMBER = re.compile(r"0*(\d{1,6})(BIS|TER|QUATER|[A-Z])?", re.ASCII)
_DIGITS = re.compile(r"\d{1,6}", re.ASCII)
_UNIT_VALUE = re.compile(r"[A-Z]|[A-Z]?\d{1,5}[A-Z]?", re.ASCII)
_ORDINAL = re.compile(r"0*(\d{1,2})(?:E|EME|ER|ERE|IEME)", re.ASCII)
_POSTCODE = re.compile(r"(?:FR?-?)?(\d{4,5})(?:\.0+)?", re.ASCII)
_ARRONDISSEMENT = re.compile(
    r"(PARIS|LYON|MARSEILLE) 0*(\d{1,2}) ?(?:E|EME|ER|ERE|IEME)?(?: ARRONDISSEMENT| ARRONDT| ARRT| ARR)?"
)
_UNIT_WORDS = frozenset(UNIT_KINDS) | RESIDENCE_WORDS | POSTAL_BOXES | NUMBER_WORDS | GROUND_FLOOR
_CITY = re.compile(r"(PARIS|LYON|MARSEILLE)(?: (\d{1,2}))?")


@dataclass(frozen=True, slots=True)
class Address:
    """A standardised address; every text field folded to upper-case ASCII."""

    number: str
    suffix: str
    street_type: str
    street_name: str
    complement: str
    postcode: str
    commune: str
    problem: str

    @property
    def building_key(self) -> str:
        """``"69001|12B|RUE VICTOR HUGO"``, or "" without a street name or a postcode."""
        if not (self.street_name and self.postcode):
            return ""
        street = f"{self.street_type} {self.street_name}".strip()
        return f"{self.postcode}|{self.number}{self.suffix}|{street}"

    @property
    def dwelling_key(self) -> str:
        """The building key and the flat complement, or "" without a building key."""
        key = self.building_key
        return f"{key}|{self.complement}" if key else ""


@dataclass
class _Complement:
    """Flat markers found so far (first value wins) and other complement text."""

    units: dict[str, str] = field(default_factory=dict)
    others: list[str] = field(default_factory=list)
    joined: bool = False  # a marker was taken from between two words, which now touch

    def add(self, kind: str, value: str) -> None:
        if kind in UNIT_ORDER:
            self.units.setdefault(kind, value)
        else:
            self.others.append(f"{kind} {value}".strip())

    def text(self) -> str:
        parts = [f"{k} {self.units[k]}" for k in UNIT_ORDER if k in self.units]
        return " ".join(parts + self.others)


def standardise_address(
    line: str | None,
    postcode: str | None = None,
    commune: str | None = None,
    complement: str | None = None,
) -> Address:
    """Standardise an address: ``standardise_address("12 bis r. Victor-Hugo", "69001", "Lyon 1er")``
    gives number "12", suffix "B", type "RUE", name "VICTOR HUGO", commune "LYON 1"."""
    pc, problem = _postcode(_text(postcode)[:_MAX_LENGTH])
    town = _commune(_text(commune)[:_MAX_LENGTH])
    tokens = fold(_text(line)[:_MAX_LENGTH]).split()
    if not pc:
        pc, town = _postcode_in_commune(town)
    if not pc:
        tokens, pc, town = _postcode_in_line(tokens, town)
    found = _Complement()
    number, suffix, street_type, name = _street(tokens, found)
    if found.joined:
        number, suffix, street_type, name = _reread(number, suffix, street_type, name, found)
    _read_field(fold(_text(complement)[:_MAX_LENGTH]).split(), found)
    return Address(
        number=number,
        suffix=suffix,
        street_type=street_type,
        street_name=" ".join(NAME_ABBREVIATIONS.get(t, t) for t in name),
        complement=_settled(found.text()) if found.others else found.text(),
        postcode=pc,
        commune=town,
        problem="; ".join(p for p in (problem, _coherence(pc, town)) if p),
    )


def _reread(
    number: str, suffix: str, street_type: str, name: list[str], found: _Complement
) -> tuple[str, str, str, list[str]]:
    """Taking markers out of a line joins their neighbours ("12 RDC BIS" -> "12 BIS"): read
    what is left again until it no longer changes, so that the result is stable."""
    parts = (number, suffix, street_type, name)
    for _ in range(3):
        tokens = [f"{number}{suffix}"] if number else []
        again = _street([*tokens, *street_type.split(), *name], found)
        if again == parts:
            break
        parts = number, suffix, street_type, name = again
    return parts


def _read_field(tokens: list[str], found: _Complement) -> None:
    """A complement field: flat markers, then any other text as it is."""
    found.others += _scan_units(tokens, found, field=True)


def _settled(text: str) -> str:
    """Free text beside flat markers can read differently once joined ("ETAGE N" + "12");
    read the complement again until it no longer changes, so that it is stable."""
    for _ in range(4):
        found = _Complement()
        _read_field(text.split(), found)
        again = found.text()
        if again == text:
            break
        text = again
    return text


def _text(value: str | None) -> str:
    return value if isinstance(value, str) else ""


def _street(tokens: list[str], found: _Complement) -> tuple[str, str, str, list[str]]:
    """(number, suffix, street type, name tokens); complements go to ``found``."""
    tokens = _leading_units(tokens, found)
    number, suffix, tokens = _number(tokens)
    street_type, tokens = _street_type(tokens)
    if not street_type:
        rest = _leading_units(tokens, found)
        found.joined = found.joined or (bool(number) and len(rest) < len(tokens))
        street_type, tokens = _street_type(rest)
    name = _scan_units(tokens, found)
    later = _later_street(name) if not number else None
    if later is None:
        return number, suffix, street_type, name
    # "RESIDENCE LES LILAS 12 RUE X": what comes before the numbered street is a complement
    found.others.append(" ".join([street_type, *name[:later]]).strip())
    number, suffix, rest = _number(name[later:])
    street_type, rest = _street_type(rest)
    return number, suffix, street_type, rest


def _number(tokens: list[str]) -> tuple[str, str, list[str]]:
    """Street number and bis/ter suffix at the start ("N 12", "12B", "12 BIS", "12-14")."""
    if not tokens or not (tokens[0][0].isdigit() or tokens[0] in NUMBER_WORDS):
        return "", "", tokens
    i = 1 if len(tokens) > 1 and tokens[0] in NUMBER_WORDS and tokens[1][:1].isdigit() else 0
    match = _NUMBER.fullmatch(tokens[i]) if i < len(tokens) else None
    if match is None:
        return "", "", tokens
    number, suffix = match.group(1).lstrip("0") or "0", match.group(2) or ""
    suffix = SUFFIX_WORDS.get(suffix, suffix)
    i += 1
    if (
        not suffix
        and i + 1 < len(tokens)
        and _DIGITS.fullmatch(tokens[i])
        and _is_street_type(tokens, i + 1)
    ):
        i += 1  # "12-14 RUE X": the first number of a range
    if not suffix and i < len(tokens):
        nxt = tokens[i]
        if nxt in SUFFIX_WORDS:
            suffix, i = SUFFIX_WORDS[nxt], i + 1
        elif _lone_suffix(tokens, i):
            suffix, i = nxt, i + 1
    return number, suffix, tokens[i:]


def _lone_suffix(tokens: list[str], i: int) -> bool:
    """A lone letter after the number is a suffix before a street type ("12 B BD X"), or
    when it is B or T ("12 B VICTOR HUGO"); otherwise it may be a type ("12 Q PIERRE SCIZE")."""
    token = tokens[i]
    if len(token) != 1 or not token.isalpha():
        return False
    return token in SEPARATE_SUFFIXES or _is_street_type(tokens, i + 1)


def _is_street_type(tokens: list[str], i: int) -> bool:
    return bool(_street_type(tokens[i:])[0])


def _street_type(tokens: list[str]) -> tuple[str, list[str]]:
    if len(tokens) > 1 and (tokens[0], tokens[1]) in TWO_WORD_STREET_TYPES:
        return TWO_WORD_STREET_TYPES[tokens[0], tokens[1]], tokens[2:]
    if tokens and tokens[0] in STREET_TYPES:
        return STREET_TYPES[tokens[0]], tokens[1:]
    return "", tokens


def _later_street(tokens: list[str]) -> int | None:
    """Index of a numbered street inside the tokens ("LES LILAS 12 RUE X" -> 2)."""
    for i in range(1, len(tokens) - 1):
        if _NUMBER.fullmatch(tokens[i]) and _is_street_type(_number(tokens[i:])[2], 0):
            return i
    return None


def _leading_units(tokens: list[str], found: _Complement) -> list[str]:
    """Tokens after the flat markers that open them ("BAT A 12 RUE X")."""
    i = 0
    while (
        tokens[i : i + 1]
        and (tokens[i] in _UNIT_WORDS or tokens[i][0].isdigit())
        and (unit := _unit_at(tokens, i)) is not None
        and unit[0] not in RESIDENCE_WORDS
    ):
        kind, value, i = unit
        found.add(kind, value)
    return tokens[i:]


def _scan_units(tokens: list[str], found: _Complement, *, field: bool = False) -> list[str]:
    """Tokens that are not flat markers; the markers go to ``found``. In a complement field
    a leading "N° 12" is a flat number; in a street name it is not ("ROUTE N 7").

    Taking a marker out joins its neighbours ("BAT RDC 12" -> "BAT 12"), so the tokens left
    are read again until no marker remains: the result reads the same a second time."""
    while _may_hold_units(tokens):
        kept, taken = _scan_once(tokens, found, field)
        if not taken:
            return kept
        tokens = kept
    return tokens


def _may_hold_units(tokens: list[str]) -> bool:
    """A quick test that spares most street names the token-by-token reading."""
    return not _UNIT_WORDS.isdisjoint(tokens) or any(
        t[0].isdigit() and t[-1] in "ER" and _ORDINAL.fullmatch(t) for t in tokens
    )


def _scan_once(tokens: list[str], found: _Complement, field: bool) -> tuple[list[str], bool]:
    kept: list[str] = []
    taken = False
    i = 0
    while i < len(tokens):
        unit = _unit_at(tokens, i, number_first=field)
        if unit is None:
            kept.append(tokens[i])
            i += 1
            continue
        kind, value, i = unit
        found.add("RESIDENCE" if kind in RESIDENCE_WORDS else kind, value)
        found.joined = found.joined or bool(kept and i < len(tokens))
        taken = True
    return kept, taken


def _unit_at(
    tokens: list[str], i: int, *, number_first: bool = False
) -> tuple[str, str, int] | None:
    """(kind, value, next index) of a flat marker starting at ``i``, or None."""
    if i >= len(tokens) or (i and tokens[i - 1] in ARTICLES):
        return None
    token = tokens[i]
    nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
    if token in UNIT_KINDS:
        kind = UNIT_KINDS[token]
        after = tokens[i + 2] if nxt in NUMBER_WORDS and i + 2 < len(tokens) else ""
        return _unit_value(kind, after, i + 2) or _unit_value(kind, nxt, i + 1)
    if token in RESIDENCE_WORDS and nxt:
        end = next((j for j in range(i + 1, len(tokens)) if tokens[j] in UNIT_KINDS), len(tokens))
        return token, " ".join(tokens[i + 1 : end]), end
    if _DIGITS.fullmatch(nxt):
        if token in POSTAL_BOXES:
            return token, nxt, i + 2
        if (i or number_first) and token in NUMBER_WORDS:
            return "APT", nxt.lstrip("0") or "0", i + 2
    return _floor_at(token, nxt, i)


def _floor_at(token: str, nxt: str, i: int) -> tuple[str, str, int] | None:
    """ "RDC" or "3E ETAGE"."""
    if token in GROUND_FLOOR:
        return "ETAGE", "0", i + 1
    if (floor := _ORDINAL.fullmatch(token)) and UNIT_KINDS.get(nxt) == "ETAGE":
        return "ETAGE", str(int(floor.group(1))), i + 2
    return None


def _unit_value(kind: str, value: str, j: int) -> tuple[str, str, int] | None:
    if kind == "ETAGE" and (floor := _ORDINAL.fullmatch(value)):
        value = floor.group(1)
    if not _UNIT_VALUE.fullmatch(value):
        return None
    if value.isdigit():
        value = value.lstrip("0") or "0"
    return kind, value, j + 1


@lru_cache(maxsize=1 << 14)
def _postcode(text: str) -> tuple[str, str]:
    """Five digits ("69 001", "69001.0", "1000" -> "01000") and the problem, if any."""
    raw = "".join(text.split())
    if not raw:
        return "", ""
    match = _POSTCODE.fullmatch(raw.upper())
    if match is None:
        return "", f"code postal invalide ({raw[:20]})"
    return match.group(1).zfill(5), ""


def _postcode_in_commune(town: str) -> tuple[str, str]:
    """A postcode typed with the commune ("69001 LYON 1", "LYON 69001")."""
    words = town.split()
    if len(words) > 1 and len(words[0]) == 5 and words[0].isdigit():
        return words[0], _commune(" ".join(words[1:]))
    if len(words) > 1 and len(words[-1]) == 5 and words[-1].isdigit():
        return words[-1], _commune(" ".join(words[:-1]))
    return "", town


def _postcode_in_line(tokens: list[str], town: str) -> tuple[list[str], str, str]:
    """A postcode (and the commune after it) typed at the end of the address line."""
    for i in range(len(tokens) - 1, 0, -1):
        if len(tokens[i]) == 5 and tokens[i].isdigit() and tokens[i - 1] not in POSTAL_BOXES:
            return tokens[:i], tokens[i], town or _commune(" ".join(tokens[i + 1 :])[:_MAX_LENGTH])
    return tokens, "", town


@lru_cache(maxsize=1 << 14)
def _commune(text: str) -> str:
    """Folded commune: "St-Genis-Laval" -> "SAINT GENIS LAVAL", "Lyon 8ème" -> "LYON 8"."""
    tokens = fold(text).split()
    if "CEDEX" in tokens:
        tokens = tokens[: tokens.index("CEDEX")]
    tokens = [COMMUNE_ABBREVIATIONS.get(t, t) for t in tokens]
    tokens = ["SUR" if t == "S" and 0 < i < len(tokens) - 1 else t for i, t in enumerate(tokens)]
    name = " ".join(tokens)
    match = _ARRONDISSEMENT.fullmatch(name)
    if match and 1 <= int(match.group(2)) <= ARRONDISSEMENTS[match.group(1)][1]:
        return f"{match.group(1)} {int(match.group(2))}"
    return name


@lru_cache(maxsize=1 << 14)
def _coherence(pc: str, town: str) -> str:
    """Lyon, Paris and Marseille: the postcode must match the city and its arrondissement."""
    match = _CITY.fullmatch(town)
    if not (pc and match):
        return ""
    department, count, extra = ARRONDISSEMENTS[match.group(1)]
    problem = f"code postal incohérent avec la commune ({pc} / {town})"
    if not pc.startswith(department):
        return problem
    if match.group(2) is None:
        return ""
    n = int(match.group(2))
    city_codes = {f"{department}0{k:02d}" for k in range(1, count + 1)}
    expected = {f"{department}0{n:02d}", *extra.get(n, ())}
    return problem if pc in city_codes and pc not in expected else ""
