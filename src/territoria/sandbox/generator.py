"""``generate``: the whole sandbox territory, its service exports, truth and manifest."""

from __future__ import annotations

import gc
import hashlib
import json
import multiprocessing
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from territoria.sandbox import ccas, leisure, school, traffic, truth, waste, water
from territoria.sandbox.context import Context, Options, SourceResult
from territoria.sandbox.names import name_bank
from territoria.sandbox.noise import NoiseRates
from territoria.sandbox.population import build_population
from territoria.sandbox.territory import build_territory

GENERATOR = "territoria-sandbox"
MANIFEST_VERSION = 1
SOURCES = (
    "water_subscribers", "water_readings", "school_enrolments", "ccas_aid", "library_members",
    "transport_passes", "waste_bins", "waste_lifts", "traffic_counts",
)  # fmt: skip
_LABELS = {
    "water_subscribers": "Abonnés eau", "water_readings": "Relevés de compteurs",
    "school_enrolments": "Inscriptions scolaires", "ccas_aid": "Aides du CCAS",
    "library_members": "Lecteurs des bibliothèques", "transport_passes": "Abonnements transport",
    "waste_bins": "Bacs à déchets", "waste_lifts": "Levées de bacs",
    "traffic_counts": "Comptages routiers",
}  # fmt: skip


@dataclass(frozen=True)
class Manifest:
    """What ``generate`` wrote: ``data`` is the content of ``manifest.json``."""

    path: Path
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def sources(self) -> dict[str, list[str]]:
        result: dict[str, list[str]] = self.data["sources"]
        return result

    def file(self, source: str) -> Path:
        """Path of the (first) file of a source."""
        return self.path.parent / self.sources[source][0]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _writers(ctx: Context) -> dict[str, Callable[[], SourceResult]]:
    plan = water.plan_water(ctx)
    bins = waste.plan_bins(ctx)
    writers: dict[str, Callable[[], SourceResult]] = {
        "water_subscribers": lambda: water.write_subscribers(ctx, plan),
        "water_readings": lambda: water.write_readings(ctx, plan),
        "school_enrolments": lambda: school.write_school(ctx),
        "ccas_aid": lambda: ccas.write_ccas(ctx),
        "library_members": lambda: leisure.write_library(ctx),
        "transport_passes": lambda: leisure.write_transport(ctx),
        "waste_bins": lambda: waste.write_bins(ctx, bins),
        "waste_lifts": lambda: waste.write_lifts(ctx, bins),
        "traffic_counts": lambda: traffic.write_traffic(ctx),
        "truth": lambda: _write_truth(ctx),
    }
    return {task: _hashed(ctx, write) for task, write in writers.items()}


# Heaviest first, so that two workers finish together.
_ORDER = (
    "water_readings", "waste_lifts", "school_enrolments", "transport_passes", "traffic_counts",
    "truth", "library_members", "water_subscribers", "ccas_aid", "waste_bins",
)  # fmt: skip
_FORKED: dict[str, Callable[[], SourceResult]] = {}


def _run_forked(task: str) -> SourceResult:
    return _FORKED[task]()


def _hashed(ctx: Context, write: Callable[[], SourceResult]) -> Callable[[], SourceResult]:
    """The writer, then the digest of each file it wrote (computed where it was written)."""

    def run() -> SourceResult:
        result = write()
        for name in result.rows:
            if not name.startswith("truth/"):
                result.sha256[name] = _sha256(ctx.out / name)
        return result

    return run


def _run_all(
    writers: dict[str, Callable[[], SourceResult]], workers: int, done: Callable[[str], None]
) -> dict[str, SourceResult]:
    """Run every writer, in forked workers when asked and possible (outputs do not depend on it)."""
    results: dict[str, SourceResult] = {}
    if workers > 1 and "fork" in multiprocessing.get_all_start_methods():
        _FORKED.clear()
        _FORKED.update(writers)
        gc.collect()
        gc.freeze()  # keep the population's pages shared with the workers
        try:
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                for result in pool.imap_unordered(_run_forked, _ORDER):
                    results[result.source] = result
                    done(result.source)
        finally:
            gc.unfreeze()
            _FORKED.clear()
        return results
    for task in _ORDER:
        results[task] = writers[task]()
        done(task)
    return results


def generate(
    population: int,
    seed: int,
    out: Path,
    *,
    progress: bool = False,
    options: Options | None = None,
    noise: float = 1.0,
    workers: int = 2,
) -> Manifest:
    """Write a fictitious métropole of ``population`` inhabitants into ``out``.

    The same ``seed`` (and options) always gives the same bytes. ``noise`` multiplies every
    rate of ``NoiseRates`` (0 for clean files). ``workers`` forked processes write the files
    (where the platform can fork); the bytes do not depend on it.

    >>> manifest = generate(500, 42, Path("/tmp/bac-a-sable"))  # doctest: +SKIP
    >>> manifest.sources["ccas_aid"]  # doctest: +SKIP
    ['ccas_aid.csv']
    """
    if population < 1:
        raise ValueError("population must be positive")
    options = options or Options(noise=noise)
    out.mkdir(parents=True, exist_ok=True)
    (out / "truth").mkdir(exist_ok=True)
    console = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(), console=console, disable=not progress, transient=False,
    ) as bar:  # fmt: skip
        task = bar.add_task("Population", total=len(_ORDER) + 3)
        territory = build_territory(
            random.Random(f"territoria-sandbox:{seed}:territory"), population
        )
        people = build_population(
            random.Random(f"territoria-sandbox:{seed}:population"), territory, name_bank(),
            population, options.reference_year,
        )  # fmt: skip
        ctx = Context(people, territory, options, seed, out, NoiseRates().scaled(options.noise))
        bar.update(task, advance=1, description="Plans eau et déchets")
        writers = _writers(ctx)
        bar.advance(task)

        def done(source: str) -> None:
            label = _LABELS.get(source, "Vérité terrain")
            bar.update(task, advance=1, description=f"{label} : écrit")

        results = _run_all(writers, workers, done)
        manifest = _finish(ctx, population, [results[s] for s in SOURCES], results["truth"])
        bar.update(task, advance=1, description="Manifeste écrit")
    return manifest


def _write_truth(ctx: Context) -> SourceResult:
    folder = ctx.out / "truth"
    rows = {
        "truth/persons.csv": truth.write_persons(folder, ctx.population),
        "truth/households.csv": truth.write_households(folder, ctx.population),
        "truth/events.csv": truth.write_events(folder, ctx.population),
    }
    return SourceResult("truth", rows)


def _finish(
    ctx: Context, population: int, results: list[SourceResult], truth_result: SourceResult
) -> Manifest:
    truth_rows = dict(truth_result.rows)
    truth_rows["truth/records.csv"] = truth.join_record_parts(ctx.out / "truth", list(SOURCES))
    files: dict[str, dict[str, Any]] = {}
    for result in results:
        for name, rows in result.rows.items():
            files[name] = {"sha256": result.sha256[name], "rows": rows}
    data: dict[str, Any] = {
        "generator": GENERATOR,
        "version": MANIFEST_VERSION,
        "seed": ctx.seed,
        "population": population,
        "persons": ctx.population.person_count,
        "households": len(ctx.population.households),
        "reference_year": ctx.year,
        "noise": ctx.options.noise,
        "options": {k: v for k, v in vars(ctx.options).items()},
        "sources": {r.source: sorted(r.rows) for r in results},
        "files": files,
        "deliberate_invalid_rows": {r.source: r.deliberate_invalid for r in results},
        "truth": truth_rows,
    }
    path = ctx.out / "manifest.json"
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return Manifest(path, data)
