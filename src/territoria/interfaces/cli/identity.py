"""``territoria link`` and ``territoria identity …``: the resident index from the command line."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from territoria.core.errors import TerritoriaError
from territoria.governance.steward import decide_pair, explain_records, review_queue
from territoria.identity import (
    attach_new_mentions,
    evaluate_workspace,
    identity_status,
    link_files,
    link_workspace,
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

app = typer.Typer(
    help="Index des résidents : état, évaluation, revue des paires incertaines.",
    no_args_is_help=True,
)


@contextmanager
def _progress(quiet: bool) -> Iterator[Callable[[str], None]]:
    """A spinner that shows the current step (silent with --json)."""
    if quiet:
        yield lambda _: None
        return
    with err_console.status("Liaison…") as status:
        yield lambda step: status.update(f"Liaison : {step}…")


def link(
    files: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Fichiers CSV à relier ou dédoublonner (sans fichier : relie les sources de "
            "l'espace de travail)."
        ),
    ] = None,
    maps: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            help="Rôle d'une colonne : ROLE=COLONNE (tous les fichiers) ou FICHIER:ROLE=COLONNE "
            "(un seul). Rôles : record_id, full_name, given_name, family_name, birth_name, "
            "birth_date, sex, address, street_number, street_name, postcode, commune, phone, "
            "email, identifier.",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Fichier résultat (file,record_id,cluster_id) ; avec des fichiers."
        ),
    ] = None,
    retrain: Annotated[
        bool,
        typer.Option("--retrain", help="Réentraîner le modèle au lieu de réutiliser le dernier."),
    ] = False,
    incremental: Annotated[
        bool,
        typer.Option(
            "--incremental",
            help="Rattacher seulement les fiches nouvelles depuis la dernière liaison, une à "
            "une, sans réexaminer les autres (quelques millisecondes par fiche).",
        ),
    ] = False,
    actor: Annotated[
        str,
        typer.Option(
            "--as", envvar="TERRITORIA_ACTOR", help="Qui lance la liaison ; inscrit au journal."
        ),
    ] = "system",
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Relier les fiches qui désignent la même personne, et former les ménages.

    Sans fichier : relie toutes les sources chargées de l'espace de travail (seuls les champs
    d'identification déclarés par les contrats sont lus) ; les clés de personnes et de ménages
    restent stables d'une exécution à l'autre, les fusions et séparations sont journalisées, les
    paires incertaines vont dans la file de revue.

    Avec des fichiers CSV : « territoria link a.csv b.csv --map a.csv:full_name=Nom --map
    b.csv:family_name=NOM … --out groupes.csv » écrit une ligne par fiche (fichier, identifiant,
    groupe). Un fichier : dédoublonnage ; plusieurs : liaison.
    """
    with handled(as_json):
        if files:
            if out is None:
                raise TerritoriaError(
                    "--out est obligatoire avec des fichiers",
                    code="out_missing",
                    hint="ajoutez --out groupes.csv",
                )
            with _progress(as_json) as progress:
                summary = link_files(files, maps or [], out, progress=progress)
            _show(summary.as_dict(), summary.lines_fr(), as_json)
            return
        if maps or out:
            raise TerritoriaError(
                "--map et --out s'emploient avec des fichiers à relier",
                code="files_missing",
                hint="sans fichier, « territoria link » relie les sources de l'espace de travail",
            )
        with governed(workspace) as (config, store, gov), _progress(as_json) as progress:
            if incremental:
                attached = attach_new_mentions(store, catalog_for(config), progress=progress)
                gov.record_link(
                    actor,
                    "incremental",
                    f"rattachement de {attached.new_mentions} nouvelle(s) fiche(s) : "
                    f"{attached.attached} rattachée(s), {attached.created} personne(s) créée(s)",
                )
                _show(attached.as_dict(), attached.lines_fr(), as_json)
                return
            report = link_workspace(store, catalog_for(config), retrain=retrain, progress=progress)
            gov.record_link(
                actor,
                report.run_id,
                f"liaison {report.run_id} : {report.mentions} fiches, {report.persons} personnes, "
                f"{report.households} ménages (modèle v{report.model_version})",
            )
        _show(report.as_dict(), report.lines_fr(), as_json)


