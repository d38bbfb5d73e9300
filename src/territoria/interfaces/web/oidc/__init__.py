"""OpenID Connect login: a local provider shaped like ProConnect and FranceConnect, and the
relying party that logs agents and residents in (through it or through the real ones).

``install(app, state)`` mounts the local provider at ``/oidc-local`` when an audience uses it
(``provider = "local"`` in ``[oidc.agents]`` / ``[oidc.residents]``) and adds the login,
callback and logout routes. A real provider is an issuer URL in the same place.
"""

from __future__ import annotations

from functools import partial
from urllib.parse import urlsplit

from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.routing import Mount

from territoria.interfaces.web.oidc.accounts import (
    DEMO_SIRET,
    FRANCECONNECT_SCOPES,
    PROCONNECT_SCOPES,
    STATE_FOLDER,
    GrantStore,
    LocalAccount,
    LocalClient,
    LocalIssuer,
    agent_accounts,
    load_client_secrets,
    load_signing_key,
    resident_accounts,
    search_accounts,
)
from territoria.interfaces.web.oidc.client import (
    AUDIENCES,
    Kind,
    LoginError,
    RelyingParty,
    httpx_lib,
    router,
)
from territoria.interfaces.web.oidc.provider import LocalProvider
from territoria.interfaces.web.state import WebState

__all__ = [
    "LOCAL_MOUNT",
    "LocalAccount",
    "LocalProvider",
    "LoginError",
    "RelyingParty",
    "agent_accounts",
    "build_local_provider",
    "install",
    "redirect_uri",
    "relying_parties",
    "resident_accounts",
    "search_accounts",
]

LOCAL_MOUNT = "/oidc-local"
PROCONNECT_ACR = (
    "eidas1",
    "https://proconnect.gouv.fr/assurance/self-asserted",
    "https://proconnect.gouv.fr/assurance/consistency-checked",
)


def redirect_uri(base_url: str, word: str) -> str:
    """Where the provider sends the browser back (``word``: ``agent`` or ``resident``)."""
    return f"{base_url}/connexion/{word}/retour"


def build_local_provider(state: WebState) -> LocalProvider | None:
    """The local provider for the audiences configured with ``provider = "local"``."""
    settings = state.settings
    local = {name: a for name, a in settings.oidc.items() if a.provider == "local"}
    if not local:
        return None
    key = load_signing_key(state.secrets_dir)
    secrets, pairwise = load_client_secrets(
        state.secrets_dir, [a.client_id for a in local.values()]
    )
    words = {name: word for word, name in AUDIENCES.items()}
    issuers = {}
    for name, audience in local.items():
        client = LocalClient(
            audience.client_id,
            audience.client_secret or secrets[audience.client_id],
            (redirect_uri(settings.base_url, words.get(name, name)),),
            (f"{settings.base_url}/",),
        )
        if name == "agents":
            policy = state.gov.policy
            issuers[name] = LocalIssuer(
                name, audience.label, partial(agent_accounts, policy, DEMO_SIRET),
                {client.client_id: client}, PROCONNECT_SCOPES, PROCONNECT_ACR,
            )  # fmt: skip
        else:
            path = settings.local_residents_file
            issuers[name] = LocalIssuer(
                name, audience.label, partial(resident_accounts, path),
                {client.client_id: client}, FRANCECONNECT_SCOPES, ("eidas1",),
            )  # fmt: skip
    store = GrantStore(state.secrets_dir / STATE_FOLDER)
    return LocalProvider(settings.base_url + LOCAL_MOUNT, issuers, key, pairwise, store)


def _in_process(provider: LocalProvider, base_url: str) -> httpx_lib.AsyncBaseTransport:
    """Calls to the public provider URLs, answered by the provider app in this process."""
    prefix = urlsplit(base_url).path.rstrip("/") + LOCAL_MOUNT
    return httpx_lib.ASGITransport(app=Starlette(routes=[Mount(prefix, app=provider.app)]))


def relying_parties(state: WebState, provider: LocalProvider | None) -> dict[str, RelyingParty]:
    """One relying party per configured audience, keyed by the URL word (agent, resident)."""
    parties = {}
    for word, name in AUDIENCES.items():
        audience = state.settings.oidc.get(name)
        if audience is None:
            continue
        uri = redirect_uri(state.settings.base_url, word)
        kind: Kind = "agent" if word == "agent" else "resident"
        if audience.provider == "local":
            if provider is None:
                continue
            client = provider.issuers[name].clients[audience.client_id]
            parties[word] = RelyingParty(
                kind, audience, provider.issuer_url(name), client.client_secret, uri,
                _in_process(provider, state.settings.base_url),
            )  # fmt: skip
        else:
            parties[word] = RelyingParty(
                kind, audience, audience.provider.rstrip("/"), audience.client_secret or "", uri
            )
    return parties


def install(app: FastAPI, state: WebState) -> None:
    """Mount the local provider if used, and add the login, callback and logout routes."""
    provider = build_local_provider(state)
    if provider is not None:
        provider.app.state.web = state  # its pages use the commune's theme
        app.mount(LOCAL_MOUNT, provider.app, name="oidc-local")
        state.extras["oidc_provider"] = provider
    state.extras["oidc"] = relying_parties(state, provider)
    app.include_router(router)
