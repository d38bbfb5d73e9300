"""The residents' portal and the resident API, through the real app on a linked sandbox.

Residents log in through the real OpenID Connect flow of the local FranceConnect-like
provider (pages, session, CSRF), or present a resident API key (the API, and residents the
tests need with a given situation). Every governance effect is checked through the
governance itself: the next governed read, the ledger, the service's inbox.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from governance_fixtures import persons_in
from territoria.backends import Store
from territoria.core.config import WorkspaceConfig
from territoria.core.errors import GovernanceError
from territoria.governance import Governance, ReadRequest, load_policy, rectifications
from territoria.governance.policy import Purpose
from territoria.interfaces.web import create_app, load_web_settings
from territoria.interfaces.web.principals import ApiKeys

BASE = "http://127.0.0.1:8000"
PAGES = (
    "/portail",
    "/portail/consultations",
    "/portail/choix",
    "/portail/droits",
    "/portail/algorithmes",
)


@dataclass
class Portal:
    app: FastAPI
    sandbox: Path

    @property
    def gov(self) -> Governance:
        gov: Governance = self.app.state.web.gov
        return gov

    def client(self) -> TestClient:
        return TestClient(self.app, base_url=BASE, follow_redirects=False)

    def key(self, actor: str, kind: str) -> dict[str, str]:
        _, secret = ApiKeys(self.app.state.web.secrets_dir).create(actor, kind, "test")  # type: ignore[arg-type]
        return {"X-API-Key": secret}

    def read(self, actor: str, purpose: str, view: str, **kw: Any) -> Any:
        with self.app.state.web.lock:
            return self.gov.read(ReadRequest(actor, purpose, view, **kw))

    def pseudonym(self, purpose: str, key: str) -> str:
        return self.gov.pseudonyms.pseudonym(self.gov.policy.purposes[purpose].domain, key)

    def head(self) -> Any:
        with self.app.state.web.lock:
            return self.gov.ledger.head()

    def last_write(self) -> Any:
        """The last write record of the ledger (a refused request must not add one)."""
        with self.app.state.web.lock:
            found = self.gov.ledger.records(kind="write", limit=1)
        return found[0].seq if found else None

    def records_of(self, key: str) -> set[str]:
        """Record ids (source|record) of a person in the index."""
        with self.app.state.web.lock:
            return {m.rsplit("|", 1)[0] for m, _, _ in self.gov.index.mentions_of(key)}


@pytest.fixture
def portal(linked: tuple[WorkspaceConfig, Store], sandbox: Path) -> Iterator[Portal]:
    config, store = linked
    store.close()
    settings = load_web_settings(
        config,
        base_url=BASE,
        local_residents_file=sandbox / "truth" / "persons.csv",
        rate_limit_per_minute=0,
    )
    app = create_app(config.root, settings)
    with TestClient(app, base_url=BASE):  # the lifespan closes the store at the end
        yield Portal(app, sandbox)


# -- logging a resident in -----------------------------------------------------------------------


def login(portal: Portal, account: str | None = None) -> tuple[TestClient, str]:
    """A browser session of a resident (a demo account by default), through the real login:
    the client and the resident's index key."""
    client = portal.client()
    start = client.get("/connexion/resident")
    assert start.status_code == 303, start.text
    authorize = start.headers["location"]
    if account is None:
        issuer = portal.app.state.web.extras["oidc_provider"].issuers["residents"]
        account = next(a.id for a in issuer.accounts if a.demo)
    page = client.get(authorize)
    txn = re.search(r'name="transaction" value="([^"]+)"', page.text)
    assert txn is not None, page.text
    action = authorize.split("?", maxsplit=1)[0]
    chosen = client.post(action, data={"transaction": txn.group(1), "account": account})
    assert chosen.status_code == 303, chosen.text
    back = client.get(chosen.headers["location"])
    assert back.status_code == 303 and back.headers["location"] == "/portail", back.text
    me = client.get("/api/v1/me").json()
    assert me["kind"] == "resident"
    return client, me["actor"].split(":", 1)[1]


def demo_residents(portal: Portal) -> list[str]:
    issuer = portal.app.state.web.extras["oidc_provider"].issuers["residents"]
    return [a.id for a in issuer.accounts if a.demo]


