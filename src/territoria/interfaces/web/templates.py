"""Jinja2 templates and ``render``: every page gets the theme, the principal and a CSRF token."""

from __future__ import annotations

import re
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


_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_ISO_TIME = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})")


def _shown(value: Any) -> str:
    """A record's value as a French reader expects it: dates dd/mm/yyyy, Oui/Non, « — »."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "Oui" if value else "Non"
    text = str(value)
    if match := _ISO_DATE.match(text):
        return f"{match[3]}/{match[2]}/{match[1]}"
    if match := _ISO_TIME.match(text):
        return f"{match[3]}/{match[2]}/{match[1]} {match[4]}:{match[5]}"
    return text


def make_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
    templates.env.auto_reload = False  # no stat of the template file on every page
    templates.env.filters["number"] = _number
    templates.env.filters["shown"] = _shown
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
    views: set[str] = set()
    purposes: set[str] = set()
    if state and principal and principal.get("kind") == "agent":
        for role in state.gov.policy.roles_of(str(principal.get("actor"))):
            for grant in role.grants:
                views.update(grant.views)
                if "records" in grant.views:
                    purposes.add(grant.purpose)
    full = {
        "theme": state.settings.theme if state else None,
        "principal": principal,
        "agent_views": views,
        "agent_record_purposes": purposes,
        "csrf_token": csrf_token(request) if "session" in request.scope else "",
        "path": request.url.path,
        **(context or {}),
    }
    return templates.TemplateResponse(request, template, full, status_code=status_code)
