"""The resident index end to end on a small sandbox, on every store."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from identity_fixtures import catalog, load_people
from territoria.backends import Store, open_store
from territoria.core.config import WorkspaceConfig
from territoria.identity import (
    MENTION_SCHEMA,
    Attacher,
    ModelParams,
    Registry,
    attach_new_mentions,
    evaluate_workspace,
    explain_pair,
    identity_status,
    link_workspace,
    read_workspace_mentions,
)
from territoria.identity.pipeline import link_mentions
from territoria.identity.scoring import TermFrequencies, explain, tf_columns
from territoria.ingest import ContractCatalog, ingest_file


@pytest.mark.slow
def test_link_flow_on_every_store(workspace: WorkspaceConfig, sandbox: Path) -> None:
    """The same flow on the workspace's store (PostgreSQL in CI): link, keep keys, evaluate."""
    store = open_store(workspace)
    try:
        load_people(store, workspace, sandbox)
        first = link_workspace(store, catalog(workspace))
        before = _keys(store)
        again = link_workspace(store, catalog(workspace))
        assert first.trained and not again.trained
        assert _keys(store) == before and again.events == {}
        report = evaluate_workspace(store, sandbox / "truth")
        assert report.persons.precision >= 0.99 and report.persons.f1 >= 0.96
        assert identity_status(store)["counts"]["persons"] == first.persons
    finally:
        store.close()


def _keys(store: Store) -> dict[str, tuple[str, str | None]]:
    return Registry(store.tables()).assignments()


def test_links_the_sandbox_with_quality_and_stable_keys(
    linked: tuple[WorkspaceConfig, Store], sandbox: Path
) -> None:
    config, store = linked
    report = evaluate_workspace(store, sandbox / "truth")
    # Statistical floor on a small territory (the benchmark measures the default sandbox).
    assert report.persons.precision >= 0.99
    assert report.persons.f1 >= 0.96
    assert report.households is not None and report.households.precision >= 0.95
    status = identity_status(store)
    assert status["counts"]["persons"] > 0
    assert status["model"]["evaluation"]["persons"]["f1"] == pytest.approx(report.persons.f1)
    before = _keys(store)
    again = link_workspace(store, catalog(config))
    assert not again.trained  # the saved model is reused
    assert _keys(store) == before
    assert again.events == {}


def _deliver_two_library_cards(
    config: WorkspaceConfig, store: Store, folder: Path
) -> tuple[str, str]:
    """A new library delivery: a card for a person already known, one for a stranger.
    Returns the mention id of the known person's existing record and the stranger's."""
    mention, family, given, dob = Registry(store.tables()).db.query(
        "SELECT f.unique_id, f.fn, f.gn, f.dob FROM id_features f "
        "WHERE f.source = 'library_members' AND f.dob IS NOT NULL ORDER BY f.unique_id LIMIT 1"
    )[0]
    extra = folder / "bibliotheque_nouveaux.ndjson"
    common = {"categorie": "adulte", "date_adhesion": "2026-01-05", "nb_prets_annee": 0}
    cards = [
        {"numero_carte": "9900000001", "nom": family, "prenom": given.title(), **common},
        {"numero_carte": "9900000002", "nom": "ZZTESTNOUVEAU", "prenom": "Ygrec", **common},
    ]
    cards[0]["date_naissance"], cards[1]["date_naissance"] = dob, "1990-02-03"
    extra.write_text("".join(json.dumps(c) + "\n" for c in cards), encoding="utf-8")
    assert ingest_file(store, catalog(config).get("library_members"), extra).ok
    return mention, "library_members|9900000002|member"


def test_a_new_delivery_keeps_keys_and_attaches_new_records(
    linked: tuple[WorkspaceConfig, Store], tmp_path: Path
) -> None:
    config, store = linked
    before = _keys(store)
    known, stranger = _deliver_two_library_cards(config, store, tmp_path)
    report = link_workspace(store, catalog(config))
    after = _keys(store)
    kept = sum(after[m][0] == k for m, (k, _) in before.items() if m in after)
    assert kept >= 0.99 * len(before)
    assert after["library_members|9900000001|member"][0] == before[known][0]
    assert report.events.get("person_attached", 0) >= 1
    assert report.events.get("person_created", 0) >= 1
    events = Registry(store.tables()).events(after[stranger][0])
    assert events and events[0]["kind"] == "created"


def test_incremental_link_attaches_only_new_records(
    linked: tuple[WorkspaceConfig, Store], tmp_path: Path
) -> None:
    config, store = linked
    before = _keys(store)
    known, stranger = _deliver_two_library_cards(config, store, tmp_path)
    report = attach_new_mentions(store, catalog(config))
    assert (report.new_mentions, report.attached, report.created) == (2, 1, 1)
    after = _keys(store)
    assert {m: k for m, k in after.items() if m in before} == before
    assert after["library_members|9900000001|member"][0] == before[known][0]
    assert after[stranger][0] not in {k for k, _ in before.values()}


def test_agents_decisions_are_respected_by_later_runs(
    linked: tuple[WorkspaceConfig, Store],
) -> None:
    config, store = linked
    registry = Registry(store.tables())
    keys = _keys(store)
    by_person: dict[str, list[str]] = {}
    for mention, (person, _) in keys.items():
        by_person.setdefault(person, []).append(mention)
    groups = sorted(by_person.values(), key=lambda m: (-len(m), sorted(m)))
    together = sorted(groups[0])[:2]  # one person, told apart by an agent
    apart = [sorted(groups[-1])[0], sorted(groups[-2])[0]]  # two persons, told one

    registry.decide(together[0], together[1], "different", "agent.test", "homonymes")
    registry.decide(apart[0], apart[1], "same", "agent.test", "vérifié au guichet")
    link_workspace(store, catalog(config))
    keys = _keys(store)
    assert keys[together[0]][0] != keys[together[1]][0]
    assert keys[apart[0]][0] == keys[apart[1]][0]
    merged = [e for e in registry.events(keys[apart[0]][0]) if e["kind"] == "merged"]
    assert merged and "agent" in merged[0]["reason"]


