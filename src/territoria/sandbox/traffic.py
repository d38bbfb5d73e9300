"""Road traffic: 15-minute vehicle counts of counting loops (Parquet, no personal data)."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime
from typing import Any

from territoria.sandbox.context import Context, SourceResult

COLUMNS = (
    "id_mesure",
    "id_boucle",
    "libelle_boucle",
    "code_insee",
    "horodatage",
    "debit_vehicules",
    "taux_occupation",
)
_AXES = (
    "A6", "A7", "M6", "M7", "Bd périphérique Laurent Bonnevay", "Cours Gambetta", "Avenue Berthelot",
    "Quai Perrache", "Cours Émile Zola", "Avenue Jean Jaurès", "Route de Vienne", "Rue Garibaldi",
)  # fmt: skip


def _profile(minute_of_day: int, weekday: int) -> float:
    """Relative flow: morning and evening peaks on working days, a flatter weekend."""
    hour = minute_of_day / 60
    peak = math.exp(-((hour - 8) ** 2) / 2) + 0.9 * math.exp(-((hour - 17.5) ** 2) / 3)
    base = 0.08 + 0.5 * math.exp(-((hour - 14) ** 2) / 18)
    if weekday >= 5:
        return 0.05 + 0.55 * math.exp(-((hour - 15) ** 2) / 12)
    return base + peak


def write_traffic(ctx: Context) -> SourceResult:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    name = "traffic_counts.parquet"
    rng = ctx.rng("traffic")
    communes = [c for c in ctx.territory.communes if c.population > 20000]
    schema = pa.schema([
        ("id_mesure", pa.string()), ("id_boucle", pa.string()), ("libelle_boucle", pa.string()),
        ("code_insee", pa.string()), ("horodatage", pa.timestamp("s")),
        ("debit_vehicules", pa.int32()), ("taux_occupation", pa.float64()),
    ])  # fmt: skip
    slots = ctx.options.traffic_weeks * 7 * 96
    start = datetime(ctx.year, 1, 1)
    first = int(start.replace(tzinfo=UTC).timestamp())
    stamps = pa.array(range(first, first + slots * 900, 900), pa.int64()).cast(pa.timestamp("s"))
    keys = pc.strftime(stamps, format="%Y%m%d%H%M")
    week = [
        _profile(slot * 15, (start.weekday() + day) % 7) for day in range(7) for slot in range(96)
    ]
    with pq.ParquetWriter(ctx.out / name, schema, compression="zstd") as writer:
        for loop in range(ctx.options.traffic_loops):
            loop_id = f"BCL{loop + 1:03d}"
            label = f"{_AXES[loop % len(_AXES)]} - section {loop // len(_AXES) + 1}"
            capacity = rng.choice((150, 250, 400, 600, 900))
            draw = rng.random
            flows = pa.array(
                [capacity * week[i % 672] * (0.85 + 0.3 * draw()) for i in range(slots)]
            )
            broken = pa.array([True] * slots) if slots == 0 else _broken_mask(rng, slots)
            counts = pc.if_else(
                broken, pa.scalar(None, pa.int32()), pc.cast(pc.floor(flows), pa.int32())
            )
            occupancy = pc.round(pc.min_element_wise(pc.multiply(flows, 18 / capacity), 95.0), 1)
            occupancy = pc.if_else(broken, pa.scalar(None, pa.float64()), occupancy)
            columns = [
                pc.binary_join_element_wise(loop_id, keys, "-"), pa.repeat(loop_id, slots),
                pa.repeat(label, slots), pa.repeat(communes[loop % len(communes)].code_insee, slots),
                stamps, counts, occupancy,
            ]  # fmt: skip
            writer.write_table(pa.Table.from_arrays(columns, schema=schema))
    return SourceResult("traffic_counts", {name: slots * ctx.options.traffic_loops})


def _broken_mask(rng: random.Random, slots: int) -> Any:
    """Slots where the loop was out of order (about one in 500): no count."""
    import pyarrow as pa

    mask = [False] * slots
    for i in rng.sample(range(slots), slots // 500):
        mask[i] = True
    return pa.array(mask)
