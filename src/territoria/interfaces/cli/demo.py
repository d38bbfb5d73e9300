"""``territoria demo``: the main job end to end on the sandbox, with the embedded default."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from territoria.apps.waste import parse_period
from territoria.apps.waste.money import euros
from territoria.backends import open_store
from territoria.core.config import init_workspace, load_workspace
from territoria.core.errors import TerritoriaError
from territoria.governance import Governance, ReadRequest, check_policy, install_policy
from territoria.ingest import sandbox_items
from territoria.interfaces.cli.common import catalog_for, console, handled
from territoria.interfaces.cli.identity import link
from territoria.interfaces.cli.ingest import print_outcomes, run_loads
from territoria.interfaces.cli.serve import serve
from territoria.interfaces.cli.workspace import report
from territoria.interfaces.runs.tariffs import run_screening
from territoria.interfaces.runs.waste import bill_run, governed_inputs, load_grid_option
from territoria.interfaces.runs.waste_book import GovernedDisputeBook
from territoria.sandbox import generate


def demo(
    directory: Annotated[
        Path, typer.Argument(help="Dossier de l'espace de travail de démonstration.")
    ] = Path("demo"),
    population: Annotated[
        int, typer.Option(help="Nombre d'habitants du territoire fictif.")
    ] = 10_000,
    seed: Annotated[int, typer.Option(help="Graine : même graine, mêmes fichiers.")] = 42,
    serve_after: Annotated[
        bool,
        typer.Option(
            "--serve/--no-serve",
            help="Servir ensuite la console des agents et l'espace résident (Ctrl+C pour arrêter).",
        ),
    ] = True,
    port: Annotated[int, typer.Option(help="Port du service web.")] = 8000,
) -> None:
    """Tout en une commande : espace de travail, territoire fictif, chargement, bilan, puis
    le service web (console des agents, espace résident, API) avec ses comptes de démonstration.

    Rejouable : une seconde exécution retrouve le même territoire et ne recharge rien.
    """
    with handled():
        config = init_workspace(directory, name="Métropole fictive (bac à sable)")
        install_policy(config.root)
        sandbox_dir = directory / "sandbox"
        if not (sandbox_dir / "manifest.json").exists():
            console.print(f"[bold]1/6[/] Génération du territoire fictif ({population} habitants)…")
            generate(population=population, seed=seed, out=sandbox_dir, progress=True)
        else:
            console.print(f"[bold]1/6[/] Territoire fictif déjà généré dans {sandbox_dir}.")
        console.print("[bold]2/6[/] Chargement des sources (contrôle des contrats)…")
        store = open_store(config)
        try:
            outcomes = run_loads(
                store, catalog_for(config), sandbox_items(sandbox_dir), quiet=False
            )
            Governance.open(config, store).record_loads("system", [o.record for o in outcomes])
        finally:
            store.close()
        print_outcomes(outcomes)
        console.print("[bold]3/6[/] Bilan des chargements")
    report(workspace=directory, as_json=False)
    console.print("[bold]4/6[/] Index des résidents (liaison des personnes et des ménages)…")
    link(workspace=directory)
    console.print("[bold]5/6[/] Gouvernance : politique, lectures gouvernées, journal d'audit…")
    with handled():
        governance_tour(directory)
    console.print("[bold]6/6[/] Services 4P : redevance incitative et repérage du non-recours…")
    with handled():
        services_tour(directory)
    console.print(
        "\nPour aller plus loin :\n"
        f"  territoria policy show -w {directory}                       # registre des traitements\n"
        f"  territoria read search --as lea.biblio -p library_lending -q martin -w {directory}\n"
        f"  territoria synergies --as marc.donnees -w {directory}        # usagers communs, sans nom\n"
        f"  territoria audit verify -w {directory}                      # intégrité du journal\n"
        f"  territoria waste bill --period 2025-S2 --as paul.dechets -w {directory}\n"
        f"  territoria tariffs screen --month 2025-11 --as claire.ccas -w {directory}\n"
        f"  territoria identity review --as marc.donnees -w {directory} # paires incertaines\n"
        f"  territoria quarantine water_subscribers --as ines.eau -w {directory}\n"
        f"  territoria identity evaluate --truth {sandbox_dir / 'truth'} -w {directory}\n"
        f"  (vérité terrain du territoire fictif : {sandbox_dir / 'truth'})",
        highlight=False,
    )
    if any(not o.ok for o in outcomes):
        raise typer.Exit(1)
    if serve_after:
        console.print("\n[bold]Service web[/] : console des agents, espace résident et API…")
        serve(workspace=directory, port=port)


def governance_tour(directory: Path) -> None:
    """Show the policy, two governed reads (one refused), synergies and the ledger head."""
    config = load_workspace(directory)
    store = open_store(config)
    try:
        gov = Governance.open(config, store)
        findings = check_policy(gov.policy, gov.catalog)
        errors = sum(f.severity == "error" for f in findings)
        console.print(
            f"  Politique {gov.policy.register_file.parent} : {len(gov.policy.purposes)} "
            f"finalités, {len(gov.policy.agents)} agents ; relecture : {errors} erreur(s), "
            f"{len(findings) - errors} avertissement(s).",
            highlight=False,
        )
        for actor, purpose in (
            ("lea.biblio", "library_lending"),
            ("lea.biblio", "ccas_social_support"),
        ):
            result = gov.read(ReadRequest(actor, purpose, "count"))
            shown = f"{result.data['persons']} personnes" if result.data else "aucune donnée"
            console.print(
                f"  {actor} sous {purpose} : {shown} — règle {result.decision.rule}",
                highlight=False,
            )
        decision, cells = gov.synergies("marc.donnees", "service_synergies")
        published = sum(c.shared is not None for c in cells)
        console.print(
            f"  Synergies : {published} paires de services publiées sur {len(cells)} "
            f"(cellules de moins de 11 masquées) — règle {decision.rule}",
            highlight=False,
        )
        report = gov.ledger.verify()
        console.print(
            f"  Journal d'audit : {report.count} enregistrements, chaîne "
            f"{'intègre' if report.ok else 'ALTÉRÉE'}, tête {report.head.hash[:16]}…",
            highlight=False,
        )
    finally:
        store.close()


def services_tour(directory: Path) -> None:
    """The two 4P services on the sandbox, each through the governed batch read: a billing
    run of the pay-as-you-throw fee and the non-take-up screening (a suggestion list)."""
    config = load_workspace(directory)
    store = open_store(config)
    try:
        gov = Governance.open(config, store)
        try:
            grid, _ = load_grid_option(None)
            inputs = governed_inputs(gov, "paul.dechets", "waste_billing")
            book = GovernedDisputeBook(gov, "paul.dechets", "waste_billing")
            summary = bill_run(grid, parse_period("2025-S2"), inputs, book).summary()
            console.print(
                f"  Redevance incitative (paul.dechets, waste_billing) : {summary.bills} "
                f"factures du 2e semestre 2025, {euros(summary.total_cents)} dont "
                f"{euros(summary.variable_cents)} de levées supplémentaires "
                f"(grille d'exemple, chaque ligne expliquée : « territoria waste bill »).",
                highlight=False,
            )
        except TerritoriaError as exc:
            console.print(
                f"  Redevance incitative : non disponible ({exc.message}).", highlight=False
            )
        try:
            run = run_screening(gov, "claire.ccas", "ccas_non_take_up", date(2025, 11, 1))
            forgone = sum(e.monthly_total for e in run.worklist.entries)
            console.print(
                f"  Non-recours (claire.ccas, ccas_non_take_up) : "
                f"{run.worklist.households_screened} foyers examinés avec OpenFisca pour "
                f"novembre 2025, {len(run.worklist.entries)} suggestions d'entretien "
                f"({f'{forgone:,.0f}'.replace(',', ' ')} € par mois de droits apparemment "
                "non perçus) ; aucune décision automatique.",
                highlight=False,
            )
        except TerritoriaError as exc:
            console.print(f"  Non-recours : non disponible ({exc.message}).", highlight=False)
        console.print(
            "  Dans le service web : /console/dechets (paul.dechets : facturations, anomalies, "
            "contestations, simulateur), /console/non-recours?mois=2025-11 (claire.ccas : "
            "liste de repérage, contacts, recours), « Mes déchets » dans l'espace résident "
            "(/portail/dechets).",
            highlight=False,
        )
    finally:
        store.close()
