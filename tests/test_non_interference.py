"""Non-interference (P3): one CCAS record more changes nothing for anyone outside social services.

Two worlds are copies of the same linked sandbox; world B also holds one CCAS aid record,
delivered and attached to the resident index the way a real delivery is. Every actor whose
purposes read no CCAS source then asks the same questions in both worlds — a 360° view of the
person concerned and of an unknown pseudonym, searches by name, autocomplete, counts, every
source's records, refused requests and rights errors — and must get byte-identical answers.

Two readers see CCAS data by design and are left out: the DPO's rights handling (it answers
the person's own access request) and the linkage service (``identity_resolution``), which is
the trusted party that holds every service's identifying fields. Aggregate synergies between
services are left out too: a published count of residents shared with the CCAS moves by one
(see the closing note on differencing).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from governance_fixtures import FrozenClock
from identity_fixtures import catalog
from territoria.backends import Store, open_store
from territoria.core.config import load_workspace
from territoria.core.errors import GovernanceError
from territoria.governance import Governance, ReadRequest
from territoria.identity import attach_new_mentions
from territoria.ingest import ingest_file

READ_VIEWS = ("person_360", "search", "autocomplete", "count", "records")


@dataclass(frozen=True)
class Target:
    person: str  # key of the person the CCAS record is about ("" for a new person)
    family: str
    given: str
    birth: str


def _world(template: Path, folder: Path) -> tuple[Store, Governance]:
    shutil.copytree(template, folder)
    config = load_workspace(folder)
    store = open_store(config)
    return store, Governance.open(config, store, clock=FrozenClock())


def _known_target(gov: Governance) -> Target:
    """A person known to the library and transport (with a full birth date), not to the CCAS."""
    rows = gov.db.query(
        "SELECT m.person_key, f.fn, f.gn1, f.dob FROM id_features f "
        "JOIN id_mentions m ON m.mention_id = f.unique_id "
        "WHERE f.source = 'transport_passes' AND f.dob IS NOT NULL AND m.person_key IN "
        "(SELECT person_key FROM id_mentions WHERE source = 'library_members') "
        "AND m.person_key NOT IN (SELECT person_key FROM id_mentions WHERE source = 'ccas_aid') "
        "ORDER BY m.person_key LIMIT 1"
    )
    person, family, given, dob = rows[0]
    return Target(str(person), str(family), str(given), str(dob))


def _deliver_ccas_record(store: Store, folder: Path, target: Target) -> None:
    """One aid request for the target, delivered as the CCAS software exports it."""
    day, month, year = target.birth[8:10], target.birth[5:7], target.birth[:4]
    header = "N° dossier;N° aide;Nom d'usage;Prénom;Date de naissance;Type d'aide;Date de la demande;Décision"
    row = f"D999999;A26-999999;{target.family};{target.given.title()};{day}/{month}/{year};aide alimentaire;02/03/2026;accordée"
    path = folder / "ccas_une_aide.csv"
    path.write_bytes(f"{header}\r\n{row}\r\n".encode("cp1252"))
    contracts = catalog(load_workspace(folder.parent / "B"))
    assert ingest_file(store, contracts.get("ccas_aid"), path).ok
    report = attach_new_mentions(store, contracts)
    assert report.new_mentions == 1


def _outsiders(gov: Governance) -> list[tuple[str, str]]:
    """(actor, purpose) of every grant of actors whose purposes read no CCAS source."""
    pairs = []
    for agent in gov.policy.agents.values():
        grants = [g for r in agent.roles for g in gov.policy.roles[r].grants]
        purposes = [gov.policy.purposes[g.purpose] for g in grants]
        social = any(gov.policy.services[gov.policy.roles[r].service].social for r in agent.roles)
        if social or any("ccas_aid" in p.sources for p in purposes):
            continue
        pairs.extend((agent.id, p.id) for p in purposes)
    return sorted(set(pairs))


def _questions(gov: Governance, actor: str, purpose: str, target: Target) -> list[ReadRequest]:
    p = gov.policy.purposes[purpose]
    subject = gov.pseudonyms.pseudonym(p.domain, target.person) if target.person else None
    asks = [
        ReadRequest(actor, purpose, "person_360", subject=subject),
        ReadRequest(actor, purpose, "person_360", subject=f"{subject or 'X'}Z"),
        ReadRequest(actor, purpose, "search", query=target.family),
        ReadRequest(actor, purpose, "search", query=f"{target.given} {target.family}"),
        ReadRequest(actor, purpose, "autocomplete", query=target.family[:3]),
        ReadRequest(actor, purpose, "count"),
        ReadRequest(actor, "ccas_social_support", "person_360", subject=subject),
        ReadRequest(actor, "ccas_social_support", "count"),
    ]
    asks += [
        ReadRequest(actor, purpose, "records", source=s, limit=5000) for s in sorted(p.sources)
    ]
    return asks


def _rights_errors(gov: Governance, actor: str, target: Target) -> list[str]:
    """Errors an outsider meets when acting on the target's rights (must not differ)."""
    out = []
    for purpose in ("rights_handling", "resident_access"):
        try:
            gov.change_consent(
                actor, purpose, target.person or "inconnu", "service_information", give=True
            )
        except GovernanceError as exc:
            out.append(repr(exc.as_dict()))
    return out


