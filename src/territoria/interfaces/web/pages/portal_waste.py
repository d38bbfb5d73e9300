"""The resident's waste account: my bins, my lifts and weights, my bill's lines."""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
