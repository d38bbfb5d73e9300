"""The relying party: OpenID Connect login of agents (ProConnect) and residents (FranceConnect).

``GET /connexion/{agent|resident}`` sends the browser to the provider with a fresh ``state``
and ``nonce`` (kept in the signed session cookie with the page to come back to);
``GET /connexion/{…}/retour`` checks the ``state``, exchanges the code (authlib), verifies the
ID token's signature against the provider's JWKS and its ``iss``, ``aud``, ``exp``, ``nonce``
and ``acr``, reads userinfo (a signed JWT at ProConnect and FranceConnect, plain JSON
elsewhere), then asks the governance who this is: an agent of the policy by e-mail, or the
resident index's person behind the identité pivot. Only then is ``session["principal"]``
written. ``POST /deconnexion`` clears the session and ends the provider's session too.

With the local provider, the server's own calls (discovery, token, JWKS, userinfo) go to it
in-process through an ``ASGITransport`` (httpx2's when installed, as authlib then uses it, else
httpx's): the server never calls itself over the network.
A real provider is reached over HTTPS; switching is configuration only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Query, Request
from joserfc import jwt
from joserfc.errors import (
    ExpiredTokenError,
    InvalidClaimError,
    InvalidKeyIdError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import KeySet
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from territoria.interfaces.web.meta import governed
from territoria.interfaces.web.principals import (
    Principal,
    principal_for_agent_claims,
    principal_for_resident_claims,
)
from territoria.interfaces.web.security import CSRF_FIELD, check_csrf
from territoria.interfaces.web.settings import OidcAudience
from territoria.interfaces.web.state import WebState
from territoria.interfaces.web.templates import render

try:  # the HTTP library authlib uses: httpx2 when installed, else httpx
    import httpx2 as httpx_lib
except ImportError:  # pragma: no cover - depends on the installed extras
    import httpx as httpx_lib  # type: ignore[no-redef]

with warnings.catch_warnings():
    # authlib 1.9 would rather use httpx2 and says so once, at import; httpx is what we pin.
    warnings.simplefilter("ignore", DeprecationWarning)
    from authlib.integrations.base_client import OAuthError  # type: ignore[import-untyped]
    from authlib.integrations.httpx_client import (  # type: ignore[import-untyped]
        AsyncOAuth2Client,
    )

__all__ = ["AUDIENCES", "Kind", "LoginError", "RelyingParty", "httpx_lib", "router"]

log = logging.getLogger("territoria.web.oidc")

Kind = Literal["agent", "resident"]
AUDIENCES: dict[str, str] = {"agent": "agents", "resident": "residents"}  # URL word → settings
HOME: dict[str, str] = {"agent": "/console", "resident": "/portail"}
PENDING = "oidc_pending"
PENDING_TTL = 600  # seconds a login may stay at the provider
LEEWAY = 60  # clock skew tolerated on exp / iat
_ASYMMETRIC = ("RS256", "ES256", "PS256", "RS384", "ES384", "PS384", "RS512", "ES512", "PS512")


class LoginError(Exception):
    """A login that cannot complete: a stable code, a French message, an HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


