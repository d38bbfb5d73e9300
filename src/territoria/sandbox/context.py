"""What every source writer receives: the population, options, noise and random streams."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from territoria.sandbox.noise import Noiser, NoiseRates
from territoria.sandbox.population import Population
from territoria.sandbox.sinks import CsvSink
from territoria.sandbox.territory import Territory

TRUTH_RECORD_HEADER = ("source", "record_id", "slot", "person_id", "household_id")


@dataclass(frozen=True)
class Options:
    """Volume knobs (defaults keep 1.5 million inhabitants under five minutes)."""

    reference_year: int = 2025
    noise: float = 1.0
    smart_meter_share: float = 0.10
    hourly_days: int = 14
    lift_density: float = 1.0
    traffic_loops: int = 40
    traffic_weeks: int = 52


@dataclass
class SourceResult:
    """Files a source wrote (relative to the output folder), rows per file, invalid rows."""

    source: str
    rows: dict[str, int] = field(default_factory=dict)
    deliberate_invalid: int = 0
    sha256: dict[str, str] = field(default_factory=dict)


@dataclass
class Context:
    population: Population
    territory: Territory
    options: Options
    seed: int
    out: Path
    rates: NoiseRates = field(default_factory=NoiseRates)

    def rng(self, stream: str) -> random.Random:
        """An independent, reproducible random stream per source and purpose."""
        return random.Random(f"territoria-sandbox:{self.seed}:{stream}")

    def noiser(self, stream: str) -> Noiser:
        return Noiser(self.rng(f"{stream}:noise"), self.rates)

    @property
    def year(self) -> int:
        return self.options.reference_year

    @property
    def year_start(self) -> date:
        return date(self.year, 1, 1)

    @property
    def year_end(self) -> date:
        return date(self.year, 12, 31)

    def truth_sink(self, source: str) -> CsvSink:
        """A part of ``truth/records.csv`` for one source; parts are joined in source order."""
        folder = self.out / "truth"
        folder.mkdir(exist_ok=True)
        return CsvSink(folder / f".records_{source}.part", TRUTH_RECORD_HEADER)
