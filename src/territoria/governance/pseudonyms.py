"""Per-domain keyed pseudonyms of identifiers, and their normalisation before hashing.

Each pseudonymisation domain (a service, a purpose, an operator exchange) sees its own
pseudonym for the same person: HMAC-SHA-256 with one secret key per domain (EDPB guidelines
01/2025; AEPD/EDPS on hashing). Plain hashes of phone numbers or birth dates fall to a
dictionary; keyed ones do not, and two domains' pseudonyms cannot be joined without both keys.
Every pseudonym carries the id of the key it was computed under, so a rotated key keeps old
pseudonyms resolvable until it is retired. The keys themselves, and their custody, are in
``keyring.py`` (re-exported here); ``secret_forms`` gives a test the forms to grep logs and
exports for.
"""

from __future__ import annotations

import base64
import hmac
import re
import unicodedata
from collections.abc import Callable, Iterable
from datetime import date
from typing import Literal

from territoria.core.errors import GovernanceError
from territoria.governance.keyring import (
    _EMPTY,
    DOMAIN_PATTERN,
    KEY_BYTES,
    KEYS_ENV,
    KeyInfo,
    Keyring,
    KeyStatus,
    check_domain,
)

__all__ = [
    "DOMAIN_PATTERN",
    "KEYS_ENV",
    "KEY_BYTES",
    "NORMALISATION_VERSION",
    "PSEUDONYM_CHARS",
    "_EMPTY",
    "IdentifierKind",
    "KeyInfo",
    "KeyStatus",
    "Keyring",
    "Pseudonymiser",
    "domain_tag",
    "normalise_identifier",
    "secret_forms",
]

PSEUDONYM_CHARS = 26  # base-32 characters kept from the 256-bit MAC: 130 bits
NORMALISATION_VERSION = 1

IdentifierKind = Literal["phone", "email", "date", "text"]


def domain_tag(domain: str) -> str:
    """The readable tag a pseudonym starts with: ``domain_tag("library") == "LIB"``."""
    return check_domain(domain).replace("_", "")[:3].upper()


def secret_forms(keyring: Keyring) -> list[str]:
    """Every key in the usual text forms, so a test can grep logs and exports for them."""
    forms: list[str] = []
    for domain in keyring.domains():
        for kid in keyring.kids(domain):
            key = keyring.key(domain, kid)
            b64, url = base64.b64encode(key).decode(), base64.urlsafe_b64encode(key).decode()
            forms += [key.hex(), key.hex().upper(), b64, b64.rstrip("="), url, url.rstrip("=")]
            forms.append(repr(key)[2:-1])
    return forms


# -- pseudonyms ----------------------------------------------------------------------------


_B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"  # RFC 4648
_B32_PAIRS = [a + b for a in _B32 for b in _B32]  # 10 bits -> 2 characters


def _base32_130(mac: bytes) -> str:
    """``base64.b32encode(mac)[:26]``, five times faster on Python 3.11 (pure-Python there)."""
    n = int.from_bytes(mac[:17], "big") >> 6  # the first 130 bits
    t = _B32_PAIRS
    return (
        t[n >> 120] + t[(n >> 110) & 1023] + t[(n >> 100) & 1023] + t[(n >> 90) & 1023]
        + t[(n >> 80) & 1023] + t[(n >> 70) & 1023] + t[(n >> 60) & 1023] + t[(n >> 50) & 1023]
        + t[(n >> 40) & 1023] + t[(n >> 30) & 1023] + t[(n >> 20) & 1023] + t[(n >> 10) & 1023]
        + t[n & 1023]
    )  # fmt: skip


class _KeyCache:
    """Pseudonyms already computed under one (domain, kid), both ways."""

    __slots__ = ("_mac", "forward", "key", "prefix", "reverse")

    def __init__(self, prefix: str, key: bytes) -> None:
        self.prefix = prefix
        self.key = key
        self._mac = hmac.new(key, digestmod="sha256")  # keyed once, copied per value
        self.forward: dict[str, str] = {}
        self.reverse: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"<pseudonymes {self.prefix}… : {len(self.forward)} en cache>"

    def add(self, value: str) -> str:
        if not isinstance(value, str):
            raise GovernanceError(
                f"seul un texte peut être pseudonymisé, pas {type(value).__name__}",
                code="value_invalid",
            )
        mac = self._mac.copy()
        mac.update(value.encode("utf-8", "surrogatepass"))
        pseudonym = self.prefix + _base32_130(mac.digest())
        self.forward[value] = pseudonym
        self.reverse[pseudonym] = value
        return pseudonym