@dataclass
class RelyingParty:
    """One audience's client of its provider (discovery and JWKS cached)."""

    kind: Kind
    audience: OidcAudience
    issuer: str
    client_secret: str
    redirect_uri: str
    transport: httpx_lib.AsyncBaseTransport | None = None
    clock: Callable[[], float] = time.time
    _metadata: dict[str, Any] | None = field(default=None, repr=False)
    _jwks: dict[str, Any] | None = field(default=None, repr=False)

    def _oauth(self, metadata: dict[str, Any] | None = None) -> Any:
        methods = (metadata or {}).get("token_endpoint_auth_methods_supported") or []
        method = "client_secret_post" if "client_secret_post" in methods else "client_secret_basic"
        return AsyncOAuth2Client(
            client_id=self.audience.client_id,
            client_secret=self.client_secret,
            scope=self.audience.scope,
            redirect_uri=self.redirect_uri,
            token_endpoint_auth_method=method,
            transport=self.transport,
            timeout=10.0,
        )

    async def _get_json(self, url: str) -> dict[str, Any]:
        async with httpx_lib.AsyncClient(transport=self.transport, timeout=10.0) as http:
            response = await http.get(url)
        response.raise_for_status()
        data = response.json()
        if not isinstance(data, dict):
            raise ValueError(f"{url} : objet JSON attendu")
        return data

    async def metadata(self) -> dict[str, Any]:
        """The provider's discovery document (its ``issuer`` must be the one configured)."""
        if self._metadata is None:
            data = await _reach(self._get_json(f"{self.issuer}/.well-known/openid-configuration"))
            if data.get("issuer") != self.issuer:
                raise LoginError(
                    "issuer_mismatch", "le fournisseur d'identité annonce un autre émetteur", 502
                )
            self._metadata = data
        return self._metadata

    async def key_set(self, refresh: bool = False) -> KeySet:
        if self._jwks is None or refresh:
            metadata = await self.metadata()
            self._jwks = await _reach(self._get_json(str(metadata["jwks_uri"])))
        return KeySet.import_key_set(self._jwks)  # type: ignore[arg-type]

    async def authorization_url(self, state: str, nonce: str) -> str:
        metadata = await self.metadata()
        extra = {"acr_values": self.audience.acr_values} if self.audience.acr_values else {}
        async with self._oauth(metadata) as oauth:
            url, _ = oauth.create_authorization_url(
                metadata["authorization_endpoint"], state=state, nonce=nonce, **extra
            )
        return str(url)

    async def verified(self, raw: str, algorithms: list[str]) -> jwt.Token:
        """A JWT whose signature one of the provider's keys verifies (JWKS refetched once)."""
        allowed = [a for a in algorithms if a in _ASYMMETRIC] or ["RS256"]
        for refresh in (False, True):
            try:
                return jwt.decode(raw, await self.key_set(refresh), algorithms=allowed)
            except InvalidKeyIdError:
                continue
            except (JoseError, ValueError) as exc:
                raise LoginError(
                    "signature_invalid", "signature du jeton d'identité invalide", 400
                ) from exc
        raise LoginError("signature_invalid", "jeton signé par une clé inconnue du fournisseur")

    def check_id_token(self, token: jwt.Token, nonce: str, access_token: str) -> None:
        claims = token.claims
        registry = jwt.JWTClaimsRegistry(
            now=int(self.clock()),
            leeway=LEEWAY,
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self.audience.client_id},
            sub={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
        )
        try:
            registry.validate(claims)
        except ExpiredTokenError:
            raise LoginError("id_token_expired", "jeton d'identité expiré") from None
        except (InvalidClaimError, MissingClaimError) as exc:
            raise LoginError("id_token_invalid", f"jeton d'identité refusé ({exc})") from None
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self.audience.client_id:
            raise LoginError("id_token_invalid", "jeton d'identité émis pour un autre client")
        if not hmac.compare_digest(str(claims.get("nonce", "")).encode(), nonce.encode()):
            raise LoginError("nonce_mismatch", "nonce du jeton d'identité différent de la demande")
        if "at_hash" in claims and claims["at_hash"] != _half_hash(access_token, token.header):
            raise LoginError("id_token_invalid", "at_hash ne correspond pas au jeton d'accès")
        wanted = (self.audience.acr_values or "").split()
        if wanted and claims.get("acr") not in wanted:
            raise LoginError("acr_insufficient", "niveau de garantie de l'identité insuffisant")

    async def login(self, code: str, nonce: str) -> tuple[str, dict[str, Any]]:
        """Exchange the code; the raw ID token and the verified claims (ID token + userinfo)."""
        metadata = await self.metadata()
        async with self._oauth(metadata) as oauth:
            try:
                tokens = await _reach(
                    oauth.fetch_token(
                        metadata["token_endpoint"], code=code, grant_type="authorization_code"
                    )
                )
            except OAuthError as exc:
                raise LoginError(
                    "code_refused", f"le fournisseur d'identité refuse le code ({exc.error})"
                ) from None
            raw = str(tokens.get("id_token") or "")
            if not raw:
                raise LoginError("id_token_missing", "aucun jeton d'identité reçu")
            algorithms = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
            id_token = await self.verified(raw, list(algorithms))
            self.check_id_token(id_token, nonce, str(tokens.get("access_token", "")))
            access = str(tokens.get("access_token", ""))
            userinfo = await self._userinfo(oauth, metadata, access, str(id_token.claims["sub"]))
        return raw, {
            **userinfo,
            **{k: id_token.claims[k] for k in ("sub", "acr") if k in id_token.claims},
        }

    async def _userinfo(
        self, oauth: Any, metadata: dict[str, Any], access: str, sub: str
    ) -> dict[str, Any]:
        """Userinfo as a signed JWT (ProConnect, FranceConnect) or JSON; same ``sub`` required."""
        endpoint = metadata.get("userinfo_endpoint")
        if not endpoint:
            return {}
        # the token is sent as is: authlib would try to refresh one that lives only 60 s
        bearer = {"Authorization": f"Bearer {access}"}
        response: httpx_lib.Response = await _reach(
            oauth.request("GET", endpoint, headers=bearer, withhold_token=True)
        )
        if response.status_code != 200:
            raise LoginError("userinfo_failed", "informations d'identité indisponibles", 502)
        kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
        claims: Any
        if kind == "application/jwt":
            algorithms = metadata.get("userinfo_signing_alg_values_supported") or ["RS256"]
            claims = dict((await self.verified(response.text.strip(), list(algorithms))).claims)
            audience = claims.get("aud", self.audience.client_id)
            audiences = audience if isinstance(audience, list) else [audience]
            if (
                claims.get("iss", self.issuer) != self.issuer
                or self.audience.client_id not in audiences
            ):
                raise LoginError("userinfo_invalid", "informations d'identité pour un autre client")
        else:
            try:
                claims = response.json()
            except ValueError:
                claims = None
        if not isinstance(claims, dict):
            raise LoginError("userinfo_invalid", "informations d'identité illisibles", 502)
        if claims.get("sub") != sub:
            raise LoginError("userinfo_invalid", "informations d'identité d'une autre personne")
        return claims

    async def logout_url(self, id_token: str, after: str) -> str | None:
        try:
            endpoint = (await self.metadata()).get("end_session_endpoint")
        except LoginError:
            return None
        if not endpoint:
            return None
        query = {
            "id_token_hint": id_token,
            "post_logout_redirect_uri": after,
            "state": secrets.token_urlsafe(32),
        }
        return f"{endpoint}?{urlencode(query)}"


