"""The REST API (``/api/v1``): every route declares its actor and purpose (``meta.governed``)."""

from fastapi import APIRouter

from territoria.interfaces.web.api import persons

__all__ = ["router"]

router = APIRouter(prefix="/api/v1")
router.include_router(persons.router)
