"""The waste service's console pages: billing runs, a payer's bill, anomalies, disputes."""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
