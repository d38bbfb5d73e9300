"""When a record's *durée d'utilité administrative* starts and ends: ISO 8601 durations and the
dates read from the raw loads.

Why apart from the engine (``retention.py``): this is the calendar arithmetic and the columnar
reading (pyarrow) that a change of store or of date format touches, whereas the engine holds the
archival workflow. A record delivered again in a later load takes its date from the newest load;
a record whose date cannot be read is undated (``None``) and is never eliminated by default.
"""

from __future__ import annotations

import calendar
import re
from datetime import date

import pyarrow as pa
import pyarrow.compute as pc

from territoria.backends import Store
from territoria.core.contract import SourceContract

__all__ = ["add_duration", "read_record_dates"]

_DURATION = re.compile(r"^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?$")


def add_duration(d: date, iso: str) -> date:
    """``d`` plus an ISO 8601 duration of years, months, weeks and days.

    Years and months move the calendar date and clamp the day to the month's end
    (29 Feb + P1Y → 28 Feb, 31 Jan + P1M → 28 or 29 Feb); weeks and days are added after.
    A result past year 9999 is ``date.max`` (never reached).

    >>> add_duration(date(2024, 2, 29), "P1Y")
    datetime.date(2025, 2, 28)
    """
    match = _DURATION.match(iso)
    if match is None or iso == "P":
        raise ValueError(f"durée ISO 8601 invalide : {iso!r} (attendu par exemple P5Y, P18M)")
    years, months, weeks, days = (int(g or 0) for g in match.groups())
    month_index = d.year * 12 + (d.month - 1) + years * 12 + months
    year, month = divmod(month_index, 12)
    if year > date.max.year:
        return date.max
    day = min(d.day, calendar.monthrange(year, month + 1)[1])
    moved = date(year, month + 1, day)
    offset = weeks * 7 + days
    if offset > (date.max - moved).days:
        return date.max
    return date.fromordinal(moved.toordinal() + offset)


def _as_days(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """A raw date column as ``date32`` whatever the store gave (date, timestamp or ISO text)."""
    kind = column.type
    if pa.types.is_date(kind) or pa.types.is_timestamp(kind):
        return pc.cast(column, pa.date32())
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        head = pc.utf8_slice_codeunits(column, 0, 10)
        parsed = pc.strptime(head, format="%Y-%m-%d", unit="s", error_is_null=True)
        return pc.cast(parsed, pa.date32())
    return pa.nulls(len(column), pa.date32())


def _normalise(
    batch: pa.RecordBatch, id_field: str, date_field: str | None, loads: pa.Array
) -> pa.Table:
    names = batch.schema.names
    size = batch.num_rows
    ids = batch.column(id_field) if id_field in names else pa.nulls(size, pa.string())
    days = (
        _as_days(batch.column(date_field))
        if date_field and date_field in names
        else pa.nulls(size, pa.date32())
    )
    rank = pc.fill_null(pc.index_in(batch.column("_load_id"), value_set=loads), -1)
    return pa.table(
        {"record_id": pc.cast(ids, pa.string()), "day": days, "rank": pc.cast(rank, pa.int64())}
    )


def _newest_per_record(table: pa.Table) -> dict[str, date | None]:
    """Each record's date in the newest load that holds it (none if any row there has none)."""
    per_load = table.group_by(["record_id", "rank"]).aggregate(
        [("day", "max"), ("day", "count", pc.CountOptions(mode="only_null"))]
    )
    newest = per_load.group_by("record_id").aggregate([("rank", "max")])
    joined = per_load.join(
        newest, keys=["record_id", "rank"], right_keys=["record_id", "rank_max"], join_type="inner"
    )
    undated = pc.greater(joined["day_count"], 0)
    days = pc.if_else(undated, pa.scalar(None, pa.date32()), joined["day_max"])
    return dict(zip(joined["record_id"].to_pylist(), days.to_pylist(), strict=True))


def read_record_dates(store: Store, contract: SourceContract) -> tuple[dict[str, date | None], int]:
    """Record id → date that starts its clock (``None``: undated), and the rows without an id.

    A record delivered again in a later load takes its date from the newest load (a contract
    that ended since, a membership renewed): the latest delivery is the service's current word.
    """
    id_field = contract.linkage.record_id
    if id_field is None:
        return {}, 0
    date_field = contract.retention.date_field
    history = store.loads(contract.id, limit=10**9)
    loads = pa.array([r.load_id for r in reversed(history)], pa.string())  # oldest first
    wanted = [id_field, *([date_field] if date_field else [])]
    parts = [
        _normalise(b, id_field, date_field, loads) for b in store.raw_batches(contract.id, wanted)
    ]
    if not parts:
        return {}, 0
    table = pa.concat_tables(parts)
    missing = table["record_id"].null_count
    table = table.filter(pc.is_valid(table["record_id"]))
    return _newest_per_record(table), missing
