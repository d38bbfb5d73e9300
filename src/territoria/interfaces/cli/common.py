"""What every command shares: the workspace option, JSON output, errors without tracebacks."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from territoria.backends import Store, open_store
from territoria.core.config import WorkspaceConfig, load_workspace
from territoria.core.errors import TerritoriaError
from territoria.governance import Governance
from territoria.ingest.catalog import ContractCatalog

console = Console()
err_console = Console(stderr=True)

WorkspaceOption = Annotated[
    Path | None,
    typer.Option(
        "--workspace",
        "-w",
        help="Dossier de l'espace de travail (défaut : $TERRITORIA_WORKSPACE, sinon le dossier courant).",
        show_default=False,
    ),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Sortie JSON (pour les scripts) au lieu d'un tableau.")
]

ActorOption = Annotated[
    str,
    typer.Option(
        "--as",
        envvar="TERRITORIA_ACTOR",
        help="Qui agit : identifiant d'agent (policy/actors.yaml) ou resident:<clé> "
        "(défaut : $TERRITORIA_ACTOR).",
    ),
]
OptionalPurpose = Annotated[
    str | None,
    typer.Option(
        "--purpose",
        "-p",
        help="Finalité du registre sous laquelle on agit (défaut : la première habilitation "
        "de l'acteur qui ouvre cette vue).",
    ),
]

F = TypeVar("F", bound=Callable[..., Any])


def fail(error: TerritoriaError, *, as_json: bool = False, exit_code: int = 2) -> typer.Exit:
    """Print an error a person can act on (never a traceback) and give the exit to raise."""
    if as_json:
        print(json.dumps({"error": error.as_dict()}, ensure_ascii=False))
    else:
        err_console.print(f"[bold red]Erreur :[/] {error}", highlight=False)
    return typer.Exit(exit_code)


@contextmanager
def handled(as_json: bool = False) -> Iterator[None]:
    """Turn Territoria errors into a clear message and a non-zero exit."""
    try:
        yield
    except TerritoriaError as exc:
        raise fail(exc, as_json=as_json) from None
    except KeyboardInterrupt:
        err_console.print("[yellow]Interrompu.[/] Rien n'a été écrit à moitié.")
        raise typer.Exit(130) from None
    except (typer.Exit, typer.BadParameter):
        raise
    except OSError as exc:
        error = TerritoriaError(
            f"accès impossible : {exc.strerror or exc}",
            code="os_error",
            file=exc.filename,
            hint="vérifiez le chemin, les droits et l'espace disque",
        )
        raise fail(error, as_json=as_json) from None
    except Exception as exc:
        if os.environ.get("TERRITORIA_DEBUG"):
            raise
        error = TerritoriaError(
            f"erreur inattendue ({type(exc).__name__}) : {exc}",
            code="internal_error",
            hint="relancez avec TERRITORIA_DEBUG=1 pour le détail technique, et signalez-la "
            "avec la commande lancée",
        )
        raise fail(error, as_json=as_json, exit_code=3) from None


@contextmanager
def workspace_store(workspace: Path | None) -> Iterator[tuple[WorkspaceConfig, Store]]:
    config = load_workspace(workspace)
    store = open_store(config)
    try:
        yield config, store
    finally:
        store.close()


@contextmanager
def governed(workspace: Path | None) -> Iterator[tuple[WorkspaceConfig, Store, Governance]]:
    """The workspace's store and its governance (the one way to personal data)."""
    with workspace_store(workspace) as (config, store):
        yield config, store, Governance.open(config, store)


def catalog_for(config: WorkspaceConfig) -> ContractCatalog:
    return ContractCatalog.load(*config.contract_paths)


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, ensure_ascii=False, indent=2, default=str)
    sys.stdout.write("\n")