async def _reach(call: Any) -> Any:
    """Await a call to the provider; network failures become a French 502."""
    try:
        return await call
    except (httpx_lib.HTTPError, ValueError) as exc:
        log.warning("fournisseur d'identité injoignable : %s", exc)
        raise LoginError(
            "idp_unreachable",
            "le fournisseur d'identité ne répond pas : réessayez dans un instant",
            502,
        ) from None


def _half_hash(access_token: str, header: dict[str, Any]) -> str:
    size = {"256": hashlib.sha256, "384": hashlib.sha384, "512": hashlib.sha512}
    digest = size.get(str(header.get("alg", "RS256"))[-3:], hashlib.sha256)(
        access_token.encode()
    ).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()


# -- routes -------------------------------------------------------------------------------------

router = APIRouter()
_PUBLIC = governed(actor="public")


def _state(request: Request) -> WebState:
    state: WebState = request.app.state.web
    return state


def _party(request: Request, word: str) -> RelyingParty:
    parties: dict[str, RelyingParty] = _state(request).extras.get("oidc", {})
    party = parties.get(word)
    if party is None:
        raise LoginError("login_unavailable", "cette connexion n'est pas proposée ici", 404)
    return party


def _safe_next(value: str | None, word: str) -> str:
    """Only a path of this site (no scheme, no host, no ``//``): no open redirect."""
    if value and value.startswith("/") and not value.startswith(("//", "/\\")):
        parts = urlsplit(value)
        if not parts.scheme and not parts.netloc and value.isprintable():
            return value
    return HOME.get(word, "/")


def _refusal_page(request: Request, refusal: LoginError, word: str) -> Response:
    log.info("connexion %s refusée : %s", word, refusal.code)
    titles = {
        403: "Accès non autorisé",
        404: "Aucun dossier à votre nom",
        502: "Service indisponible",
    }
    context = {
        "title": titles.get(refusal.status, "Connexion impossible"),
        "message": refusal.message,
        "code": refusal.code,
        "retry_url": f"/connexion/{word}" if word in AUDIENCES else "/",
        "kind": word,
    }
    return render(request, "oidc/error.html", context, status_code=refusal.status)


