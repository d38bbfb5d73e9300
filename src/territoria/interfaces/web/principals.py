"""Who is calling: an agent or a resident (session after OpenID Connect login), a delegated
operator or an integrator (API key). Nothing here decides what they may read: that is the
governance's decision point; this only establishes the actor it decides for.

API keys look like ``tka_<id>_<secret>``; only the SHA-256 of the secret is kept, in
``<secrets>/api-keys.json`` (0600), with the actor it acts as, a label and its revocation.
``territoria api-keys create|list|revoke`` manages them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from territoria.core.errors import TerritoriaError
from territoria.core.files import write_atomically
from territoria.governance.residents import PivotIdentity
from territoria.interfaces.web.security import check_csrf
from territoria.interfaces.web.state import WebState

__all__ = [
    "AgentPrincipal",
    "AnyPrincipal",
    "ApiKey",
    "ApiKeys",
    "OperatorPrincipal",
    "Principal",
    "ResidentPrincipal",
    "current_principal",
    "principal_for_agent_claims",
    "principal_for_resident_claims",
    "web_state",
]

Kind = Literal["agent", "resident", "operator"]
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
_PREFIX = "tka_"


@dataclass(frozen=True)
class Principal:
    actor: str  # policy agent id, operator id, or resident:<person key>
    kind: Kind
    name: str
    via: Literal["session", "api_key"]

    @property
    def resident_key(self) -> str | None:
        return self.actor.split(":", 1)[1] if self.kind == "resident" else None


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    actor: str
    kind: Kind
    label: str
    digest: str
    created: str
    revoked: str | None = None


class ApiKeys:
    """The API keys of a deployment (hashes only), in the secrets folder."""

    def __init__(self, secrets_dir: Path) -> None:
        self.file = secrets_dir / "api-keys.json"

    def all(self) -> list[ApiKey]:
        if not self.file.is_file():
            return []
        try:
            return [ApiKey(**row) for row in json.loads(self.file.read_text(encoding="utf-8"))]
        except (ValueError, TypeError) as exc:
            raise TerritoriaError(
                f"fichier de clés d'API illisible : {exc}",
                code="api_keys_unreadable",
                file=self.file,
            ) from None

    def _save(self, keys: list[ApiKey]) -> None:
        data = json.dumps([asdict(k) for k in keys], ensure_ascii=False, indent=1).encode()
        write_atomically(self.file, data, what="clés d'API")
        self.file.chmod(0o600)

    def create(self, actor: str, kind: Kind, label: str = "") -> tuple[ApiKey, str]:
        """A new key; the clear secret is returned once and never stored."""
        key_id, secret = secrets.token_hex(4), secrets.token_urlsafe(32)
        key = ApiKey(
            key_id,
            actor,
            kind,
            label,
            hashlib.sha256(secret.encode()).hexdigest(),
            datetime.now(UTC).isoformat(timespec="seconds"),
        )
        self._save([*self.all(), key])
        return key, f"{_PREFIX}{key_id}_{secret}"

    def revoke(self, key_id: str) -> ApiKey:
        keys, found = self.all(), None
        for i, key in enumerate(keys):
            if key.key_id == key_id and key.revoked is None:
                found = keys[i] = ApiKey(
                    **{**asdict(key), "revoked": datetime.now(UTC).isoformat(timespec="seconds")}
                )
        if found is None:
            raise TerritoriaError(
                f"aucune clé active d'identifiant {key_id!r}", code="api_key_unknown"
            )
        self._save(keys)
        return found

    def verify(self, presented: str) -> ApiKey | None:
        if not presented.startswith(_PREFIX) or presented.count("_") < 2:
            return None
        key_id, _, secret = presented[len(_PREFIX) :].partition("_")
        digest = hashlib.sha256(secret.encode()).hexdigest()
        for key in self.all():
            if key.key_id == key_id and key.revoked is None:
                return key if hmac.compare_digest(key.digest, digest) else None
        return None


def web_state(request: Request) -> WebState:
    state: WebState = request.app.state.web
    return state


_bearer = HTTPBearer(auto_error=False, description="Clé d'API : « Bearer tka_… »")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="Clé d'API tka_…")


def current_principal(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)] = None,
    header: Annotated[str | None, Depends(_header)] = None,
) -> Principal | None:
    """The caller: an API key if one is presented (it must be valid), else the session."""
    presented = header or (bearer.credentials if bearer else None)
    if presented:
        state = web_state(request)
        keys = ApiKeys(state.secrets_dir)
        stamp = keys.file.stat().st_mtime_ns if keys.file.is_file() else 0
        cache: dict[str, Principal] = state.extras.setdefault("api_key_cache", {})
        if state.extras.get("api_key_stamp") != stamp:  # a key created or revoked since
            cache.clear()
            state.extras["api_key_stamp"] = stamp
        if presented in cache:
            return cache[presented]
        key = keys.verify(presented)
        if key is None:
            raise TerritoriaError(
                "clé d'API inconnue, révoquée ou mal formée", code="api_key_invalid"
            )
        principal = Principal(key.actor, key.kind, key.label or key.actor, "api_key")
        if len(cache) < 1000:
            cache[presented] = principal
        return principal
    data = request.session.get("principal") if "session" in request.scope else None
    if not isinstance(data, dict):
        return None
    if request.method not in _SAFE and request.url.path.startswith("/api/"):
        check_csrf(request, None)  # pages check the form's csrf_token field themselves
    return Principal(str(data["actor"]), data["kind"], str(data.get("name", "")), "session")


def _require(*kinds: Kind) -> Any:
    def dependency(
        principal: Annotated[Principal | None, Depends(current_principal)],
    ) -> Principal:
        if principal is None:
            raise TerritoriaError(
                "connexion requise : connectez-vous ou présentez une clé d'API",
                code="authentication_required",
            )
        if principal.kind not in kinds:
            raise TerritoriaError(
                "cette adresse n'est pas ouverte à ce type de compte", code="wrong_actor_kind"
            )
        return principal

    return dependency


AgentPrincipal = Annotated[Principal, Depends(_require("agent"))]
ResidentPrincipal = Annotated[Principal, Depends(_require("resident"))]
OperatorPrincipal = Annotated[Principal, Depends(_require("operator"))]
AnyPrincipal = Annotated[Principal, Depends(_require("agent", "resident", "operator"))]


def principal_for_agent_claims(state: WebState, claims: dict[str, Any]) -> Principal | None:
    """The policy's agent whose e-mail the identity provider vouches for (ProConnect)."""
    email = str(claims.get("email") or "").strip().lower()
    if not email:
        return None
    for agent in state.gov.policy.agents.values():
        if (agent.email or "").lower() == email:
            return Principal(agent.id, "agent", agent.name, "session")
    return None


def principal_for_resident_claims(state: WebState, claims: dict[str, Any]) -> Principal | None:
    """The resident index's person behind FranceConnect's identité pivot (one ledger record)."""
    pivot = PivotIdentity(
        given_name=str(claims.get("given_name") or ""),
        family_name=str(claims.get("family_name") or ""),
        birthdate=str(claims.get("birthdate") or ""),
        usage_name=str(claims.get("preferred_username") or ""),
    )
    label = state.settings.oidc["residents"].label
    with state.lock:
        key = state.gov.identify_resident(pivot, label)
    if key is None:
        return None
    name = f"{pivot.given_name.split(' ')[0].title()} {pivot.family_name.upper()}".strip()
    return Principal(f"resident:{key}", "resident", name, "session")
