"""Who is the resident who just logged in? FranceConnect's identité pivot → the index.

FranceConnect (and any identity provider of the same shape) vouches for a birth name, given
names and a birth date. The portal needs the resident index's person key behind them. The
match is deliberately strict: the birth date must be equal, the birth name (or the family
name) must be equal once folded, and the first given name must be one of the record's given
names. Exactly one person must answer; none or several leave the resident without a file
(a counter at the town hall sorts it out), never in someone else's.
"""

from __future__ import annotations

from dataclasses import dataclass

from territoria.backends import TableDB
from territoria.identity.standardise import fold

__all__ = ["PivotIdentity", "match_resident"]


@dataclass(frozen=True)
class PivotIdentity:
    """The identité pivot an identity provider vouches for."""

    given_name: str
    family_name: str  # the birth name
    birthdate: str  # YYYY-MM-DD
    usage_name: str = ""


def match_resident(db: TableDB, pivot: PivotIdentity) -> tuple[str | None, int]:
    """The one person key matching the identity, and how many persons matched."""
    names = {fold(pivot.family_name)} | ({fold(pivot.usage_name)} if pivot.usage_name else set())
    names.discard("")
    given = fold(pivot.given_name).split()
    if not names or not given or len(pivot.birthdate) != 10:
        return None, 0
    rows = db.query(
        "SELECT DISTINCT m.person_key, f.fn, f.bn, f.gn FROM id_features f "
        "JOIN id_mentions m ON m.mention_id = f.unique_id WHERE f.dob = ?",
        [pivot.birthdate],
    )
    persons = {
        str(person)
        for person, fn, bn, gn in rows
        if ({fold(fn or ""), fold(bn or "")} & names) and given[0] in fold(gn or "").split()
    }
    if len(persons) == 1:
        return next(iter(persons)), 1
    return None, len(persons)
