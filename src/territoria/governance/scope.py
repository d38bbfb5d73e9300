"""A purpose's population as SQL over the resident index: whose rows it may return.

The population is computed from the records of the purpose's own sources only (never from
a source it may not read), so a record added to another service's source changes nothing
for it. Every clause of ``Scope`` narrows the set; consent and objections are applied by the
governed read on top of it, at every read.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from territoria.backends import TableDB, marks
from territoria.governance.policy import Purpose

__all__ = ["birth_bounds", "in_scope", "population"]


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a year that has none
        return day.replace(year=day.year - years, day=28)


def _as_int(day: date) -> int:
    return day.year * 10000 + day.month * 100 + day.day


def birth_bounds(ages: tuple[int, int], today: date) -> tuple[int, int]:
    """Birth dates (YYYYMMDD integers, both included) of persons aged ``ages[0]``–``ages[1]``."""
    low, high = ages
    return _as_int(_years_before(today, high + 1)) + 1, _as_int(_years_before(today, low))


_DOB = "(f.dob_y * 10000 + COALESCE(f.dob_m, 6) * 100 + COALESCE(f.dob_d, 15))"


def _clauses(purpose: Purpose, today: date, actor_key: str | None) -> tuple[str, list[Any]]:
    sources = sorted(purpose.sources)
    known = sorted(purpose.scope.known_to or sources)
    sql = [f"m.source IN ({marks(known)})"]
    params: list[Any] = list(known)
    feature_join = (
        "SELECT m2.{col} FROM id_mentions m2 JOIN id_features f ON f.unique_id = m2.mention_id "
        f"WHERE m2.source IN ({marks(sources)}) AND "
    )
    scope = purpose.scope
    if scope.communes:
        values = [c.upper() for c in scope.communes]
        sql.append(
            "m.person_key IN ("
            + feature_join.format(col="person_key")
            + f"(f.pc IN ({marks(values)}) OR f.commune IN ({marks(values)})))"
        )
        params += [*sources, *values, *values]
    if scope.age:
        low, high = birth_bounds(scope.age, today)
        sql.append(
            "m.person_key IN (" + feature_join.format(col="person_key") + f"{_DOB} BETWEEN ? AND ?)"
        )
        params += [*sources, low, high]
    if scope.household_child_age:
        low, high = birth_bounds(scope.household_child_age, today)
        sql.append(
            "m.household_key IN ("
            + feature_join.format(col="household_key")
            + f"{_DOB} BETWEEN ? AND ?)"
        )
        params += [*sources, low, high]
    if scope.self_only:
        sql.append("m.person_key = ?")
        params.append(actor_key or "")
    return " AND ".join(sql), params


def population(db: TableDB, purpose: Purpose, today: date, actor_key: str | None) -> set[str]:
    """Person keys in the purpose's scope (before consent and objections)."""
    where, params = _clauses(purpose, today, actor_key)
    rows = db.query(f"SELECT DISTINCT m.person_key FROM id_mentions m WHERE {where}", params)
    return {str(r[0]) for r in rows}


def in_scope(
    db: TableDB, purpose: Purpose, today: date, actor_key: str | None, person: str
) -> bool:
    """Whether one person is in the purpose's scope (one indexed query)."""
    where, params = _clauses(purpose, today, actor_key)
    rows = db.query(
        f"SELECT 1 FROM id_mentions m WHERE m.person_key = ? AND {where} LIMIT 1",
        [person, *params],
    )
    return bool(rows)
