"""``territoria ingest``, ``loads`` and ``quarantine``: deliveries, their ledger, their rejects."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from territoria.backends import Store
from territoria.core.types import LOAD_STATUS_LABELS
from territoria.governance import Governance
from territoria.governance.steward import quarantine_export, quarantine_rows
from territoria.ingest import (
    ContractCatalog,
    LoadOutcome,
    ingest_files,
    sandbox_items,
)
from territoria.interfaces.cli.common import (
    ActorOption,
    JsonOption,
    OptionalPurpose,
    WorkspaceOption,
    catalog_for,
    console,
    err_console,
    governed,
    handled,
    print_json,
    workspace_store,
)

_STATUS_STYLE = {
    "loaded": "green",
    "skipped_duplicate": "yellow",
    "failed": "bold red",
    "superseded": "dim",
}


def ingest(
    source: Annotated[
        str | None,
        typer.Argument(help="Identifiant de la source (voir « territoria contracts list »)."),
    ] = None,
    files: Annotated[
        list[Path] | None, typer.Argument(help="Fichiers livrés pour cette source.")
    ] = None,
    sandbox: Annotated[
        Path | None,
        typer.Option(
            "--sandbox",
            help="Charger toutes les sources d'un bac à sable généré (son manifest.json).",
        ),
    ] = None,
    replace_loaded: Annotated[
        bool,
        typer.Option(
            "--replace",
            help="Recharger un fichier déjà chargé (par exemple après correction du contrat) : "
            "l'ancien chargement est marqué « remplacé » et n'est plus lu.",
        ),
    ] = False,
    actor: Annotated[
        str,
        typer.Option(
            "--as",
            envvar="TERRITORIA_ACTOR",
            help="Qui livre ou charge (agent, délégataire) ; inscrit au journal d'audit.",
        ),
    ] = "system",
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Charger des fichiers livrés : contrôle du contrat, quarantaine des lignes rejetées, registre des chargements.

    Chaque fichier est un chargement, tout ou rien. Recharger le même fichier ne change rien,
    sauf avec --replace (après correction du contrat, par exemple).

    Exemples :

      territoria ingest water_subscribers abonnes_2025.csv

      territoria ingest --sandbox ./bac-a-sable
    """
    with handled(as_json), workspace_store(workspace) as (config, store):
        catalog = catalog_for(config)
        if sandbox is not None:
            items = sandbox_items(sandbox)
        elif source and files:
            items = [(source, f) for f in files]
        else:
            raise typer.BadParameter("donnez une SOURCE et des FICHIERS, ou --sandbox DOSSIER")
        outcomes = run_loads(store, catalog, items, quiet=as_json, replace_loaded=replace_loaded)
        Governance.open(config, store).record_loads(actor, [o.record for o in outcomes])
    if as_json:
        print_json([o.as_dict() for o in outcomes])
    else:
        print_outcomes(outcomes)
    if any(not o.ok for o in outcomes):
        raise typer.Exit(1)