def login_with(portal: Portal, *sources: str) -> tuple[TestClient, str]:
    """A demo resident's session, one with a record in at least one of these sources."""
    for account in demo_residents(portal):
        client, key = login(portal, account)
        if {m.split("|")[0] for m in portal.records_of(key)} & set(sources):
            return client, key
    raise AssertionError(f"aucun résident de démonstration dans {sources}")


def csrf(client: TestClient, page: str = "/portail/choix") -> str:
    found = re.search(r'<meta name="csrf-token" content="([^"]+)"', client.get(page).text)
    assert found is not None
    return found.group(1)


def resident_with(portal: Portal, *sources: str, purpose: str | None = None) -> str:
    """A person of the index with records in these sources (and in a purpose's population)."""
    for key in persons_in(portal.gov, *sources):
        if purpose is None:
            return key
        target: Purpose = portal.gov.policy.purposes[purpose]
        with portal.app.state.web.lock:
            if portal.gov.reader.admits(target, "resident:" + key, key):
                return key
    raise AssertionError(f"aucune personne dans {sources} ({purpose})")


def api_resident(portal: Portal, key: str) -> TestClient:
    client = portal.client()
    client.headers.update(portal.key(f"resident:{key}", "resident"))
    return client


class _Page(HTMLParser):
    """What the accessibility checks need from a page."""

    def __init__(self) -> None:
        super().__init__()
        self.h1 = 0
        self.tables = self.captions = 0
        self.inline: list[str] = []
        self.inputs: list[str] = []
        self.labels: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.h1 += tag == "h1"
        self.tables += tag == "table"
        self.captions += tag == "caption"
        if "style" in found or (tag == "script" and "src" not in found) or tag == "style":
            self.inline.append(tag)
        if tag == "label" and found.get("for"):
            self.labels.add(str(found["for"]))
        if tag in ("input", "select", "textarea") and found.get("type") != "hidden":
            self.inputs.append(str(found.get("id")))


# -- my services ---------------------------------------------------------------------------------


def test_my_services_shows_my_records_with_titles_and_nobody_elses(portal: Portal) -> None:
    client, key = login(portal)
    mine = portal.records_of(key)
    page = client.get("/portail")
    assert page.status_code == 200
    text = html.unescape(page.text)
    for mention in mine:
        source, record = mention.split("|")
        assert record in text, mention
        title = portal.gov.contracts[source].title
        assert title in text
    api = client.get("/api/v1/me/records").json()
    shown = {f"{s['source']}|{r['record_id']}" for s in api["sources"] for r in s["records"]}
    assert shown == mine
    first = api["sources"][0]
    assert first["service_name"] == portal.gov.policy.services[first["service"]].name
    titles = {f["title"] for r in first["records"] for f in r["fields"]}
    assert "family_name" not in titles and ">family_name<" not in text
    others = set()
    for other in persons_in(portal.gov, first["source"]):
        if other != key:
            others |= portal.records_of(other) - mine
        if len(others) > 20:
            break
    leaked = [m for m in others if f"n° {m.split('|')[1]}<" in text]
    assert leaked == []


def test_another_residents_data_never_appears(portal: Portal) -> None:
    first, second = demo_residents(portal)[:2]
    client_a, key_a = login(portal, first)
    client_b, key_b = login(portal, second)
    assert key_a != key_b
    only_b = portal.records_of(key_b) - portal.records_of(key_a)
    assert only_b
    token = csrf(client_b)
    given = client_b.post(
        "/portail/choix/consentements/service_information",
        data={"csrf_token": token, "action": "give"},
    )
    assert given.status_code == 303
    receipt_b = client_b.get("/api/v1/me/choices").json()["history"][0]["record_id"]
    texts = [client_a.get(path).text for path in PAGES]
    texts.append(client_a.get("/portail/droits/export.json").text)
    texts.append(client_a.get("/portail/consultations?tout=true").text)
    for text in texts:
        for mention in only_b:
            assert (
                f"{mention.split('|')[1]}<" not in text and f'"{mention.split("|")[1]}"' not in text
            )
        assert receipt_b not in text
    assert client_a.get(f"/portail/choix/recus/{receipt_b}").status_code == 404
    assert client_b.get(f"/portail/choix/recus/{receipt_b}").status_code == 200


# -- consents and objections -----------------------------------------------------------------


