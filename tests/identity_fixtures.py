"""A small linked sandbox shared by the resident-index tests (built once per session)."""

from __future__ import annotations

from pathlib import Path

from territoria.backends import Store
from territoria.core.config import WorkspaceConfig
from territoria.ingest import ContractCatalog, ingest_files, sandbox_items
from territoria.sandbox import generate

POPULATION = 1500
SEED = 11
# Sources without persons (lifts, readings, traffic) are not needed to link.
PERSON_SOURCES = {
    "water_subscribers",
    "school_enrolments",
    "ccas_aid",
    "library_members",
    "transport_passes",
    "waste_bins",
}


def make_sandbox(folder: Path) -> Path:
    if not (folder / "manifest.json").exists():
        generate(population=POPULATION, seed=SEED, out=folder)
    return folder


def load_people(store: Store, config: WorkspaceConfig, sandbox: Path) -> None:
    catalog = ContractCatalog.load(*config.contract_paths)
    items = [(s, p) for s, p in sandbox_items(sandbox) if s in PERSON_SOURCES]
    outcomes = ingest_files(store, catalog, items)
    assert all(o.ok for o in outcomes), [o for o in outcomes if not o.ok]


def catalog(config: WorkspaceConfig) -> ContractCatalog:
    return ContractCatalog.load(*config.contract_paths)
