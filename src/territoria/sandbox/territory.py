"""The fictitious territory: real communes, synthetic streets, buildings and dwellings."""

from __future__ import annotations

import bisect
import csv
import io
import random
from dataclasses import dataclass, field
from importlib import resources

STREET_TYPES: tuple[tuple[str, float], ...] = (
    ("rue", 55), ("avenue", 10), ("boulevard", 4), ("place", 5), ("chemin", 8),
    ("impasse", 6), ("allée", 5), ("quai", 2), ("cours", 2), ("montée", 3),
)  # fmt: skip
_PEOPLE = [
    "Victor Hugo",
    "Jean Jaurès",
    "Louis Pasteur",
    "Jean Moulin",
    "Émile Zola",
    "Charles de Gaulle",
    "Gambetta",
    "Voltaire",
    "Paul Bert",
    "Marie Curie",
    "Pierre Curie",
    "Anatole France",
    "Jules Ferry",
    "Édouard Herriot",
    "Antoine de Saint-Exupéry",
    "Albert Camus",
    "Lamartine",
    "George Sand",
    "Simone Veil",
    "Jean Macé",
    "Ampère",
    "Claude Bernard",
    "Auguste Comte",
    "Aristide Briand",
    "Lumière",
    "Paul Santy",
    "Berthelot",
    "Garibaldi",
    "Gabriel Péri",
    "Henri Barbusse",
    "Danton",
    "Marcel Pagnol",
    "Lucie Aubrac",
    "Jacquard",
    "Professeur Calmette",
    "Félix Faure",
    "Pierre Brossolette",
    "Molière",
    "Frédéric Mistral",
    "Guillaume Apollinaire",
    "Olympe de Gouges",
    "Joséphine Baker",
]
_PLACES = [
    "de la République",
    "de la Liberté",
    "de la Paix",
    "du Stade",
    "de l'Église",
    "de la Mairie",
    "de la Gare",
    "du Moulin",
    "des Écoles",
    "du Château",
    "de la Fontaine",
    "du Lavoir",
    "des Vignes",
    "du Plateau",
    "de la Croix",
    "du Parc",
    "des Jardins",
    "de Verdun",
    "du 8 Mai 1945",
    "du 11 Novembre",
    "de la Source",
    "des Carrières",
    "du Bourg",
    "de la Côte",
    "des Sablons",
    "du Rhône",
    "de la Saône",
    "des Pins",
    "de Bourgogne",
    "de la Poste",
    "du Marché",
    "des Prés",
    "de la Forge",
    "du Vallon",
]
_TREES = [
    "des Tilleuls",
    "des Acacias",
    "des Platanes",
    "des Marronniers",
    "des Lilas",
    "des Érables",
    "des Peupliers",
    "des Chênes",
    "des Cerisiers",
    "des Glycines",
    "des Saules",
    "des Charmes",
    "des Noyers",
    "des Mimosas",
    "des Cèdres",
    "des Bouleaux",
    "des Hêtres",
    "des Frênes",
]
_BUILDING_LETTERS = "ABCDEFGH"


@dataclass(frozen=True, slots=True)
class Commune:
    code_insee: str
    name: str
    population: int
    postcodes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Street:
    street_type: str
    name: str
    postcode: str
    commune: Commune

    @property
    def label(self) -> str:
        return f"{self.street_type} {self.name}"


@dataclass(frozen=True, slots=True)
class Building:
    building_id: str
    number: int
    suffix: str  # "", "bis" or "ter"
    street: Street
    collective: bool
    flats: int
    wings: int


@dataclass(frozen=True, slots=True)
class Dwelling:
    """A house or a flat: where a household lives."""

    dwelling_id: str
    building: Building
    wing: str  # "" or "B" for "Bât. B"
    flat: int  # 0 for a house

    @property
    def street_line(self) -> str:
        b = self.building
        suffix = f" {b.suffix}" if b.suffix else ""
        return f"{b.number}{suffix} {b.street.label}"

    @property
    def complement(self) -> str:
        parts = []
        if self.wing:
            parts.append(f"Bât. {self.wing}")
        if self.flat:
            parts.append(f"Apt {self.flat}")
        return " ".join(parts)

    @property
    def commune(self) -> Commune:
        return self.building.street.commune

    @property
    def postcode(self) -> str:
        return self.building.street.postcode


