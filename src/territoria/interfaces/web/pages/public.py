"""Pages anyone may open: home, login choice, the legal pages, the public register,
``security.txt``, the theme's CSS and logo, and a health check."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, PlainTextResponse, RedirectResponse, Response

from territoria.governance import register_rows
from territoria.governance.register_export import REGISTER_COLUMNS
from territoria.interfaces.web.meta import governed
from territoria.interfaces.web.principals import web_state
from territoria.interfaces.web.templates import render

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
PUBLIC = governed("public")
_STATIC = __import__("pathlib").Path(__file__).parent.parent / "static"


@router.get("/", openapi_extra=PUBLIC)
def home(request: Request) -> Response:
    principal = request.session.get("principal")
    if isinstance(principal, dict):
        return RedirectResponse("/console" if principal.get("kind") == "agent" else "/portail", 303)
    state = web_state(request)
    return render(
        request,
        "public/home.html",
        {"title": "Accueil", "oidc": state.settings.oidc},
    )


@router.get("/accessibilite", openapi_extra=PUBLIC)
def accessibility(request: Request) -> Response:
    return render(request, "public/accessibility.html", {"title": "Déclaration d'accessibilité"})


@router.get("/mentions-legales", openapi_extra=PUBLIC)
def legal(request: Request) -> Response:
    state = web_state(request)
    return render(
        request,
        "public/legal.html",
        {"title": "Mentions légales", "controller": state.gov.policy.controller},
    )


@router.get("/donnees-personnelles", openapi_extra=PUBLIC)
def privacy(request: Request) -> Response:
    state = web_state(request)
    return render(
        request,
        "public/privacy.html",
        {"title": "Données personnelles", "controller": state.gov.policy.controller},
    )


@router.get("/registre", openapi_extra=PUBLIC)
def register(request: Request) -> Response:
    """The register of processing activities (GDPR art. 30), public, no agent named."""
    state = web_state(request)
    rows = register_rows(state.gov.policy, state.gov.catalog)
    return render(
        request,
        "public/register.html",
        {
            "title": "Registre des activités de traitement",
            "rows": rows,
            "columns": REGISTER_COLUMNS,
            "controller": state.gov.policy.controller,
        },
    )


@router.get("/.well-known/security.txt", openapi_extra=PUBLIC)
def security_txt(request: Request) -> Response:
    """RFC 9116: whom to tell about a vulnerability."""
    state = web_state(request)
    expires = (datetime.now(UTC) + timedelta(days=180)).strftime("%Y-%m-%dT00:00:00Z")
    text = (
        f"Contact: {state.settings.security_contact}\n"
        f"Expires: {expires}\n"
        "Preferred-Languages: fr, en\n"
        f"Canonical: {state.settings.base_url}/.well-known/security.txt\n"
        f"Policy: {state.settings.base_url}/mentions-legales\n"
    )
    return PlainTextResponse(text)


@router.get("/theme.css", openapi_extra=PUBLIC)
def theme_css(request: Request) -> Response:
    theme = web_state(request).settings.theme
    css = f":root {{ --primary: {theme.primary}; --accent: {theme.accent}; }}\n"
    return Response(css, media_type="text/css", headers={"cache-control": "max-age=300"})


@router.get("/logo", openapi_extra=PUBLIC)
def logo(request: Request) -> Response:
    theme = web_state(request).settings.theme
    return FileResponse(
        theme.logo or _STATIC / "logo.svg", headers={"cache-control": "max-age=300"}
    )


@router.get("/sante", openapi_extra=PUBLIC)
def health(request: Request) -> Response:
    """Liveness for supervision: no personal data, no ledger record."""
    return PlainTextResponse("ok")
