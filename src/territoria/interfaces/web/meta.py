"""What each route declares about its governance (read by the route-coverage guard)."""

from __future__ import annotations

from typing import Any, Literal

__all__ = ["ActorKind", "governed", "route_governance"]

ActorKind = Literal["agent", "resident", "operator", "public", "any"]


def governed(
    actor: ActorKind, view: str | None = None, purpose: str | None = None
) -> dict[str, Any]:
    """``openapi_extra`` of a route: who may call it, which view, under which purpose.

    ``purpose`` is a purpose id of the register, ``"from_query"`` (the caller names it: the
    ``purpose`` parameter) or None (no personal data is read).
    """
    return {"x-territoria": {"actor": actor, "view": view, "purpose": purpose}}


def route_governance(openapi_extra: dict[str, Any] | None) -> dict[str, Any] | None:
    return (openapi_extra or {}).get("x-territoria")