def _answers(gov: Governance, target: Target) -> list[Any]:
    answers: list[Any] = []
    for actor, purpose in _outsiders(gov):
        answers += [gov.read(q).canonical() for q in _questions(gov, actor, purpose, target)]
        answers += _rights_errors(gov, actor, target)
    return answers


@pytest.fixture
def worlds(
    linked_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Governance, Governance, Store]]:
    # One deployment, one set of keys: both worlds pseudonymise with the same keys.
    monkeypatch.setenv("TERRITORIA_KEYS_DIR", str(tmp_path / "keys"))
    store_a, gov_a = _world(linked_template, tmp_path / "A")
    store_b, gov_b = _world(linked_template, tmp_path / "B")
    yield gov_a, gov_b, store_b
    store_a.close()
    store_b.close()


def test_a_ccas_record_of_a_known_person_changes_nothing_for_outsiders(
    worlds: tuple[Governance, Governance, Store], tmp_path: Path
) -> None:
    gov_a, gov_b, store_b = worlds
    target = _known_target(gov_a)
    _deliver_ccas_record(store_b, tmp_path / "B", target)
    in_b = gov_b.db.query(
        "SELECT person_key FROM id_mentions WHERE mention_id = 'ccas_aid|A26-999999|beneficiary'"
    )
    assert in_b == [(target.person,)], "the record must attach to the known person"
    assert len(_outsiders(gov_a)) >= 6
    answers_a, answers_b = _answers(gov_a, target), _answers(gov_b, target)
    assert len(answers_a) > 60
    assert answers_a == answers_b
    social = ReadRequest("claire.ccas", "ccas_social_support", "count")
    assert gov_a.read(social).canonical() != gov_b.read(social).canonical()  # the worlds differ


def test_a_ccas_only_person_is_invisible_to_outsiders(
    worlds: tuple[Governance, Governance, Store], tmp_path: Path
) -> None:
    gov_a, gov_b, store_b = worlds
    target = Target("", "ZZSECRET", "Ondine", "1987-04-12")
    _deliver_ccas_record(store_b, tmp_path / "B", target)
    (key,) = gov_b.db.query(
        "SELECT person_key FROM id_mentions WHERE mention_id = 'ccas_aid|A26-999999|beneficiary'"
    )[0]
    assert key
    assert _answers(gov_a, target) == _answers(gov_b, target)


@pytest.mark.slow
@pytest.mark.postgres
def test_non_interference_on_postgresql(
    tmp_path: Path, sandbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same proof on PostgreSQL: world B is a copy of world A's schema plus one record."""
    import secrets

    from conftest import _PG_UP, PG_URL, REQUIRE_PG
    from identity_fixtures import load_people
    from territoria.core.config import init_workspace
    from territoria.identity import link_workspace

    if not _PG_UP:
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL injoignable à {PG_URL}")
        pytest.skip(f"PostgreSQL injoignable à {PG_URL}")
    monkeypatch.setenv("TERRITORIA_KEYS_DIR", str(tmp_path / "keys"))
    schema_a, schema_b = f"ni_a_{secrets.token_hex(4)}", f"ni_b_{secrets.token_hex(4)}"
    config_a = init_workspace(tmp_path / "A", store_url=PG_URL, schema=schema_a)
    config_b = init_workspace(tmp_path / "B", store_url=PG_URL, schema=schema_b)
    store_a = open_store(config_a)
    try:
        load_people(store_a, config_a, sandbox)
        link_workspace(store_a, catalog(config_a))
        store_b = open_store(config_b)  # creates schema B
        try:
            _copy_schema(store_a, schema_a, schema_b)
            gov_a = Governance.open(config_a, store_a, clock=FrozenClock())
            gov_b = Governance.open(config_b, store_b, clock=FrozenClock())
            target = _known_target(gov_a)
            _deliver_ccas_record(store_b, tmp_path / "B", target)
            assert _answers(gov_a, target) == _answers(gov_b, target)
            social = ReadRequest("claire.ccas", "ccas_social_support", "count")
            assert gov_a.read(social).canonical() != gov_b.read(social).canonical()
        finally:
            store_b.drop_schema()  # type: ignore[attr-defined]
            store_b.close()
    finally:
        store_a.drop_schema()  # type: ignore[attr-defined]
        store_a.close()


def _copy_schema(store: Store, source: str, target: str) -> None:
    """Every table of one schema copied, rows and all, into another (already created)."""
    conn = store._conn  # type: ignore[attr-defined]
    tables = [
        r[0]
        for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            [source],
        ).fetchall()
    ]
    for table in tables:
        conn.execute(f'DROP TABLE IF EXISTS "{target}"."{table}"')
        conn.execute(f'CREATE TABLE "{target}"."{table}" (LIKE "{source}"."{table}" INCLUDING ALL)')
        conn.execute(f'INSERT INTO "{target}"."{table}" SELECT * FROM "{source}"."{table}"')
