"""Stable keys: a new clustering inherits the keys of the previous one.

Each new group takes the previous key most of its members had (a key goes to one group only:
the group that holds most of its members). A previous key whose members all joined a group
that kept another key is *merged* into it; a group that holds no previous key, or only keys
another group kept, gets a new key (*created*, or *split* from the key its members had). Every
change is an event with its reason.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence

from territoria.identity.registry import Event, new_key

ReasonFor = Callable[[str, str], str]  # (key absorbed, key kept) -> reason


def _default_reason(absorbed: str, kept: str) -> str:
    return f"les fiches de {absorbed} sont désormais reliées à {kept}"


def assign_keys(
    groups: Mapping[str, Sequence[str]],
    previous: Mapping[str, str],
    *,
    prefix: str,
    entity: str,
    reason_for: ReasonFor = _default_reason,
) -> tuple[dict[str, str], list[Event]]:
    """Keys for ``groups`` (label -> members) given ``previous`` (member -> key)."""
    votes = {
        label: Counter(previous[m] for m in members if m in previous)
        for label, members in groups.items()
    }
    key_of = _claim(votes)
    kept = set(key_of)  # groups that carry a previous key
    events = _new_keys(groups, votes, key_of, prefix, entity, first_run=not previous)
    events += _merges(votes, key_of, entity, reason_for)
    if previous:
        events += [
            Event("attached", entity, key_of[label], "nouvelle fiche rattachée", mention_id=m)
            for label, members in groups.items()
            if label in kept
            for m in members
            if m not in previous
        ]
    return {m: key_of[label] for label, members in groups.items() for m in members}, events


def _claim(votes: Mapping[str, Counter[str]]) -> dict[str, str]:
    """Each previous key goes to the group holding most of its members (ties: smallest)."""
    claims = sorted(
        ((count, key, label) for label, c in votes.items() for key, count in c.items()),
        key=lambda x: (-x[0], x[1], x[2]),
    )
    key_of: dict[str, str] = {}
    taken: set[str] = set()
    for _count, key, label in claims:
        if label not in key_of and key not in taken:
            key_of[label] = key
            taken.add(key)
    return key_of


def _new_keys(
    groups: Mapping[str, Sequence[str]],
    votes: Mapping[str, Counter[str]],
    key_of: dict[str, str],
    prefix: str,
    entity: str,
    *,
    first_run: bool,
) -> list[Event]:
    events = []
    for label in sorted(groups):
        if label in key_of:
            continue
        key = key_of[label] = new_key(prefix)
        origin = votes[label].most_common(1)
        if origin:
            old = origin[0][0]
            events.append(Event("split", entity, key, f"séparé de {old}", other_key=old))
        else:
            reason = "première indexation" if first_run else "nouvelles fiches sans correspondance"
            events.append(Event("created", entity, key, reason))
    return events


def _merges(
    votes: Mapping[str, Counter[str]], key_of: Mapping[str, str], entity: str, reason_for: ReasonFor
) -> list[Event]:
    kept_keys = set(key_of.values())
    events = []
    for label, counter in sorted(votes.items()):
        kept = key_of[label]
        for old in sorted(counter):
            if old not in kept_keys:
                events.append(Event("merged", entity, old, reason_for(old, kept), other_key=kept))
                kept_keys.add(old)
    return events


def groups_of(labels: Mapping[str, str]) -> dict[str, list[str]]:
    """Invert member -> label into label -> members."""
    groups: dict[str, list[str]] = {}
    for member, label in labels.items():
        groups.setdefault(label, []).append(member)
    return groups
