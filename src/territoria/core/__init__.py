"""Core types, errors and configuration shared by every layer."""

from territoria.core.config import StoreConfig, WorkspaceConfig, init_workspace, load_workspace
from territoria.core.errors import (
    ContractError,
    InputFileError,
    StoreError,
    TerritoriaError,
    WorkspaceError,
)
from territoria.core.types import (
    FIELD_CATEGORY_LABELS,
    LEGAL_BASIS_LABELS,
    FieldCategory,
    LegalBasis,
    LoadStatus,
)

__all__ = [
    "FIELD_CATEGORY_LABELS",
    "LEGAL_BASIS_LABELS",
    "ContractError",
    "FieldCategory",
    "InputFileError",
    "LegalBasis",
    "LoadStatus",
    "StoreConfig",
    "StoreError",
    "TerritoriaError",
    "WorkspaceConfig",
    "WorkspaceError",
    "init_workspace",
    "load_workspace",
]
