"""Households from persons: the relationships the sources state, and shared dwellings.

Two persons are in one household when a source says so (guardians of a pupil, co-holders of a
water contract, members of a CCAS file) or when they live in the same dwelling. A person's
dwelling is the one most of their records give (after a move, the new address wins once
several services know it); an address only counts as a dwelling when it names the flat, or
when its building has a single dwelling (no record there ever names a flat).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

import pyarrow as pa


class _Union:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        parent = self.parent.setdefault(x, x)
        if parent == x:
            return x
        root = self.find(parent)
        self.parent[x] = root
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def household_labels(
    person_of: Mapping[str, str],
    features: pa.Table,
    relations: pa.Table | None,
) -> dict[str, str]:
    """mention id -> household label (the smallest person label of the household)."""
    groups = _Union()
    for person in person_of.values():
        groups.find(person)
    if relations is not None:
        for a, b in zip(
            relations.column("mention_a").to_pylist(),
            relations.column("mention_b").to_pylist(),
            strict=True,
        ):
            if a in person_of and b in person_of:
                groups.union(person_of[a], person_of[b])
    by_dwelling: dict[str, str] = {}
    for person, dwelling in main_dwellings(person_of, features).items():
        if dwelling in by_dwelling:
            groups.union(person, by_dwelling[dwelling])
        else:
            by_dwelling[dwelling] = person
    return {m: groups.find(p) for m, p in person_of.items()}


def main_dwellings(person_of: Mapping[str, str], features: pa.Table) -> dict[str, str]:
    """person label -> the dwelling most of their records give (when any does)."""
    ids = features.column("unique_id").to_pylist()
    bkeys = features.column("bkey").to_pylist()
    dkeys = features.column("dkey").to_pylist()
    complements = features.column("cpl").to_pylist()
    with_flats = {b for b, c in zip(bkeys, complements, strict=True) if b and c}
    votes: dict[str, Counter[str]] = {}
    for uid, bkey, dkey, cpl in zip(ids, bkeys, dkeys, complements, strict=True):
        person = person_of.get(uid)
        if person is None or bkey is None:
            continue
        if cpl:
            dwelling = dkey
        elif bkey not in with_flats:
            dwelling = bkey
        else:
            continue
        votes.setdefault(person, Counter())[dwelling] += 1
    return {p: _most_common(c) for p, c in votes.items()}


def _most_common(counter: Counter[str]) -> str:
    best = max(counter.values())
    return min(k for k, v in counter.items() if v == best)