def test_withdrawn_consent_stops_the_optional_purpose_at_its_next_read(portal: Portal) -> None:
    client, key = login_with(portal, "library_members", "water_subscribers")
    sources = {m.split("|")[0] for m in portal.records_of(key)}
    source = next(s for s in ("library_members", "water_subscribers") if s in sources)
    me = portal.pseudonym("service_information", key)

    def seen() -> bool:
        result = portal.read(
            "yann.usagers", "service_information", "records", source=source, limit=500
        )
        return me in {row["person"] for row in result.data["rows"]}

    assert not seen()
    token = csrf(client)
    given = client.post(
        "/portail/choix/consentements/service_information",
        data={"csrf_token": token, "action": "give"},
    )
    assert given.status_code == 303
    assert given.headers["location"].startswith("/portail/choix")
    page = client.get("/portail/choix").text
    assert "Consentement donné" in page and "/portail/choix/recus/CR-" in page
    assert seen()
    receipt_id = re.search(r"/portail/choix/recus/(CR-[0-9A-F]{16})", page)
    assert receipt_id is not None
    receipt = client.get(f"/portail/choix/recus/{receipt_id.group(1)}")
    assert receipt.headers["content-disposition"].startswith("attachment")
    data = receipt.json()
    assert data["schema_version"].startswith("ISO/IEC TS 27560")
    assert data["pii_principal_id"] == portal.pseudonym("resident_access", key)
    assert key not in receipt.text
    # withdraw through htmx: the purpose's card comes back, with the message
    swapped = client.post(
        "/portail/choix/consentements/service_information",
        data={"action": "withdraw"},
        headers={"HX-Request": "true", "X-CSRF-Token": token},
    )
    assert swapped.status_code == 200
    assert 'id="choix-service_information"' in swapped.text
    assert "Consentement retiré" in swapped.text and "<h1>" not in swapped.text
    assert not seen()


def test_objection_stops_a_proactive_purpose_and_lifting_restores_it(portal: Portal) -> None:
    key = resident_with(portal, "school_enrolments", purpose="canteen_tariff_outreach")
    client = api_resident(portal, key)
    me = portal.pseudonym("canteen_tariff_outreach", key)

    def seen() -> bool:
        result = portal.read(
            "samir.ecole",
            "canteen_tariff_outreach",
            "records",
            source="school_enrolments",
            limit=10_000,
        )
        return me in {row["person"] for row in result.data["rows"]}

    assert seen()
    url = "/api/v1/me/objections/canteen_tariff_outreach"
    objected = client.put(url, json={"objected": True, "reason": "je préfère écrire moi-même"})
    assert objected.status_code == 200, objected.text
    assert objected.json()["changed"] and objected.json()["active"]
    assert not seen()
    head = portal.head()
    again = client.put(url, json={"objected": True})
    assert again.status_code == 200 and not again.json()["changed"]
    assert portal.head() == head
    choices = client.get("/api/v1/me/choices").json()
    row = next(c for c in choices["objections"] if c["purpose"] == "canteen_tariff_outreach")
    assert row["active"]
    lifted = client.put(url, json={"objected": False})
    assert lifted.status_code == 200 and not lifted.json()["active"]
    assert seen()


def test_choices_refuse_purposes_that_do_not_take_them(portal: Portal) -> None:
    client = api_resident(portal, resident_with(portal, "library_members"))
    head = portal.head()
    wrong = client.put("/api/v1/me/consents/library_lending", json={"given": True})
    assert wrong.status_code == 400 and wrong.json()["code"] == "purpose_not_optional"
    unknown = client.put("/api/v1/me/objections/nulle_part", json={"objected": True})
    assert unknown.status_code == 404 and unknown.json()["code"] == "purpose_unknown"
    malformed = client.put("/api/v1/me/consents/service_information", json={"given": "peut-être"})
    assert malformed.status_code == 422
    extra = client.put(
        "/api/v1/me/consents/service_information", json={"given": True, "person": "P-X"}
    )
    assert extra.status_code == 422
    assert portal.head() == head


# -- rights ---------------------------------------------------------------------------------------


