"""Non-interference (P3) through HTTP: one CCAS record more changes no API answer for anyone
outside social services.

The governance test (tests/test_non_interference.py) asks the governed read directly; this
one asks the same questions as an integrator would, through the REST API of an application
on each world. Both worlds are copies of the same linked sandbox with one set of
pseudonymisation keys (``TERRITORIA_KEYS_DIR``) and one secrets folder
(``TERRITORIA_SECRETS_DIR``: the same API keys work in both); world B also holds one CCAS aid
record, delivered and attached to the resident index as the governance test does it (the CCAS
source has no delegated operator, so the HTTP delivery route cannot carry it).

Every agent whose purposes read no CCAS source then asks, under each of its purposes: the 360°
view of the person concerned and of an unknown pseudonym, searches by name, suggestions, the
population count, every page of every source's records, and requests that are refused (the
CCAS's purpose, the CCAS source's records and quarantine, the review queue, the ledger). Status
and body must be byte-identical in both worlds.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from fastapi.testclient import TestClient

from identity_fixtures import catalog
from territoria.backends import open_store
from territoria.core.config import load_workspace
from territoria.governance import Governance
from territoria.interfaces.web import create_app, load_web_settings
from territoria.interfaces.web.principals import ApiKeys
from territoria.interfaces.web.state import SECRETS_ENV, WebState
from test_non_interference import (
    Target,
    _copy_schema,
    _deliver_ccas_record,
    _known_target,
    _outsiders,
)

PAGE = 500  # the records route's largest page
SOCIAL = ("claire.ccas", "ccas_social_support")  # a reader of the CCAS: sees the difference
CCAS_RECORD = "ccas_aid|A26-999999|beneficiary"  # the record world B holds in addition
BODIES = {"decision": {"decision": "same"}, "service_information": {"given": True}}
Answer = tuple[str, str, int, bytes]  # (actor, url, status, body)


@dataclass
class World:
    client: TestClient
    state: WebState

    @property
    def gov(self) -> Governance:
        return self.state.gov


def _app(root: Path) -> TestClient:
    config = load_workspace(root)
    return TestClient(create_app(root, load_web_settings(config, rate_limit_per_minute=0)))


def _url(path: str, **query: object) -> str:
    return f"/api/v1{path}?{urlencode(query)}" if query else f"/api/v1{path}"


def _questions(gov: Governance, purpose: str, target: Target, known: str) -> list[str]:
    """What an outsider asks under one purpose (``METHOD url``; records pages come apart).

    ``known`` is a record of the resident index in both worlds; the CCAS record exists in
    world B only: a refusal that looked the pair up first would tell the worlds apart.
    """
    p = gov.policy.purposes[purpose]
    subject = gov.pseudonyms.pseudonym(p.domain, target.person) if target.person else None
    pair = f"/review/{quote(known, safe='')}/{quote(CCAS_RECORD, safe='')}"
    asks = [_url(f"/persons/{quote(subject)}", purpose=purpose)] if subject else []
    asks += [
        _url(f"/persons/{quote(subject or 'X')}Z", purpose=purpose),
        _url("/persons", purpose=purpose, q=target.family),
        _url("/persons", purpose=purpose, q=f"{target.given} {target.family}"),
        _url("/persons/suggestions", purpose=purpose, prefix=target.family[:3]),
        _url("/population", purpose=purpose),
        _url("/me"),
        # refused: the CCAS's purpose and source, the linkage review, the ledger, rights
        _url("/population", purpose=SOCIAL[1]),
        _url("/sources/ccas_aid/records", purpose=purpose),
        _url("/sources/ccas_aid/quarantine", purpose=purpose),
        _url("/review", purpose=purpose),
        _url(pair, purpose=purpose),
        "POST " + _url(f"{pair}/decision", purpose=purpose),
        _url("/audit/records", purpose=purpose, person=target.person or "P-000000000000"),
        "PUT " + _url("/me/consents/service_information"),
    ]
    if subject:
        asks.append(_url(f"/persons/{quote(subject)}", purpose=SOCIAL[1]))
    return asks


def _ask(world: World, secret: str, ask: str) -> tuple[int, bytes]:
    method, _, url = ask.rpartition(" ")
    response = world.client.request(
        method or "GET",
        url,
        headers={"Authorization": f"Bearer {secret}"},
        json=BODIES.get(url.split("?")[0].rsplit("/", 1)[-1]) if method else None,
    )
    assert response.status_code < 500, (ask, response.text[:300])
    return response.status_code, response.content


def _records(world: World, secret: str, actor: str, purpose: str, source: str) -> list[Answer]:
    """Every page of a source's records under the purpose (or its refusal)."""
    answers: list[Answer] = []
    offset = 0
    while True:
        url = _url(f"/sources/{source}/records", purpose=purpose, limit=PAGE, offset=offset)
        status, body = _ask(world, secret, url)
        answers.append((actor, url, status, body))
        offset += PAGE
        if status != 200 or offset >= json.loads(body)["total"]:
            return answers


def _answers(world: World, keys: dict[str, str], target: Target) -> list[Answer]:
    (known,) = world.gov.db.query(
        "SELECT min(mention_id) FROM id_mentions WHERE source = 'library_members'"
    )[0]
    answers: list[Answer] = []
    for actor, purpose in _outsiders(world.gov):
        for url in _questions(world.gov, purpose, target, str(known)):
            answers.append((actor, url, *_ask(world, keys[actor], url)))
        for source in sorted(world.gov.policy.purposes[purpose].sources):
            answers += _records(world, keys[actor], actor, purpose, source)
    return answers