@router.get("/connexion/{word}", openapi_extra=_PUBLIC, include_in_schema=False)
async def login(
    request: Request, word: str, next_page: Annotated[str | None, Query(alias="next")] = None
) -> Response:
    """Send the browser to the provider with a fresh state and nonce."""
    try:
        party = _party(request, word)
        state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        url = await party.authorization_url(state, nonce)
    except LoginError as refusal:
        return _refusal_page(request, refusal, word)
    request.session[PENDING] = {
        "kind": word,
        "state": state,
        "nonce": nonce,
        "next": _safe_next(next_page, word),
        "at": int(time.time()),
    }
    return RedirectResponse(url, status_code=303)


def _pending(request: Request, word: str) -> dict[str, Any]:
    pending = request.session.pop(PENDING, None)
    if not isinstance(pending, dict) or pending.get("kind") != word:
        raise LoginError("login_not_started", "aucune connexion en cours : recommencez")
    if int(pending.get("at", 0)) + PENDING_TTL < time.time():
        raise LoginError("login_expired", "la connexion a pris trop de temps : recommencez")
    return pending


async def _complete(request: Request, party: RelyingParty, word: str) -> tuple[Principal, str, str]:
    pending = _pending(request, word)
    params = request.query_params
    if not hmac.compare_digest(params.get("state", "").encode(), str(pending["state"]).encode()):
        raise LoginError("state_mismatch", "paramètre state différent de la demande")
    if "iss" in params and params["iss"] != party.issuer:
        raise LoginError("issuer_mismatch", "réponse d'un autre fournisseur d'identité")
    if params.get("error"):
        if params["error"] == "access_denied":
            raise LoginError("login_cancelled", "connexion annulée")
        raise LoginError("idp_error", f"le fournisseur d'identité a refusé : {params['error']}")
    if not params.get("code"):
        raise LoginError("code_missing", "réponse du fournisseur d'identité sans code")
    raw, claims = await party.login(params["code"], str(pending["nonce"]))
    mapper = principal_for_agent_claims if word == "agent" else principal_for_resident_claims
    principal = await run_in_threadpool(mapper, _state(request), claims)
    if principal is None and word == "agent":
        raise LoginError(
            "agent_unknown",
            "votre compte est authentifié mais n'est rattaché à aucun agent de la collectivité",
            403,
        )
    if principal is None:
        raise LoginError(
            "resident_not_found",
            "Aucun dossier à votre nom n'a été trouvé dans les services de la collectivité",
            404,
        )
    return principal, raw, str(pending["next"])


@router.get("/connexion/{word}/retour", openapi_extra=_PUBLIC, include_in_schema=False)
async def callback(request: Request, word: str) -> Response:
    """The provider's answer: verify everything, then open the session."""
    try:
        party = _party(request, word)
        principal, raw, next_page = await _complete(request, party, word)
    except LoginError as refusal:
        return _refusal_page(request, refusal, word)
    request.session.clear()
    request.session["principal"] = {
        "actor": principal.actor,
        "kind": principal.kind,
        "name": principal.name,
        "idp": party.audience.name,
        "id_token": raw,
        "login_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return RedirectResponse(next_page, status_code=303)


@router.post("/deconnexion", openapi_extra=_PUBLIC, include_in_schema=False)
async def logout(request: Request) -> Response:
    """Clear the session, then end the provider's session (RP-initiated logout)."""
    form = await request.form()
    token = form.get(CSRF_FIELD)
    check_csrf(request, token if isinstance(token, str) else None)
    principal = request.session.get("principal")
    request.session.clear()
    target: str | None = None
    if isinstance(principal, dict) and principal.get("id_token"):
        parties: dict[str, RelyingParty] = _state(request).extras.get("oidc", {})
        party = next((p for p in parties.values() if p.audience.name == principal.get("idp")), None)
        if party is not None:
            base = _state(request).settings.base_url
            target = await party.logout_url(str(principal["id_token"]), f"{base}/")
    return RedirectResponse(target or "/", status_code=303)
