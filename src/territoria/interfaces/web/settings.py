"""Web settings: ``[web]``, ``[theme]`` and ``[oidc.*]`` of ``territoria.toml``.

Everything has a default that runs the sandbox on one machine: the local identity provider
for agents and residents, the commune's name from ``[workspace]``, a neutral blue theme.
A real deployment changes configuration only::

    [web]
    base_url = "https://services.ville-exemple.fr"

    [theme]
    name = "Ville d'Exemple"
    logo = "branding/logo.svg"      # relative to the workspace
    primary = "#1f4e8c"              # contrast with white checked (WCAG AA, 4.5:1)

    [oidc.agents]                    # ProConnect
    provider = "https://auth.agentconnect.gouv.fr/api/v2"
    client_id = "…"
    client_secret_env = "PROCONNECT_SECRET"
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from territoria.core.config import CONFIG_NAME, WorkspaceConfig
from territoria.core.errors import WorkspaceError

__all__ = ["OidcAudience", "Theme", "WebSettings", "contrast_ratio", "load_web_settings"]

_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")
MIN_CONTRAST = 4.5  # WCAG 2.1 AA for normal text


@dataclass(frozen=True)
class Theme:
    """What a commune brands: its name, logo and two colours (text on white must stay legible)."""

    name: str
    logo: Path | None = None
    primary: str = "#1f4e8c"
    accent: str = "#8a3b12"
    footer_text: str = ""


@dataclass(frozen=True)
class OidcAudience:
    """One OpenID Connect login: agents (ProConnect-like) or residents (FranceConnect-like)."""

    name: str  # "agents" | "residents"
    provider: str  # "local" or an issuer URL
    client_id: str
    client_secret: str | None
    scope: str
    acr_values: str | None
    label: str


_AUDIENCES = {
    "agents": OidcAudience(
        "agents",
        "local",
        "territoria-agents",
        None,
        "openid email given_name usual_name uid siret",
        None,
        "ProConnect",
    ),
    "residents": OidcAudience(
        "residents",
        "local",
        "territoria-residents",
        None,
        "openid given_name family_name birthdate gender birthplace birthcountry email "
        "preferred_username",
        "eidas1",
        "FranceConnect",
    ),
}


@dataclass(frozen=True)
class WebSettings:
    base_url: str = "http://127.0.0.1:8000"
    theme: Theme = field(default_factory=lambda: Theme("Territoria"))
    oidc: dict[str, OidcAudience] = field(default_factory=lambda: dict(_AUDIENCES))
    rate_limit_per_minute: int = 600  # per client address; 0 disables (benchmarks only)
    session_hours: int = 8
    local_residents_file: Path | None = None
    security_contact: str = "mailto:securite@ville-exemple.fr"

    @property
    def secure_cookies(self) -> bool:
        return self.base_url.startswith("https://")


def _relative_luminance(colour: str) -> float:
    def channel(c: int) -> float:
        v = c / 255
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast_ratio(a: str, b: str) -> float:
    """WCAG contrast ratio of two ``#rrggbb`` colours."""
    la, lb = sorted((_relative_luminance(a), _relative_luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def _error(message: str, field_name: str, expected: str, file: Path) -> WorkspaceError:
    return WorkspaceError(
        message, code="web_settings_invalid", file=file, field_name=field_name, expected=expected
    )


def _colour(data: dict[str, Any], key: str, default: str, file: Path) -> str:
    value = str(data.get(key, default))
    if not _HEX.match(value):
        raise _error(f"couleur invalide : {value!r}", f"theme.{key}", "#rrggbb", file)
    ratio = contrast_ratio(value, "#ffffff")
    if ratio < MIN_CONTRAST:
        raise _error(
            f"la couleur {value} sur fond blanc a un contraste de {ratio:.2f}:1, trop faible "
            "pour du texte (RGAA 3.2)",
            f"theme.{key}",
            f"un contraste d'au moins {MIN_CONTRAST}:1 avec le blanc (couleur plus foncée)",
            file,
        )
    return value


def _audience(name: str, data: dict[str, Any], file: Path) -> OidcAudience:
    base = _AUDIENCES[name]
    secret = data.get("client_secret")
    env = data.get("client_secret_env")
    if env:
        secret = os.environ.get(str(env))
        if not secret:
            raise _error(
                f"la variable d'environnement {env} (secret OIDC) est vide",
                f"oidc.{name}.client_secret_env",
                "le secret du client fourni par le fournisseur d'identité",
                file,
            )
    provider = str(data.get("provider", base.provider))
    if provider != "local" and not provider.startswith(
        ("https://", "http://127.", "http://localhost")
    ):
        raise _error(
            f"fournisseur d'identité invalide : {provider!r}",
            f"oidc.{name}.provider",
            "\"local\" ou l'URL https de l'émetteur (issuer)",
            file,
        )
    return OidcAudience(
        name,
        provider,
        str(data.get("client_id", base.client_id)),
        None if secret is None else str(secret),
        str(data.get("scope", base.scope)),
        data.get("acr_values", base.acr_values),
        str(data.get("label", base.label)),
    )


def load_web_settings(config: WorkspaceConfig, **overrides: Any) -> WebSettings:
    """Read the web sections of the workspace's ``territoria.toml`` (all optional)."""
    file = config.root / CONFIG_NAME
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8")) if file.is_file() else {}
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise WorkspaceError(
            f"territoria.toml illisible : {exc}", code="workspace_invalid", file=file
        ) from None
    web, theme, oidc = data.get("web", {}), data.get("theme", {}), data.get("oidc", {})
    logo = theme.get("logo")
    logo_path = (config.root / str(logo)) if logo else None
    if logo_path is not None and not logo_path.is_file():
        raise _error(f"logo introuvable : {logo_path}", "theme.logo", "un fichier SVG ou PNG", file)
    residents = web.get("local_residents_file", "sandbox/truth/persons.csv")
    residents_path = config.root / str(residents)
    settings = WebSettings(
        base_url=str(web.get("base_url", WebSettings.base_url)).rstrip("/"),
        theme=Theme(
            name=str(theme.get("name", config.name)),
            logo=logo_path,
            primary=_colour(theme, "primary", Theme.primary, file),
            accent=_colour(theme, "accent", Theme.accent, file),
            footer_text=str(theme.get("footer_text", "")),
        ),
        oidc={name: _audience(name, oidc.get(name, {}), file) for name in _AUDIENCES},
        rate_limit_per_minute=int(web.get("rate_limit_per_minute", 600)),
        session_hours=int(web.get("session_hours", 8)),
        local_residents_file=residents_path if residents_path.is_file() else None,
        security_contact=str(web.get("security_contact", WebSettings.security_contact)),
    )
    if overrides:
        from dataclasses import replace

        settings = replace(settings, **overrides)
    return settings