def test_review_queue_explains_each_pair_in_french(
    linked: tuple[WorkspaceConfig, Store],
) -> None:
    _config, store = linked
    registry = Registry(store.tables())
    pending = registry.reviews(20)
    assert registry.pending_reviews() >= len(pending) > 0
    first = pending[0]
    fields = {f["champ"] for f in first["explanation"]["champs"]}
    assert {"Nom et prénom", "Date de naissance", "Adresse"} <= fields
    explanation = explain_pair(store, first["mention_a"], first["mention_b"])
    assert explanation.probability == pytest.approx(first["probability"], abs=1e-6)
    assert any("bits" in line for line in explanation.lines_fr())
    registry.decide(first["mention_a"], first["mention_b"], "same", "agent.test")
    assert registry.pending_reviews() == len(registry.reviews(10_000))
    assert all(
        (p["mention_a"], p["mention_b"]) != (first["mention_a"], first["mention_b"])
        for p in registry.reviews(10_000)
    )


def test_incremental_attach_joins_the_right_person(linked: tuple[WorkspaceConfig, Store]) -> None:
    _config, store = linked
    registry = Registry(store.tables())
    model = registry.model()
    assert model is not None
    attacher = Attacher(registry, ModelParams.from_dict(model[1]))
    mention, family, given, dob, line = registry.db.query(
        "SELECT f.unique_id, f.fn, f.gn, f.dob, f.bkey FROM id_features f "
        "WHERE f.dob IS NOT NULL AND f.bkey IS NOT NULL AND f.source = 'ccas_aid' LIMIT 1"
    )[0]
    postcode, number, street = line.split("|")
    existing = registry.person_of(mention)
    row = dict.fromkeys(MENTION_SCHEMA.names)
    row |= {
        "mention_id": "transport_passes|NEW-1|holder",
        "source": "transport_passes",
        "record_id": "NEW-1",
        "slot": "holder",
        "family_name": family.lower(),
        "given_name": given,
        "birth_date": "-".join(reversed(dob.split("-"))).replace("-", "/"),
        "address": f"{number} {street}",
        "postcode": postcode,
    }
    attached = attacher.attach(row)
    assert not attached.created and attached.person_key == existing
    assert registry.person_of("transport_passes|NEW-1|holder") == existing
    stranger = row | {
        "mention_id": "transport_passes|NEW-2|holder",
        "record_id": "NEW-2",
        "family_name": "ZZINCONNU",
        "given_name": "Quidam",
        "birth_date": "01/01/1901",
    }
    created = attacher.attach(stranger)
    assert created.created and created.person_key != existing


def test_linking_reads_only_identifying_fields(workspace: WorkspaceConfig, sandbox: Path) -> None:
    store = open_store(workspace)
    load_people(store, workspace, sandbox)
    requested: dict[str, list[str]] = {}
    original = store.raw_table

    def spy(source: str, columns: list[str] | None = None) -> pa.Table:
        requested[source] = list(columns or [])
        return original(source, columns)

    store.raw_table = spy  # type: ignore[method-assign]
    contracts = ContractCatalog.load(*workspace.contract_paths)
    mentions = read_workspace_mentions(store, contracts)
    store.close()
    assert mentions.table.num_rows > 0 and requested
    for source, columns in requested.items():
        contract = contracts.get(source)
        categories = {f.name: f.category for f in contract.table_schema.fields}
        for column in columns:
            assert column == contract.linkage.record_id or categories[column] == "identifying"


def test_evaluate_command_reports_json(
    linked: tuple[WorkspaceConfig, Store], sandbox: Path
) -> None:
    from typer.testing import CliRunner

    from territoria.interfaces.cli.app import app

    config, _store = linked
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "identity",
            "evaluate",
            "--truth",
            str(sandbox / "truth"),
            "-w",
            str(config.root),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert {"persons", "person_clusters", "by_source", "households"} <= data.keys()
    assert data["persons"]["f1"] > 0.9
    missing = runner.invoke(
        app, ["identity", "evaluate", "--truth", str(sandbox / "absent"), "-w", str(config.root)]
    )
    assert missing.exit_code == 2 and "Traceback" not in missing.output


def test_python_scores_equal_splink_scores(linked: tuple[WorkspaceConfig, Store]) -> None:
    """The incremental path and every explanation use Python; Splink scores the batch."""
    config, store = linked
    registry = Registry(store.tables())
    model = registry.model()
    assert model is not None
    mentions = read_workspace_mentions(store, catalog(config))
    result = link_mentions(
        mentions.table, settings=model[1]["splink"], threshold=model[1]["threshold"]
    )
    params = ModelParams.from_dict(model[1])
    tf = TermFrequencies.from_features(result.features, tf_columns(params))
    rows = {r["unique_id"]: r for r in result.features.to_pylist()}
    pairs = result.pairs.to_pylist()
    assert len(pairs) > 1000
    for pair in pairs:
        explanation = explain(params, tf, rows[pair["unique_id_l"]], rows[pair["unique_id_r"]])
        assert explanation.weight == pytest.approx(pair["match_weight"], abs=1e-6)
