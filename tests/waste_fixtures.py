"""Helpers for the waste tests: small tables, and the sandbox's waste files as engine inputs."""

from __future__ import annotations

import hashlib
import random
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

ALLOCATION_SCHEMA = pa.schema(
    [
        ("allocation_id", pa.string()),
        ("bin_id", pa.string()),
        ("rfid_tag", pa.string()),
        ("volume_l", pa.int32()),
        ("payer", pa.string()),
        ("start_date", pa.date32()),
        ("end_date", pa.date32()),
        ("service", pa.string()),
    ]
)
LIFT_SCHEMA = pa.schema(
    [
        ("lift_id", pa.string()),
        ("truck_id", pa.string()),
        ("lifted_at", pa.timestamp("s")),
        ("rfid_tag", pa.string()),
        ("weight_kg", pa.float64()),
        ("read_status", pa.string()),
    ]
)
_BIN_COLUMNS = [
    "allocation_id", "bin_id", "rfid_tag", "volume_l", "housing_type", "payer_name", "address",
    "postcode", "commune", "start_date", "end_date", "end_reason",
]  # fmt: skip
_LIFT_COLUMNS = ["lift_id", "truck_id", "lifted_at", "rfid_tag", "weight_kg", "read_status"]


def allocations(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(
        [{"end_date": None, "service": "bac", **r} for r in rows], schema=ALLOCATION_SCHEMA
    )


def lifts(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(
        [{"truck_id": "BOM-1", "read_status": "ok", "weight_kg": None, **r} for r in rows],
        schema=LIFT_SCHEMA,
    )


def weekly(tag: str, first: date, count: int, prefix: str, every: int = 7) -> list[dict[str, Any]]:
    start = datetime(first.year, first.month, first.day, 7, 30)
    return [
        {
            "lift_id": f"{prefix}-{i:03d}",
            "lifted_at": start + timedelta(days=every * i),
            "rfid_tag": tag,
        }
        for i in range(count)
    ]


def payer_key(name: str) -> str:
    """An opaque payer key, as the governed read would give (a pseudonym, never the name)."""
    return "R" + hashlib.sha256(name.encode()).hexdigest()[:12]


def sandbox_waste(folder: Path, population: int = 800, seed: int = 11) -> tuple[pa.Table, pa.Table]:
    """The sandbox's waste files for ``population`` inhabitants, as the engine's inputs.

    Only the waste writers run (the rest of the territory is not needed); columns are renamed
    from the delivered French aliases to the contract's field names, and the payer's name is
    replaced by an opaque key.
    """
    from territoria.sandbox import waste
    from territoria.sandbox.context import Context, Options
    from territoria.sandbox.names import name_bank
    from territoria.sandbox.noise import NoiseRates
    from territoria.sandbox.population import build_population
    from territoria.sandbox.territory import build_territory

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "truth").mkdir(exist_ok=True)
    options = Options()
    territory = build_territory(random.Random(f"territoria-sandbox:{seed}:territory"), population)
    people = build_population(
        random.Random(f"territoria-sandbox:{seed}:population"), territory, name_bank(),
        population, options.reference_year,
    )  # fmt: skip
    ctx = Context(people, territory, options, seed, folder, NoiseRates().scaled(options.noise))
    bins = waste.plan_bins(ctx)
    waste.write_bins(ctx, bins)
    waste.write_lifts(ctx, bins)
    strings = pcsv.ConvertOptions(
        strings_can_be_null=True,
        column_types={"puce_rfid": pa.string(), "horodatage": pa.string(), "date_fin": pa.date32()},
    )
    raw_bins = pcsv.read_csv(folder / "waste_bins.csv", convert_options=strings)
    raw_lifts = pcsv.read_csv(folder / "waste_lifts.csv", convert_options=strings)
    table = raw_bins.rename_columns(_BIN_COLUMNS)
    keys = pa.array([payer_key(n) for n in table.column("payer_name").to_pylist()])
    table = table.append_column("payer", keys).drop_columns(["payer_name"])
    return table, raw_lifts.rename_columns(_LIFT_COLUMNS)


def count_status(lift_table: pa.Table, status: str) -> int:
    return int(pc.sum(pc.equal(lift_table.column("read_status"), status)).as_py() or 0)
