"""``territoria contracts``: the sources a workspace knows, and checking a new contract."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from territoria.core.contract import SourceContract, load_contract
from territoria.core.errors import TerritoriaError
from territoria.core.types import FIELD_CATEGORY_LABELS, LEGAL_BASIS_LABELS
from territoria.interfaces.cli.common import (
    JsonOption,
    WorkspaceOption,
    catalog_for,
    console,
    err_console,
    handled,
    print_json,
    workspace_store,
)

app = typer.Typer(
    help="Contrats de source : ce que chaque service livre, à quel titre, et comment c'est contrôlé.",
    no_args_is_help=True,
)


@app.command("list")
def list_contracts(workspace: WorkspaceOption = None, as_json: JsonOption = False) -> None:
    """Lister les sources déclarées : service, délégataire, base légale, champs, conservation."""
    with handled(as_json), workspace_store(workspace) as (config, _):
        catalog = catalog_for(config)
    if as_json:
        print_json([c.model_dump(by_alias=True, exclude_none=True) for c in catalog])
        return
    table = Table(title="Sources déclarées", title_justify="left")
    for column in ("Source", "Service", "Délégataire", "Base légale", "Champs", "Conservation"):
        table.add_column(column)
    for c in catalog:
        counts = " · ".join(
            f"{len(c.fields_of(cat))} {cat}"
            for cat in ("identifying", "service", "sensitive", "special_category")
            if c.fields_of(cat)
        )
        table.add_row(
            c.id,
            c.owner_service,
            c.operator.name if c.operator else "régie",
            c.legal_basis,
            counts,
            c.retention.duration,
        )
    console.print(table)


@app.command("show")
def show(
    source: Annotated[str, typer.Argument(help="Identifiant de la source.")],
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Afficher un contrat : chaque champ avec son type, sa catégorie et ses contraintes."""
    with handled(as_json), workspace_store(workspace) as (config, _):
        catalog = catalog_for(config)
        contract = catalog.get(source)
    if as_json:
        print_json(contract.model_dump(by_alias=True, exclude_none=True))
        return
    _print_contract(contract, catalog.origins[source])


def _print_contract(c: SourceContract, origin: Path) -> None:
    console.print(f"[bold]{c.title}[/] ({c.id}) — {origin}")
    console.print(
        f"Service : {c.owner_service} · Délégataire : {c.operator.name if c.operator else 'régie'}"
    )
    console.print(f"Base légale : {LEGAL_BASIS_LABELS[c.legal_basis]} — {c.legal_reference}")
    console.print(
        f"Conservation : {c.retention.duration} ({c.retention.final_fate}) · "
        f"Livraison : {c.delivery.frequency} · Dérive : colonnes nouvelles → "
        f"{c.schema_drift.new_columns}"
    )
    table = Table(title_justify="left")
    for column in ("Champ", "Type", "Catégorie", "Obligatoire", "Contraintes", "En-têtes acceptés"):
        table.add_column(column)
    for f in c.fields:
        rules = f.constraints.model_dump(exclude_none=True, exclude={"required"}, by_alias=True)
        fmt = f" ({' | '.join(f.formats)})" if f.formats else ""
        table.add_row(
            f.name,
            f.type + fmt,
            FIELD_CATEGORY_LABELS[f.category],
            "oui" if f.constraints.required else "",
            ", ".join(f"{k}={v}" for k, v in rules.items()),
            ", ".join(f.header_names()),
        )
    console.print(table)


@app.command("check")
def check(
    files: Annotated[list[Path], typer.Argument(help="Fichiers de contrat YAML à vérifier.")],
    as_json: JsonOption = False,
) -> None:
    """Vérifier des contrats avant de les déposer dans contracts/ (sans rien charger).

    Exemple : territoria contracts check contracts/piscine_abonnes.yaml
    """
    results: list[dict[str, object]] = []
    for path in files:
        try:
            contract = load_contract(path)
            results.append({"file": str(path), "ok": True, "source": contract.id})
        except TerritoriaError as exc:
            results.append({"file": str(path), "ok": False, "error": exc.as_dict()})
            if not as_json:
                err_console.print(f"[bold red]✗[/] {exc}", highlight=False)
            continue
        if not as_json:
            console.print(f"[green]✓[/] {path} : contrat « {contract.id} » valide")
    if as_json:
        print_json(results)
    if not all(r["ok"] for r in results):
        raise typer.Exit(1)
