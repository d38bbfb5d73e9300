"""The REST API (``/api/v1``): every route declares its actor and purpose (``meta.governed``)."""

from fastapi import APIRouter

from territoria.interfaces.web.api import deliveries, dpo, me, persons, steward

__all__ = ["router"]

router = APIRouter(prefix="/api/v1")
router.include_router(persons.router)
router.include_router(me.router)
router.include_router(steward.router)
router.include_router(dpo.router)
router.include_router(deliveries.router)
