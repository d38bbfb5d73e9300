"""Waste collection: the contractor's bin registry and its RFID lift events."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from territoria.sandbox.context import Context, SourceResult
from territoria.sandbox.population import Household, Person
from territoria.sandbox.sinks import CsvSink
from territoria.sandbox.territory import Dwelling

BIN_HEADER = (
    "id_dotation", "id_bac", "puce_rfid", "volume_litres", "type_habitat", "nom_redevable",
    "adresse", "code_postal", "commune", "date_debut", "date_fin", "motif_fin",
)  # fmt: skip
LIFT_HEADER = ("id_levee", "camion", "horodatage", "puce_rfid", "poids_kg", "statut_lecture")
INVALID_LIFTS = 5  # 3 unparseable timestamps, 2 negative weights
_TRUCKS = tuple(f"BOM-{n:03d}" for n in range(1, 41))
_WEIGHING_TRUCKS = frozenset(_TRUCKS[:28])


@dataclass
class Bin:
    allocation_id: str
    bin_id: str
    tag: str
    volume: int
    dwelling: Dwelling
    household: Household | None
    payer: Person | None
    start: date
    end: date | None
    end_reason: str
    collective: bool


class _BinPlanner:
    def __init__(self, ctx: Context) -> None:
        self.ctx, self.rng = ctx, ctx.rng("waste:plan")
        self.bins: list[Bin] = []
        self.buildings: set[str] = set()
        self.bin_count = 0

    def tag(self) -> str:
        return f"{self.rng.getrandbits(64):016X}"

    def add(
        self,
        d: Dwelling,
        volume: int,
        h: Household | None,
        start: date,
        end: date | None = None,
        reason: str = "",
        bin_id: str = "",
    ) -> Bin:
        if not bin_id:
            self.bin_count += 1
            bin_id = f"BAC{self.bin_count:08d}"
        payer = (h.adults or h.members)[0] if h else None
        b = Bin(
            f"DOT{len(self.bins) + 1:08d}",
            bin_id,
            self.tag(),
            volume,
            d,
            h,
            payer,
            start,
            end,
            reason,
            h is None,
        )
        self.bins.append(b)
        return b

    def building(self, d: Dwelling) -> None:
        b = d.building
        if b.building_id in self.buildings:
            return
        self.buildings.add(b.building_id)
        start = date(self.rng.randint(2015, 2022), self.rng.randint(1, 12), 1)
        for _ in range(max(1, b.flats // 8)):
            self.add(d, self.rng.choice((660, 770)), None, start)

    def household(self, h: Household) -> None:
        rng, ctx = self.rng, self.ctx
        if (
            h.previous_dwelling is not None
            and h.move_date
            and not h.previous_dwelling.building.collective
        ):
            self.add(
                h.previous_dwelling,
                self._volume(h),
                h,
                date(2019, 1, 1),
                h.move_date,
                "déménagement",
            )
        d = h.dwelling
        if d.building.collective:
            self.building(d)
            return
        start = (
            h.move_date or h.arrival_date or date(rng.randint(2015, 2022), rng.randint(1, 12), 1)
        )
        volume = self._volume(h)
        roll = rng.random()
        if roll < 0.05:  # bin swap: new bin, new tag
            swap = ctx.year_start + timedelta(days=rng.randrange(30, 330))
            if swap > start:
                self.add(d, volume, h, start, swap, "changement de volume")
                start, volume = swap, min(360, volume + 120)
        elif roll < 0.08:  # lost or broken tag: same bin, new tag
            swap = ctx.year_start + timedelta(days=rng.randrange(30, 330))
            if swap > start:
                old = self.add(d, volume, h, start, swap, "puce défectueuse")
                self.add(d, volume, h, swap, h.end_date, "", bin_id=old.bin_id)
                return
        self.add(d, volume, h, start, h.end_date, "décès" if h.end_date else "")

    def _volume(self, h: Household) -> int:
        size = len(h.members)
        return (
            80
            if size == 1 and self.rng.random() < 0.4
            else 120
            if size <= 2
            else 140
            if size == 3
            else 240
        )


def plan_bins(ctx: Context) -> list[Bin]:
    planner = _BinPlanner(ctx)
    for h in ctx.population.households:
        planner.household(h)
    return planner.bins


def write_bins(ctx: Context, bins: list[Bin]) -> SourceResult:
    name = "waste_bins.csv"
    noise = ctx.noiser("waste_bins")
    with CsvSink(ctx.out / name, BIN_HEADER) as sink, ctx.truth_sink("waste_bins") as truth:
        for b in bins:
            d = b.dwelling
            if b.payer is not None:
                family, given, _ = noise.names(b.payer)
                payer = f"{family} {given}"
            else:
                payer = f"COPROPRIÉTÉ {d.building.number} {d.building.street.label.upper()}"
            sink.write([
                b.allocation_id, b.bin_id, b.tag, b.volume, "collectif" if b.collective else "individuel",
                payer, noise.street(d), d.postcode, d.commune.name.upper(), b.start.isoformat(),
                b.end.isoformat() if b.end else "", b.end_reason,
            ])  # fmt: skip
            person = b.payer.person_id if b.payer else ""
            truth.write(
                (
                    "waste_bins",
                    b.allocation_id,
                    "payer",
                    person,
                    b.household.household_id if b.household else "",
                )
            )
    return SourceResult("waste_bins", {name: sink.rows})


def write_lifts(ctx: Context, bins: list[Bin]) -> SourceResult:
    """Lift events grouped by bin; double reads, unknown and unreadable tags included."""
    name = "waste_lifts.csv"
    rng = ctx.rng("waste_lifts")
    density = ctx.options.lift_density
    year_start = datetime(ctx.year, 1, 1)
    lifts = 0
    invalid_at = sorted(rng.sample(range(1000), INVALID_LIFTS))
    with CsvSink(ctx.out / name, LIFT_HEADER) as sink:
        for b in bins:
            weekday = rng.randrange(6)
            truck = rng.choice(_TRUCKS)
            first = max(0, (b.start - ctx.year_start).days)
            last = min(365, (b.end - ctx.year_start).days) if b.end else 365
            put_out = (0.95 if b.collective else 0.45) * density
            per_week = 2 if b.collective and b.volume == 770 else 1
            rows: list[list[object]] = []
            for week in range(first // 7, last // 7 + 1):
                for round_ in range(per_week):
                    day = week * 7 + (weekday + 3 * round_) % 7
                    if not first <= day < last or rng.random() >= put_out:
                        continue
                    lifts += 1
                    ts = year_start + timedelta(
                        days=day, seconds=rng.randrange(5 * 3600, 13 * 3600)
                    )
                    rows.extend(_lift(rng, lifts, truck, ts, b))
            if invalid_at and lifts > invalid_at[0] and rows:
                _spoil(rows[0], len(invalid_at))
                invalid_at.pop(0)
            sink.write_many(rows)
    return SourceResult("waste_lifts", {name: sink.rows}, INVALID_LIFTS - len(invalid_at))


def _lift(rng: random.Random, number: int, truck: str, ts: datetime, b: Bin) -> list[list[object]]:
    weight = f"{rng.uniform(0.04, 0.14) * b.volume * 0.6:.1f}" if truck in _WEIGHING_TRUCKS else ""
    roll = rng.random()
    tag, status = b.tag, "ok"
    if roll < 0.005:
        tag, status = "", "illisible"
    elif roll < 0.01:
        tag, status = f"{rng.getrandbits(64):016X}", "inconnue"
    row: list[object] = [f"L{number:010d}", truck, ts.isoformat(), tag, weight, status]
    if roll > 0.99:  # the same tag read twice within a minute
        again = ts + timedelta(seconds=rng.randrange(5, 60))
        return [row, [f"L{number:010d}b", truck, again.isoformat(), tag, weight, "doublon"]]
    return [row]


def _spoil(row: list[object], remaining: int) -> None:
    if remaining > 2:
        row[2] = "31/02/2025 25h61"
    else:
        row[4] = "-12.5"