def _show(data: dict[str, Any], lines: list[str], as_json: bool) -> None:
    if as_json:
        print_json(data)
    else:
        for line in lines:
            console.print(line, highlight=False)


@app.command("status")
def status(workspace: WorkspaceOption = None, as_json: JsonOption = False) -> None:
    """Personnes, ménages, revues en attente et modèle en service."""
    with handled(as_json), workspace_store(workspace) as (_config, store):
        info = identity_status(store)
    if as_json:
        print_json(info)
        return
    if info["last_run"] is None:
        console.print("Aucune liaison encore : lancez « territoria link ».")
        return
    table = Table(title="Index des résidents", show_header=False)
    for label, value in info["lines"]:
        table.add_row(label, value)
    console.print(table)


@app.command("evaluate")
def evaluate(
    truth: Annotated[
        Path,
        typer.Option("--truth", help="Dossier de vérité terrain (bac à sable : DOSSIER/truth)."),
    ],
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Précision, rappel et F1 (par paires et par groupes, par source) contre la vérité terrain."""
    with handled(as_json), workspace_store(workspace) as (_config, store):
        report = evaluate_workspace(store, truth)
    _show(report.as_dict(), report.lines_fr(), as_json)


@app.command("review")
def review(
    actor: ActorOption = "",
    purpose: OptionalPurpose = None,
    limit: Annotated[int, typer.Option(help="Nombre de paires affichées.")] = 10,
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Les paires incertaines à trancher, les plus incertaines d'abord, avec leur explication.

    Réservé aux agents de l'index des résidents (vue « review ») ; la consultation est journalisée.
    """
    with handled(as_json), governed(workspace) as (_config, _store, gov):
        total, pending = review_queue(gov, actor, purpose, limit)
    if as_json:
        print_json({"pending": total, "pairs": pending})
        return
    console.print(f"{total} paire(s) en attente de revue.")
    for item in pending:
        console.print(
            f"\n[bold]{item['mention_a']}[/]  ↔  [bold]{item['mention_b']}[/]  "
            f"(probabilité {item['probability']:.0%})",
            highlight=False,
        )
        if item["explanation"].get("motif"):
            console.print(f"  [yellow]{item['explanation']['motif']}[/]", highlight=False)
        for field in item["explanation"]["champs"]:
            console.print(
                f"  {field['champ']} : {field['niveau']} ({field['poids']:+.1f} bits) — "
                f"« {field['valeur_a']} » / « {field['valeur_b']} »",
                highlight=False,
            )
    if pending:
        console.print(
            "\nTrancher : territoria identity decide FICHE_A FICHE_B same|different --as AGENT"
        )


@app.command("decide")
def decide(
    mention_a: Annotated[str, typer.Argument(help="Première fiche (source|identifiant|rôle).")],
    mention_b: Annotated[str, typer.Argument(help="Seconde fiche.")],
    decision: Annotated[
        str, typer.Argument(help="same (même personne) ou different (personnes différentes).")
    ],
    actor: ActorOption = "",
    purpose: OptionalPurpose = None,
    note: Annotated[str, typer.Option(help="Motif de la décision.")] = "",
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Enregistrer la décision d'un agent sur une paire ; toute liaison suivante la respecte."""
    with handled(as_json), governed(workspace) as (_config, _store, gov):
        decide_pair(gov, actor, purpose, mention_a, mention_b, decision, note)  # type: ignore[arg-type]
    result = {"mention_a": mention_a, "mention_b": mention_b, "decision": decision, "agent": actor}
    _show(
        result,
        ["Décision enregistrée : elle s'appliquera à la prochaine liaison (« territoria link »)."],
        as_json,
    )


@app.command("explain")
def explain(
    mention_a: Annotated[str, typer.Argument(help="Première fiche (source|identifiant|rôle).")],
    mention_b: Annotated[str, typer.Argument(help="Seconde fiche.")],
    actor: ActorOption = "",
    purpose: OptionalPurpose = None,
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Pourquoi deux fiches sont (ou non) la même personne, champ par champ."""
    with handled(as_json), governed(workspace) as (_config, _store, gov):
        explanation = explain_records(gov, actor, purpose, mention_a, mention_b)
    _show(explanation.as_dict(), explanation.lines_fr(), as_json)
