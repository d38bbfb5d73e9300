"""OpenID Connect login through the real app and its local provider (ProConnect / FranceConnect).

Every refusal is checked twice: the status the browser sees, and a session with no principal.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from itsdangerous import TimestampSigner
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from starlette.applications import Starlette
from starlette.routing import Mount

from territoria.core.config import load_workspace
from territoria.interfaces.web.app import SESSION_COOKIE, create_app
from territoria.interfaces.web.oidc import (
    LocalAccount,
    LocalProvider,
    RelyingParty,
    agent_accounts,
    build_local_provider,
    resident_accounts,
    search_accounts,
)
from territoria.interfaces.web.oidc.accounts import (
    CLIENTS_FILE,
    SIGNING_FILE,
    load_client_secrets,
    load_signing_key,
)
from territoria.interfaces.web.oidc.client import httpx_lib
from territoria.interfaces.web.settings import load_web_settings

BASE = "http://127.0.0.1:8000"
OP = f"{BASE}/oidc-local"
AGENT = "claire.ccas"


# -- fixtures and helpers -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def app(
    linked_template: Path, sandbox: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FastAPI]:
    """One app over a private copy of the linked sandbox workspace (tests only add logins)."""
    root = tmp_path_factory.mktemp("oidc") / "ws"
    shutil.copytree(linked_template, root)
    settings = load_web_settings(
        load_workspace(root),
        base_url=BASE,
        local_residents_file=sandbox / "truth" / "persons.csv",
        rate_limit_per_minute=0,
    )
    application = create_app(root, settings)
    with TestClient(application, base_url=BASE):  # runs the lifespan (closes the store)
        yield application


@pytest.fixture
def client(app: FastAPI) -> TestClient:
    return TestClient(app, base_url=BASE, follow_redirects=False)


def provider(app: FastAPI) -> LocalProvider:
    found: LocalProvider = app.state.web.extras["oidc_provider"]
    return found


def party(app: FastAPI, word: str) -> RelyingParty:
    found: RelyingParty = app.state.web.extras["oidc"][word]
    return found


def session(client: TestClient, app: FastAPI) -> dict[str, Any]:
    """The decoded session cookie (empty if none)."""
    cookie = client.cookies.get(SESSION_COOKIE)
    if not cookie:
        return {}
    key = (app.state.web.secrets_dir / "session.key").read_text(encoding="utf-8").strip()
    data: dict[str, Any] = json.loads(base64.b64decode(TimestampSigner(key).unsign(cookie)))
    return data


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def with_query(url: str, **changes: str | None) -> str:
    parts = urlsplit(url)
    params = {**query(url), **changes}
    kept = {k: v for k, v in params.items() if v is not None}
    return urlunsplit(parts._replace(query=urlencode(kept)))


def start(client: TestClient, word: str, next_page: str | None = None) -> str:
    """``/connexion/{word}``: the provider's authorization URL it redirects to."""
    response = client.get(f"/connexion/{word}", params={"next": next_page} if next_page else None)
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    issuer = "agents" if word == "agent" else "residents"
    assert location.startswith(f"{OP}/{issuer}/authorize?")
    return location


def pick(client: TestClient, authorize_url: str, account: str) -> str:
    """Show the provider's login page, choose an account: the callback URL with the code."""
    page = client.get(authorize_url)
    assert page.status_code == 200, page.text
    txn = re.search(r'name="transaction" value="([^"]+)"', page.text)
    assert txn is not None
    action = authorize_url.split("?", maxsplit=1)[0]
    answer = client.post(action, data={"transaction": txn.group(1), "account": account})
    assert answer.status_code == 303, answer.text
    return answer.headers["location"]


def login(client: TestClient, word: str, account: str, next_page: str | None = None) -> Any:
    callback = pick(client, start(client, word, next_page), account)
    return client.get(callback)


