"""The CCAS console pages: the non-take-up worklist, a household's explanation, contacts."""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
