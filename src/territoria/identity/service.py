"""The resident index of a workspace: link, keep keys stable, queue reviews, report.

``link_workspace`` reads every linkable source (identifying fields only), links persons with
the current model (training one when none exists or when asked), forms households, carries
the previous keys over, queues the uncertain pairs for clerical review and writes it all in
one transaction. Agents' decisions are applied on every run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from territoria.backends import Store
from territoria.core.contract import SourceContract
from territoria.core.errors import TerritoriaError
from territoria.identity.cluster import Merge
from territoria.identity.comparisons import conflict_reason
from territoria.identity.evaluate import EvaluationReport, evaluate_against_truth
from territoria.identity.households import household_labels
from territoria.identity.incremental import Attacher
from territoria.identity.keys import assign_keys, groups_of
from territoria.identity.mentions import read_workspace_mentions
from territoria.identity.model import ModelParams
from territoria.identity.pipeline import LinkResult, link_mentions
from territoria.identity.registry import Event, Registry, ordered, split_decisions
from territoria.identity.scoring import Explanation, TermFrequencies, explain, tf_columns

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

    def lines_fr(self) -> list[str]:
        """The report in French, for the terminal."""
        e = self.events
        lines = [
            f"Fiches de personnes reliées : {self.mentions:,}".replace(",", " "),
            f"Personnes : {self.persons:,} (dont {self.multi_record_persons:,} connues de "
            "plusieurs fiches)".replace(",", " "),
            f"Ménages : {self.households:,}".replace(",", " "),
            f"Modèle : version {self.model_version}"
            + (" (entraîné à l'instant, sans étiquettes)" if self.trained else " (réutilisé)")
            + f", seuil de décision {self.threshold:.2f}",
            f"Rapprochements refusés pour incompatibilité (jumeaux, parent et enfant…) : "
            f"{self.refused_merges}",
            f"Paires incertaines en attente de revue : {self.pending_reviews} "
            "(« territoria identity review »)",
            "Clés : "
            + (
                ", ".join(
                    f"{n} {label}"
                    for key, label in (
                        ("person_created", "personnes créées"),
                        ("person_attached", "fiches rattachées"),
                        ("person_merged", "fusions"),
                        ("person_split", "séparations"),
                    )
                    if (n := e.get(key))
                )
                or "inchangées (mêmes personnes, mêmes clés qu'à la liaison précédente)"
            ),
        ]
        return lines


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
    started = time.perf_counter()
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
        timings={**result.timings, "keys_and_writes": round(time.perf_counter() - started, 3)},
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
    """Pairs for clerical review, each with its field-by-field explanation.

    The uncertain band of probabilities, and the pairs of each ambiguous record (one that
    fits two persons who cannot be one). Pairs a hard conflict separates (twins, parent and
    child, two persons of one record) are not uncertain and are left out.
    """
    low, high = result.params.review_band
    ambiguous = {
        ordered_pair
        for x, rivals in result.clustering.ambiguous.items()
        for ordered_pair in (ordered(x, rivals[0]), ordered(x, rivals[1]))
    }
    pairs = result.pairs
    in_band = pc.and_(
        pc.greater_equal(pairs["match_probability"], low),
        pc.less(pairs["match_probability"], high),
    )
    if ambiguous:
        records = pa.array(sorted({x for pair in ambiguous for x in pair}), pa.string())
        touching = pc.and_(
            pc.is_in(pairs["unique_id_l"], records), pc.is_in(pairs["unique_id_r"], records)
        )
        in_band = pc.or_(in_band, touching)
    chosen = pairs.filter(in_band)  # only these become Python objects
    candidates = []
    for a, b, p in zip(
        chosen["unique_id_l"].to_pylist(),
        chosen["unique_id_r"].to_pylist(),
        chosen["match_probability"].to_pylist(),
        strict=True,
    ):
        pair = ordered(a, b)
        if low <= p < high or pair in ambiguous:
            candidates.append((*pair, p, pair in ambiguous))
    if not candidates:
        return []
    wanted = {x for c in candidates for x in c[:2]}
    subset = result.features.filter(
        pc.is_in(result.features["unique_id"], pa.array(sorted(wanted), pa.string()))
    )
    rows = {r["unique_id"]: r for r in subset.to_pylist()}
    tf = TermFrequencies.from_features(result.features, tf_columns(result.params))
    out = []
    for a, b, p, is_ambiguous in candidates:
        if conflict_reason(rows[a], rows[b]) is not None:
            continue
        explanation = explain(result.params, tf, rows[a], rows[b]).as_dict()
        if is_ambiguous:
            explanation["motif"] = (
                "fiche compatible avec deux personnes différentes : laissée à part en attendant "
                "la décision d'un agent"
            )
        out.append((a, b, p, explanation))
    out.sort(key=lambda r: (r[3].get("motif") is None, abs(r[2] - 0.5)))
    return out[:MAX_REVIEWS]


def identity_status(store: Store) -> dict[str, Any]:
    """Counts, the last run and the model in service (``territoria identity status``)."""
    registry = Registry(store.tables())
    counts = registry.counts()
    run = registry.last_run()
    model = registry.model()
    info: dict[str, Any] = {"counts": counts, "last_run": run, "model": None, "lines": []}
    if model is not None:
        version, params, evaluation = model
        info["model"] = {
            "version": version,
            "threshold": params["threshold"],
            "review_band": params["review_band"],
            "prior": params["prior"],
            "evaluation": evaluation,
        }
    if run is None:
        return info
    lines = [
        ("Fiches reliées", f"{counts['mentions']:,}".replace(",", " ")),
        ("Personnes", f"{counts['persons']:,}".replace(",", " ")),
        ("Ménages", f"{counts['households']:,}".replace(",", " ")),
        ("Revues en attente", str(counts["pending_reviews"])),
        ("Décisions d'agents", str(counts["decisions"])),
        ("Événements de clés", f"{counts['events']:,}".replace(",", " ")),
        ("Dernière liaison", f"{run['finished_at']} ({run['run_id']})"),
    ]
    if info["model"]:
        m = info["model"]
        lines.append(
            (
                "Modèle en service",
                f"version {m['version']}, seuil {m['threshold']:.2f}, "
                f"revue entre {m['review_band'][0]:.0%} et {m['review_band'][1]:.0%}",
            )
        )
        if m["evaluation"]:
            persons = m["evaluation"]["persons"]
            lines.append(
                (
                    "Dernière évaluation",
                    f"F1 par paires {persons['f1']:.4f} "
                    f"(précision {persons['precision']:.4f}, rappel {persons['recall']:.4f})",
                )
            )
    info["lines"] = lines
    return info


def evaluate_workspace(store: Store, truth_dir: Path) -> EvaluationReport:
    """Score the index's persons and households against a sandbox truth folder; the figures
    are kept with the model in service."""
    registry = Registry(store.tables())
    rows = registry.db.query(
        "SELECT mention_id, person_key, household_key, source FROM id_mentions"
    )
    if not rows:
        raise TerritoriaError(
            "l'index des résidents est vide",
            code="index_empty",
            hint="lancez d'abord « territoria link »",
        )
    ids, persons, households, sources = (list(c) for c in zip(*rows, strict=True))
    report = evaluate_against_truth(
        pa.table({"unique_id": ids, "entity": persons}),
        pa.table({"unique_id": ids, "entity": households}),
        truth_dir,
        pa.table({"unique_id": ids, "source": sources}),
    )
    model = registry.model()
    if model is not None:
        registry.set_model_evaluation(model[0], report.as_dict())
    return report


def explain_pair(store: Store, a: str, b: str) -> Explanation:
    """Field-by-field explanation of two indexed records with the model in service."""
    registry = Registry(store.tables())
    model = registry.model()
    if model is None:
        raise TerritoriaError(
            "aucun modèle : lancez d'abord « territoria link »", code="index_empty"
        )
    params = ModelParams.from_dict(model[1])
    rows = registry.feature_rows([a, b])
    for mention in (a, b):
        if mention not in rows:
            raise TerritoriaError(
                f"fiche inconnue de l'index : {mention}",
                code="mention_unknown",
                expected="source|identifiant|rôle, comme dans « territoria identity review »",
            )
    tf = TermFrequencies.from_features(registry.features(), tf_columns(params))
    return explain(params, tf, rows[a], rows[b])


@dataclass
class AttachReport:
    new_mentions: int
    attached: int
    created: int
    seconds: float
    slowest_ms: float
    not_persons: int = 0  # no usable name (an organisation, an empty name): never indexed

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def lines_fr(self) -> list[str]:
        return [
            f"Nouvelles fiches : {self.new_mentions}",
            f"Rattachées à une personne connue : {self.attached}",
            f"Nouvelles personnes : {self.created}",
            f"Fiches sans nom de personne exploitable (non indexées) : {self.not_persons}",
            f"Durée : {self.seconds:.1f} s (fiche la plus lente : {self.slowest_ms:.0f} ms)",
            "Une liaison complète (« territoria link ») réexamine tout, avec les mêmes clés.",
        ]


def attach_new_mentions(
    store: Store, contracts: Iterable[SourceContract], *, progress: Progress = lambda _: None
) -> AttachReport:
    """Attach the records not yet in the index, one by one, without re-linking the rest."""
    registry = Registry(store.tables())
    model = registry.model()
    if model is None:
        raise TerritoriaError(
            "aucun modèle : la première liaison doit être complète",
            code="index_empty",
            hint="lancez « territoria link » sans --incremental",
        )
    known = set(registry.assignments())
    mentions = read_workspace_mentions(store, contracts).table
    new = mentions.filter(pc.invert(pc.is_in(mentions["mention_id"], pa.array(sorted(known)))))
    attacher = Attacher(registry, ModelParams.from_dict(model[1]))
    run_id = registry.start_run("attach")
    attached = created = skipped = 0
    slowest = 0.0
    start = time.perf_counter()
    for i, row in enumerate(new.to_pylist()):
        if i % 1000 == 0:
            progress(f"rattachement des nouvelles fiches ({i}/{new.num_rows})")
        t = time.perf_counter()
        try:
            result = attacher.attach(row, run_id)
        except ValueError:  # no usable name: not a person
            skipped += 1
            continue
        slowest = max(slowest, (time.perf_counter() - t) * 1000)
        created += result.created
        attached += not result.created
    seconds = time.perf_counter() - start
    report = AttachReport(attached + created, attached, created, seconds, slowest, skipped)
    registry.finish_run(run_id, model[0], report.as_dict())
    return report
