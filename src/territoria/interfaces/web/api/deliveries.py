"""Deliveries by delegated operators (DSP): a file for one of their sources, loaded under its
contract, all or nothing, with rejected rows quarantined and the load in the audit ledger.

An operator authenticates with its API key and may deliver only the sources the policy gives
it (``operators:`` in actors.yaml); any other source is refused and the refusal recorded.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, UploadFile
from pydantic import BaseModel, ConfigDict

from territoria.core.errors import GovernanceError, TerritoriaError
from territoria.governance import AuditEntry
from territoria.ingest import ingest_file
from territoria.interfaces.web.errors import error_responses
from territoria.interfaces.web.meta import governed
from territoria.interfaces.web.principals import OperatorPrincipal, Principal, web_state
from territoria.interfaces.web.state import WebState

__all__ = ["router"]

router = APIRouter(tags=["livraisons"])
MAX_BYTES = 512 * 1024 * 1024
SOURCE = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{0,63}$", description="Source livrée")]
ERRORS = error_responses(
    s400="Corps de requête illisible",
    s401="Clé d'API requise",
    s403="Source non confiée à cet opérateur",
    s413="Fichier trop volumineux",
)


class DeliveryOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    load_id: str
    source: str
    file_name: str
    status: str
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    content_hash: str
    message: str
    error: dict[str, Any] | None = None


def _delivery(record: Any, error: TerritoriaError | None = None) -> DeliveryOut:
    return DeliveryOut(
        load_id=record.load_id,
        source=record.source,
        file_name=record.file_name,
        status=record.status,
        rows_read=record.rows_read,
        rows_loaded=record.rows_loaded,
        rows_quarantined=record.rows_quarantined,
        content_hash=record.content_hash,
        message=record.message,
        error=error.as_dict() if error else None,
    )


def _owned(state: WebState, principal: Principal, source: str) -> None:
    operator = state.gov.policy.operators.get(principal.actor)
    if operator is not None and source in operator.sources and source in state.gov.contracts:
        return
    state.gov.ledger.append(
        AuditEntry(
            kind="write",
            actor=principal.actor,
            service=operator.service if operator else "",
            role="",
            purpose="",
            legal_basis="",
            view="ingest.delivery",
            decision="deny",
            rule="deny:source_not_delegated",
            reason=f"livraison refusée : la source « {source} » n'est pas confiée à cet opérateur",
        )
    )
    raise GovernanceError(
        f"la source « {source} » n'est pas confiée à cet opérateur (refus par défaut)",
        code="access_denied",
        details={"rule": "deny:source_not_delegated"},
    )


def _safe_name(name: str | None) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]", "_", FilePath(name or "livraison").name)[:120]
    return base.lstrip(".") or "livraison"


def _receive(file: UploadFile, path: FilePath) -> None:
    """Copy the upload to the staging area, refusing it past ``MAX_BYTES``."""
    size = 0
    with path.open("wb") as out:
        while chunk := file.file.read(1 << 20):
            size += len(chunk)
            if size > MAX_BYTES:
                raise TerritoriaError(
                    "fichier trop volumineux pour une livraison par l'API",
                    code="delivery_too_large",
                    expected=f"au plus {MAX_BYTES // (1024 * 1024)} Mo (au-delà : dépôt SFTP)",
                )
            out.write(chunk)


@router.post(
    "/deliveries/{source}",
    response_model=DeliveryOut,
    responses=ERRORS,
    openapi_extra=governed("operator", None, None),
    summary="Livrer un fichier d'une source déléguée (chargement tout ou rien)",
)
def deliver(
    request: Request,
    principal: OperatorPrincipal,
    source: SOURCE,
    file: UploadFile,
    replace: Annotated[bool, Query(description="Recharger un contenu déjà chargé")] = False,
) -> DeliveryOut:
    state = web_state(request)
    with state.lock:
        _owned(state, principal, source)
    with tempfile.TemporaryDirectory(dir=state.store.staging_dir()) as tmp:
        path = FilePath(tmp) / _safe_name(file.filename)
        _receive(file, path)
        with state.lock:
            outcome = ingest_file(
                state.store, state.gov.contracts[source], path, replace_loaded=replace
            )
            state.gov.record_loads(principal.actor, [outcome.record])
    return _delivery(outcome.record, outcome.error)


@router.get(
    "/deliveries",
    response_model=list[DeliveryOut],
    responses=ERRORS,
    openapi_extra=governed("operator", None, None),
    summary="Les chargements des sources de l'opérateur (aucune donnée personnelle)",
)
def deliveries(
    request: Request,
    principal: OperatorPrincipal,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[DeliveryOut]:
    state = web_state(request)
    operator = state.gov.policy.operators.get(principal.actor)
    sources = operator.sources if operator else []
    with state.lock:
        records = [r for s in sources for r in state.store.loads(s, limit=limit)]
    records.sort(key=lambda r: r.started_at, reverse=True)
    return [_delivery(r) for r in records[:limit]]
