"""A local OpenID provider that behaves like ProConnect (agents) and FranceConnect (residents).

Development, the demo and the tests log in through it with no outside service. It enforces
what the real providers enforce, so that a relying party that works here works there:

- ``state`` and ``nonce`` of at least 32 characters, an exact ``redirect_uri`` registration,
  and any query parameter it does not know refused (ProConnect's ``Y000400``);
- a code that is single use and expires in 60 seconds (reusing it revokes its tokens);
- ID token and userinfo signed (RS256); userinfo is a JWT (``application/jwt``);
- a pairwise ``sub`` (HMAC of the client id and the account id), ``acr_values`` echoed as
  ``acr``, ``auth_time``, and RP-initiated logout (``/session/end``).

It keeps its RS256 key in ``<secrets>/oidc-local-signing.json`` and the clients' secrets in
``<secrets>/oidc-local-clients.json`` (both 0600, created on first use). Pending logins,
codes and access tokens are small files beside them (``oidc-local-state``), shared by every
worker process of ``territoria serve --workers N``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import unquote_plus, urlencode

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from territoria.interfaces.web.oidc.accounts import (
    GrantStore,
    LocalClient,
    LocalIssuer,
    search_accounts,
)

__all__ = ["CODE_TTL", "LocalProvider", "ProviderError"]

CODE_TTL = 60  # seconds (ProConnect: 30 s; a little slack for a slow demo machine)
TOKEN_TTL = 60
ID_TOKEN_TTL = 300
INTERACTION_TTL = 600
MIN_RANDOM = 32  # state and nonce, as ProConnect and FranceConnect require
AUTHORIZE_PARAMS = frozenset({
    "response_type", "client_id", "redirect_uri", "scope", "state", "nonce", "acr_values",
    "claims", "prompt", "idp_hint", "login_hint",
})  # fmt: skip
Render = Callable[[Request, str, dict[str, Any], int], Response]


class ProviderError(Exception):
    """A request the provider refuses: an OAuth error code and a French explanation."""

    def __init__(self, error: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.error, self.message, self.status = error, message, status


@dataclass(frozen=True)
class _Interaction:
    issuer: str
    client_id: str
    redirect_uri: str
    scope: tuple[str, ...]
    state: str
    nonce: str
    acr: str
    expires: float


@dataclass(frozen=True)
class _Grant:
    issuer: str
    client_id: str
    redirect_uri: str
    account_id: str
    scope: tuple[str, ...]
    nonce: str
    acr: str
    auth_time: int
    expires: float


def _grant(data: dict[str, Any]) -> _Grant:
    fields = {k: data[k] for k in _Grant.__dataclass_fields__}
    return _Grant(**{**fields, "scope": tuple(fields["scope"])})


# -- the provider -------------------------------------------------------------------------------


def _half_hash(value: str) -> str:
    """``at_hash``: left half of the SHA-256 of the access token, base64url."""
    digest = hashlib.sha256(value.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode("ascii")


def _default_render(
    request: Request, template: str, context: dict[str, Any], status: int
) -> Response:
    from territoria.interfaces.web.templates import render

    return render(request, template, context, status_code=status)


class LocalProvider:
    """The provider's state and its Starlette app (``.app``), mounted at ``/oidc-local``."""

    def __init__(
        self,
        issuer_base: str,
        issuers: dict[str, LocalIssuer],
        key: RSAKey,
        pairwise_secret: bytes,
        store: GrantStore,
        *,
        clock: Callable[[], float] = time.time,
        render: Render | None = None,
    ) -> None:
        self.issuer_base = issuer_base.rstrip("/")
        self.issuers, self.key, self.clock = issuers, key, clock
        self._pairwise = pairwise_secret
        self._render = render or _default_render
        self.store = store
        self.app = Starlette(routes=self._routes())

    def issuer_url(self, name: str) -> str:
        return f"{self.issuer_base}/{name}"

    def _routes(self) -> list[Route]:
        return [
            Route("/{iss}/.well-known/openid-configuration", self.discovery, methods=["GET"]),
            Route("/{iss}/authorize", self.authorize, methods=["GET"]),
            Route("/{iss}/authorize", self.choose, methods=["POST"]),
            Route("/{iss}/interaction/{txn}", self.interaction, methods=["GET"]),
            Route("/{iss}/token", self.token, methods=["POST"]),
            Route("/{iss}/userinfo", self.userinfo, methods=["GET", "POST"]),
            Route("/{iss}/jwks", self.jwks, methods=["GET"]),
            Route("/{iss}/session/end", self.end_session, methods=["GET"]),
        ]

    # -- helpers ---------------------------------------------------------------------------

    def _issuer(self, request: Request) -> LocalIssuer:
        issuer = self.issuers.get(request.path_params["iss"])
        if issuer is None:
            raise ProviderError("not_found", "fournisseur d'identité inconnu", 404)
        return issuer

    def pairwise_sub(self, client_id: str, account_id: str) -> str:
        message = f"{client_id}\x00{account_id}".encode()
        return hmac.new(self._pairwise, message, hashlib.sha256).hexdigest()

    def _sign(self, claims: dict[str, Any]) -> str:
        header = {"alg": "RS256", "kid": self.key.kid}
        return jwt.encode(header, claims, self.key, algorithms=["RS256"])

    def _page(
        self, request: Request, template: str, context: dict[str, Any], status: int = 200
    ) -> Response:
        response = self._render(request, template, context, status)
        response.headers["cache-control"] = "no-store"
        return response

    def _refusal_page(self, request: Request, refusal: ProviderError) -> Response:
        context = {
            "title": "Connexion impossible",
            "message": refusal.message,
            "code": refusal.error,
        }
        return self._page(request, "oidc/provider_error.html", context, refusal.status)

    # -- discovery and keys ------------------------------------------------------------------

    async def discovery(self, request: Request) -> Response:
        try:
            issuer = self._issuer(request)
        except ProviderError as refusal:
            return JSONResponse({"error": refusal.error}, status_code=refusal.status)
        url = self.issuer_url(issuer.name)
        claims = sorted({c for cs in issuer.scopes.values() for c in cs})
        return JSONResponse({
            "issuer": url,
            "authorization_endpoint": f"{url}/authorize",
            "token_endpoint": f"{url}/token",
            "userinfo_endpoint": f"{url}/userinfo",
            "jwks_uri": f"{url}/jwks",
            "end_session_endpoint": f"{url}/session/end",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["pairwise"],
            "scopes_supported": ["openid", *issuer.scopes],
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", *claims],
            "acr_values_supported": list(issuer.acr_values),
            "id_token_signing_alg_values_supported": ["RS256"],
            "userinfo_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "claims_parameter_supported": True,
            "request_parameter_supported": False,
            "authorization_response_iss_parameter_supported": True,
            "prompt_values_supported": ["login", "consent", "none"],
        })  # fmt: skip

    async def jwks(self, request: Request) -> Response:
        public = self.key.as_dict(private=False)
        return JSONResponse({"keys": [public]}, headers={"cache-control": "max-age=300"})

    # -- authorization -----------------------------------------------------------------------

    def _check_authorize(self, request: Request, issuer: LocalIssuer) -> _Interaction:
        params = request.query_params
        unknown = sorted(set(params.keys()) - AUTHORIZE_PARAMS)
        if unknown:
            raise ProviderError(
                "Y000400", f"paramètre non reconnu dans la demande d'autorisation : {unknown[0]}"
            )
        repeated = sorted(k for k in set(params.keys()) if len(params.getlist(k)) > 1)
        if repeated:
            raise ProviderError("invalid_request", f"paramètre répété : {repeated[0]}")
        client = issuer.clients.get(params.get("client_id", ""))
        if client is None:
            raise ProviderError("invalid_client", "client inconnu de ce fournisseur d'identité")
        redirect_uri = params.get("redirect_uri", "")
        if redirect_uri not in client.redirect_uris:
            raise ProviderError(
                "invalid_redirect_uri", "adresse de retour (redirect_uri) non enregistrée"
            )
        if params.get("response_type") != "code":
            raise ProviderError("unsupported_response_type", "seul response_type=code est accepté")
        scope = tuple(params.get("scope", "").split())
        if "openid" not in scope:
            raise ProviderError("invalid_scope", "la portée (scope) doit contenir « openid »")
        for name in ("state", "nonce"):
            if len(params.get(name, "")) < MIN_RANDOM:
                raise ProviderError(
                    "invalid_request",
                    f"{name} absent ou trop court (au moins {MIN_RANDOM} caractères)",
                )
        if params.get("claims"):
            try:
                json.loads(params["claims"])
            except ValueError:
                raise ProviderError("invalid_request", "paramètre claims : JSON invalide") from None
        return _Interaction(
            issuer.name, client.client_id, redirect_uri, scope, params["state"], params["nonce"],
            self._acr(issuer, params.get("acr_values", "")), self.clock() + INTERACTION_TTL,
        )  # fmt: skip

    def _acr(self, issuer: LocalIssuer, requested: str) -> str:
        if not requested.strip():
            return issuer.acr_values[0]
        for value in requested.split():
            if value in issuer.acr_values:
                return value
        raise ProviderError(
            "invalid_acr", f"niveau de garantie demandé non disponible : {requested}"
        )

    async def authorize(self, request: Request) -> Response:
        try:
            issuer = self._issuer(request)
            interaction = self._check_authorize(request, issuer)
        except ProviderError as refusal:
            return self._refusal_page(request, refusal)
        if request.query_params.get("prompt") == "none":  # no session at this provider
            return self._back(interaction, {"error": "login_required"})
        txn = secrets.token_urlsafe(24)
        self.store.put("login", txn, asdict(interaction))
        return self._login_page(request, issuer, txn, "")

    async def interaction(self, request: Request) -> Response:
        """The login page again, with the accounts matching a search."""
        try:
            issuer = self._issuer(request)
            txn = request.path_params["txn"]
            self._pending(issuer, txn)
        except ProviderError as refusal:
            return self._refusal_page(request, refusal)
        return self._login_page(request, issuer, txn, request.query_params.get("q", "")[:100])

    def _pending(self, issuer: LocalIssuer, txn: str) -> _Interaction:
        data = self.store.get("login", txn)
        interaction = _Interaction(**{**data, "scope": tuple(data["scope"])}) if data else None
        if interaction is None or interaction.issuer != issuer.name:
            raise ProviderError("invalid_request", "demande de connexion inconnue ou expirée")
        if interaction.expires <= self.clock():
            raise ProviderError("invalid_request", "demande de connexion expirée : recommencez")
        return interaction

    def _login_page(self, request: Request, issuer: LocalIssuer, txn: str, query: str) -> Response:
        demo = [a for a in issuer.accounts if a.demo]
        found = search_accounts(issuer.accounts, query) if query else []
        context = {
            "title": f"Connexion — {issuer.label} (démonstration)",
            "issuer": issuer,
            "txn": txn,
            "query": query,
            "demo_accounts": demo,
            "found": found,
            "searchable": len(issuer.accounts) > len(demo),
            "action": f"{self.issuer_url(issuer.name)}/authorize",
            "search_action": f"{self.issuer_url(issuer.name)}/interaction/{txn}",
        }
        return self._page(request, "oidc/provider_login.html", context)

    async def choose(self, request: Request) -> Response:
        form = await request.form()
        try:
            issuer = self._issuer(request)
            txn = str(form.get("transaction", ""))
            interaction = self._pending(issuer, txn)
        except ProviderError as refusal:
            return self._refusal_page(request, refusal)
        self.store.delete("login", txn)
        if form.get("cancel"):
            return self._back(interaction, {"error": "access_denied"})
        account = issuer.by_id.get(str(form.get("account", "")))
        if account is None:
            unknown = ProviderError(
                "invalid_request", "compte inconnu de ce fournisseur d'identité"
            )
            return self._refusal_page(request, unknown)
        code, now = secrets.token_urlsafe(32), self.clock()
        grant = _Grant(
            issuer.name, interaction.client_id, interaction.redirect_uri, account.id,
            interaction.scope, interaction.nonce, interaction.acr, int(now), now + CODE_TTL,
        )  # fmt: skip
        self.store.put("code", code, asdict(grant))
        return self._back(interaction, {"code": code})

    def _back(self, interaction: _Interaction, params: dict[str, str]) -> Response:
        """Redirect to the relying party with the state and the issuer (RFC 9207)."""
        query = {**params, "state": interaction.state, "iss": self.issuer_url(interaction.issuer)}
        return RedirectResponse(f"{interaction.redirect_uri}?{urlencode(query)}", status_code=303)

    # -- token and userinfo ------------------------------------------------------------------

    def _client(
        self, request: Request, issuer: LocalIssuer, form: Mapping[str, Any]
    ) -> LocalClient:
        auth = request.headers.get("authorization", "")
        posted = (str(form.get("client_id", "")), str(form.get("client_secret", "")))
        if auth.lower().startswith("basic "):
            if posted[1]:
                raise ProviderError("invalid_request", "deux méthodes d'authentification du client")
            try:
                decoded = base64.b64decode(auth[6:].strip(), validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                raise ProviderError("invalid_client", "en-tête Basic illisible", 401) from None
            client_id, _, secret = decoded.partition(":")
            presented = (unquote_plus(client_id), unquote_plus(secret))
        else:
            presented = posted
        client = issuer.clients.get(presented[0])
        if client is None or not hmac.compare_digest(
            client.client_secret.encode(), presented[1].encode()
        ):
            raise ProviderError("invalid_client", "authentification du client refusée", 401)
        return client

    def _redeem(
        self, issuer: LocalIssuer, client: LocalClient, form: Mapping[str, Any]
    ) -> tuple[str, _Grant]:
        if form.get("grant_type") != "authorization_code":
            raise ProviderError("unsupported_grant_type", "seul authorization_code est accepté")
        code = str(form.get("code", ""))
        taken = self.store.take("code", code, "spent")
        if taken is None:
            for token in (self.store.get("spent", code) or {}).get("tokens", []):
                self.store.delete("token", token)  # a replayed code voids what it gave
            raise ProviderError("invalid_grant", "code inconnu ou déjà utilisé")
        grant = _grant(taken)
        if grant.expires <= self.clock():
            raise ProviderError("invalid_grant", "code expiré")
        if grant.issuer != issuer.name or grant.client_id != client.client_id:
            raise ProviderError("invalid_grant", "code délivré à un autre client")
        if form.get("redirect_uri") != grant.redirect_uri:
            raise ProviderError("invalid_grant", "redirect_uri différente de la demande")
        return code, grant

    async def token(self, request: Request) -> Response:
        form = await request.form()
        try:
            issuer = self._issuer(request)
            client = self._client(request, issuer, form)
            code, grant = self._redeem(issuer, client, form)
        except ProviderError as refusal:
            headers = {"cache-control": "no-store"}
            if refusal.status == 401:
                headers["www-authenticate"] = 'Basic realm="oidc-local"'
            error = {"error": refusal.error, "error_description": refusal.message}
            return JSONResponse(error, status_code=refusal.status, headers=headers)
        access, now = secrets.token_urlsafe(32), int(self.clock())
        self.store.put("token", access, {**asdict(grant), "expires": now + TOKEN_TTL})
        self.store.put("spent", code, {**asdict(grant), "tokens": [access]})
        id_token = self._sign({
            "iss": self.issuer_url(issuer.name),
            "sub": self.pairwise_sub(client.client_id, grant.account_id),
            "aud": client.client_id,
            "exp": now + ID_TOKEN_TTL,
            "iat": now,
            "auth_time": grant.auth_time,
            "nonce": grant.nonce,
            "acr": grant.acr,
            "at_hash": _half_hash(access),
        })  # fmt: skip
        body: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": TOKEN_TTL,
            "id_token": id_token,
            "scope": " ".join(grant.scope),
        }
        return JSONResponse(body, headers={"cache-control": "no-store", "pragma": "no-cache"})

    def _bearer(self, request: Request, issuer: LocalIssuer) -> _Grant:
        auth = request.headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        found = self.store.get("token", token) if token else None
        if found is None or found["expires"] <= self.clock() or found["issuer"] != issuer.name:
            raise ProviderError("invalid_token", "jeton d'accès inconnu ou expiré", 401)
        return _grant(found)

    async def userinfo(self, request: Request) -> Response:
        """The account's claims the scope releases, as a signed JWT (as ProConnect and FC do)."""
        try:
            issuer = self._issuer(request)
            grant = self._bearer(request, issuer)
            account = issuer.by_id.get(grant.account_id)
            if account is None:
                raise ProviderError("invalid_token", "compte disparu depuis la connexion", 401)
        except ProviderError as refusal:
            header = f'Bearer error="{refusal.error}"'
            body = {"error": refusal.error, "error_description": refusal.message}
            return JSONResponse(
                body, status_code=refusal.status, headers={"www-authenticate": header}
            )
        released = {c for s in grant.scope for c in issuer.scopes.get(s, ())}
        now = int(self.clock())
        claims: dict[str, Any] = {
            "iss": self.issuer_url(issuer.name),
            "aud": grant.client_id,
            "sub": self.pairwise_sub(grant.client_id, grant.account_id),
            "iat": now,
            "exp": now + TOKEN_TTL,
        }
        claims.update({k: v for k, v in account.claims.items() if k in released})
        headers = {"content-type": "application/jwt", "cache-control": "no-store"}
        return Response(self._sign(claims), headers=headers)

    # -- logout ------------------------------------------------------------------------------

    def _hinted_client(self, issuer: LocalIssuer, hint: str) -> LocalClient:
        """The client an ID token of ours was issued to (it may have expired: it is a hint)."""
        try:
            token = jwt.decode(hint, self.key, algorithms=["RS256"])
        except (JoseError, ValueError):
            raise ProviderError("invalid_request", "id_token_hint invalide") from None
        audience = token.claims.get("aud")
        client = issuer.clients.get(audience if isinstance(audience, str) else "")
        if token.claims.get("iss") != self.issuer_url(issuer.name) or client is None:
            raise ProviderError("invalid_request", "id_token_hint émis pour un autre client")
        return client

    async def end_session(self, request: Request) -> Response:
        params = request.query_params
        try:
            issuer = self._issuer(request)
            unknown = sorted(
                set(params.keys()) - {"id_token_hint", "post_logout_redirect_uri", "state"}
            )
            if unknown:
                raise ProviderError("Y000400", f"paramètre non reconnu : {unknown[0]}")
            target = params.get("post_logout_redirect_uri")
            if target:
                client = self._hinted_client(issuer, params.get("id_token_hint", ""))
                if target not in client.post_logout_redirect_uris:
                    raise ProviderError(
                        "invalid_request", "adresse de retour après déconnexion non enregistrée"
                    )
                query = urlencode({"state": params["state"]}) if params.get("state") else ""
                return RedirectResponse(f"{target}?{query}" if query else target, status_code=303)
        except ProviderError as refusal:
            return self._refusal_page(request, refusal)
        context = {"title": f"Déconnexion — {issuer.label} (démonstration)", "issuer": issuer}
        return self._page(request, "oidc/provider_logout.html", context)
