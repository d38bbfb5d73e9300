"""The console's stewardship and DPO pages and their API: sources and loads, quarantine, the
linkage review queue, synergies, the ledger search and verification, the public register.

The API is called with agents' API keys; the pages with a session cookie signed with the
application's own key (what the OpenID Connect login leaves), so these tests do not depend on
the login flow. Every refusal is checked to answer 403 without data and to be in the ledger.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from territoria.backends import Store
from territoria.core.config import WorkspaceConfig
from territoria.governance import AuditEntry
from territoria.ingest import ContractCatalog, ingest_files
from territoria.interfaces.web.app import create_app
from territoria.interfaces.web.principals import ApiKeys
from territoria.interfaces.web.state import SECRETS_ENV, WebState
from web_sessions import CSRF, log_in


@dataclass
class Web:
    client: TestClient
    state: WebState

    def key(self, actor: str) -> dict[str, str]:
        _, secret = ApiKeys(self.state.secrets_dir).create(actor, "agent", "test")
        return {"Authorization": f"Bearer {secret}"}

    def login(self, actor: str) -> None:
        log_in(self.client, self.state, actor)

    def ledger(self, **filters: Any) -> list[Any]:
        with self.state.lock:
            return self.state.gov.ledger.records(limit=1000, **filters)


def _bad_water_file(sandbox: Path, folder: Path) -> Path:
    """Five water subscribers, two of them malformed: a short postcode, an unknown type."""
    lines = next(sandbox.rglob("water_subscribers.csv")).read_text(encoding="utf-8").splitlines()
    rows = lines[:6]
    rows[2] = re.sub(r";(\d{5});", lambda m: f";{m.group(1)[:4]};", rows[2], count=1)
    rows[3] = re.sub(r"^([^;]*);[^;]*;", r"\1;inconnu;", rows[3])
    path = folder / "abonnes_defectueux.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def web(
    linked: tuple[WorkspaceConfig, Store],
    sandbox: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Web]:
    monkeypatch.delenv(SECRETS_ENV, raising=False)
    config, store = linked
    catalog = ContractCatalog.load(*config.contract_paths)
    [outcome] = ingest_files(
        store, catalog, [("water_subscribers", _bad_water_file(sandbox, tmp_path))]
    )
    assert outcome.record.rows_quarantined == 2, outcome.record
    app = create_app(config.root)
    with TestClient(app, follow_redirects=False) as client:
        yield Web(client, app.state.web)


def _pair_url(a: str, b: str) -> str:
    return f"/api/v1/review/{quote(a, safe='')}/{quote(b, safe='')}"


# -- sources and loads -------------------------------------------------------------------------


def test_sources_list_contracts_and_their_last_load_without_personal_data(web: Web) -> None:
    response = web.client.get("/api/v1/sources", headers=web.key("lea.biblio"))
    assert response.status_code == 200, response.text
    sources = {s["id"]: s for s in response.json()["sources"]}
    water = sources["water_subscribers"]
    assert water["owner_service"] == "eau_assainissement"
    assert water["operator"] and water["personal"] is True
    assert water["last_load"] is None  # another service's deliveries: not the librarian's business
    assert water["quarantine_purpose"] is None  # the librarian's grants do not open it
    assert sources["library_members"]["quarantine_purpose"] == "library_lending"
    assert sources["library_members"]["last_load"] is not None
    own = web.client.get("/api/v1/sources", headers=web.key("ines.eau")).json()["sources"]
    water = next(s for s in own if s["id"] == "water_subscribers")
    assert water["last_load"]["file_name"] == "abonnes_defectueux.csv"
    assert water["last_load"]["rows_quarantined"] == 2
    assert len(water["last_load"]["sha256_prefix"]) == 12

    refused = web.client.get(
        "/api/v1/loads", params={"source": "water_subscribers"}, headers=web.key("lea.biblio")
    )
    assert refused.status_code == 403
    assert refused.json()["details"]["rule"] == "deny:source_not_in_purpose"
    loads = web.client.get(
        "/api/v1/loads", params={"source": "water_subscribers"}, headers=web.key("ines.eau")
    )
    assert [x["file_name"] for x in loads.json()["loads"]] == [
        "abonnes_defectueux.csv",
        "water_subscribers.csv",
    ]
    assert (
        web.client.get("/api/v1/loads", params={"source": "nope"}, headers=web.key("dpo")).json()[
            "code"
        ]
        == "source_unknown"
    )


def test_sources_need_an_agent(web: Web) -> None:
    assert web.client.get("/api/v1/sources").status_code == 401


# -- quarantine --------------------------------------------------------------------------------


def test_quarantine_rows_are_shown_to_the_owning_service(web: Web) -> None:
    response = web.client.get(
        "/api/v1/sources/water_subscribers/quarantine", headers=web.key("ines.eau")
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["purpose"] == "water_billing" and body["total"] == 2
    by_field = {row["field"]: row for row in body["rows"]}
    assert set(by_field) == {"postcode", "customer_type"}
    postcode = by_field["postcode"]
    assert postcode["line"] == 3 and postcode["errors"][0]["column"] == "Code postal"
    assert re.fullmatch(r"\d{4}", postcode["errors"][0]["value"])
    assert by_field["customer_type"]["errors"][0]["value"] == "inconnu"
    assert web.ledger(actor="ines.eau")[0].entry.view == "quarantine"


def test_quarantine_is_refused_to_a_service_without_the_source(web: Web) -> None:
    before = len(web.ledger(actor="lea.biblio"))
    response = web.client.get(
        "/api/v1/sources/water_subscribers/quarantine", headers=web.key("lea.biblio")
    )
    assert response.status_code == 403
    assert response.json()["code"] == "access_denied"
    assert "rows" not in response.json() and "6933" not in response.text
    refusals = web.ledger(actor="lea.biblio")
    assert len(refusals) == before + 1 and refusals[0].entry.decision == "deny"


def test_a_purpose_reading_a_source_in_part_never_sees_its_other_values(web: Web) -> None:
    """The CCAS reads some water fields (not the customer type): that value stays masked."""
    response = web.client.get(
        "/api/v1/sources/water_subscribers/quarantine", headers=web.key("claire.ccas")
    )
    if response.status_code == 403:  # the governance restricts quarantine to the owner
        return
    errors = {e["field"]: e for row in response.json()["rows"] for e in row["errors"]}
    assert errors["customer_type"]["masked"] is True
    assert errors["customer_type"]["value"] is None
    assert "inconnu" not in response.text


# -- linkage review ----------------------------------------------------------------------------


def test_review_queue_lists_pairs_and_a_decision_changes_it(web: Web) -> None:
    headers = web.key("marc.donnees")
    queue = web.client.get("/api/v1/review", params={"limit": 5}, headers=headers).json()
    assert queue["purpose"] == "identity_resolution"
    assert queue["pending"] >= 2 and len(queue["pairs"]) == 5
    first = queue["pairs"][0]
    assert 0 <= first["probability"] <= 1 and first["fields"]
    assert {"field", "level", "weight", "value_a", "value_b"} <= set(first["fields"][0])

    response = web.client.post(
        _pair_url(first["mention_a"], first["mention_b"]) + "/decision",
        json={"decision": "different", "note": "dates de naissance différentes"},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["decision_label"] == "personnes différentes"

    after = web.client.get("/api/v1/review", params={"limit": 5}, headers=headers).json()
    assert after["pending"] == queue["pending"] - 1
    pairs = {(p["mention_a"], p["mention_b"]) for p in after["pairs"]}
    assert (first["mention_a"], first["mention_b"]) not in pairs
    [write] = web.ledger(actor="marc.donnees", kind="write")
    assert write.entry.view == "review.decide"
    assert "différent" in write.entry.reason or "different" in write.entry.reason


def test_a_pair_is_explained_field_by_field(web: Web) -> None:
    headers = web.key("marc.donnees")
    pair = web.client.get("/api/v1/review", params={"limit": 1}, headers=headers).json()["pairs"][0]
    response = web.client.get(_pair_url(pair["mention_a"], pair["mention_b"]), headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["mention_a"] == pair["mention_a"] and body["fields"]
    assert (
        abs(body["total_weight"] - sum(f["weight"] for f in body["fields"]) - body["prior_weight"])
        < 0.05
    )


def test_an_agent_without_the_grant_gets_403_and_no_pair(web: Web) -> None:
    headers = web.key("lea.biblio")
    before = len(web.ledger(actor="lea.biblio", decision="deny"))
    queue = web.client.get("/api/v1/review", headers=headers)
    assert queue.status_code == 403 and queue.json()["code"] == "access_denied"
    assert "pairs" not in queue.json()
    a, b = "library_members|1|member", "water_subscribers|CT00000001|holder"
    assert web.client.get(_pair_url(a, b), headers=headers).status_code == 403
    decided = web.client.post(
        _pair_url(a, b) + "/decision", json={"decision": "same"}, headers=headers
    )
    assert decided.status_code == 403
    assert len(web.ledger(actor="lea.biblio", decision="deny")) == before + 3
    assert not web.ledger(kind="write", actor="lea.biblio")


# -- synergies ---------------------------------------------------------------------------------


def test_synergies_hide_every_cell_under_eleven(web: Web) -> None:
    response = web.client.get("/api/v1/synergies", headers=web.key("marc.donnees"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["purpose"] == "service_synergies" and body["min_cell"] == 11
    assert body["pairs"] and "secret statistique" in body["explanation"]
    for cell in body["pairs"]:
        if cell["shared"] is None:
            assert cell["published"] == "moins de 11"
        else:
            assert cell["shared"] >= 11 and cell["published"] == str(cell["shared"])
    assert any(c["shared"] is None for c in body["pairs"])
    assert any(c["shared"] is not None for c in body["pairs"])
    refused = web.client.get("/api/v1/synergies", headers=web.key("claire.ccas"))
    assert refused.status_code == 403


# -- the DPO -----------------------------------------------------------------------------------


def test_the_ledger_is_searched_by_the_dpo_only(web: Web) -> None:
    lea = web.key("lea.biblio")
    for _ in range(4):  # refusals to find
        web.client.get("/api/v1/review", headers=lea)
    dpo = web.key("dpo")
    found = web.client.get(
        "/api/v1/audit/records", params={"actor": "lea.biblio", "decision": "deny"}, headers=dpo
    )
    assert found.status_code == 200, found.text
    body = found.json()
    assert body["purpose"] == "audit_control" and body["total"] == 4
    assert all(r["actor"] == "lea.biblio" and r["decision"] == "deny" for r in body["records"])
    assert body["ledger_count"] >= body["total"]

    # Pages of lea.biblio's records: the DPO's own searches, recorded meanwhile, do not shift them.
    query = {"actor": "lea.biblio", "limit": 2}
    first = web.client.get("/api/v1/audit/records", params=query, headers=dpo).json()
    second = web.client.get(
        "/api/v1/audit/records", params={**query, "offset": 2}, headers=dpo
    ).json()
    seqs = [r["seq"] for r in first["records"]], [r["seq"] for r in second["records"]]
    assert len(seqs[0]) == 2 and not set(seqs[0]) & set(seqs[1])
    assert seqs[0][0] > seqs[0][1]  # newest first
    assert web.ledger(actor="dpo")[0].entry.view == "ledger"  # the search is itself recorded

    refused = web.client.get("/api/v1/audit/records", headers=web.key("marc.donnees"))
    assert refused.status_code == 403 and "records" not in refused.json()


def test_verify_reports_an_intact_chain_to_the_dpo(web: Web) -> None:
    response = web.client.post("/api/v1/audit/verify", headers=web.key("dpo"))
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["ok"] is True and report["problems"] == []
    assert report["count"] == report["head"]["count"] > 0
    assert len(report["head"]["hash"]) == 64
    assert web.client.post("/api/v1/audit/verify", headers=web.key("ines.eau")).status_code == 403


def test_the_register_is_public(web: Web) -> None:
    response = web.client.get("/api/v1/register")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["controller"]["name"] and body["purposes"]
    keys = {c["key"] for c in body["columns"]}
    assert all(set(row) <= keys for row in body["purposes"])
    assert "claire.ccas" not in response.text  # no agent is named


# -- malformed input ---------------------------------------------------------------------------


MALFORMED: list[tuple[str, str, dict[str, Any] | None]] = [
    ("get", "/api/v1/sources/Eau-Potable!/quarantine", None),
    ("get", "/api/v1/sources/water_subscribers/quarantine?limit=0", None),
    ("get", "/api/v1/sources/water_subscribers/quarantine?purpose=Pas%20une", None),
    ("get", "/api/v1/loads?source=" + "x" * 80, None),
    ("get", "/api/v1/review?limit=1000", None),
    ("get", "/api/v1/review/pas-une-fiche/library_members%7C1%7Cmember", None),
    ("get", "/api/v1/review/a%7Cb/library_members%7C1%7Cmember", None),
    ("get", "/api/v1/review/library_members%7C" + "9" * 200 + "%7Cm/a%7Cb%7Cc", None),
    ("post", "/api/v1/review/a%7Cb%7Cc/d%7Ce%7Cf/decision", {"decision": "peut-être"}),
    ("post", "/api/v1/review/a%7Cb%7Cc/d%7Ce%7Cf/decision", {"decision": "same", "x": 1}),
    ("post", "/api/v1/review/a%7Cb%7Cc/d%7Ce%7Cf/decision", {"note": "x" * 2000}),
    ("get", "/api/v1/synergies?min_cell=5", None),
    ("get", "/api/v1/audit/records?since=2026-13-01", None),
    ("get", "/api/v1/audit/records?decision=peut-etre", None),
    ("get", "/api/v1/audit/records?person=%3Cscript%3E", None),
]


def test_malformed_requests_are_422(web: Web) -> None:
    headers = web.key("marc.donnees")
    for method, url, payload in MALFORMED:
        extra = {} if payload is None else {"json": payload}
        response = getattr(web.client, method)(url, headers=headers, **extra)
        assert response.status_code == 422, (url, response.text)
        assert response.json()["code"] == "validation_error"
    assert not web.ledger(actor="marc.donnees")  # nothing reached the governance


def test_a_record_is_not_compared_with_itself(web: Web) -> None:
    url = _pair_url("library_members|1|member", "library_members|1|member")
    headers = web.key("marc.donnees")
    assert web.client.get(url, headers=headers).json()["code"] == "pair_invalid"
    response = web.client.post(url + "/decision", json={"decision": "same"}, headers=headers)
    assert response.status_code == 400 and not web.ledger(kind="write", actor="marc.donnees")


def test_an_unknown_source_is_404(web: Web) -> None:
    response = web.client.get("/api/v1/sources/inconnue/quarantine", headers=web.key("ines.eau"))
    assert response.status_code == 404 and response.json()["code"] == "source_unknown"


# -- pages -------------------------------------------------------------------------------------


def _assert_page(html: str) -> None:
    """One h1, no inline script or style (the CSP forbids them)."""
    assert html.count("<h1") == 1, html
    assert "style=" not in html
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)


def test_pages_need_a_login(web: Web) -> None:
    response = web.client.get("/console/rapprochements")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/connexion/agent")


def test_sources_page_lists_contracts_and_loads(web: Web) -> None:
    web.login("lea.biblio")
    response = web.client.get("/console/sources")
    assert response.status_code == 200, response.text
    _assert_page(response.text)
    assert "abonnes_defectueux.csv" not in response.text  # the water service's delivery
    assert "Chargements non visibles" in response.text
    assert "/console/sources/library_members/quarantaine?finalite=library_lending" in response.text
    assert "non ouverte par vos habilitations" in response.text
    web.login("ines.eau")
    assert "abonnes_defectueux.csv" in web.client.get("/console/sources").text


def test_quarantine_page_for_the_owner_and_a_refusal_page_for_the_others(web: Web) -> None:
    web.login("ines.eau")
    page = web.client.get("/console/sources/water_subscribers/quarantaine")
    assert page.status_code == 200, page.text
    _assert_page(page.text)
    assert "water_billing" in page.text and "Code postal" in page.text and "inconnu" in page.text
    web.login("lea.biblio")
    refused = web.client.get("/console/sources/water_subscribers/quarantaine")
    assert refused.status_code == 403
    _assert_page(refused.text)
    assert "Accès refusé" in refused.text and "inconnu" not in refused.text
    assert web.client.get("/console/sources/nulle_part/quarantaine").status_code == 404


def test_review_page_decides_a_pair_then_redirects_with_a_confirmation(web: Web) -> None:
    web.login("marc.donnees")
    page = web.client.get("/console/rapprochements")
    assert page.status_code == 200, page.text
    _assert_page(page.text)
    assert "identity_resolution" in page.text and "Même personne" in page.text
    a, b = re.findall(r'name="mention_[ab]" value="([^"]+)"', page.text)[:2]
    form = {"mention_a": a, "mention_b": b, "decision": "same", "note": "vérifié"}
    assert web.client.post("/console/rapprochements/decision", data=form).status_code == 403
    done = web.client.post("/console/rapprochements/decision", data={**form, "csrf_token": CSRF})
    assert done.status_code == 303
    assert done.headers["location"] == "/console/rapprochements"
    after = web.client.get(done.headers["location"])
    assert "Décision « même personne » enregistrée" in after.text
    assert f'name="mention_a" value="{a}"' not in after.text or b not in after.text
    assert web.ledger(actor="marc.donnees", kind="write")[0].entry.view == "review.decide"

    unsure = {**form, "decision": "unsure", "csrf_token": CSRF}
    assert web.client.post("/console/rapprochements/decision", data=unsure).status_code == 303
    assert "laissée en attente" in web.client.get("/console/rapprochements").text
    assert len(web.ledger(actor="marc.donnees", kind="write")) == 1  # "unsure" writes nothing

    detail = web.client.get("/console/rapprochements/explication", params={"a": a, "b": b})
    assert detail.status_code == 200
    _assert_page(detail.text)


def test_review_page_refuses_an_agent_without_the_grant(web: Web) -> None:
    web.login("claire.ccas")
    page = web.client.get("/console/rapprochements")
    assert page.status_code == 403
    assert "Accès refusé" in page.text and 'name="mention_a"' not in page.text


def test_synergies_page_explains_the_figure(web: Web) -> None:
    web.login("marc.donnees")
    page = web.client.get("/console/synergies")
    assert page.status_code == 200, page.text
    _assert_page(page.text)
    assert "moins de 11" in page.text and "secret statistique" in page.text
    assert '<th scope="row">' in page.text and '<th scope="col">' in page.text


def test_dpo_page_searches_pages_and_verifies_the_ledger(web: Web) -> None:
    entry = AuditEntry("read", "hugo.ccas", "ccas", "", "ccas_aid_control", "", "count")
    with web.state.lock:
        web.state.gov.ledger.append_many([entry] * 60)  # more than one page of records
    web.login("dpo")
    page = web.client.get("/console/dpo")
    assert page.status_code == 200, page.text
    _assert_page(page.text)
    assert "audit_control" in page.text and "Rôles habilités" in page.text
    assert "Page suivante" in page.text
    filtered = web.client.get("/console/dpo", params={"acteur": "dpo", "du": "", "au": ""})
    assert filtered.status_code == 200
    assert "Page suivante" not in filtered.text

    full = web.client.post("/console/dpo/verification", data={"csrf_token": CSRF})
    assert full.status_code == 200, full.text
    _assert_page(full.text)
    assert "Chaîne intègre" in full.text
    fragment = web.client.post(
        "/console/dpo/verification", data={"csrf_token": CSRF}, headers={"HX-Request": "true"}
    )
    assert "Chaîne intègre" in fragment.text and "<html" not in fragment.text

    web.login("marc.donnees")
    refused = web.client.get("/console/dpo")
    assert refused.status_code == 403 and "Rôles habilités" not in refused.text


def test_malformed_page_input_is_a_422_page(web: Web) -> None:
    web.login("dpo")
    for url in (
        "/console/dpo?du=2026-99-99",
        "/console/dpo?decision=peut-etre",
        "/console/dpo?finalite=Pas-une",
        "/console/rapprochements/explication?a=x&b=y",
        "/console/sources/Pas%20une/quarantaine",
        "/console/sources/water_subscribers/quarantaine?page=0",
    ):
        response = web.client.get(url)
        assert response.status_code == 422, (url, response.text)
        _assert_page(response.text)
    form = {"mention_a": "a|1|m", "mention_b": "b|2|m", "decision": "peut-etre", "csrf_token": CSRF}
    assert web.client.post("/console/rapprochements/decision", data=form).status_code == 422
