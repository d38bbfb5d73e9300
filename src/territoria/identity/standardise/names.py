"""Family and given names: folding, civilities, birth names, given-name variants."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources

from territoria.identity.standardise.text import fold, jaro_winkler

try:  # rapidfuzz is a dependency of the linker; the pure-Python fallback gives the same values
    from rapidfuzz.distance import JaroWinkler as _RapidJaroWinkler

    _similarity: Callable[[str, str], float] = _RapidJaroWinkler.similarity
except ImportError:  # pragma: no cover - depends on the environment
    _similarity = jaro_winkler

# Folded civility -> sex ("" for a couple or several people).
CIVILITIES: dict[str, str] = {
    "M": "M", "MR": "M", "MONSIEUR": "M",
    "MME": "F", "MADAME": "F", "MLLE": "F", "MELLE": "F", "MADEMOISELLE": "F",
    "MM": "", "MMES": "", "MLLES": "",
}  # fmt: skip
_CIVILITY_WORDS = frozenset(CIVILITIES)
_GIVEN_CIVILITIES = _CIVILITY_WORDS - {"M"}
# "X née Y": X in use, Y birth name. "X épouse Y": X birth name, Y in use.
_BORN = frozenset({"NEE"})
_MARRIED = frozenset({"EPOUSE", "EPSE", "EP", "EPOUX", "VEUVE", "VVE", "VEUF"})
MARKERS = _BORN | _MARRIED
_NEEDS_CLEANING = re.compile(r"[,;/]|\s-|-\s")
_LIST_SEPARATORS = re.compile(r"[,;/]")
_SPACED_HYPHEN = re.compile(r"\s*-\s*")
_COMPARE_LIMIT = 100  # longer given names are garbage; do not spend quadratic time on them


@dataclass(frozen=True, slots=True)
class PersonName:
    """A person's names, folded to upper-case ASCII (see ``standardise_name``)."""

    family_name: str
    given_name: str
    first_given_name: str
    given_name_key: str
    birth_name: str
    sex_hint: str


def standardise_name(family: str | None, given: str | None, birth: str | None = None) -> PersonName:
    """Standardised names: ``standardise_name("DUPONT épouse MARTIN", "Claire")`` gives
    family ``"MARTIN"``, birth name ``"DUPONT"``."""
    in_use, born, sex = _family_field(fold(family).split())
    explicit_birth = _birth_field(fold(birth).split()) if birth else ""
    names, given_sex = _given_names(given)
    first = names[0] if names else ""
    return PersonName(
        family_name=in_use or born,
        given_name=" ".join(names),
        first_given_name=first,
        given_name_key=given_name_key(first),
        birth_name=explicit_birth or born,
        sex_hint=sex or given_sex,
    )


def _family_field(tokens: list[str]) -> tuple[str, str, str]:
    """(name in use, birth name, sex hint) of a family-name field."""
    if not tokens or (tokens[0] not in CIVILITIES and MARKERS.isdisjoint(tokens)):
        return " ".join(tokens), "", ""
    left, marker, right = _split_marker(tokens)
    left, sex = _strip_civility(left)
    right, _ = _strip_civility(right)
    if marker in _MARRIED:
        left, right = right, left
    return " ".join(left), " ".join(right), sex


def _birth_field(tokens: list[str]) -> str:
    """A birth-name field: "NEE DUPONT" -> "DUPONT"."""
    while tokens and tokens[0] in MARKERS:
        tokens = tokens[1:]
    return " ".join(_split_marker(tokens)[0])


def _split_marker(tokens: list[str]) -> tuple[list[str], str, list[str]]:
    """Tokens before the first marker, the marker, tokens up to the next marker."""
    for i, token in enumerate(tokens):
        if token in MARKERS:
            return tokens[:i], token, _split_marker(tokens[i + 1 :])[0]
    return tokens, "", []


def _strip_civility(tokens: list[str]) -> tuple[list[str], str]:
    """Leading civilities removed ("M ET MME DUPONT" -> couple, no sex hint)."""
    sexes: list[str] = []
    i = 0
    while i < len(tokens) - 1 and tokens[i] in CIVILITIES:
        sexes.append(CIVILITIES[tokens[i]])
        i += 1
        if tokens[i] == "ET" and i < len(tokens) - 1 and tokens[i + 1] in CIVILITIES:
            i += 1
    if i == len(tokens) or tokens[i] == "ET":  # nothing but civilities: keep the text
        return tokens, ""
    return tokens[i:], sexes[0] if len(sexes) == 1 else ""


def _given_names(given: str | None) -> tuple[list[str], str]:
    """Folded given names (a hyphenated compound stays one name) and a civility's sex.

    A leading civility word is dropped; a bare "M" only when typed "M." as a word of its own
    ("M.-Claude" is Marie-Claude), so that standardising the output again changes nothing."""
    if not isinstance(given, str) or not given:
        return [], ""
    if _NEEDS_CLEANING.search(given):  # "Jean - Pierre, Marie"
        given = _LIST_SEPARATORS.sub(" ", _SPACED_HYPHEN.sub("-", given))
    chunks = given.split()
    names = [f for f in map(fold, chunks) if f]
    if not names or names[0].partition(" ")[0] not in _CIVILITY_WORDS:
        return names, ""
    sexes: list[str] = []
    if len(names) > 1 and chunks[0].upper() == "M.":
        names, sexes = names[1:], ["M"]
    while len(names) > 1 or " " in names[0]:
        word, _, rest = names[0].partition(" ")
        if word not in _GIVEN_CIVILITIES:
            break
        sexes.append(CIVILITIES[word])
        names = [rest, *names[1:]] if rest else names[1:]
    return names, sexes[0] if len(sexes) == 1 else ""


@cache
def variant_table() -> tuple[dict[str, str], dict[str, str]]:
    """(variant -> key, spaceless form -> key), read once from the packaged table."""
    data = resources.files("territoria.identity.standardise") / "data/given_name_variants.csv"
    direct: dict[str, str] = {}
    for row in csv.DictReader(io.StringIO(data.read_text(encoding="utf-8"))):
        variant, key = fold(row["variant"]), fold(row["key"])
        if variant and key:
            direct[variant] = key
            direct.setdefault(key, key)
    spaceless = {name.replace(" ", ""): key for name, key in direct.items()}
    return direct, spaceless


def given_name_key(first_given_name_folded: str) -> str:
    """Canonical variant of a folded first given name: ``"MATTHIEU"`` -> ``"MATHIEU"``."""
    if not isinstance(first_given_name_folded, str):
        return ""
    name = first_given_name_folded
    direct, spaceless = variant_table()
    found = direct.get(name)
    if found is None:
        found = spaceless.get(name.replace(" ", ""), name)
    return found


def names_compatible(a: str, b: str) -> bool:
    """True when two given names can be one person's (same key, compound prefix, close)."""
    x, y = fold(a)[:_COMPARE_LIMIT], fold(b)[:_COMPARE_LIMIT]
    if not x or not y:
        return False
    if x == y:
        return True
    kx, ky = given_name_key(x), given_name_key(y)
    if kx == ky or _compound_prefix(kx, ky) or _compound_prefix(x, y):
        return True
    return _similarity(x, y) >= 0.9


def _compound_prefix(x: str, y: str) -> bool:
    """One name is the start of the other, word for word ("JEAN" and "JEAN PIERRE")."""
    short, long = (x, y) if len(x) <= len(y) else (y, x)
    return long.startswith(short + " ")