def _keys(secrets_dir: Path, gov: Governance) -> dict[str, str]:
    """One API key per agent of the policy, in the folder both worlds share."""
    keys = ApiKeys(secrets_dir)
    return {a: keys.create(a, "agent", "non-interference")[1] for a in sorted(gov.policy.agents)}


@pytest.fixture
def shared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # One deployment, one set of keys: both worlds pseudonymise and authenticate alike.
    monkeypatch.setenv("TERRITORIA_KEYS_DIR", str(tmp_path / "keys"))
    monkeypatch.setenv(SECRETS_ENV, str(tmp_path / "secrets"))
    return tmp_path / "secrets"


@contextmanager
def _open_worlds(
    root: Path, target: Target | None
) -> Iterator[tuple[World, World, dict[str, str], Target]]:
    """World A, then world B with the CCAS record for the target (A's known person if None)."""
    with _app(root / "A") as client_a:
        a = World(client_a, client_a.app.state.web)  # type: ignore[attr-defined]
        with a.state.lock:
            target = target or _known_target(a.gov)
        store = open_store(load_workspace(root / "B"))
        try:
            _deliver_ccas_record(store, root / "B", target)
        finally:
            store.close()
        with _app(root / "B") as client_b:
            b = World(client_b, client_b.app.state.web)  # type: ignore[attr-defined]
            yield a, b, _keys(a.state.secrets_dir, a.gov), target


@pytest.fixture
def worlds(
    linked_template: Path, tmp_path: Path, shared: Path
) -> Iterator[tuple[World, World, dict[str, str], Target]]:
    shutil.copytree(linked_template, tmp_path / "A")
    shutil.copytree(linked_template, tmp_path / "B")
    with _open_worlds(tmp_path, None) as opened:
        yield opened


def _social_count(world: World, keys: dict[str, str]) -> tuple[int, bytes]:
    return _ask(world, keys[SOCIAL[0]], _url("/population", purpose=SOCIAL[1]))


def test_a_ccas_record_of_a_known_person_changes_no_answer_for_outsiders(
    worlds: tuple[World, World, dict[str, str], Target],
) -> None:
    a, b, keys, target = worlds
    in_b = b.gov.db.query("SELECT person_key FROM id_mentions WHERE mention_id = ?", [CCAS_RECORD])
    assert in_b == [(target.person,)], "the record must attach to the known person"
    assert len(_outsiders(a.gov)) >= 6
    answers_a, answers_b = _answers(a, keys, target), _answers(b, keys, target)
    assert len(answers_a) > 100
    assert {status for *_, status, _ in answers_a} >= {200, 403, 404}
    for one, other in zip(answers_a, answers_b, strict=True):
        assert one == other, f"{one[0]} GET {one[1]}: {one[2]} / {other[2]}"
    assert _social_count(a, keys) != _social_count(b, keys)  # the worlds do differ


def test_a_ccas_only_person_is_invisible_to_outsiders(
    linked_template: Path, tmp_path: Path, shared: Path
) -> None:
    shutil.copytree(linked_template, tmp_path / "A")
    shutil.copytree(linked_template, tmp_path / "B")
    target = Target("", "ZZSECRET", "Ondine", "1987-04-12")
    with _open_worlds(tmp_path, target) as (a, b, keys, _):
        (key,) = b.gov.db.query(
            "SELECT person_key FROM id_mentions WHERE mention_id = ?", [CCAS_RECORD]
        )[0]
        assert key
        assert _answers(a, keys, target) == _answers(b, keys, target)
        assert _social_count(a, keys) != _social_count(b, keys)


def test_the_steward_listings_are_the_same_for_outsiders(
    worlds: tuple[World, World, dict[str, str], Target],
) -> None:
    a, b, keys, _ = worlds
    for actor, _purpose in _outsiders(a.gov):
        for url in (_url("/sources"), _url("/loads")):
            assert _ask(a, keys[actor], url) == _ask(b, keys[actor], url), (actor, url)


@pytest.mark.slow
@pytest.mark.postgres
def test_non_interference_through_http_on_postgresql(
    tmp_path: Path, sandbox: Path, shared: Path
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
    schema_a, schema_b = f"nih_a_{secrets.token_hex(4)}", f"nih_b_{secrets.token_hex(4)}"
    config_a = init_workspace(tmp_path / "A", store_url=PG_URL, schema=schema_a)
    config_b = init_workspace(tmp_path / "B", store_url=PG_URL, schema=schema_b)
    store_a = open_store(config_a)
    try:
        load_people(store_a, config_a, sandbox)
        link_workspace(store_a, catalog(config_a))
        store_b = open_store(config_b)  # creates schema B
        try:
            _copy_schema(store_a, schema_a, schema_b)
            with _open_worlds(tmp_path, None) as (a, b, keys, target):
                assert _answers(a, keys, target) == _answers(b, keys, target)
                assert _social_count(a, keys) != _social_count(b, keys)
        finally:
            store_b.drop_schema()  # type: ignore[attr-defined]
            store_b.close()
    finally:
        store_a.drop_schema()  # type: ignore[attr-defined]
        store_a.close()
