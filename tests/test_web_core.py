"""The web foundation: settings and theme, security headers, rate limiting, API keys, errors,
the persons API through the governed read, and operators' deliveries."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from governance_fixtures import persons_in
from territoria.backends import Store
from territoria.core.config import WorkspaceConfig
from territoria.core.errors import WorkspaceError
from territoria.interfaces.cli import app as cli_app
from territoria.interfaces.web import create_app, load_web_settings
from territoria.interfaces.web.principals import ApiKeys
from territoria.interfaces.web.settings import contrast_ratio

ERROR_KEYS = {"code", "message", "message_en", "details"}


@pytest.fixture
def web(linked: tuple[WorkspaceConfig, Store]) -> Iterator[tuple[TestClient, WorkspaceConfig]]:
    config, store = linked
    store.close()
    app = create_app(config.root)
    with TestClient(app) as client:
        yield client, config


def _key(client: TestClient, actor: str, kind: str = "agent") -> dict[str, str]:
    _, secret = ApiKeys(client.app.state.web.secrets_dir).create(actor, kind, "test")  # type: ignore[attr-defined]
    return {"Authorization": f"Bearer {secret}"}


def _write_toml(config: WorkspaceConfig, extra: str) -> None:
    path = config.root / "territoria.toml"
    path.write_text(path.read_text(encoding="utf-8") + "\n" + extra, encoding="utf-8")


# -- settings -------------------------------------------------------------------------------


def test_contrast_ratio_matches_wcag_reference_values() -> None:
    assert contrast_ratio("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast_ratio("#767676", "#ffffff") == pytest.approx(4.54, abs=0.01)


def test_theme_colour_too_light_is_refused_with_its_field(
    linked: tuple[WorkspaceConfig, Store],
) -> None:
    config, _ = linked
    _write_toml(config, '[theme]\nprimary = "#9fc5f8"\n')
    with pytest.raises(WorkspaceError) as caught:
        load_web_settings(config)
    assert caught.value.field_name == "theme.primary"
    assert "4.5:1" in (caught.value.expected or "")


def test_theme_and_provider_from_toml(linked: tuple[WorkspaceConfig, Store]) -> None:
    config, _ = linked
    (config.root / "logo.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    os.environ["TEST_PC_SECRET"] = "s3cret"
    try:
        _write_toml(
            config,
            '[theme]\nname = "Ville d\'Exemple"\nlogo = "logo.svg"\nprimary = "#123456"\n'
            '[oidc.agents]\nprovider = "https://proconnect.example/api/v2"\n'
            'client_id = "abc"\nclient_secret_env = "TEST_PC_SECRET"\n',
        )
        settings = load_web_settings(config)
    finally:
        del os.environ["TEST_PC_SECRET"]
    assert settings.theme.name == "Ville d'Exemple"
    assert settings.theme.primary == "#123456"
    assert settings.oidc["agents"].client_secret == "s3cret"
    assert settings.oidc["residents"].provider == "local"


def test_unknown_provider_scheme_is_refused(linked: tuple[WorkspaceConfig, Store]) -> None:
    config, _ = linked
    _write_toml(config, '[oidc.residents]\nprovider = "ftp://idp"\n')
    with pytest.raises(WorkspaceError) as caught:
        load_web_settings(config)
    assert caught.value.field_name == "oidc.residents.provider"


# -- headers, public pages, errors -------------------------------------------------------------


def test_security_headers_on_pages_api_and_errors(web: tuple[TestClient, WorkspaceConfig]) -> None:
    client, _ = web
    for path in ("/", "/registre", "/api/v1/me", "/nulle-part", "/api/v1/nulle-part"):
        response = client.get(path, follow_redirects=False)
        headers = response.headers
        assert "script-src 'self'" in headers["content-security-policy"], path
        assert "frame-ancestors 'none'" in headers["content-security-policy"], path
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert headers["cache-control"] == "no-store"
    static = client.get("/static/territoria.css")
    assert static.status_code == 200
    assert "no-store" not in static.headers.get("cache-control", "")


def test_public_pages_and_security_txt(web: tuple[TestClient, WorkspaceConfig]) -> None:
    client, _ = web
    for path in ("/", "/accessibilite", "/mentions-legales", "/donnees-personnelles", "/registre"):
        page = client.get(path)
        assert page.status_code == 200, path
        assert '<html lang="fr">' in page.text
        assert "Accessibilité : partiellement conforme" in page.text
        assert "<script>" not in page.text and "style=" not in page.text
    txt = client.get("/.well-known/security.txt")
    assert txt.status_code == 200
    assert txt.text.startswith("Contact: ")
    assert "Expires: " in txt.text
    assert client.get("/theme.css").text.startswith(":root { --primary: #1f4e8c;")


def test_api_errors_are_json_with_french_and_english(
    web: tuple[TestClient, WorkspaceConfig],
) -> None:
    client, _ = web
    missing = client.get("/api/v1/nulle-part")
    assert missing.status_code == 404 and set(missing.json()) == ERROR_KEYS
    anonymous = client.get("/api/v1/persons", params={"purpose": "library_lending", "q": "ab"})
    assert anonymous.status_code == 401
    assert anonymous.json()["code"] == "authentication_required"
    headers = _key(client, "lea.biblio")
    bad = client.get(
        "/api/v1/persons", params={"purpose": "Pas une finalité", "q": "x"}, headers=headers
    )
    assert bad.status_code == 422
    body = bad.json()
    assert body["code"] == "validation_error" and body["message_en"]
    assert {e["field"] for e in body["details"]["errors"]} == {"query.purpose", "query.q"}


def test_pages_without_session_redirect_to_login(web: tuple[TestClient, WorkspaceConfig]) -> None:
    client, _ = web
    console = client.get("/console?finalite=library_lending", follow_redirects=False)
    assert console.status_code == 303
    assert (
        console.headers["location"] == "/connexion/agent?next=/console%3Ffinalite%3Dlibrary_lending"
    )
    portal = client.get("/portail", follow_redirects=False)
    assert portal.status_code == 303
    assert portal.headers["location"].startswith("/connexion/resident")


def test_rate_limit_answers_429_with_retry_after(linked: tuple[WorkspaceConfig, Store]) -> None:
    config, store = linked
    store.close()
    _write_toml(config, "[web]\nrate_limit_per_minute = 5\n")
    with TestClient(create_app(config.root)) as client:
        codes = [client.get("/api/v1/nulle-part").status_code for _ in range(7)]
        assert codes[:5] == [404] * 5
        assert codes[5:] == [429, 429]
        limited = client.get("/api/v1/nulle-part")
        assert int(limited.headers["retry-after"]) >= 1
        assert limited.json()["code"] == "rate_limited"
        assert client.get("/static/territoria.css").status_code == 200  # assets are not limited


# -- API keys ------------------------------------------------------------------------------------


def test_api_key_cli_create_use_revoke(web: tuple[TestClient, WorkspaceConfig]) -> None:
    client, config = web
    runner = CliRunner()
    created = runner.invoke(
        cli_app, ["api-keys", "create", "--for", "lea.biblio", "-w", str(config.root), "--json"]
    )
    assert created.exit_code == 0, created.output
    key = json.loads(created.output)
    headers = {"X-API-Key": key["secret"]}
    me = client.get("/api/v1/me", headers=headers)
    assert me.status_code == 200 and me.json()["actor"] == "lea.biblio"
    listed = runner.invoke(cli_app, ["api-keys", "list", "-w", str(config.root), "--json"])
    assert key["secret"] not in listed.output and key["key_id"] in listed.output
    stored = (Path(client.app.state.web.secrets_dir) / "api-keys.json").read_text()  # type: ignore[attr-defined]
    assert key["secret"].split("_", 2)[2] not in stored
    revoked = runner.invoke(cli_app, ["api-keys", "revoke", key["key_id"], "-w", str(config.root)])
    assert revoked.exit_code == 0, revoked.output
    refused = client.get("/api/v1/me", headers=headers)
    assert refused.status_code == 401 and refused.json()["code"] == "api_key_invalid"
    unknown = runner.invoke(
        cli_app, ["api-keys", "create", "--for", "personne", "-w", str(config.root)]
    )
    assert unknown.exit_code == 2 and "acteur inconnu" in unknown.output


# -- persons API ---------------------------------------------------------------------------------


def test_out_of_scope_and_nonexistent_persons_answer_the_same(
    web: tuple[TestClient, WorkspaceConfig],
) -> None:
    client, _ = web
    gov = client.app.state.web.gov  # type: ignore[attr-defined]
    ccas_only = set(persons_in(gov, "ccas_aid")) - set(persons_in(gov, "library_members"))
    person = sorted(ccas_only)[0]
    lending = gov.policy.purposes["library_lending"]
    pseudonym = gov.reader.pseudonym(lending, person)
    fake = pseudonym[:-4] + ("AAAA" if not pseudonym.endswith("AAAA") else "BBBB")
    headers = _key(client, "lea.biblio")
    answers = [
        client.get(f"/api/v1/persons/{p}", params={"purpose": "library_lending"}, headers=headers)
        for p in (pseudonym, fake)
    ]
    assert [a.status_code for a in answers] == [404, 404]
    assert answers[0].content == answers[1].content


def test_person_360_shows_only_the_purposes_fields(web: tuple[TestClient, WorkspaceConfig]) -> None:
    client, _ = web
    gov = client.app.state.web.gov  # type: ignore[attr-defined]
    person = persons_in(gov, "library_members", "ccas_aid")[0]
    lending = gov.policy.purposes["library_lending"]
    headers = _key(client, "lea.biblio")
    before = gov.ledger.head().count
    view = client.get(
        f"/api/v1/persons/{gov.reader.pseudonym(lending, person)}",
        params={"purpose": "library_lending"},
        headers=headers,
    )
    assert view.status_code == 200, view.text
    body = view.json()
    assert set(body["sources"]) == {"library_members"}
    allowed = set(
        gov.decide("lea.biblio", "library_lending", "person_360").fields["library_members"]
    )
    for record in body["sources"]["library_members"]["records"]:
        assert set(record) <= allowed
    assert body["decision"]["rule"] == "grant:librarian:library_lending"
    assert gov.ledger.head().count == before + 1  # exactly one ledger record for the read
    refused = client.get(
        f"/api/v1/persons/{body['person']}",
        params={"purpose": "ccas_social_support"},
        headers=headers,
    )
    assert refused.status_code == 403
    assert refused.json()["details"]["rule"] == "deny:no_grant"


# -- deliveries -------------------------------------------------------------------------------


def test_operator_delivers_its_own_source_only(
    web: tuple[TestClient, WorkspaceConfig], sandbox: Path
) -> None:
    client, _ = web
    gov = client.app.state.web.gov  # type: ignore[attr-defined]
    operator = _key(client, "eaux-du-rhone", "operator")
    delivered = (sandbox / "water_subscribers.csv").read_bytes()
    lines = delivered.split(b"\n")
    small = b"\n".join(lines[:6]) + b"\n"
    ok = client.post(
        "/api/v1/deliveries/water_subscribers",
        files={"file": ("abonnes.csv", small, "text/csv")},
        headers=operator,
        params={"replace": "true"},
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["status"] in ("loaded", "duplicate")
    writes = gov.ledger.records(kind="write", limit=1)
    assert writes[0].entry.actor == "eaux-du-rhone"
    other = client.post(
        "/api/v1/deliveries/ccas_aid",
        files={"file": ("aides.csv", b"x;y\n1;2\n", "text/csv")},
        headers=operator,
    )
    assert (
        other.status_code == 403 and other.json()["details"]["rule"] == "deny:source_not_delegated"
    )
    assert gov.ledger.records(kind="write", limit=1)[0].entry.decision == "deny"
    agent = client.post(
        "/api/v1/deliveries/water_subscribers",
        files={"file": ("abonnes.csv", small, "text/csv")},
        headers=_key(client, "ines.eau"),
    )
    assert agent.status_code == 403 and agent.json()["code"] == "wrong_actor_kind"
    listing = client.get("/api/v1/deliveries", headers=operator)
    assert listing.status_code == 200
    assert {d["source"] for d in listing.json()} <= {"water_subscribers", "water_readings"}
