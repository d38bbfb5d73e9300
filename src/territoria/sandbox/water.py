"""Water: the delegated operator's subscriber file and its meter readings."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path

from territoria.sandbox.context import Context, SourceResult
from territoria.sandbox.noise import Noiser
from territoria.sandbox.population import Household, Person
from territoria.sandbox.sinks import CsvSink
from territoria.sandbox.territory import Dwelling

SUBSCRIBER_HEADER = (
    "N° contrat", "Type client", "Civilité", "Nom", "Prénom", "Civilité co-titulaire",
    "Nom co-titulaire", "Prénom co-titulaire", "Adresse de desserte", "Complément d'adresse",
    "Code postal", "Commune", "Code INSEE", "N° compteur", "Calibre (mm)", "Date début contrat",
    "Date fin contrat", "Téléphone", "Courriel",
)  # fmt: skip
READING_HEADER = ("id_releve", "num_compteur", "date_releve", "index_m3", "type_releve")
# Share of a day's water used in each hour (sums to 1): night trough, morning and evening peaks.
_PROFILE = (
    0.010, 0.006, 0.005, 0.005, 0.006, 0.015, 0.050, 0.085, 0.075, 0.055, 0.045, 0.045,
    0.050, 0.045, 0.035, 0.035, 0.040, 0.050, 0.065, 0.075, 0.070, 0.060, 0.040, 0.045,
)  # fmt: skip
INVALID_READINGS = 3


@dataclass
class Contract:
    contract_id: str
    dwelling: Dwelling
    meter_id: str
    start: date
    end: date | None
    household: Household | None
    holder: Person | None
    co_holder: Person | None
    payer_name: str = ""


@dataclass
class Meter:
    meter_id: str
    dwelling: Dwelling
    daily_m3: float
    start_index: float
    smart: bool
    active_from: date | None = None
    active_until: date | None = None
    leak_from: date | None = None


@dataclass
class WaterPlan:
    meters: list[Meter]
    contracts: list[Contract]


def _holders(rng: random.Random, h: Household) -> tuple[Person, Person | None]:
    adults = h.adults or h.members
    holder = adults[0] if rng.random() < 0.55 else adults[-1]
    others = [p for p in adults if p is not holder]
    co_holder = others[0] if others and rng.random() < 0.4 else None
    return holder, co_holder


class _Planner:
    def __init__(self, ctx: Context) -> None:
        self.ctx, self.rng = ctx, ctx.rng("water:plan")
        self.meters: list[Meter] = []
        self.contracts: list[Contract] = []
        self.by_dwelling: dict[str, Meter] = {}
        self.collective: dict[str, Meter] = {}
        self.individual: dict[str, bool] = {}

    def meter(self, dwelling: Dwelling, people: int) -> Meter | None:
        b = dwelling.building
        if b.collective and not self.individual.setdefault(b.building_id, self.rng.random() < 0.8):
            if b.building_id not in self.collective:
                meter = self._new_meter(dwelling, 0.13 * b.flats * 2.0)
                self.collective[b.building_id] = meter
                self._collective_contract(meter)
            return None
        meter = self._new_meter(dwelling, 0.145 * people * self.rng.uniform(0.6, 1.5))
        self.by_dwelling[dwelling.dwelling_id] = meter
        return meter

    def _new_meter(self, dwelling: Dwelling, daily: float) -> Meter:
        rng = self.rng
        meter_id = f"{rng.choice('ABCDIK')}{rng.randint(10, 24):02d}{len(self.meters) + 1:08d}"
        smart = rng.random() < self.ctx.options.smart_meter_share
        meter = Meter(meter_id, dwelling, daily, round(rng.uniform(5, 3000), 3), smart)
        if rng.random() < 0.006:
            meter.leak_from = self.ctx.year_start + timedelta(days=rng.randrange(200, 365))
        self.meters.append(meter)
        return meter

    def _collective_contract(self, meter: Meter) -> None:
        b = meter.dwelling.building
        payer = self.rng.choice(
            (f"SDC {b.number} {b.street.label.upper()}", "RHÔNE LOGIS BAILLEUR SOCIAL (FICTIF)",
             "RÉGIE DES TERREAUX (FICTIF)")
        )  # fmt: skip
        start = date(self.rng.randint(1990, 2020), 1, 1) + timedelta(days=self.rng.randrange(365))
        self._contract(meter, start, None, None, None, None, payer)

    def _contract(
        self, meter: Meter, start: date, end: date | None, h: Household | None,
        holder: Person | None, co: Person | None, payer: str = "",
    ) -> None:  # fmt: skip
        cid = f"CT{len(self.contracts) + 1:08d}"
        self.contracts.append(
            Contract(cid, meter.dwelling, meter.meter_id, start, end, h, holder, co, payer)
        )

    def household(self, h: Household) -> None:
        rng, ctx = self.rng, self.ctx
        holder, co = _holders(rng, h)
        adult_day = holder.birth_date.replace(day=1) + timedelta(days=366 * 19)
        usual_start = max(adult_day, date(rng.randint(1985, ctx.year - 1), rng.randint(1, 12), 1))
        usual_start = min(usual_start, ctx.year_start - timedelta(days=30))
        if h.previous_dwelling is not None and h.move_date is not None:
            old = self.meter(h.previous_dwelling, len(h.members))
            if old is not None:
                old.active_until = h.move_date
                self._contract(old, usual_start, h.move_date, h, holder, co)
            usual_start = h.move_date
        meter = self.meter(h.dwelling, len(h.members))
        if meter is None:
            return
        start = h.arrival_date or usual_start
        if h.arrival_date or h.move_date:
            meter.active_from = start
        end = h.end_date + timedelta(days=rng.randint(20, 120)) if h.end_date else None
        if end is not None and end > ctx.year_end:
            end = None
        meter.active_until = h.end_date
        self._contract(meter, start, end, h, holder, co)


def plan_water(ctx: Context) -> WaterPlan:
    """Meters and contracts, drawn from their own stream (shared by both water sources)."""
    planner = _Planner(ctx)
    for h in ctx.population.households:
        planner.household(h)
    return WaterPlan(planner.meters, planner.contracts)


def _civility(p: Person | None) -> str:
    if p is None:
        return ""
    return "Mme" if p.sex == "F" else "M."


def write_subscribers(ctx: Context, plan: WaterPlan) -> SourceResult:
    name = "water_subscribers.csv"
    result = SourceResult("water_subscribers")
    noise = ctx.noiser("water_subscribers")
    with (
        CsvSink(ctx.out / name, SUBSCRIBER_HEADER, delimiter=";") as sink,
        ctx.truth_sink("water_subscribers") as truth,
    ):
        extra = len(plan.contracts)
        for contract in plan.contracts:
            copies = 2 if contract.holder and noise.hit(ctx.rates.duplicate) else 1
            for copy in range(copies):
                cid = contract.contract_id
                if copy:
                    extra += 1
                    cid = f"CT{extra:08d}"
                sink.write(_subscriber_row(ctx, noise, contract, cid))
                _subscriber_truth(truth, contract, cid)
    result.rows[name] = sink.rows
    return result


def _subscriber_row(ctx: Context, noise: Noiser, c: Contract, cid: str) -> list[str]:
    d = c.dwelling
    family = given = co_family = co_given = phone = email = ""
    if c.holder is not None:
        family, given, _ = noise.names(c.holder)
        phone, email = noise.phone(c.holder), noise.email(c.holder)
    else:
        family = c.payer_name
    if c.co_holder is not None:
        co_family, co_given, _ = noise.names(c.co_holder)
    kind = "particulier" if c.holder is not None else "collectif"
    return [
        cid, kind, _civility(c.holder), family, given, _civility(c.co_holder), co_family,
        co_given, noise.street(d), noise.complement(d), d.postcode, d.commune.name.upper(),
        d.commune.code_insee, c.meter_id, "15" if c.holder else "40", c.start.strftime("%d/%m/%Y"),
        c.end.strftime("%d/%m/%Y") if c.end else "", phone, email,
    ]  # fmt: skip


def _subscriber_truth(truth: CsvSink, c: Contract, cid: str) -> None:
    hid = c.household.household_id if c.household else ""
    if c.holder is None:
        truth.write(("water_subscribers", cid, "payer", "", ""))
        return
    truth.write(("water_subscribers", cid, "holder", c.holder.person_id, hid))
    if c.co_holder is not None:
        truth.write(("water_subscribers", cid, "co_holder", c.co_holder.person_id, hid))


def write_readings(ctx: Context, plan: WaterPlan) -> SourceResult:
    """Monthly index for every meter, hourly for smart meters over the last days of the year."""
    name = "water_readings.csv"
    rng = ctx.rng("water_readings")
    invalid = set(rng.sample(range(len(plan.meters)), min(INVALID_READINGS, len(plan.meters))))
    hours = _hourly_stamps(ctx)
    with CsvSink(ctx.out / name, READING_HEADER) as sink:
        for number, meter in enumerate(plan.meters):
            lines = _meter_lines(ctx, rng, meter, hours)
            if number in invalid:  # a non-numeric index, as a faulty radio read gives
                fields = lines[5].split(",")
                fields[3] = "ERR"
                lines[5] = ",".join(fields)
            sink.write_lines(lines)
    result = SourceResult("water_readings", {name: sink.rows}, len(invalid))
    _write_leaks(ctx.out / "truth" / "leaks.csv", plan)
    return result


_CUMULATIVE = tuple(sum(_PROFILE[: h + 1]) for h in range(24))
_LEAK_M3_PER_HOUR = 0.02


def _hourly_stamps(ctx: Context) -> list[tuple[str, str]]:
    """(id key, ISO timestamp) of every hour of the hourly window, computed once."""
    start = datetime(ctx.year, 1, 1) + timedelta(days=365 - ctx.options.hourly_days)
    stamps = [start + timedelta(hours=h + 1) for h in range(24 * ctx.options.hourly_days)]
    return [(f"{ts:%Y%m%d%H}", ts.isoformat()) for ts in stamps]


def _meter_lines(
    ctx: Context, rng: random.Random, m: Meter, hours: list[tuple[str, str]]
) -> list[str]:
    """CSV lines of one meter in time order; the index only grows (a leak adds a steady flow)."""
    active_from = (m.active_from - ctx.year_start).days if m.active_from else 0
    active_until = (m.active_until - ctx.year_start).days if m.active_until else 400
    leak_from = (m.leak_from - ctx.year_start).days if m.leak_from else 400
    hourly_from = 365 - ctx.options.hourly_days if m.smart else 365

    def daily(day: int) -> float:
        return m.daily_m3 if active_from <= day < active_until else 0.002

    def index_at(day: int) -> float:
        active = max(0, min(day, active_until) - active_from)
        leak = max(0, day - leak_from) * 24 * _LEAK_M3_PER_HOUR
        return m.start_index + m.daily_m3 * active + 0.002 * (day - active) + leak

    mid = m.meter_id
    lines: list[str] = []
    for last_day in _month_ends(ctx.year):
        day = last_day - int(rng.random() * 3)
        hour = 7 + int(rng.random() * 11)
        if day >= hourly_from:
            continue
        leak = _LEAK_M3_PER_HOUR * (hour + 1) if day >= leak_from else 0.0
        value = index_at(day) + daily(day) * _CUMULATIVE[hour] + leak
        key, stamp = _stamp(ctx.year, day, hour + 1)
        lines.append(f"{mid}-{key}M,{mid},{stamp},{value:.3f},mensuel\r\n")
    if hourly_from < 365:
        lines.extend(
            _hourly_lines(rng, m, index_at(hourly_from), hours, daily, hourly_from, leak_from)
        )
    return lines


@cache
def _month_ends(year: int) -> tuple[int, ...]:
    """Day of year (from 0) of the last day of each month."""
    firsts = [date(year + m // 12, m % 12 + 1, 1) for m in range(1, 13)]
    return tuple((first - timedelta(days=1) - date(year, 1, 1)).days for first in firsts)


@cache
def _stamp(year: int, day: int, hour: int) -> tuple[str, str]:
    ts = datetime(year, 1, 1) + timedelta(days=day, hours=hour)
    return f"{ts:%Y%m%d%H}", ts.isoformat()


def _hourly_lines(
    rng: random.Random, m: Meter, index: float, hours: list[tuple[str, str]],
    daily: Callable[[int], float], hourly_from: int, leak_from: int,
) -> list[str]:  # fmt: skip
    mid = m.meter_id
    draw = rng.random
    lines: list[str] = []
    for first in range(0, len(hours), 24):
        day = hourly_from + first // 24
        volume = daily(day)
        leak = _LEAK_M3_PER_HOUR if day >= leak_from else 0.0
        weights = [volume * w for w in _PROFILE]
        for hour in range(24):
            index += weights[hour] * (0.3 + 1.4 * draw()) + leak
            key, stamp = hours[first + hour]
            lines.append(f"{mid}-{key}H,{mid},{stamp},{index:.3f},horaire\r\n")
    return lines


def _write_leaks(path: Path, plan: WaterPlan) -> None:
    with CsvSink(path, ("meter_id", "dwelling_id", "leak_from", "smart")) as sink:
        for m in plan.meters:
            if m.leak_from:
                sink.write(
                    (m.meter_id, m.dwelling.dwelling_id, m.leak_from.isoformat(), int(m.smart))
                )
