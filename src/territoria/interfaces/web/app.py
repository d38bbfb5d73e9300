"""``create_app(workspace)``: the REST API, the agents' console and the residents' portal.

One process holds one store and one ``Governance``; request handlers are plain functions run
in FastAPI's thread pool and take the state's lock around every call into the governance
(the store's connections are shared). Middleware order, outermost first: security headers and
rate limiting, then the signed session cookie.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

from territoria import __version__
from territoria.backends import open_store
from territoria.core.config import load_workspace
from territoria.governance import Governance
from territoria.interfaces.web import api, oidc
from territoria.interfaces.web.errors import install_error_handlers
from territoria.interfaces.web.pages import (
    console,
    console_admin,
    console_tariffs,
    console_waste,
    console_waste_simulation,
    portal,
    portal_waste,
    public,
)
from territoria.interfaces.web.security import RateLimiter, SecurityMiddleware
from territoria.interfaces.web.settings import WebSettings, load_web_settings
from territoria.interfaces.web.state import WebState, secrets_folder
from territoria.interfaces.web.templates import make_templates

__all__ = ["BASE_URL_ENV", "create_app", "create_app_from_environment"]

BASE_URL_ENV = "TERRITORIA_BASE_URL"

STATIC_DIR = Path(__file__).parent / "static"
SESSION_COOKIE = "territoria_session"

_DESCRIPTION = """\
API de Territoria : chaque route déclare qui peut l'appeler (agent, résident, opérateur
délégué) et sous quelle finalité du registre ; chaque lecture de données personnelles passe
par la lecture gouvernée et laisse une trace dans le journal d'audit.

Authentification : session (après connexion OpenID Connect, navigateur ; les écritures
demandent l'en-tête `X-CSRF-Token`) ou clé d'API (`Authorization: Bearer tka_…` ou
`X-API-Key`), créée par `territoria api-keys create`.

Erreurs : JSON `{"code", "message", "message_en", "details"}` ; le code est stable.
"""


def _session_secret(folder: Path) -> str:
    path = folder / "session.key"
    if not path.is_file():
        path.write_text(secrets.token_urlsafe(48), encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()


def create_app(workspace: Path | str, settings: WebSettings | None = None) -> FastAPI:
    """The whole web application over one workspace (see the module docstring)."""
    config = load_workspace(workspace)
    settings = settings or load_web_settings(config)
    store = open_store(config)
    try:
        gov = Governance.open(config, store)
    except BaseException:
        store.close()
        raise
    state = WebState(
        config=config,
        store=store,
        gov=gov,
        settings=settings,
        templates=make_templates(),
        secrets_dir=secrets_folder(config.root),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        with state.lock:
            store.close()

    app = FastAPI(
        title="Territoria",
        version=__version__,
        description=_DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/openapi.json",
        lifespan=lifespan,
    )
    app.state.web = state
    install_error_handlers(app)
    app.add_middleware(
        SessionMiddleware,
        secret_key=_session_secret(state.secrets_dir),
        session_cookie=SESSION_COOKIE,
        max_age=settings.session_hours * 3600,
        same_site="lax",
        https_only=settings.secure_cookies,
    )
    form_targets = " ".join(
        sorted({a.provider for a in settings.oidc.values() if a.provider != "local"})
    )
    app.add_middleware(
        SecurityMiddleware,
        limiter=RateLimiter(settings.rate_limit_per_minute),
        https=settings.secure_cookies,
        form_targets=form_targets,
    )
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(public.router)
    app.include_router(api.router)
    app.include_router(console.router)
    app.include_router(console_admin.router)
    app.include_router(console_waste.router)
    app.include_router(console_waste_simulation.router)
    app.include_router(console_tariffs.router)
    app.include_router(portal.router)
    app.include_router(portal_waste.router)
    oidc.install(app, state)
    return app


def create_app_from_environment() -> FastAPI:
    """The app of ``$TERRITORIA_WORKSPACE`` (uvicorn's factory for several worker processes)."""
    config = load_workspace(None)
    base_url = os.environ.get(BASE_URL_ENV, "").strip()
    overrides = {"base_url": base_url.rstrip("/")} if base_url else {}
    return create_app(config.root, load_web_settings(config, **overrides))