def run_loads(
    store: Store,
    catalog: ContractCatalog,
    items: list[tuple[str, Path]],
    *,
    quiet: bool,
    replace_loaded: bool = False,
) -> list[LoadOutcome]:
    """Load the items with a progress bar on stderr (none with ``quiet``)."""
    columns = (
        TextColumn("[bold]Chargement[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err_console, disable=quiet, transient=True) as progress:
        task = progress.add_task("", total=len(items))

        def done(outcome: LoadOutcome) -> None:
            progress.update(
                task, advance=1, description=f"{outcome.record.source} · {outcome.record.file_name}"
            )

        return ingest_files(store, catalog, items, on_done=done, replace_loaded=replace_loaded)


def print_outcomes(outcomes: list[LoadOutcome]) -> None:
    table = Table(title="Chargements", title_justify="left")
    for column in ("Source", "Fichier", "Statut", "Lues", "Chargées", "Quarantaine"):
        table.add_column(
            column, justify="right" if column in ("Lues", "Chargées", "Quarantaine") else "left"
        )
    for o in outcomes:
        r = o.record
        style = _STATUS_STYLE[r.status]
        table.add_row(
            r.source,
            r.file_name,
            f"[{style}]{LOAD_STATUS_LABELS[r.status]}[/]",
            f"{r.rows_read:,}".replace(",", " "),
            f"{r.rows_loaded:,}".replace(",", " "),
            f"{r.rows_quarantined:,}".replace(",", " "),
        )
    console.print(table)
    for o in outcomes:
        if o.error is not None:
            err_console.print(
                f"[bold red]✗ {o.record.source} · {o.record.file_name} :[/] {o.error}",
                highlight=False,
            )
        elif o.record.rows_quarantined:
            console.print(
                f"[yellow]![/] {o.record.source} : {o.record.rows_quarantined} ligne(s) en quarantaine "
                f"— voir « territoria quarantine {o.record.source} »"
            )


def _where(row: dict[str, Any]) -> str:
    """Where a rejected row was: its line, else its record number (JSON arrays, Parquet)."""
    if row["line"] is not None:
        return str(row["line"])
    return f"enreg. {row['record']}" if row["record"] is not None else "—"


def loads(
    source: Annotated[str | None, typer.Argument(help="Ne montrer que cette source.")] = None,
    limit: Annotated[int, typer.Option(help="Nombre maximal de chargements listés.")] = 100,
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Lister le registre des chargements (le plus récent d'abord)."""
    with handled(as_json), workspace_store(workspace) as (_, store):
        records = store.loads(source, limit)
    if as_json:
        print_json([r.as_dict() for r in records])
        return
    table = Table(title="Registre des chargements", title_justify="left")
    for column in (
        "Chargement",
        "Source",
        "Fichier",
        "Statut",
        "Lues",
        "Chargées",
        "Quarantaine",
        "Fin",
        "Empreinte",
    ):
        table.add_column(column)
    for r in records:
        style = _STATUS_STYLE[r.status]
        table.add_row(
            r.load_id,
            r.source,
            r.file_name,
            f"[{style}]{LOAD_STATUS_LABELS[r.status]}[/]",
            str(r.rows_read),
            str(r.rows_loaded),
            str(r.rows_quarantined),
            r.finished_at[:19].replace("T", " "),
            r.content_hash[:12],
        )
    console.print(table if records else "Aucun chargement pour l'instant.")
    for r in records:
        if r.status == "failed":
            err_console.print(f"[red]✗ {r.load_id}[/] : {r.message}", highlight=False)


def quarantine(
    source: Annotated[str, typer.Argument(help="Source dont on veut voir les lignes rejetées.")],
    load_id: Annotated[str | None, typer.Option("--load", help="Un seul chargement.")] = None,
    limit: Annotated[int, typer.Option(help="Nombre maximal de lignes affichées.")] = 50,
    offset: Annotated[int, typer.Option(help="Sauter les N premières lignes.")] = 0,
    export: Annotated[
        Path | None,
        typer.Option(
            "--csv",
            help="Écrire toutes les lignes rejetées dans ce fichier CSV (pour les renvoyer "
            "au service ou au délégataire qui les a livrées).",
        ),
    ] = None,
    actor: ActorOption = "",
    purpose: OptionalPurpose = None,
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Montrer les lignes mises en quarantaine d'une source, avec le champ et la raison du rejet.

    Les lignes rejetées contiennent des données personnelles : seul le service qui détient la
    source les voit (--as AGENT), et la consultation est journalisée.

    Exemple : territoria quarantine water_subscribers --as ines.eau --csv rejets.csv
    """
    with handled(as_json), governed(workspace) as (_config, _store, gov):
        gov.catalog.get(source)
        if export is not None:
            count = quarantine_export(gov, actor, purpose, source, export, load_id)
            if as_json:
                print_json({"source": source, "exported": count, "file": str(export)})
            else:
                console.print(f"{count} ligne(s) rejetée(s) écrite(s) dans {export}")
            return
        total, table = quarantine_rows(gov, actor, purpose, source, load_id, limit, offset)
        rows = table.to_pylist()
    if as_json:
        for row in rows:
            row["errors"] = json.loads(row["errors"]) if row["errors"] else []
            row["raw"] = json.loads(row["raw"]) if row["raw"] else {}
        print_json({"source": source, "total": total, "rows": rows})
        return
    table = Table(title=f"Quarantaine de {source} ({total} ligne(s))", title_justify="left")
    for title in ("Ligne", "Champ", "Raison", "Valeur brute"):
        table.add_column(title, overflow="fold")
    for row in rows:
        raw = json.loads(row["raw"]) if row["raw"] else {}
        errors = json.loads(row["errors"]) if row["errors"] else []
        column = errors[0].get("column") if errors else None
        value = raw.get(column) if column in raw else raw.get("_line", "")
        table.add_row(
            _where(row),
            str(row["field"] or "—"),
            str(row["reason"]),
            repr(value) if value is not None else "(vide)",
        )
    console.print(table if rows else f"Aucune ligne en quarantaine pour {source}.")