class Pseudonymiser:
    """Per-domain pseudonyms ``TAG.kid.<26 base-32>`` of values, and their resolution."""

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring
        self._caches: dict[tuple[str, str], _KeyCache] = {}

    def __repr__(self) -> str:
        return f"Pseudonymiser({self.keyring!r})"

    def pseudonym(self, domain: str, value: str) -> str:
        """The pseudonym of ``value`` in ``domain`` under the domain's current key."""
        kid, key = self.keyring.current(domain)
        cache = self._cache(domain, kid, key)
        found = cache.forward.get(value)
        return found if found is not None else cache.add(value)

    def pseudonyms(self, domain: str, values: Iterable[str]) -> dict[str, str]:
        """value -> pseudonym for many values (one key look-up)."""
        kid, key = self.keyring.current(domain)
        cache = self._cache(domain, kid, key)
        forward = cache.forward
        return {v: forward[v] if v in forward else cache.add(v) for v in values}

    def resolve(self, domain: str, pseudonym: str, candidates: Iterable[str]) -> str | None:
        """The candidate whose pseudonym (under the kid it names) is ``pseudonym``, or None."""
        parts = pseudonym.split(".") if isinstance(pseudonym, str) else []
        if len(parts) != 3 or parts[0] != domain_tag(domain) or len(parts[2]) != PSEUDONYM_CHARS:
            return None
        try:
            key = self.keyring.key(domain, parts[1])
        except GovernanceError as exc:
            if exc.code != "key_unknown":
                raise
            self._caches.pop((domain, parts[1]), None)
            return None
        cache = self._cache(domain, parts[1], key)
        return _search(cache, pseudonym, candidates)

    def _cache(self, domain: str, kid: str, key: bytes) -> _KeyCache:
        cache = self._caches.get((domain, kid))
        if cache is None or not hmac.compare_digest(cache.key, key):
            cache = _KeyCache(f"{domain_tag(domain)}.{kid}.", key)
            self._caches[(domain, kid)] = cache
        return cache


def _search(cache: _KeyCache, pseudonym: str, candidates: Iterable[str]) -> str | None:
    """Find ``pseudonym`` among ``candidates``, computing only pseudonyms not yet cached.

    A pseudonym already in the reverse map costs a membership test (O(1) for a set or a
    mapping). Otherwise every candidate never seen is pseudonymised once, so that a later call
    with the same population is a dictionary look-up; a miss costs one set difference.
    """
    known = cache.reverse.get(pseudonym)
    if known is not None:
        return known if known in candidates else None
    pool = candidates if isinstance(candidates, set | frozenset) else set(candidates)
    for value in pool.difference(cache.forward):
        if isinstance(value, str):
            cache.add(value)
    return cache.reverse.get(pseudonym)


# -- normalisation before hashing (PS-4) ---------------------------------------------------

# Letters that lose nothing but their accent yet have no Unicode decomposition.
_SPECIAL = str.maketrans(
    {"œ": "oe", "æ": "ae", "ø": "o", "ł": "l", "đ": "d", "ð": "d", "þ": "th", "ı": "i",
     "ħ": "h", "ŋ": "n", "ĸ": "k"}
)  # fmt: skip
_TRUNK_ZERO = re.compile(r"\(\s*0\s*\)")
_DIGITS = re.compile(r"[0-9]")
_FRENCH = re.compile(r"0[1-9][0-9]{8}")
_OVERSEAS = ("262", "590", "594", "596")  # Réunion and Mayotte, Guadeloupe, Guyane, Martinique
_TIME = r"(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
_YMD = re.compile(rf"(\d{{4}})[-/. ](\d{{1,2}})[-/. ](\d{{1,2}}){_TIME}", re.ASCII)
_DMY = re.compile(rf"(\d{{1,2}})[-/. ](\d{{1,2}})[-/. ](\d{{4}}){_TIME}", re.ASCII)
_COMPACT = re.compile(r"(\d{4})(\d{2})(\d{2})", re.ASCII)
_IN_WORDS = re.compile(r"(?:le )?(\d{1,2})(?:er|e)? ([a-z]+)\.? (\d{4})", re.ASCII)
_MONTHS = {
    "janvier": 1, "janv": 1, "jan": 1, "fevrier": 2, "fevr": 2, "fev": 2, "mars": 3, "avril": 4,
    "avr": 4, "mai": 5, "juin": 6, "juillet": 7, "juil": 7, "aout": 8, "septembre": 9, "sept": 9,
    "sep": 9, "octobre": 10, "oct": 10, "novembre": 11, "nov": 11, "decembre": 12, "dec": 12,
}  # fmt: skip


