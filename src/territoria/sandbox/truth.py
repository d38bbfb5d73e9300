"""Ground truth written beside the exports (``truth/``), read only by evaluation."""

from __future__ import annotations

from pathlib import Path

from territoria.sandbox.context import TRUTH_RECORD_HEADER
from territoria.sandbox.population import Household, Population
from territoria.sandbox.sinks import CsvSink

PERSON_HEADER = (
    "person_id", "given_name", "family_name", "birth_name", "sex", "birth_date", "death_date",
    "household_id", "is_child", "phone", "email", "income", "twin_of", "homonym_of",
)  # fmt: skip
HOUSEHOLD_HEADER = (
    "household_id", "kind", "dwelling_id", "building_id", "dwelling_type", "address",
    "complement", "postcode", "code_insee", "commune", "members", "n_adults", "n_children",
    "married", "previous_dwelling_id", "previous_address", "move_date", "arrival_date",
    "end_date", "income_net", "revenu_fiscal", "family_benefits", "parts", "quotient_familial",
)  # fmt: skip
EVENT_HEADER = (
    "event_id",
    "kind",
    "date",
    "person_id",
    "household_id",
    "from_dwelling_id",
    "to_dwelling_id",
)


def _iso(value: object) -> str:
    return "" if value is None else str(value)


def write_persons(folder: Path, population: Population) -> int:
    with CsvSink(folder / "persons.csv", PERSON_HEADER) as sink:
        for h in population.households:
            for p in h.members:
                sink.write((
                    p.person_id, p.given_name, p.family_name, p.birth_name, p.sex,
                    p.birth_date.isoformat(), _iso(p.death_date), p.household_id, int(p.is_child),
                    p.phone, p.email, p.income, p.twin_of, p.homonym_of,
                ))  # fmt: skip
    return sink.rows


def _household_row(h: Household) -> tuple[object, ...]:
    d, prev = h.dwelling, h.previous_dwelling
    return (
        h.household_id, h.kind, d.dwelling_id, d.building.building_id,
        "flat" if d.building.collective else "house", d.street_line, d.complement, d.postcode,
        d.commune.code_insee, d.commune.name, "|".join(p.person_id for p in h.members),
        len(h.adults), len(h.children), int(h.married), prev.dwelling_id if prev else "",
        f"{prev.street_line}, {prev.postcode} {prev.commune.name}" if prev else "",
        _iso(h.move_date), _iso(h.arrival_date), _iso(h.end_date),
        sum(p.income for p in h.members), h.revenu_fiscal, h.family_benefits, h.parts,
        h.quotient_familial,
    )  # fmt: skip


def write_households(folder: Path, population: Population) -> int:
    with CsvSink(folder / "households.csv", HOUSEHOLD_HEADER) as sink:
        for h in population.households:
            sink.write(_household_row(h))
    return sink.rows


def write_events(folder: Path, population: Population) -> int:
    with CsvSink(folder / "events.csv", EVENT_HEADER) as sink:
        for number, e in enumerate(population.events, start=1):
            sink.write(
                (
                    f"E{number:07d}",
                    e.kind,
                    e.day.isoformat(),
                    e.person_id,
                    e.household_id,
                    e.from_dwelling,
                    e.to_dwelling,
                )
            )
    return sink.rows


def join_record_parts(folder: Path, sources: list[str]) -> int:
    """Concatenate the per-source parts into ``truth/records.csv`` in source order."""
    rows = 0
    with (folder / "records.csv").open("wb") as out:
        out.write((",".join(TRUTH_RECORD_HEADER) + "\r\n").encode())
        for source in sources:
            part = folder / f".records_{source}.part"
            if not part.exists():
                continue
            with part.open("rb") as handle:
                handle.readline()
                for line in handle:
                    out.write(line)
                    rows += 1
            part.unlink()
    return rows