def refused(client: TestClient, app: FastAPI, response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert f"<code>{code}</code>" in response.text
    assert "principal" not in session(client, app)


class Rewrite(httpx_lib.AsyncBaseTransport):
    """Between the relying party and the provider: rewrite the token endpoint's answer."""

    def __init__(self, inner: Any, change: Callable[[dict[str, Any]], None]) -> None:
        self.inner, self.change = inner, change

    async def handle_async_request(self, request: Any) -> Any:
        response = await self.inner.handle_async_request(request)
        if not request.url.path.endswith("/token") or response.status_code != 200:
            return response
        data = json.loads(await response.aread())
        self.change(data)
        return httpx_lib.Response(200, json=data)


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


# -- the full code flow -------------------------------------------------------------------------


def test_agent_logs_in_and_comes_back_to_the_page_asked(client: TestClient, app: FastAPI) -> None:
    response = login(client, "agent", AGENT, next_page="/console/sources")
    assert response.status_code == 303
    assert response.headers["location"] == "/console/sources"
    principal = session(client, app)["principal"]
    assert principal["actor"] == AGENT and principal["kind"] == "agent"
    assert principal["idp"] == "agents" and principal["login_at"]
    id_claims = claims_of(principal["id_token"])
    assert id_claims["iss"] == f"{OP}/agents" and id_claims["aud"] == "territoria-agents"
    assert {"exp", "iat", "nonce", "auth_time", "sub", "acr"} <= set(id_claims)
    assert id_claims["sub"] != AGENT  # pairwise, not the account id


def test_resident_logs_in_through_the_identite_pivot(client: TestClient, app: FastAPI) -> None:
    issuer = provider(app).issuers["residents"]
    demo = next(a for a in issuer.accounts if a.demo)
    response = login(client, "resident", demo.id)
    assert response.status_code == 303 and response.headers["location"] == "/portail"
    principal = session(client, app)["principal"]
    assert principal["kind"] == "resident" and principal["actor"].startswith("resident:")
    assert principal["idp"] == "residents"
    assert claims_of(principal["id_token"])["acr"] == "eidas1"


def test_every_demo_resident_is_known_to_the_index(client: TestClient, app: FastAPI) -> None:
    demo = [a for a in provider(app).issuers["residents"].accounts if a.demo]
    assert len(demo) == 6
    for account in demo:
        assert login(client, "resident", account.id).headers.get("location") == "/portail"


def test_open_redirect_is_not_followed(client: TestClient, app: FastAPI) -> None:
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        response = login(client, "agent", AGENT, next_page=target)
        assert response.headers["location"] == "/console"


def test_logout_clears_the_session_and_ends_the_provider_session(
    client: TestClient, app: FastAPI
) -> None:
    login(client, "agent", AGENT)
    principal = session(client, app)["principal"]
    refused_logout = client.post("/deconnexion", data={"csrf_token": "faux"})
    assert refused_logout.status_code == 403
    assert "principal" in session(client, app)
    client.get("/")  # a page gives the session its CSRF token
    response = client.post("/deconnexion", data={"csrf_token": session(client, app)["csrf"]})
    assert response.status_code == 303
    end = response.headers["location"]
    assert end.startswith(f"{OP}/agents/session/end?")
    params = query(end)
    assert params["id_token_hint"] == principal["id_token"]
    assert params["post_logout_redirect_uri"] == f"{BASE}/"
    assert session(client, app) == {}
    back = client.get(end)
    assert back.status_code == 303
    assert back.headers["location"] == f"{BASE}/?state={params['state']}"


# -- refusals at the relying party --------------------------------------------------------------


def test_state_mismatch_is_refused(client: TestClient, app: FastAPI) -> None:
    callback = pick(client, start(client, "agent"), AGENT)
    forged = with_query(callback, state="x" * 43)
    refused(client, app, client.get(forged), 400, "state_mismatch")
    # the pending login is spent: the genuine answer no longer works either
    refused(client, app, client.get(callback), 400, "login_not_started")


def test_nonce_mismatch_is_refused(client: TestClient, app: FastAPI) -> None:
    first = start(client, "agent")
    second = start(client, "agent")  # the session now expects the second state and nonce
    crossed = with_query(first, state=query(second)["state"])
    refused(client, app, client.get(pick(client, crossed, AGENT)), 400, "nonce_mismatch")


def test_callback_without_a_login_started_is_refused(client: TestClient, app: FastAPI) -> None:
    response = client.get("/connexion/agent/retour", params={"code": "x", "state": "y" * 40})
    refused(client, app, response, 400, "login_not_started")


def _tamper(data: dict[str, Any]) -> None:
    header, _, signature = data["id_token"].split(".")
    claims = claims_of(data["id_token"])
    claims["email"] = "dpo@ville-exemple.fr"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    data["id_token"] = f"{header}.{forged}.{signature}"


def _resign(kid: str | None) -> Callable[[dict[str, Any]], None]:
    other = RSAKey.generate_key(2048, parameters={"use": "sig"})

    def change(data: dict[str, Any]) -> None:
        header = {"alg": "RS256", **({"kid": kid} if kid else {"kid": "autre-cle"})}
        data["id_token"] = jwt.encode(header, claims_of(data["id_token"]), other)

    return change


def _unsigned(data: dict[str, Any]) -> None:
    head = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode()
    data["id_token"] = f"{head}.{data['id_token'].split('.')[1]}."


@pytest.mark.parametrize("change", ["tampered", "same_kid_other_key", "unknown_kid", "alg_none"])
def test_id_token_with_a_bad_signature_is_refused(
    client: TestClient, app: FastAPI, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    rp = party(app, "agent")
    changes = {
        "tampered": _tamper,
        "same_kid_other_key": _resign(provider(app).key.kid),
        "unknown_kid": _resign(None),
        "alg_none": _unsigned,
    }
    monkeypatch.setattr(rp, "transport", Rewrite(rp.transport, changes[change]))
    refused(client, app, login(client, "agent", AGENT), 400, "signature_invalid")


def test_expired_id_token_is_refused(
    client: TestClient, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    rp = party(app, "agent")
    monkeypatch.setattr(rp, "clock", lambda: time.time() + 3600)
    refused(client, app, login(client, "agent", AGENT), 400, "id_token_expired")


def test_expired_code_is_refused(
    client: TestClient, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    callback = pick(client, start(client, "agent"), AGENT)
    monkeypatch.setattr(provider(app), "clock", lambda: time.time() + 61)
    refused(client, app, client.get(callback), 400, "code_refused")


def test_reused_code_is_refused(client: TestClient, app: FastAPI) -> None:
    callback = pick(client, start(client, "agent"), AGENT)
    rp = party(app, "agent")
    stolen = client.post(
        f"{OP}/agents/token",
        data={
            "grant_type": "authorization_code",
            "code": query(callback)["code"],
            "redirect_uri": rp.redirect_uri,
        },
        auth=(rp.audience.client_id, rp.client_secret),
    )
    assert stolen.status_code == 200
    refused(client, app, client.get(callback), 400, "code_refused")
    # the replay voided what the code had given
    userinfo = client.get(
        f"{OP}/agents/userinfo",
        headers={"authorization": f"Bearer {stolen.json()['access_token']}"},
    )
    assert userinfo.status_code == 401


def test_agent_unknown_to_the_policy_is_refused(client: TestClient, app: FastAPI) -> None:
    issuer = provider(app).issuers["agents"]
    stranger = LocalAccount(
        "intrus",
        "Intrus",
        "",
        {
            "email": "intrus@ailleurs.fr",
            "given_name": "I",
            "usual_name": "N",
            "uid": "i",
            "siret": "1",
        },
    )
    issuer.by_id[stranger.id] = stranger
    try:
        refused(client, app, login(client, "agent", "intrus"), 403, "agent_unknown")
    finally:
        del issuer.by_id[stranger.id]


def test_resident_unknown_to_the_index_gets_a_friendly_page(
    client: TestClient, app: FastAPI
) -> None:
    issuer = provider(app).issuers["residents"]
    nobody = LocalAccount(
        "P-inconnu",
        "Personne Inconnue",
        "",
        {
            "given_name": "Zébulon",
            "family_name": "NULLEPART",
            "birthdate": "1901-01-01",
            "gender": "male",
        },
    )
    issuer.by_id[nobody.id] = nobody
    try:
        response = login(client, "resident", nobody.id)
    finally:
        del issuer.by_id[nobody.id]
    refused(client, app, response, 404, "resident_not_found")
    assert "Aucun dossier à votre nom" in response.text


def test_cancel_at_the_provider_opens_no_session(client: TestClient, app: FastAPI) -> None:
    authorize = start(client, "resident")
    page = client.get(authorize)
    txn = re.search(r'name="transaction" value="([^"]+)"', page.text)
    assert txn is not None
    answer = client.post(
        f"{OP}/residents/authorize", data={"transaction": txn.group(1), "cancel": "1"}
    )
    assert query(answer.headers["location"])["error"] == "access_denied"
    refused(client, app, client.get(answer.headers["location"]), 400, "login_cancelled")


# -- what the provider enforces -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"redirect_uri": "https://evil.example/retour"}, "invalid_redirect_uri"),
        ({"state": "court"}, "invalid_request"),
        ({"nonce": "court"}, "invalid_request"),
        ({"utm_source": "courriel"}, "Y000400"),
        ({"client_id": "inconnu"}, "invalid_client"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "email"}, "invalid_scope"),
        ({"acr_values": "eidas3"}, "invalid_acr"),
    ],
)
def test_provider_refuses_a_bad_authorization_request(
    client: TestClient, change: dict[str, str], code: str
) -> None:
    authorize = with_query(start(client, "resident"), **change)
    response = client.get(authorize)
    assert response.status_code == 400
    assert f"<code>{code}</code>" in response.text
    assert "location" not in response.headers


def test_provider_discovery_and_keys(client: TestClient) -> None:
    meta = client.get(f"{OP}/residents/.well-known/openid-configuration").json()
    assert meta["issuer"] == f"{OP}/residents"
    assert meta["userinfo_signing_alg_values_supported"] == ["RS256"]
    assert set(meta["token_endpoint_auth_methods_supported"]) == {
        "client_secret_post",
        "client_secret_basic",
    }
    keys = client.get(meta["jwks_uri"]).json()["keys"]
    assert len(keys) == 1 and "d" not in keys[0]  # public part only
    assert client.get(f"{OP}/inconnu/.well-known/openid-configuration").status_code == 404


def _code(client: TestClient, app: FastAPI, account: str) -> tuple[str, str]:
    """A fresh code for a resident account and the nonce of its request."""
    authorize = start(client, "resident")
    return query(pick(client, authorize, account))["code"], query(authorize)["nonce"]


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_token_and_signed_userinfo(client: TestClient, app: FastAPI, method: str) -> None:
    rp = party(app, "resident")
    account = next(a for a in provider(app).issuers["residents"].accounts if a.demo)
    code, nonce = _code(client, app, account.id)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": rp.redirect_uri}
    secret = (rp.audience.client_id, rp.client_secret)
    if method == "client_secret_post":
        tokens = client.post(
            f"{OP}/residents/token",
            data={**form, **dict(zip(("client_id", "client_secret"), secret, strict=True))},
        )
    else:
        tokens = client.post(f"{OP}/residents/token", data=form, auth=secret)
    assert tokens.status_code == 200, tokens.text
    assert tokens.headers["cache-control"] == "no-store"
    keys = KeySet.import_key_set(client.get(f"{OP}/residents/jwks").json())
    id_token = jwt.decode(tokens.json()["id_token"], keys, algorithms=["RS256"])
    assert id_token.claims["nonce"] == nonce and id_token.claims["acr"] == "eidas1"
    info = client.get(
        f"{OP}/residents/userinfo",
        headers={"authorization": f"Bearer {tokens.json()['access_token']}"},
    )
    assert info.headers["content-type"] == "application/jwt"
    claims = jwt.decode(info.text, keys, algorithms=["RS256"]).claims
    assert claims["sub"] == id_token.claims["sub"]
    assert claims["birthcountry"] == "99100" and claims["gender"] in ("male", "female")
    assert claims["family_name"] == account.claims["family_name"]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", claims["birthdate"])


def test_token_endpoint_refuses_a_wrong_secret_and_a_wrong_redirect(
    client: TestClient, app: FastAPI
) -> None:
    rp = party(app, "resident")
    account = next(a for a in provider(app).issuers["residents"].accounts if a.demo)
    code, _ = _code(client, app, account.id)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": rp.redirect_uri}
    wrong = client.post(f"{OP}/residents/token", data=form, auth=(rp.audience.client_id, "faux"))
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    other = {**form, "redirect_uri": f"{BASE}/ailleurs"}
    moved = client.post(
        f"{OP}/residents/token", data=other, auth=(rp.audience.client_id, rp.client_secret)
    )
    assert moved.status_code == 400 and moved.json()["error"] == "invalid_grant"


def test_prompt_none_answers_login_required(client: TestClient) -> None:
    response = client.get(with_query(start(client, "agent"), prompt="none"))
    assert response.status_code == 303
    assert query(response.headers["location"])["error"] == "login_required"


def test_login_page_searches_residents_by_name(client: TestClient, app: FastAPI) -> None:
    issuer = provider(app).issuers["residents"]
    someone = next(a for a in issuer.accounts if not a.demo)
    page = client.get(start(client, "resident"))
    search = re.search(r'<form method="get" action="([^"]+)"', page.text)
    assert search is not None
    family = someone.claims["family_name"]
    found = client.get(
        search.group(1), params={"q": f"{someone.claims['given_name']} {family.lower()}"}
    )
    assert found.status_code == 200
    assert f'value="{someone.id}"' in found.text


def test_pairwise_sub_differs_per_client(app: FastAPI) -> None:
    op = provider(app)
    assert op.pairwise_sub("a", "P1") != op.pairwise_sub("b", "P1")
    assert op.pairwise_sub("a", "P1") == op.pairwise_sub("a", "P1")


# -- accounts and secrets -----------------------------------------------------------------------


def test_agent_accounts_carry_proconnect_claims(app: FastAPI) -> None:
    accounts = agent_accounts(app.state.web.gov.policy, "21990010700018")
    claire = next(a for a in accounts if a.id == AGENT)
    assert claire.claims == {
        "email": "claire.ccas@ville-exemple.fr",
        "given_name": "Claire",
        "usual_name": "Morel",
        "uid": AGENT,
        "siret": "21990010700018",
    }


def test_resident_accounts_skip_the_dead_and_children(tmp_path: Path) -> None:
    truth = tmp_path / "sandbox" / "truth"
    truth.mkdir(parents=True)
    (tmp_path / "sandbox" / "manifest.json").write_text('{"reference_year": 2025}')
    rows = [
        "person_id,given_name,family_name,birth_name,sex,birth_date,death_date,household_id,email",
        "P1,Élodie,MARTIN,DURAND,F,1980-05-02,,H1,",
        "P2,Jean,MARTIN,MARTIN,M,1950-01-01,2020-03-04,H1,",
        "P3,Léo,MARTIN,MARTIN,M,2015-06-01,,H1,",
        "P4,Ana,PETIT,PETIT,F,2009-12-31,,H2,ana@example.org",
    ]
    (truth / "persons.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (truth / "records.csv").write_text(
        "source,record_id,slot,person_id,household_id\nwater,1,holder,P1,H1\n"
    )
    accounts = resident_accounts(truth / "persons.csv", demo=1)
    assert [a.id for a in accounts] == ["P1", "P4"]
    assert accounts[0].demo and not accounts[1].demo
    elodie = accounts[0].claims
    assert elodie["family_name"] == "DURAND" and elodie["preferred_username"] == "MARTIN"
    assert elodie["birthdate"] == "1980-05-02" and elodie["gender"] == "female"
    assert [a.id for a in search_accounts(accounts, "elodie durand")] == ["P1"]
    assert resident_accounts(None) == []


def test_secrets_are_created_once_and_private(tmp_path: Path) -> None:
    key = load_signing_key(tmp_path)
    clients, pairwise = load_client_secrets(tmp_path, ["a", "b"])
    for name in (SIGNING_FILE, CLIENTS_FILE):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
    assert load_signing_key(tmp_path).kid == key.kid
    again, pairwise_again = load_client_secrets(tmp_path, ["a", "c"])
    assert again["a"] == clients["a"] and "c" in again and pairwise_again == pairwise


def test_worker_processes_share_pending_logins_and_codes(client: TestClient, app: FastAPI) -> None:
    """A second worker (its own provider over the same secrets) completes and spends the same."""
    twin = build_local_provider(app.state.web)
    assert twin is not None and twin.key.kid == provider(app).key.kid
    other = TestClient(Starlette(routes=[Mount("/oidc-local", app=twin.app)]), base_url=BASE)
    other.follow_redirects = False
    authorize = start(client, "agent")
    page = client.get(authorize)  # shown by the first worker...
    txn = re.search(r'name="transaction" value="([^"]+)"', page.text)
    assert txn is not None
    chosen = other.post(  # ...completed by the second
        f"{OP}/agents/authorize", data={"transaction": txn.group(1), "account": AGENT}
    )
    assert chosen.status_code == 303, chosen.text
    callback = chosen.headers["location"]
    assert client.get(callback).headers["location"] == "/console"
    rp = party(app, "agent")
    replay = other.post(
        f"{OP}/agents/token",
        data={"grant_type": "authorization_code", "code": query(callback)["code"]},
        auth=(rp.audience.client_id, rp.client_secret),
    )
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
