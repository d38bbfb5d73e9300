"""Persons from scored pairs: greedy clustering that never joins two incompatible records.

Connected components chain a father to his son through a record that has no birth date, and
twins through their shared surname and address. Here pairs are merged from the most to the
least likely, and a merge is refused when any record of one group conflicts with any record
of the other (incompatible birth dates or given names, or an agent's "different people"
decision). An agent's "same person" decision merges first and overrides conflicts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from territoria.identity.comparisons import Row, conflict_reason

_CONFLICT_FIELDS = ("fn", "gn1", "gk", "dob", "dob_y", "dob_m", "dob_d", "sex")
CONFLICT_COLUMNS = ("unique_id", *_CONFLICT_FIELDS)


@dataclass
class Merge:
    """Why two groups became one: the pair that joined them."""

    left: str
    right: str
    probability: float
    by_decision: bool = False


@dataclass
class Clustering:
    labels: dict[str, str]  # unique_id -> cluster id (the smallest member id)
    merges: list[Merge] = field(default_factory=list)
    refused: int = 0  # merges refused because of a conflict
    ambiguous: dict[str, tuple[str, str]] = field(default_factory=dict)  # record -> two rivals


class _Groups:
    def __init__(self, ids: Iterable[str]) -> None:
        self.parent = {i: i for i in ids}
        self.members = {i: [i] for i in self.parent}

    def find(self, i: str) -> str:
        parent = self.parent
        root = i
        while parent[root] != root:
            root = parent[root]
        while parent[i] != root:
            parent[i], i = root, parent[i]
        return root

    def union(self, a: str, b: str) -> None:
        if len(self.members[a]) < len(self.members[b]):
            a, b = b, a
        self.parent[b] = a
        self.members[a].extend(self.members.pop(b))


def cluster(
    ids: Sequence[str],
    rows: Mapping[str, Row],
    pairs: Iterable[tuple[str, str, float]],
    threshold: float,
    *,
    same: Iterable[tuple[str, str]] = (),
    different: Iterable[tuple[str, str]] = (),
    one_per_source: bool = False,
) -> Clustering:
    """Cluster ``ids`` from scored ``pairs`` (left, right, probability) at ``threshold``.

    ``rows`` holds the features of every id that appears in a pair (``conflict_reason``).
    With ``one_per_source`` (registers already free of duplicates, each person at most once
    per source), a group takes at most one record of each source and the hard conflicts are
    not applied: the most likely counterpart wins (one-to-one linkage).
    """
    groups = _Groups(ids)
    cannot = {frozenset(p) for p in different}
    same = list(same)
    decided = {x for pair in same for x in pair}
    kept = [p for p in pairs if p[2] >= threshold]
    ambiguous = {} if one_per_source else ambiguous_records(kept, rows, decided)
    result = Clustering(labels={}, ambiguous=ambiguous)
    clash = _same_source if one_per_source else _conflict
    for a, b in same:
        if a in groups.parent and b in groups.parent:
            ra, rb = groups.find(a), groups.find(b)
            if ra != rb:
                groups.union(ra, rb)
                result.merges.append(Merge(a, b, 1.0, by_decision=True))
    ordered = sorted(
        (p for p in kept if p[0] not in result.ambiguous and p[1] not in result.ambiguous),
        key=lambda p: (-p[2], p[0], p[1]),
    )
    for a, b, probability in ordered:
        ra, rb = groups.find(a), groups.find(b)
        if ra == rb:
            continue
        if _incompatible(groups.members[ra], groups.members[rb], rows, cannot, clash):
            result.refused += 1
            continue
        groups.union(ra, rb)
        result.merges.append(Merge(a, b, probability))
    for root, members in groups.members.items():
        label = min(members)
        for m in members:
            result.labels[m] = label
        del root
    return result


def ambiguous_records(
    pairs: Iterable[tuple[str, str, float]], rows: Mapping[str, Row], decided: set[str]
) -> dict[str, tuple[str, str]]:
    """Records that match two records which cannot be one person, and conflict with neither.

    A water contract in the name of "Jean MARTIN", with no birth date, at the address where
    Jean MARTIN born in 1961 and Jean MARTIN born in 1990 both live, could be either's: it is
    left unlinked (its own person) and sent to review rather than guessed, so that no person
    ever gathers the father's and the son's records. Agents' decisions settle it.
    """
    neighbours: dict[str, dict[str, float]] = {}
    for a, b, p in pairs:
        w = _weight(p)
        neighbours.setdefault(a, {})[b] = w
        neighbours.setdefault(b, {})[a] = w
    out: dict[str, tuple[str, str]] = {}
    for x, near in neighbours.items():
        if x in decided or len(near) < 2:
            continue
        rx = rows[x]
        fits = {y: w for y, w in near.items() if conflict_reason(rx, rows[y]) is None}
        rivals = _close_rivals(fits, rows)
        if rivals is not None:
            out[x] = rivals
    return out


AMBIGUITY_BITS = 4.0  # two rivals closer than this (a likelihood ratio of 16) are a toss-up


def _weight(probability: float) -> float:
    p = min(max(probability, 1e-12), 1 - 1e-12)
    return math.log2(p / (1 - p))


def _close_rivals(fits: dict[str, float], rows: Mapping[str, Row]) -> tuple[str, str] | None:
    ranked = sorted(fits.items(), key=lambda kv: (-kv[1], kv[0]))
    for i, (y, wy) in enumerate(ranked):
        for z, wz in ranked[i + 1 :]:
            if wy - wz >= AMBIGUITY_BITS:
                break
            if conflict_reason(rows[y], rows[z]):
                return (y, z)
    return None


def _conflict(a: Row, b: Row) -> bool:
    return conflict_reason(a, b) is not None


def _same_source(a: Row, b: Row) -> bool:
    return bool(a["rec"].split("|", 1)[0] == b["rec"].split("|", 1)[0])


def _incompatible(
    left: list[str],
    right: list[str],
    rows: Mapping[str, Row],
    cannot: set[frozenset[str]],
    clash: Callable[[Row, Row], bool],
) -> bool:
    for x in left:
        rx = rows[x]
        for y in right:
            if cannot and frozenset((x, y)) in cannot:
                return True
            if clash(rx, rows[y]):
                return True
    return False


def conflict_rows(
    features: Mapping[str, list[Any]],
    index: Iterable[int],
    latest_birth_year: Mapping[str, int] | None = None,
) -> dict[str, Row]:
    """The few fields conflicts read, for the mentions at ``index`` of a column mapping.

    ``rec`` is the source record a mention comes from (``source|record_id``); ``max_y`` the
    latest birth year the mention's person can have (a guardian, from the child's).
    """
    ids = features["unique_id"]
    latest = latest_birth_year or {}
    rows: dict[str, Row] = {}
    for i in index:
        uid = str(ids[i])
        row: dict[str, Any] = {f: features[f][i] for f in _CONFLICT_FIELDS}
        row["rec"] = uid.rsplit("|", 1)[0]
        row["max_y"] = latest.get(uid)
        rows[uid] = row
    return rows
