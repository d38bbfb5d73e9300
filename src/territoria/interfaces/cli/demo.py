"""``territoria demo``: the main job end to end on the sandbox, with the embedded default."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from territoria.backends import open_store
from territoria.core.config import init_workspace
from territoria.ingest import sandbox_items
from territoria.interfaces.cli.common import catalog_for, console, handled
from territoria.interfaces.cli.identity import link
from territoria.interfaces.cli.ingest import print_outcomes, run_loads
from territoria.interfaces.cli.workspace import report
from territoria.sandbox import generate


def demo(
    directory: Annotated[
        Path, typer.Argument(help="Dossier de l'espace de travail de démonstration.")
    ] = Path("demo"),
    population: Annotated[
        int, typer.Option(help="Nombre d'habitants du territoire fictif.")
    ] = 10_000,
    seed: Annotated[int, typer.Option(help="Graine : même graine, mêmes fichiers.")] = 42,
) -> None:
    """Tout en une commande : espace de travail, territoire fictif, chargement, bilan.

    Rejouable : une seconde exécution retrouve le même territoire et ne recharge rien.
    """
    with handled():
        config = init_workspace(directory, name="Métropole fictive (bac à sable)")
        sandbox_dir = directory / "sandbox"
        if not (sandbox_dir / "manifest.json").exists():
            console.print(f"[bold]1/4[/] Génération du territoire fictif ({population} habitants)…")
            generate(population=population, seed=seed, out=sandbox_dir, progress=True)
        else:
            console.print(f"[bold]1/4[/] Territoire fictif déjà généré dans {sandbox_dir}.")
        console.print("[bold]2/4[/] Chargement des sources (contrôle des contrats)…")
        store = open_store(config)
        try:
            outcomes = run_loads(
                store, catalog_for(config), sandbox_items(sandbox_dir), quiet=False
            )
        finally:
            store.close()
        print_outcomes(outcomes)
        console.print("[bold]3/4[/] Bilan des chargements")
    report(workspace=directory, as_json=False)
    console.print("[bold]4/4[/] Index des résidents (liaison des personnes et des ménages)…")
    link(workspace=directory)
    console.print(
        "\nPour aller plus loin :\n"
        f"  territoria loads -w {directory}                  # registre des chargements\n"
        f"  territoria quarantine waste_lifts -w {directory}  # lignes rejetées et raisons\n"
        f"  territoria contracts show ccas_aid -w {directory} # un contrat de source\n"
        f"  territoria identity review -w {directory}        # paires incertaines à trancher\n"
        f"  territoria identity evaluate --truth {sandbox_dir / 'truth'} -w {directory}\n"
        f"  (vérité terrain du territoire fictif : {sandbox_dir / 'truth'})",
        highlight=False,
    )
    if any(not o.ok for o in outcomes):
        raise typer.Exit(1)
