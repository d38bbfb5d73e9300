"""The governed read and the residents' rights on a linked sandbox (frozen clock)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from governance_fixtures import FrozenClock, persons_in, read
from territoria.backends import Store
from territoria.core.config import WorkspaceConfig
from territoria.core.errors import GovernanceError
from territoria.governance import (
    Governance,
    access_export,
    file_rectification,
    load_policy,
    rectifications,
    render_access_html,
)

LIBRARIAN, SOCIAL, DPO = "lea.biblio", "claire.ccas", "dpo"


@pytest.fixture
def gov(linked: tuple[WorkspaceConfig, Store]) -> Iterator[tuple[Governance, FrozenClock]]:
    config, store = linked
    clock = FrozenClock()
    yield Governance.open(config, store, clock=clock), clock


def _pseudonym(gov: Governance, purpose: str, key: str) -> str:
    return gov.pseudonyms.pseudonym(gov.policy.purposes[purpose].domain, key)


def test_the_360_view_shows_only_the_purposes_sources_and_fields(
    gov: tuple[Governance, FrozenClock],
) -> None:
    g, _ = gov
    person = persons_in(g, "ccas_aid", "library_members")[0]
    lib = read(
        g,
        LIBRARIAN,
        "library_lending",
        "person_360",
        subject=_pseudonym(g, "library_lending", person),
    )
    assert lib.status == "ok" and set(lib.data["sources"]) == {"library_members"}
    social = read(
        g,
        SOCIAL,
        "ccas_social_support",
        "person_360",
        subject=_pseudonym(g, "ccas_social_support", person),
    )
    assert social.status == "ok" and "ccas_aid" in social.data["sources"]
    assert "library_members" not in social.data["sources"]  # not in the social purpose
    allowed = set(g.policy.purposes["ccas_social_support"].sources["water_subscribers"])
    for record in social.data["sources"].get("water_subscribers", {}).get("records", []):
        assert set(record) <= allowed and "phone" not in record
    assert lib.data["person"] != social.data["person"]  # one pseudonym per domain
    assert person not in lib.canonical() and person not in social.canonical()


def test_deny_by_default_and_each_read_leaves_one_ledger_record(
    gov: tuple[Governance, FrozenClock],
) -> None:
    g, _ = gov
    before = g.ledger.head().count
    cases = [
        (LIBRARIAN, "ccas_social_support", "count", "deny:no_grant"),
        (LIBRARIAN, "library_lending", "count", "grant:librarian:library_lending"),
        (LIBRARIAN, "no_such_purpose", "count", "deny:unregistered_purpose"),
        ("intrus", "library_lending", "count", "deny:unknown_actor"),
        ("marc.donnees", "service_synergies", "person_360", "deny:aggregate_only"),
        (LIBRARIAN, "library_lending", "ledger", "deny:no_grant"),
    ]
    for actor, purpose, view, rule in cases:
        result = read(g, actor, purpose, view) if view != "ledger" else None
        decision = result.decision if result else g.decide(actor, purpose, view)
        assert decision.rule == rule
        if result:
            assert result.data is None or result.decision.allowed
    records = g.ledger.records(limit=100)
    assert g.ledger.head().count == before + len(cases) - 1
    assert [r.entry.rule for r in records[: len(cases) - 1]][::-1] == [c[3] for c in cases[:-1]]
    assert g.ledger.verify().ok


def test_a_view_the_reader_does_not_serve_is_still_recorded(
    gov: tuple[Governance, FrozenClock],
) -> None:
    g, _ = gov
    before = g.ledger.head().count
    with pytest.raises(GovernanceError) as err:
        read(g, "marc.donnees", "service_synergies", "synergies")
    assert err.value.code == "view_not_readable"
    assert g.ledger.head().count == before + 1


def test_unknown_and_out_of_scope_persons_give_the_same_answer(
    gov: tuple[Governance, FrozenClock],
) -> None:
    g, _ = gov
    ccas_only = sorted(set(persons_in(g, "ccas_aid")) - set(persons_in(g, "library_members")))[0]
    out_of_scope = read(
        g,
        LIBRARIAN,
        "library_lending",
        "person_360",
        subject=_pseudonym(g, "library_lending", ccas_only),
    )
    unknown = read(
        g, LIBRARIAN, "library_lending", "person_360", subject="LEC.k1.AAAAAAAAAAAAAAAAAAAAAAAAAA"
    )
    assert out_of_scope.status == unknown.status == "not_found"
    assert out_of_scope.canonical() == unknown.canonical()
    last_two = g.ledger.records(limit=2)
    assert [r.entry.persons for r in last_two] == [(), ()]
    assert last_two[0].entry.reason == last_two[1].entry.reason


def test_search_autocomplete_count_and_records_stay_in_scope(
    gov: tuple[Governance, FrozenClock],
) -> None:
    g, _ = gov
    count = read(g, LIBRARIAN, "library_lending", "count").data["persons"]
    assert count == len(persons_in(g, "library_members"))
    rows = read(g, LIBRARIAN, "library_lending", "records", source="library_members", limit=5)
    assert rows.data["total"] >= count and len(rows.data["rows"]) == 5
    assert all(r["person"].startswith("LEC.") for r in rows.data["rows"])
    name = rows.data["rows"][0]["family_name"]
    hits = read(g, LIBRARIAN, "library_lending", "search", query=name).data["results"]
    assert hits and all(h["person"].startswith("LEC.") for h in hits)
    suggestions = read(g, LIBRARIAN, "library_lending", "autocomplete", query=name[:3]).data[
        "suggestions"
    ]
    assert suggestions and all(s.startswith(name[:3].upper()) for s in suggestions)
    refused = read(g, LIBRARIAN, "library_lending", "records", source="ccas_aid")
    assert refused.status == "not_found" and refused.data == {"message": refused.data["message"]}


def test_consent_and_objection_take_effect_at_the_next_read(
    gov: tuple[Governance, FrozenClock],
) -> None:
    g, _ = gov
    person = persons_in(g, "library_members")[0]
    resident = f"resident:{person}"
    assert read(g, "yann.usagers", "service_information", "count").data["persons"] == 0
    g.change_consent(resident, "resident_access", None, "service_information", give=True)
    listed = read(g, "yann.usagers", "service_information", "records", source="library_members")
    assert [r["person"] for r in listed.data["rows"]] == [
        _pseudonym(g, "service_information", person)
    ]
    g.change_consent(resident, "resident_access", None, "service_information", give=False)
    assert read(g, "yann.usagers", "service_information", "count").data["persons"] == 0
    with pytest.raises(GovernanceError) as err:
        g.change_objection(resident, "resident_access", None, "library_lending", object_=True)
    assert err.value.code == "purpose_not_proactive"
    kinds = [r.entry.view for r in g.ledger.records(person=person, kind="write", limit=10)]
    assert kinds == ["consent.withdrawn", "consent.given"]


def test_objection_removes_a_person_from_a_proactive_purpose(
    gov: tuple[Governance, FrozenClock],
) -> None:
    g, _ = gov
    first = read(
        g,
        "samir.ecole",
        "canteen_tariff_outreach",
        "records",
        source="school_enrolments",
        limit=1000,
    )
    assert first.data["rows"], "the sandbox has households with a 6–11-year-old child"
    target = first.persons[0]
    g.change_objection(
        f"resident:{target}", "resident_access", None, "canteen_tariff_outreach", object_=True
    )
    again = read(
        g,
        "samir.ecole",
        "canteen_tariff_outreach",
        "records",
        source="school_enrolments",
        limit=1000,
    )
    assert target not in again.persons and set(again.persons) == set(first.persons) - {target}
    pseudonym = _pseudonym(g, "canteen_tariff_outreach", target)
    assert (
        read(g, "samir.ecole", "canteen_tariff_outreach", "person_360", subject=pseudonym).status
        == "not_found"
    )


def test_transparency_defers_control_reads_and_names_nobody_else(
    gov: tuple[Governance, FrozenClock],
) -> None:
    g, clock = gov
    person = persons_in(g, "ccas_aid", "water_subscribers")[0]
    resident = f"resident:{person}"
    read(
        g,
        SOCIAL,
        "ccas_social_support",
        "person_360",
        subject=_pseudonym(g, "ccas_social_support", person),
    )
    read(
        g,
        "hugo.ccas",
        "ccas_aid_control",
        "person_360",
        subject=_pseudonym(g, "ccas_aid_control", person),
    )
    seen = g.who_accessed(resident, "resident_access", None)
    purposes = [e.purpose for e in seen]
    assert g.policy.purposes["ccas_social_support"].name in purposes
    assert g.policy.purposes["ccas_aid_control"].name not in purposes  # deferred 6 months
    text = json.dumps([e.as_dict() for e in seen], ensure_ascii=False)
    assert "Claire" not in text and "claire.ccas" not in text and "P-" not in text
    clock.advance(days=200)
    later = [e.purpose for e in g.who_accessed(resident, "resident_access", None)]
    assert g.policy.purposes["ccas_aid_control"].name in later


def test_access_export_gathers_every_service_and_nothing_of_others(
    gov: tuple[Governance, FrozenClock], tmp_path: Path
) -> None:
    g, _ = gov
    person = max(
        persons_in(g, "library_members"),
        key=lambda p: len(
            {s for (s,) in g.db.query("SELECT source FROM id_mentions WHERE person_key = ?", [p])}
        ),
    )
    sources = {
        str(s)
        for (s,) in g.db.query("SELECT source FROM id_mentions WHERE person_key = ?", [person])
    }
    export = access_export(g, f"resident:{person}", "resident_access", None)
    assert {r["source"] for r in export["records"]} == sources and len(sources) >= 2
    assert export["links"]["records_joined"] and export["purposes"]
    others = {
        str(k)
        for (k,) in g.db.query(
            "SELECT DISTINCT person_key FROM id_mentions WHERE person_key <> ?", [person]
        )
    }
    text = json.dumps(export, ensure_ascii=False, default=str)
    assert not any(k in text for k in others) and person not in text
    html = render_access_html(export)
    assert '<html lang="fr">' in html and export["records"][0]["title"] in html
    dpo_view = access_export(g, DPO, "rights_handling", _pseudonym(g, "rights_handling", person))
    assert {r["source"] for r in dpo_view["records"]} == sources


def test_rectification_is_routed_to_the_owning_service(gov: tuple[Governance, FrozenClock]) -> None:
    g, _ = gov
    person = persons_in(g, "library_members")[0]
    (mention,) = g.db.query(
        "SELECT mention_id FROM id_mentions WHERE person_key = ? AND source = 'library_members' LIMIT 1",
        [person],
    )
    record = str(mention[0]).split("|")[1]
    request = file_rectification(
        g,
        f"resident:{person}",
        "resident_access",
        None,
        source="library_members",
        record_id=record,
        field="email",
        value="nouvelle@example.org",
        reason="changement",
    )
    assert request.owner_service == "lecture_publique"
    assert [r.request_id for r in rectifications(g, LIBRARIAN, "library_lending")] == [
        request.request_id
    ]
    assert rectifications(g, "ines.eau", "water_billing") == []
    with pytest.raises(GovernanceError) as err:
        file_rectification(
            g,
            f"resident:{person}",
            "resident_access",
            None,
            source="library_members",
            record_id="0000000000",
            field="email",
            value="x",
        )
    assert err.value.code == "record_not_yours"


def test_synergies_suppress_small_cells_and_name_nobody(
    gov: tuple[Governance, FrozenClock],
) -> None:
    g, _ = gov
    decision, cells = g.synergies("marc.donnees", "service_synergies")
    assert decision.allowed and cells
    for cell in cells:
        assert (cell.shared is None) == (cell.published.startswith("moins de"))
        assert cell.shared is None or cell.shared >= 11
    assert g.ledger.records(limit=1)[0].entry.persons == ()
    with pytest.raises(GovernanceError):
        g.synergies("marc.donnees", "service_synergies", min_cell=3)
    refused, nothing = g.synergies(LIBRARIAN, "service_synergies")
    assert not refused.allowed and nothing == []


def test_a_policy_change_is_recorded_once(
    linked: tuple[WorkspaceConfig, Store], tmp_path: Path
) -> None:
    config, store = linked
    Governance.open(config, store)
    Governance.open(config, store)
    gov = Governance.open(config, store)
    assert len(gov.ledger.records(kind="policy", limit=10)) == 1
    folder = config.root / "policy"
    folder.mkdir()
    for name in ("register.yaml", "actors.yaml"):
        text = (gov.policy.register_file.parent / name).read_text(encoding="utf-8")
        (folder / name).write_text(text + "\n# relu par le DPO\n", encoding="utf-8")
    changed = Governance.open(config, store)
    assert len(changed.ledger.records(kind="policy", limit=10)) == 2
    assert load_policy(folder).digest == changed.policy.digest


@pytest.mark.slow
def test_governance_flow_on_every_store(workspace: WorkspaceConfig, sandbox: Path) -> None:
    from identity_fixtures import catalog, load_people
    from territoria.backends import open_store
    from territoria.identity import link_workspace

    store = open_store(workspace)
    try:
        load_people(store, workspace, sandbox)
        link_workspace(store, catalog(workspace))
        g = Governance.open(workspace, store, clock=FrozenClock())
        person = persons_in(g, "ccas_aid", "water_subscribers")[0]
        social = read(
            g,
            SOCIAL,
            "ccas_social_support",
            "person_360",
            subject=_pseudonym(g, "ccas_social_support", person),
        )
        assert social.status == "ok" and {"ccas_aid", "water_subscribers"} <= set(
            social.data["sources"]
        )
        water = read(
            g,
            "ines.eau",
            "water_billing",
            "person_360",
            subject=_pseudonym(g, "water_billing", person),
        )
        assert set(water.data["sources"]) == {"water_subscribers"}
        assert read(g, LIBRARIAN, "library_lending", "count").data["persons"] == len(
            persons_in(g, "library_members")
        )
        g.change_consent(
            f"resident:{person}", "resident_access", None, "service_information", give=True
        )
        assert read(g, "yann.usagers", "service_information", "count").data == {"persons": 1}
        export = access_export(g, f"resident:{person}", "resident_access", None)
        assert {"ccas_aid", "water_subscribers"} <= {r["source"] for r in export["records"]}
        assert g.who_accessed(f"resident:{person}", "resident_access", None)
        decision, cells = g.synergies("marc.donnees", "service_synergies")
        assert decision.allowed and len(cells) == 15
        report = g.ledger.verify()
        assert report.ok and report.count == g.ledger.head().count >= 8
    finally:
        store.close()


def test_loads_of_personal_data_are_written_in_the_ledger(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from helpers import GOOD_ROWS, add_contract, write_csv
    from territoria.backends import open_store
    from territoria.core.config import init_workspace
    from territoria.interfaces.cli.app import app

    ws = init_workspace(tmp_path / "ws")
    add_contract(ws)
    path = write_csv(tmp_path / "p.csv", GOOD_ROWS)
    args = ["ingest", "test_people", str(path), "--as", "eaux-du-rhone", "-w", str(ws.root)]
    assert CliRunner().invoke(app, args).exit_code == 0
    store = open_store(ws)
    try:
        (record,) = Governance.open(ws, store).ledger.records(kind="write")
    finally:
        store.close()
    entry = record.entry
    assert (entry.actor, entry.view, entry.service) == ("eaux-du-rhone", "ingest.load", "library")
    assert entry.rule.startswith("load:") and "test_people.family_name" in entry.fields
    assert "3 ligne(s)" in entry.reason and entry.persons == ()
