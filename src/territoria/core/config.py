"""Workspace configuration: a folder holding ``territoria.toml`` and the embedded store.

The workspace is chosen by ``--workspace DIR``, else ``TERRITORIA_WORKSPACE``, else the
current folder.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from territoria.core.errors import WorkspaceError

CONFIG_NAME = "territoria.toml"
EMBEDDED = "embedded"

_TEMPLATE = """\
# Espace de travail Territoria.
[workspace]
name = "{name}"

[store]
# "embedded" : magasin embarqué dans ce dossier (aucun serveur à installer).
# Pour PostgreSQL : url = "postgresql://utilisateur@hôte:5432/base" et, au besoin,
# schema = "territoria" (schéma où Territoria range ses tables).
url = "{url}"
schema = "{schema}"

[contracts]
# Dossiers de contrats de source propres à la collectivité (relatifs à ce dossier).
paths = ["contracts"]
"""


@dataclass(frozen=True)
class StoreConfig:
    """Where the data lives: ``embedded`` (a folder) or a ``postgresql://`` URL."""

    url: str = EMBEDDED
    schema: str = "territoria"

    @property
    def kind(self) -> str:
        if self.url == EMBEDDED:
            return "embedded"
        if self.url.startswith(("postgresql://", "postgres://")):
            return "postgresql"
        raise WorkspaceError(
            f"URL de magasin inconnue : {self.url!r}",
            code="store_url_invalid",
            field_name="store.url",
            expected='"embedded" ou une URL "postgresql://..."',
        )


@dataclass(frozen=True)
class WorkspaceConfig:
    """A parsed workspace: its folder, its name, its store and extra contract folders."""

    root: Path
    name: str = "Territoria"
    store: StoreConfig = field(default_factory=StoreConfig)
    contract_paths: tuple[Path, ...] = ()

    @property
    def store_dir(self) -> Path:
        return self.root / "store"


def resolve_workspace_dir(workspace: Path | str | None) -> Path:
    """``--workspace``, else ``TERRITORIA_WORKSPACE``, else the current folder."""
    if workspace is not None:
        return Path(workspace)
    env = os.environ.get("TERRITORIA_WORKSPACE")
    return Path(env) if env else Path.cwd()


def init_workspace(
    root: Path | str,
    *,
    name: str = "Territoria",
    store_url: str = EMBEDDED,
    schema: str = "territoria",
) -> WorkspaceConfig:
    """Create a workspace folder with its ``territoria.toml`` (kept if it already exists)."""
    root = Path(root)
    config_file = root / CONFIG_NAME
    root.mkdir(parents=True, exist_ok=True)
    (root / "contracts").mkdir(exist_ok=True)
    if not config_file.exists():
        config = StoreConfig(url=store_url, schema=schema)
        _ = config.kind  # validate before writing anything
        text = _TEMPLATE.format(name=_escape(name), url=_escape(store_url), schema=_escape(schema))
        tmp = config_file.with_suffix(".toml.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(config_file)
    return load_workspace(root)


def load_workspace(root: Path | str | None = None) -> WorkspaceConfig:
    """Read ``territoria.toml`` of the workspace folder; a clear error if it is missing."""
    root = resolve_workspace_dir(root)
    config_file = root / CONFIG_NAME
    if not config_file.is_file():
        raise WorkspaceError(
            f"aucun espace de travail ici ({config_file} introuvable)",
            code="workspace_missing",
            file=config_file,
            hint=f"créez-le avec « territoria init {root} » ou passez --workspace DOSSIER",
        )
    try:
        data = tomllib.loads(config_file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise WorkspaceError(
            f"territoria.toml illisible : {exc}", code="workspace_invalid", file=config_file
        ) from None
    store = data.get("store", {})
    workspace = data.get("workspace", {})
    paths = data.get("contracts", {}).get("paths", ["contracts"])
    config = WorkspaceConfig(
        root=root,
        name=str(workspace.get("name", "Territoria")),
        store=StoreConfig(
            url=str(store.get("url", EMBEDDED)), schema=str(store.get("schema", "territoria"))
        ),
        contract_paths=tuple(root / p for p in paths),
    )
    _ = config.store.kind
    return config


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')
