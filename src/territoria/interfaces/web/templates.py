"""Jinja2 templates and ``render``: every page gets the theme, the principal and a CSRF token."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.templating import Jinja2Templates
from starlette.requests import Request
from starlette.responses import Response

from territoria.interfaces.web.security import csrf_token

__all__ = ["TEMPLATES_DIR", "make_templates", "render"]

TEMPLATES_DIR = Path(__file__).parent / "templates"


def _number(value: Any) -> str:
    """French thousands separator (narrow no-break space)."""
    if isinstance(value, int):
        return f"{value:,}".replace(",", "\u202f")
    return str(value)


def make_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
    templates.env.filters["number"] = _number
    templates.env.globals["static_version"] = "1"
    return templates


def render(
    request: Request, template: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> Response:
    state = getattr(request.app.state, "web", None)
    templates: Jinja2Templates = state.templates if state else make_templates()
    principal = None
    if "session" in request.scope:
        data = request.session.get("principal")
        principal = data if isinstance(data, dict) else None
    full = {
        "theme": state.settings.theme if state else None,
        "principal": principal,
        "csrf_token": csrf_token(request) if "session" in request.scope else "",
        "path": request.url.path,
        **(context or {}),
    }
    return templates.TemplateResponse(request, template, full, status_code=status_code)
