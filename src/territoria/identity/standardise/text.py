"""Text folding and string similarity shared by every standardiser."""

from __future__ import annotations

import unicodedata
from functools import lru_cache

# Letters that NFKD does not decompose into ASCII.
_SPECIAL = {
    "œ": "OE", "Œ": "OE", "æ": "AE", "Æ": "AE", "ß": "SS", "ẞ": "SS", "ø": "O", "Ø": "O",
    "ł": "L", "Ł": "L", "đ": "D", "Đ": "D", "ð": "D", "Ð": "D", "þ": "TH", "Þ": "TH",
    "ı": "I", "ĸ": "K", "ŋ": "N", "Ŋ": "N", "ħ": "H", "Ħ": "H",
}  # fmt: skip

# Code points above this are not remembered by the folding table (keeps it small).
_MEMO_LIMIT = 0x3000
_CACHE_LIMIT = 256
_BOOST_THRESHOLD = 0.7  # longer strings are folded without the result cache


def _fold_char(char: str) -> str:
    """What one character becomes: upper-case ASCII letters/digits, a space, or nothing."""
    if char in _SPECIAL:
        return _SPECIAL[char]
    if char.isascii():
        return char.upper() if char.isalnum() else " "
    decomposed = unicodedata.normalize("NFKD", char)
    kept = "".join(c for c in decomposed if c.isascii() and c.isalnum())
    if kept:
        return kept.upper()
    category = unicodedata.category(char)
    # Combining marks and letters of other scripts vanish; punctuation, symbols, spaces and
    # control characters separate words.
    return "" if category[0] in "LMN" else " "


class _FoldTable(dict[int, str]):
    """A ``str.translate`` table filled on demand, one code point at a time."""

    def __missing__(self, key: int) -> str:
        value = _fold_char(chr(key))
        if key < _MEMO_LIMIT:
            self[key] = value
        return value


_TABLE = _FoldTable()


# ASCII fast path: letters up, digits kept, every other byte a space (same as ``_fold_char``).
_ASCII_FOLD = bytes(
    c - 32 if 97 <= c <= 122 else c if 48 <= c <= 57 or 65 <= c <= 90 else 32 for c in range(256)
)


def _fold(text: str) -> str:
    if text.isascii():
        return " ".join(text.encode("ascii").translate(_ASCII_FOLD).decode("ascii").split())
    return " ".join(text.translate(_TABLE).split())


_fold_cached = lru_cache(maxsize=1 << 16)(_fold)


def fold(text: str | None) -> str:
    """Upper-case ASCII words: ``fold("Élodie-Anne d'Arc") == "ELODIE ANNE D ARC"``."""
    if not isinstance(text, str) or not text:
        return ""
    if len(text) > _CACHE_LIMIT:
        return _fold(text)
    return _fold_cached(text)


def jaro_winkler(a: str, b: str, prefix_weight: float = 0.1) -> float:
    """Jaro-Winkler similarity in [0, 1]: ``jaro_winkler("MARTHA", "MARHTA") ≈ 0.9611``."""
    sim = _jaro(a, b)
    if sim <= _BOOST_THRESHOLD:  # Winkler's rule, also rapidfuzz's: no prefix bonus below 0.7
        return sim
    prefix = 0
    for x, y in zip(a[:4], b[:4], strict=False):
        if x != y:
            break
        prefix += 1
    return sim + prefix * prefix_weight * (1.0 - sim)


def _jaro(a: str, b: str) -> float:
    if a == b:
        return 1.0
    if not a or not b:
        return 0.0
    window = max(max(len(a), len(b)) // 2 - 1, 0)
    used = [False] * len(b)
    matched_a: list[str] = []
    for i, char in enumerate(a):
        for j in range(max(0, i - window), min(len(b), i + window + 1)):
            if not used[j] and b[j] == char:
                used[j] = True
                matched_a.append(char)
                break
    matches = len(matched_a)
    if not matches:
        return 0.0
    matched_b = [b[j] for j in range(len(b)) if used[j]]
    transpositions = sum(x != y for x, y in zip(matched_a, matched_b, strict=True)) // 2
    return (matches / len(a) + matches / len(b) + (matches - transpositions) / matches) / 3.0
