"""Errors as the API and the pages show them: a stable code, French and English, no traceback.

API responses (``/api/…``) are JSON ``{"code", "message", "message_en", "details"}``; pages
render ``public/error.html`` in French with what to do next.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from territoria.core.errors import TerritoriaError

__all__ = ["ApiError", "english", "error_responses", "install_error_handlers", "status_for"]

log = logging.getLogger("territoria.web")


class ApiError(BaseModel):
    """Every API error: a stable code, a French and an English message."""

    code: str = Field(description="Code stable (pour les programmes)")
    message: str = Field(description="Message en français")
    message_en: str = Field(description="The message in English")
    details: dict[str, Any] = Field(default_factory=dict)


_ENGLISH = {
    "access_denied": "refused by the data-protection policy (deny by default)",
    "authentication_required": "authentication required (session or API key)",
    "api_key_invalid": "unknown, revoked or malformed API key",
    "wrong_actor_kind": "this route is not open to this kind of caller",
    "csrf_failed": "missing or invalid CSRF token: reload the page and retry",
    "not_found": "no such resource",
    "person_not_found": "no such person within the purpose's scope",
    "purpose_unknown": "unknown purpose (see the register of processing activities)",
    "purpose_not_optional": "this purpose is not consent-based",
    "purpose_not_proactive": "objection does not apply to this purpose here",
    "validation_error": "malformed request: see the details",
    "bad_request": "malformed request: unreadable body (form or attached file)",
    "method_not_allowed": "method not allowed on this route",
    "rate_limited": "too many requests: wait a few seconds",
    "internal_error": "unexpected error: it has been logged",
    "view_not_readable": "this view is not served by the record reader",
    "min_cell_too_low": "minimum cell size below the statistical-secrecy floor (11)",
    "pair_unknown": "no such pair in the review queue",
    "source_unknown": "unknown source",
    "contract_violation": "the delivered file does not match its contract",
    "delivery_too_large": "file too large for an API delivery",
    "actor_unknown": "actor unknown to the policy",
    "api_key_unknown": "no active API key with this id",
    "action_invalid": "unknown form action",
    "receipt_not_found": "no such consent or objection record among yours",
    "record_not_yours": "this record is not yours",
    "field_unknown": "unknown field for this source",
    "pair_invalid": "a record cannot be compared with itself",
    "mention_unknown": "record unknown to the resident index",
    "index_empty": "the resident index is empty: run the linkage first",
    "decision_invalid": "unknown pair decision",
    "audit_filter_invalid": "invalid audit search filter",
}
_STATUS = {
    "authentication_required": 401,
    "api_key_invalid": 401,
    "access_denied": 403,
    "wrong_actor_kind": 403,
    "csrf_failed": 403,
    "rate_limited": 429,
    "delivery_too_large": 413,
    "internal_error": 500,
}


_DOCUMENTED = {
    400: "Demande refusée (règle métier, voir le code)",
    401: "Authentification requise (session ou clé d'API)",
    403: "Refusé par la politique (règle dans details)",
    404: "Introuvable",
    422: "Requête mal formée",
}


def error_responses(**by_status: str) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route: every error status with the ``ApiError`` body, the
    usual descriptions replaced by ``s403="…"`` and the like."""
    texts = {**_DOCUMENTED, **{int(k[1:]): v for k, v in by_status.items()}}
    return {status: {"model": ApiError, "description": text} for status, text in texts.items()}


def english(code: str) -> str:
    return _ENGLISH.get(code, f"request refused (code {code}); see the French message")


def status_for(code: str) -> int:
    if code in _STATUS:
        return _STATUS[code]
    if code.endswith(("_not_found", "_unknown", "_missing")) or code == "not_found":
        return 404
    return 400


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _json(code: str, message: str, status: int, details: dict[str, Any] | None = None) -> Response:
    body = ApiError(code=code, message=message, message_en=english(code), details=details or {})
    return JSONResponse(body.model_dump(), status_code=status)


def _page(request: Request, status: int, title: str, message: str, code: str) -> Response:
    from territoria.interfaces.web.templates import render

    return render(
        request,
        "public/error.html",
        {"title": title, "message": message, "code": code},
        status_code=status,
    )


def _details(exc: TerritoriaError) -> dict[str, Any]:
    data = exc.as_dict()
    return {k: v for k, v in data.items() if k not in ("code", "message") and v is not None}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(TerritoriaError)
    async def territoria_error(request: Request, exc: TerritoriaError) -> Response:
        status = status_for(exc.code)
        if _is_api(request):
            return _json(exc.code, exc.message, status, _details(exc))
        if exc.code == "authentication_required":  # a page: log in first, then come back
            audience = "resident" if request.url.path.startswith("/portail") else "agent"
            target = quote(
                request.url.path + (f"?{request.url.query}" if request.url.query else "")
            )
            return RedirectResponse(f"/connexion/{audience}?next={target}", status_code=303)
        return _page(request, status, "Demande refusée", str(exc.message), exc.code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        problems = [
            {"field": ".".join(str(p) for p in e["loc"]), "problem": e["msg"]}
            for e in exc.errors()[:20]
        ]
        if _is_api(request):
            return _json(
                "validation_error", "requête mal formée : voir le détail", 422, {"errors": problems}
            )
        text = "; ".join(f"{p['field']} : {p['problem']}" for p in problems)
        return _page(request, 422, "Saisie invalide", text, "validation_error")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {
            400: "bad_request",
            401: "authentication_required",
            404: "not_found",
            405: "method_not_allowed",
        }.get(exc.status_code, "http_error")
        message = {
            400: "requête mal formée : corps illisible (formulaire ou fichier joint)",
            401: "connexion requise",
            404: "cette page n'existe pas",
            405: "méthode non permise sur cette adresse",
        }.get(exc.status_code, "requête refusée")
        if _is_api(request):
            response = _json(code, message, exc.status_code)
        else:
            response = _page(request, exc.status_code, "Page introuvable", message, code)
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("erreur inattendue sur %s %s", request.method, request.url.path)
        message = "erreur inattendue : elle est consignée, l'équipe technique est prévenue"
        if _is_api(request):
            return _json("internal_error", message, 500)
        return _page(request, 500, "Erreur inattendue", message, "internal_error")