def test_access_export_downloads_as_json_and_as_a_document(portal: Portal) -> None:
    client, key = login(portal)
    as_json = client.get("/portail/droits/export.json")
    assert as_json.status_code == 200
    assert as_json.headers["content-disposition"] == 'attachment; filename="mes-donnees.json"'
    data = as_json.json()
    assert data["person"] == portal.pseudonym("resident_access", key)
    exported = {
        f"{s['source']}|{f['value']}" for s in data["records"] for r in s["records"] for f in r
    }
    assert portal.records_of(key) <= exported
    as_html = client.get("/portail/droits/export.html")
    assert as_html.status_code == 200
    assert as_html.headers["content-disposition"] == 'attachment; filename="mes-donnees.html"'
    assert as_html.headers["content-type"].startswith("text/html")
    policy = as_html.headers["content-security-policy"]
    assert policy == "default-src 'none'; style-src 'unsafe-inline'"
    assert "<style>" in as_html.text and "Vos données personnelles" in as_html.text
    api = client.get("/api/v1/me/export")
    assert api.status_code == 200 and api.json()["person"] == data["person"]


def test_rectification_is_filed_and_routed_to_the_owning_service(portal: Portal) -> None:
    client, key = login(portal)
    mention = sorted(portal.records_of(key))[0]
    source, record = mention.split("|")
    contract = portal.gov.contracts[source]
    field = next(f for f in contract.fields if f.category == "identifying")
    form = client.get(f"/portail/droits?source={source}&record={record}")
    assert f'value="{record}"' in form.text and f'value="{source}.{field.name}"' in form.text
    token = csrf(client, "/portail/droits")
    sent = client.post(
        "/portail/droits/rectification",
        data={
            "csrf_token": token,
            "target": f"{source}.{field.name}",
            "record_id": record,
            "value": "Valeur corrigée",
            "reason": "erreur de saisie",
        },
    )
    assert sent.status_code == 303, sent.text
    page = client.get("/portail/droits").text
    request_id = re.search(r"RR-[0-9A-F]{12}", page)
    assert request_id is not None and "transmise au service" in page
    owner = contract.owner_service
    purpose = next(
        p.id
        for p in portal.gov.policy.purposes.values()
        if p.service == owner and source in p.sources and not p.proactive
    )
    agent = next(
        a.id
        for a in portal.gov.policy.agents.values()
        if any(g.purpose == purpose for r in a.roles for g in portal.gov.policy.roles[r].grants)
    )
    with portal.app.state.web.lock:
        inbox = rectifications(portal.gov, agent, purpose)
    filed = next(r for r in inbox if r.request_id == request_id.group(0))
    assert (filed.source, filed.record_id, filed.field) == (source, record, field.name)
    assert filed.owner_service == owner and filed.requested_value == "Valeur corrigée"
    # through the API too, and a record that is not the resident's is refused
    api = client.post(
        "/api/v1/me/rectifications",
        json={"source": source, "record_id": record, "field": field.name, "value": "X"},
        headers={"X-CSRF-Token": token},
    )
    assert api.status_code == 201 and api.json()["owner_service"] == owner
    last_write = portal.last_write()
    refused = client.post(
        "/portail/droits/rectification",
        data={"csrf_token": token, "target": f"{source}.{field.name}", "record_id": "0000",
              "value": "X"},
    )  # fmt: skip
    assert refused.status_code == 400 and "aucune fiche" in refused.text
    assert portal.last_write() == last_write  # the page's own read is logged; nothing written


# -- who accessed my data -------------------------------------------------------------------------


def test_who_accessed_lists_an_agents_read_made_through_the_api(portal: Portal) -> None:
    key = resident_with(portal, "water_subscribers")
    agent = portal.client()
    agent.headers.update(portal.key("ines.eau", "agent"))
    subject = portal.pseudonym("water_billing", key)
    read = agent.get(f"/api/v1/persons/{subject}", params={"purpose": "water_billing"})
    assert read.status_code == 200, read.text
    resident = api_resident(portal, key)
    answer = resident.get("/api/v1/me/accesses")
    assert answer.status_code == 200
    entries = [e for e in answer.json()["accesses"] if not e["by_yourself"]]
    water = portal.gov.policy.purposes["water_billing"]
    assert any(
        e["service"] == "Eau et assainissement" and e["purpose"] == water.name and e["data"]
        for e in entries
    )
    agent_name = portal.gov.policy.agents["ines.eau"].name
    page = html.unescape(resident.get("/portail/consultations").text)
    assert "Eau et assainissement" in page and water.name in page
    for text in (answer.text, page):
        assert "ines.eau" not in text and agent_name.split(" ")[0] not in text


# -- CSRF and access -----------------------------------------------------------------------------