def load_communes() -> list[Commune]:
    """The 66 communes and Lyon arrondissements shipped in ``data/communes.csv``."""
    text = (resources.files("territoria.sandbox") / "data" / "communes.csv").read_text("utf-8")
    return [
        Commune(
            r["code_insee"], r["nom"], int(r["population"]), tuple(r["codes_postaux"].split("|"))
        )
        for r in csv.DictReader(io.StringIO(text))
    ]


def _street_names(rng: random.Random, count: int) -> list[tuple[str, str]]:
    types = [t for t, _ in STREET_TYPES]
    weights = [w for _, w in STREET_TYPES]
    pool = [*_PEOPLE, *_PLACES, *_TREES]
    seen: set[tuple[str, str]] = set()
    names: list[tuple[str, str]] = []
    attempts = 0
    while len(names) < count:
        attempts += 1
        street_type = rng.choices(types, weights)[0]
        name = rng.choice(pool)
        if attempts > count * 20:  # pool exhausted in a big commune: number the extras
            name = f"{name} {len(names) + 1}"
        if (street_type, name) not in seen:
            seen.add((street_type, name))
            names.append((street_type, name))
    return names


@dataclass
class CommuneStock:
    """Streets of one commune and the buildings created so far, filled household by household."""

    commune: Commune
    streets: list[Street]
    collective_share: float
    next_numbers: dict[int, int] = field(default_factory=dict)
    open_building: Building | None = None
    open_flats: list[tuple[str, int]] = field(default_factory=list)
    counter: int = 0

    def _new_building(self, rng: random.Random, collective: bool) -> Building:
        street_index = rng.randrange(len(self.streets))
        number = self.next_numbers.get(street_index, rng.randint(1, 6))
        self.next_numbers[street_index] = number + rng.choice((1, 2, 2, 2, 4))
        roll = rng.random()
        suffix = "bis" if roll < 0.04 else "ter" if roll < 0.05 else ""
        self.counter += 1
        flats = rng.choice((4, 6, 8, 12, 16, 20, 24, 30, 40, 60)) if collective else 1
        wings = 1 if flats < 20 or rng.random() < 0.6 else rng.randint(2, 4)
        building_id = f"B{self.commune.code_insee}{self.counter:06d}"
        return Building(
            building_id, number, suffix, self.streets[street_index], collective, flats, wings
        )

    def new_dwelling(self, rng: random.Random) -> Dwelling:
        if self.open_flats and self.open_building is not None:
            wing, flat = self.open_flats.pop()
            return self._dwelling(self.open_building, wing, flat)
        collective = rng.random() < self.collective_share
        building = self._new_building(rng, collective)
        if not collective:
            return self._dwelling(building, "", 0)
        per_wing = -(-building.flats // building.wings)
        flats = [
            (
                _BUILDING_LETTERS[w] if building.wings > 1 else "",
                w * 100 + f + 1 if building.wings > 1 else f + 1,
            )
            for w in range(building.wings)
            for f in range(per_wing)
        ]
        flats.reverse()
        self.open_building, self.open_flats = building, flats
        wing, flat = self.open_flats.pop()
        return self._dwelling(building, wing, flat)

    def _dwelling(self, building: Building, wing: str, flat: int) -> Dwelling:
        suffix = f"-{wing}{flat}" if flat else ""
        return Dwelling(f"D{building.building_id[1:]}{suffix}", building, wing, flat)


@dataclass
class Territory:
    """Communes with population weights, each with its street stock."""

    communes: list[Commune]
    stocks: list[CommuneStock]
    cumulative: list[float]

    def pick_stock(self, rng: random.Random) -> CommuneStock:
        index = bisect.bisect_right(self.cumulative, rng.random() * self.cumulative[-1])
        return self.stocks[min(index, len(self.stocks) - 1)]


def build_territory(rng: random.Random, population: int) -> Territory:
    """Streets scaled to the requested population (about one street per 120 inhabitants)."""
    communes = load_communes()
    total = sum(c.population for c in communes)
    stocks: list[CommuneStock] = []
    cumulative: list[float] = []
    running = 0.0
    for commune in communes:
        share = commune.population / total
        n_streets = max(8, int(population * share / 120))
        dense = commune.code_insee.startswith("6938") or commune.population > 40000
        streets = [
            Street(t, n, rng.choice(commune.postcodes), commune)
            for t, n in _street_names(rng, n_streets)
        ]
        stocks.append(CommuneStock(commune, streets, 0.9 if dense else 0.55))
        running += share
        cumulative.append(running)
    return Territory(communes, stocks, cumulative)
