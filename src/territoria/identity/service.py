"""The resident index of a workspace: link, keep keys stable, queue reviews, report.

``link_workspace`` reads every linkable source (identifying fields only), links persons with
the current model (training one when none exists or when asked), forms households, carries
the previous keys over, queues the uncertain pairs for clerical review and writes it all in
one transaction. Agents' decisions are applied on every run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from territoria.backends import Store
from territoria.core.contract import SourceContract
from territoria.identity.cluster import Merge
from territoria.identity.comparisons import conflict_reason
from territoria.identity.households import household_labels
from territoria.identity.keys import assign_keys, groups_of
from territoria.identity.mentions import read_workspace_mentions
from territoria.identity.pipeline import LinkResult, link_mentions
from territoria.identity.registry import Event, Registry, split_decisions
from territoria.identity.scoring import TermFrequencies, explain, tf_columns

Progress = Callable[[str], None]
MAX_REVIEWS = 5_000


@dataclass
class LinkReport:
    run_id: str
    model_version: int
    trained: bool
    mentions: int
    persons: int
    households: int
    multi_record_persons: int
    threshold: float
    pending_reviews: int
    events: dict[str, int]
    refused_merges: int
    timings: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def link_workspace(
    store: Store,
    contracts: Iterable[SourceContract],
    *,
    retrain: bool = False,
    progress: Progress = lambda _: None,
) -> LinkReport:
    """Link every linkable source of the workspace into persons and households."""
    registry = Registry(store.tables())
    progress("lecture des champs d'identification des sources")
    mentions = read_workspace_mentions(store, contracts)
    same, different = split_decisions(registry.decisions())
    saved = None if retrain else registry.model()
    result = link_mentions(
        mentions.table,
        relations=mentions.relations,
        same=same,
        different=different,
        settings=saved[1]["splink"] if saved else None,
        threshold=saved[1]["threshold"] if saved else None,
        progress=progress,
    )
    progress("ménages, clés stables et file de revue")
    previous = registry.assignments()
    person_of = result.clustering.labels
    persons, person_events = assign_keys(
        groups_of(person_of),
        {m: p for m, (p, _) in previous.items()},
        prefix="P",
        entity="person",
        reason_for=_merge_reasons(result.clustering.merges, previous),
    )
    household_of = household_labels(person_of, result.features, mentions.relations)
    households, household_events = assign_keys(
        groups_of(household_of),
        {m: h for m, (_, h) in previous.items() if h},
        prefix="F",
        entity="household",
    )
    reviews = review_pairs(result)
    sources = dict(
        zip(
            result.features["unique_id"].to_pylist(),
            result.features["source"].to_pylist(),
            strict=True,
        )
    )
    events = person_events + household_events
    run_id = registry.start_run("link")
    with registry.db.transaction():
        version = saved[0] if saved else registry.save_model(run_id, result.params.as_dict(), None)
        registry.replace_assignments(
            ((m, sources[m], persons[m], households.get(m)) for m in persons), run_id
        )
        registry.replace_features(result.features)
        registry.record_events(events, run_id)
        registry.replace_reviews(reviews, run_id)
    report = LinkReport(
        run_id=run_id,
        model_version=version,
        trained=saved is None,
        mentions=len(persons),
        persons=len(set(persons.values())),
        households=len(set(households.values())),
        multi_record_persons=sum(1 for g in groups_of(persons).values() if len(g) > 1),
        threshold=result.params.threshold,
        pending_reviews=registry.pending_reviews(),
        events=_count_kinds(events),
        refused_merges=result.clustering.refused,
        timings=result.timings,
    )
    registry.finish_run(run_id, version, report.as_dict())
    return report


def _count_kinds(events: list[Event]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for e in events:
        name = f"{e.entity}_{e.kind}"
        counts[name] = counts.get(name, 0) + 1
    return counts


def _merge_reasons(
    merges: list[Merge], previous: Mapping[str, tuple[str, str | None]]
) -> Callable[[str, str], str]:
    """Reason of a merge of two previous keys: the pair of records that joined them."""
    by_keys: dict[frozenset[str], Merge] = {}
    for merge in merges:
        a, b = previous.get(merge.left), previous.get(merge.right)
        if a and b and a[0] != b[0]:
            by_keys.setdefault(frozenset((a[0], b[0])), merge)

    def reason(absorbed: str, kept: str) -> str:
        merge = by_keys.get(frozenset((absorbed, kept)))
        if merge is None:
            return f"les fiches de {absorbed} sont désormais reliées à {kept}"
        if merge.by_decision:
            return f"décision d'un agent : {merge.left} et {merge.right} sont la même personne"
        return f"fiches {merge.left} et {merge.right} reliées (probabilité {merge.probability:.0%})"

    return reason


def review_pairs(result: LinkResult) -> list[tuple[str, str, float, dict[str, Any]]]:
    """Pairs in the uncertain band, each with its field-by-field explanation.

    Pairs that a hard conflict separates (twins, parent and child, two persons of one record)
    are not uncertain and are left out.
    """
    low, high = result.params.review_band
    pairs = result.pairs.filter(
        pa.compute.and_(
            pa.compute.greater_equal(result.pairs["match_probability"], low),
            pa.compute.less(result.pairs["match_probability"], high),
        )
    )
    if pairs.num_rows == 0:
        return []
    wanted = set(pairs["unique_id_l"].to_pylist()) | set(pairs["unique_id_r"].to_pylist())
    rows = {r["unique_id"]: r for r in result.features.to_pylist() if r["unique_id"] in wanted}
    tf = TermFrequencies.from_features(result.features, tf_columns(result.params))
    out = []
    for a, b, p in zip(
        pairs["unique_id_l"].to_pylist(),
        pairs["unique_id_r"].to_pylist(),
        pairs["match_probability"].to_pylist(),
        strict=True,
    ):
        if conflict_reason(rows[a], rows[b]) is not None:
            continue
        left, right = (a, b) if a <= b else (b, a)
        out.append((left, right, p, explain(result.params, tf, rows[left], rows[right]).as_dict()))
    out.sort(key=lambda r: abs(r[2] - 0.5))
    return out[:MAX_REVIEWS]