def _folded(value: str) -> str:
    """NFKC, case-folded, accents removed (letters, digits and other characters kept)."""
    text = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", value).casefold())
    return "".join(c for c in text if not unicodedata.combining(c)).translate(_SPECIAL)


def _text(value: str) -> str:
    """Letters and digits only: "Jean-Pierre  D'Élan" and "JEAN PIERRE DELAN" agree."""
    if value.isascii():
        return "".join(c for c in value.lower() if c.isalnum())
    return "".join(c for c in _folded(value) if unicodedata.category(c)[0] in "LN")


def _email(value: str) -> str:
    """Lower-case address without spaces, brackets or "mailto:" (accents kept: EAI)."""
    text = value
    for _ in range(8):  # until stable: folding may uncover another bracket or prefix
        previous, text = text, _email_once(text)
        if text == previous:
            break
    return text


def _email_once(value: str) -> str:
    text = unicodedata.normalize("NFKC", value).casefold()
    text = unicodedata.normalize("NFKC", "".join(text.split()))
    if (start := text.rfind("<")) >= 0 and (end := text.find(">", start)) > start:
        text = text[start + 1 : end]
    return text.strip(".,;:'\"<>").removeprefix("mailto:")


def _phone(value: str) -> str:
    """French numbers as 0XXXXXXXXX (from +33, 0033, 33…, overseas +262/590/594/596)."""
    text = _TRUNK_ZERO.sub("", unicodedata.normalize("NFKC", value))
    digits = "".join(_DIGITS.findall(text))
    if not digits:
        return _text(value)
    if text.lstrip().startswith("+"):
        return _international(digits) or "+" + digits
    if digits.startswith("00") and len(digits) != 10:
        return _international(digits[2:]) or digits
    if len(digits) == 11 and digits.startswith("33"):
        return _french(digits[2:]) or digits
    if len(digits) == 9 and digits[0] != "0":  # leading zero lost in a spreadsheet
        return "0" + digits if _FRENCH.fullmatch("0" + digits) else digits
    return digits


def _international(digits: str) -> str | None:
    if digits.startswith("33"):
        return _french(digits[2:])
    if digits[:3] in _OVERSEAS and len(digits) == 12:
        return "0" + digits[3:]
    return None


def _french(subscriber: str) -> str | None:
    national = subscriber if subscriber.startswith("0") else "0" + subscriber
    return national if _FRENCH.fullmatch(national) else None


def _date(value: str) -> str:
    """YYYY-MM-DD when the text is a whole date with a four-digit year, else its text form."""
    text = unicodedata.normalize("NFKC", value).strip()
    parts: tuple[int, int, int] | None = None
    if match := _YMD.fullmatch(text):
        parts = (int(match.group(1)), int(match.group(2)), int(match.group(3)))
    elif match := _DMY.fullmatch(text):
        parts = (int(match.group(3)), int(match.group(2)), int(match.group(1)))
    elif match := _IN_WORDS.fullmatch(" ".join(re.split(r"[^a-z0-9.]+", _folded(text))).strip()):
        month = _MONTHS.get(match.group(2), 0)
        parts = (int(match.group(3)), month, int(match.group(1)))
    iso = _iso(parts)
    if iso is not None:
        return iso
    folded = _text(value)
    if match := _COMPACT.fullmatch(folded):
        iso = _iso((int(match.group(1)), int(match.group(2)), int(match.group(3))))
    return iso or folded


def _iso(parts: tuple[int, int, int] | None) -> str | None:
    if parts is None:
        return None
    try:
        return date(*parts).isoformat()
    except ValueError:
        return None


_NORMALISERS: dict[str, Callable[[str], str]] = {
    "phone": _phone,
    "email": _email,
    "date": _date,
    "text": _text,
}


def normalise_identifier(kind: IdentifierKind, value: str) -> str:
    """The versioned form of an identifier that is hashed (``NORMALISATION_VERSION``).

    ``normalise_identifier("phone", "+33 6 12 34 56 78") == "0612345678"``;
    ``normalise_identifier("date", "03/04/1971") == "1971-04-03"``. An empty result means
    there is nothing to pseudonymise.
    """
    normaliser = _NORMALISERS.get(kind)
    if normaliser is None:
        raise GovernanceError(
            f"type d'identifiant inconnu : {kind!r}",
            code="identifier_kind_invalid",
            expected=", ".join(_NORMALISERS),
        )
    if not isinstance(value, str):
        raise GovernanceError(
            f"un identifiant se normalise depuis un texte, pas {type(value).__name__}",
            code="value_invalid",
        )
    return normaliser(value)