def test_a_form_without_its_csrf_token_is_refused_and_writes_nothing(portal: Portal) -> None:
    client, key = login(portal)
    csrf(client)
    head = portal.head()
    for path, data in (
        ("/portail/choix/consentements/service_information", {"action": "give"}),
        ("/portail/choix/oppositions/canteen_tariff_outreach", {"action": "object"}),
        ("/portail/droits/rectification", {"target": "x.y", "record_id": "1", "value": "v"}),
    ):
        refused = client.post(path, data=data)
        assert refused.status_code == 403, path
        forged = client.post(path, data={**data, "csrf_token": "contrefait"})
        assert forged.status_code == 403, path
    api = client.put("/api/v1/me/consents/service_information", json={"given": True})
    assert api.status_code == 403 and api.json()["code"] == "csrf_failed"
    assert portal.head() == head
    with portal.app.state.web.lock:
        assert portal.gov.consents.history(key) == []


def test_portal_is_for_residents_only(portal: Portal) -> None:
    anonymous = portal.client()
    for path in PAGES:
        response = anonymous.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/connexion/resident?next=")
    assert anonymous.get("/api/v1/me/records").status_code == 401
    agent = portal.client()
    agent.headers.update(portal.key("claire.ccas", "agent"))
    assert agent.get("/portail").status_code == 403
    answer = agent.get("/api/v1/me/records")
    assert answer.status_code == 403 and answer.json()["code"] == "wrong_actor_kind"


def test_pages_are_accessible_html_without_inline_script_or_style(portal: Portal) -> None:
    client, _ = login(portal)
    for path in PAGES:
        page = client.get(path)
        assert page.status_code == 200, path
        parsed = _Page()
        parsed.feed(page.text)
        assert parsed.h1 == 1, path
        assert parsed.tables == parsed.captions, path
        assert parsed.inline == [], path
        assert set(parsed.inputs) <= parsed.labels, path
        assert 'aria-current="page"' in page.text, path


# -- CRPA L311-3-1 notices ------------------------------------------------------------------------


def test_notices_page_lists_every_purpose_with_an_algorithm(portal: Portal) -> None:
    client, _ = login(portal)
    page = html.unescape(client.get("/portail/algorithmes").text)
    notices = [p for p in portal.gov.policy.purposes.values() if p.algorithm]
    assert {p.id for p in notices} >= {"identity_resolution", "canteen_tariff_outreach"}
    for purpose in notices:
        notice = purpose.algorithm
        assert notice is not None
        assert notice.name in page
        for parameter in notice.parameters:
            assert parameter.name in page
    assert "Aucune décision n'est prise automatiquement" in page
    for heading in ("Degré de contribution", "Données traitées et leurs sources",
                    "Paramètres et pondération", "Opérations effectuées"):  # fmt: skip
        assert heading in page
    # the index links every resident's records: its notice is among "yours"
    yours = page.split("Les autres algorithmes")[0]
    assert "Rapprochement des fiches (index des résidents)" in yours
    assert "Vous concerne" in yours


def test_a_notice_may_only_name_data_its_purpose_reads(tmp_path: Path) -> None:
    shipped = load_policy()
    folder = tmp_path / "policy"
    folder.mkdir()
    source = shipped.register_file.read_text(encoding="utf-8")
    wrong = source.replace(
        "school_enrolments: [child_birth_date, level, canteen_days, tariff_band]",
        "school_enrolments: [child_birth_date, guardian_2_phone]",
    )
    assert wrong != source
    (folder / "register.yaml").write_text(wrong, encoding="utf-8")
    (folder / "actors.yaml").write_text(
        shipped.actors_file.read_text(encoding="utf-8"), encoding="utf-8"
    )
    with pytest.raises(GovernanceError) as caught:
        load_policy(folder)
    assert caught.value.code == "policy_invalid"
    assert "guardian_2_phone" in caught.value.message


def test_resident_api_routes_declare_their_governance(portal: Portal) -> None:
    spec = portal.client().get("/api/openapi.json").json()
    for path, item in spec["paths"].items():
        if not path.startswith("/api/v1/me/"):
            continue
        for operation in item.values():
            declared = operation["x-territoria"]
            assert declared["actor"] == "resident" and declared["purpose"] == "resident_access"
    assert json.dumps(spec).count("/api/v1/me/") >= 7
