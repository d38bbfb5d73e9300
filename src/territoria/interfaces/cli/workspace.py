"""``territoria init``, ``sources`` and ``report``: the workspace and what it holds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from territoria.core.config import EMBEDDED, init_workspace
from territoria.governance import install_policy
from territoria.interfaces.cli.common import (
    JsonOption,
    WorkspaceOption,
    catalog_for,
    console,
    handled,
    print_json,
    workspace_store,
)
from territoria.raw import source_summaries


def init(
    directory: Annotated[Path, typer.Argument(help="Dossier à créer (ou à compléter).")],
    name: Annotated[
        str, typer.Option(help="Nom de la collectivité, affiché dans l'interface.")
    ] = "Territoria",
    store: Annotated[
        str,
        typer.Option(help='Magasin : "embedded" (défaut, aucun serveur) ou une URL postgresql://…'),
    ] = EMBEDDED,
    schema: Annotated[
        str, typer.Option(help="Schéma PostgreSQL (ignoré en mode embarqué).")
    ] = "territoria",
    as_json: JsonOption = False,
) -> None:
    """Créer un espace de travail : un territoria.toml et le magasin embarqué.

    Exemple : territoria init ./ma-commune --name "Commune de Vaulx-en-Velin"
    """
    from territoria.backends import open_store

    with handled(as_json):
        config = init_workspace(directory, name=name, store_url=store, schema=schema)
        install_policy(config.root)
        open_store(config).close()
    if as_json:
        print_json({"workspace": str(config.root), "store": config.store.kind})
    else:
        console.print(
            f"Espace de travail prêt : [bold]{config.root}[/] (magasin : {config.store.kind})"
        )


def report(workspace: WorkspaceOption = None, as_json: JsonOption = False) -> None:
    """Bilan de l'espace de travail : pour chaque source, chargements, lignes et quarantaine."""
    with handled(as_json), workspace_store(workspace) as (config, store):
        summaries = source_summaries(store, catalog_for(config))
    if as_json:
        print_json({"workspace": config.name, "sources": [s.as_dict() for s in summaries]})
        return
    table = Table(title=f"Bilan — {config.name}", title_justify="left")
    for column in (
        "Source",
        "Service",
        "Chargements",
        "Lignes",
        "Quarantaine",
        "Dernier chargement",
    ):
        table.add_column(
            column,
            justify="right" if column in ("Chargements", "Lignes", "Quarantaine") else "left",
        )
    for s in summaries:
        table.add_row(
            s.source,
            s.owner_service,
            str(s.loads),
            f"{s.rows_loaded:,}".replace(",", " "),
            f"{s.rows_quarantined:,}".replace(",", " "),
            (s.last_load or "—")[:19].replace("T", " "),
        )
    console.print(table)
    console.print(
        "Les lignes en quarantaine sont consultables avec « territoria quarantine SOURCE »."
    )
