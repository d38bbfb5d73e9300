"""``territoria policy``, ``audit``, ``read`` and ``synergies``: governance at the keyboard.

Every command that touches personal data names its actor (``--as``) and purpose
(``--purpose``) and goes through the governed read: the answer shows the rule that allowed or
refused it, and the audit ledger keeps one record of it.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from territoria.core.config import load_workspace
from territoria.core.errors import GovernanceError
from territoria.core.types import LEGAL_BASIS_LABELS
from territoria.governance import (
    DEFAULT_MIN_CELL,
    Governance,
    ReadRequest,
    check_policy,
    load_anchors,
    load_policy,
    policy_dir,
    save_anchor,
    write_register,
)
from territoria.governance.policy import OUTPUT_LABELS
from territoria.interfaces.cli.common import (
    ActorOption,
    JsonOption,
    WorkspaceOption,
    catalog_for,
    console,
    err_console,
    governed,
    handled,
    print_json,
    workspace_store,
)

PurposeOption = Annotated[
    str, typer.Option("--purpose", "-p", help="Finalité du registre sous laquelle on agit.")
]

policy_app = typer.Typer(
    help="Registre des traitements, habilitations et clés (DPO).", no_args_is_help=True
)
audit_app = typer.Typer(
    help="Journal d'audit chaîné : vérification, tête de chaîne, recherche.", no_args_is_help=True
)
keys_app = typer.Typer(
    help="Clés de pseudonymisation par domaine (hors du magasin).", no_args_is_help=True
)
policy_app.add_typer(keys_app, name="keys")


# -- policy -----------------------------------------------------------------------------------


@policy_app.command("check")
def policy_check(workspace: WorkspaceOption = None, as_json: JsonOption = False) -> None:
    """Relire la politique : bases légales, champs inconnus, données sensibles mal habilitées…

    Sort avec le code 1 s'il y a au moins une erreur (à lancer en CI après chaque modification).
    """
    with handled(as_json):
        config = load_workspace(workspace)
        policy = load_policy(policy_dir(config.root))
        findings = check_policy(policy, catalog_for(config))
    errors = [f for f in findings if f.severity == "error"]
    if as_json:
        print_json(
            {
                "policy": str(policy.register_file.parent),
                "findings": [f.as_dict() for f in findings],
            }
        )
    else:
        console.print(f"Politique : {policy.register_file.parent}", highlight=False)
        for f in findings:
            colour = "red" if f.severity == "error" else "yellow"
            where = f"{Path(f.file).name}:{f.line}" if f.line else Path(f.file).name
            console.print(
                f"[{colour}]{f.severity}[/] {where} [{f.code}] {f.message}", highlight=False
            )
        console.print(f"{len(errors)} erreur(s), {len(findings) - len(errors)} avertissement(s).")
    if errors:
        raise typer.Exit(1)


@policy_app.command("show")
def policy_show(workspace: WorkspaceOption = None, as_json: JsonOption = False) -> None:
    """Lister les finalités du registre et les rôles habilités."""
    with handled(as_json):
        policy = load_policy(policy_dir(load_workspace(workspace).root))
    grants: dict[str, list[str]] = {}
    for role in policy.roles.values():
        for grant in role.grants:
            grants.setdefault(grant.purpose, []).append(f"{role.id} ({', '.join(grant.views)})")
    if as_json:
        print_json(
            {
                "purposes": [
                    p.model_dump(exclude={"line"}) | {"granted_to": grants.get(p.id, [])}
                    for p in policy.purposes.values()
                ],
                "digest": policy.digest,
            }
        )
        return
    table = Table(title="Registre des activités de traitement")
    for column in ("Finalité", "Service", "Base légale", "Forme", "Habilités"):
        table.add_column(column)
    for p in policy.purposes.values():
        basis = LEGAL_BASIS_LABELS.get(p.legal_basis or "", "[red]manquante[/]")
        table.add_row(
            f"{p.id}\n{p.name}",
            p.service,
            basis,
            OUTPUT_LABELS[p.output],
            "\n".join(grants.get(p.id, [])),
        )
    console.print(table)


@policy_app.command("export")
def policy_export(
    out: Annotated[Path, typer.Option("--out", "-o", help="Fichier à écrire.")],
    fmt: Annotated[
        str,
        typer.Option(
            "--format", "-f", help="csv (modèle CNIL), ods, html (page publique) ou json."
        ),
    ] = "csv",
    workspace: WorkspaceOption = None,
) -> None:
    """Exporter le registre des traitements (modèle CNIL en CSV/ODS, page publique HTML).

    Exemple : territoria policy export --format ods --out registre.ods
    """
    with handled():
        if fmt not in ("csv", "ods", "html", "json"):
            raise GovernanceError(
                f"format inconnu : {fmt}", code="format_unknown", expected="csv, ods, html ou json"
            )
        config = load_workspace(workspace)
        path = write_register(out, load_policy(policy_dir(config.root)), catalog_for(config), fmt)  # type: ignore[arg-type]
    console.print(f"Registre écrit : {path}", highlight=False)


@policy_app.command("decide")
def policy_decide(
    actor: ActorOption,
    purpose: PurposeOption,
    view: Annotated[str, typer.Option(help="Vue demandée (person_360, search, count, records…).")],
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Dire ce que la politique déciderait, avec la règle, sans rien lire (aucune donnée)."""
    with handled(as_json), workspace_store(workspace) as (config, store):
        decision = Governance.open(config, store).decide(actor, purpose, view)
    if as_json:
        print_json(decision.as_dict())
        return
    verdict = "[green]autorisé[/]" if decision.allowed else "[red]refusé[/]"
    console.print(f"{verdict} — règle {decision.rule} : {decision.reason}", highlight=False)
    for source, names in decision.fields.items():
        console.print(f"  {source} : {', '.join(names) or '(aucun champ)'}", highlight=False)


@keys_app.command("list")
def keys_list(workspace: WorkspaceOption = None, as_json: JsonOption = False) -> None:
    """Domaines de pseudonymisation et versions de clé (jamais la clé elle-même)."""
    from territoria.governance import Keyring

    with handled(as_json):
        infos = Keyring.for_workspace(load_workspace(workspace).root).describe()
    if as_json:
        print_json([asdict(i) for i in infos])
        return
    labels = {"current": "courante", "previous": "ancienne (résout encore)", "retired": "retirée"}
    table = Table(title="Clés de pseudonymisation (hors du magasin)")
    for column in ("Domaine", "Version", "État", "Créée", "Retirée"):
        table.add_column(column)
    for i in infos:
        table.add_row(
            i.domain, i.kid, labels.get(i.status, i.status), i.created_at or "", i.retired_at or ""
        )
    console.print(table)


@keys_app.command("rotate")
def keys_rotate(
    domain: Annotated[str, typer.Argument(help="Domaine (ex. ccas).")],
    workspace: WorkspaceOption = None,
) -> None:
    """Nouvelle clé pour un domaine ; les anciens pseudonymes restent résolus jusqu'au retrait."""
    from territoria.governance import Keyring

    with handled():
        kid = Keyring.for_workspace(load_workspace(workspace).root).rotate(domain)
    console.print(f"Domaine {domain} : nouvelle clé {kid}.", highlight=False)


@keys_app.command("retire")
def keys_retire(
    domain: Annotated[str, typer.Argument(help="Domaine.")],
    kid: Annotated[str, typer.Argument(help="Version de clé à détruire (pas la courante).")],
    workspace: WorkspaceOption = None,
) -> None:
    """Détruire une ancienne clé : ses pseudonymes ne se résolvent plus."""
    from territoria.governance import Keyring

    with handled():
        Keyring.for_workspace(load_workspace(workspace).root).retire(domain, kid)
    console.print(f"Clé {kid} du domaine {domain} détruite.", highlight=False)


# -- audit ------------------------------------------------------------------------------------


@audit_app.command("verify")
def audit_verify(
    anchors: Annotated[
        Path | None, typer.Option(help="Fichier des têtes ancrées (audit head --save).")
    ] = None,
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Recalculer toute la chaîne : toute modification, suppression, insertion, permutation
    ou troncature est détectée. Code de sortie 1 si la chaîne est altérée."""
    with handled(as_json), governed(workspace) as (config, _, gov):
        path = anchors or config.root / "audit-anchors.jsonl"
        report = gov.ledger.verify(load_anchors(path) if path.exists() else ())
    if as_json:
        print_json(report.as_dict())
    elif report.ok:
        console.print(
            f"[green]Chaîne intègre[/] : {report.count} enregistrements vérifiés en {report.seconds:.2f} s ; tête {report.head.hash}.",
            highlight=False,
        )
    else:
        console.print(f"[red]Chaîne altérée[/] : {len(report.problems)} problème(s).")
        for problem in report.problems[:20]:
            console.print(f"  n° {problem.seq} [{problem.code}] {problem.message}", highlight=False)
    if not report.ok:
        raise typer.Exit(1)


@audit_app.command("head")
def audit_head(
    save: Annotated[
        bool,
        typer.Option("--save", help="Ajouter la tête au fichier d'ancrage audit-anchors.jsonl."),
    ] = False,
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Tête de la chaîne (nombre et empreinte) à publier ou envoyer à un tiers (ancrage)."""
    with handled(as_json), governed(workspace) as (config, _, gov):
        head = gov.ledger.head()
        if save:
            save_anchor(config.root / "audit-anchors.jsonl", head)
    if as_json:
        print_json({"count": head.count, "hash": head.hash, "at": head.at})
    else:
        console.print(
            f"{head.count} enregistrements ; tête {head.hash} ({head.at})", highlight=False
        )


@audit_app.command("search")
def audit_search(
    actor: ActorOption,
    purpose: PurposeOption = "audit_control",
    person: Annotated[str | None, typer.Option(help="Clé de personne (P-…).")] = None,
    agent: Annotated[str | None, typer.Option(help="Acteur recherché.")] = None,
    decision: Annotated[str | None, typer.Option(help="allow ou deny.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Rechercher dans le journal (DPO, finalité audit_control) ; la recherche est journalisée."""
    with handled(as_json), governed(workspace) as (_, _, gov):
        gov.authorise(actor, purpose, "ledger", persons=(person,) if person else ())
        records = gov.ledger.records(person=person, actor=agent, decision=decision, limit=limit)
    rows = [{"seq": r.seq, "at": r.at, **_entry(r.entry)} for r in records]
    if as_json:
        print_json(rows)
        return
    table = Table(title="Journal d'audit (du plus récent au plus ancien)")
    for column in ("n°", "date", "acteur", "finalité", "vue", "décision", "règle", "personnes"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            str(r["seq"]),
            r["at"][:19],
            r["actor"],
            r["purpose"],
            r["view"],
            r["decision"],
            r["rule"],
            str(len(r["persons"])),
        )
    console.print(table)


def _entry(entry: Any) -> dict[str, Any]:
    return {
        "kind": entry.kind,
        "actor": entry.actor,
        "service": entry.service,
        "purpose": entry.purpose,
        "view": entry.view,
        "decision": entry.decision,
        "rule": entry.rule,
        "reason": entry.reason,
        "persons": list(entry.persons),
        "fields": list(entry.fields),
    }


# -- governed reads and synergies ----------------------------------------------------------


def read(
    view: Annotated[
        str, typer.Argument(help="person_360, search, autocomplete, count ou records.")
    ],
    actor: ActorOption,
    purpose: PurposeOption,
    subject: Annotated[
        str | None, typer.Option("--person", help="Pseudonyme de la personne (vue person_360).")
    ] = None,
    query: Annotated[
        str | None, typer.Option("--query", "-q", help="Texte cherché (search, autocomplete).")
    ] = None,
    source: Annotated[str | None, typer.Option(help="Source (vue records).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Lecture gouvernée : ce que la finalité permet de voir, rien de plus, et journalisé.

    Exemples :
      territoria read search --as lea.biblio -p library_lending -q "martin"
      territoria read person_360 --as lea.biblio -p library_lending --person LEC.k1.…
    """
    with handled(as_json), governed(workspace) as (_, _, gov):
        result = gov.read(
            ReadRequest(
                actor, purpose, view, subject=subject, query=query, source=source, limit=limit
            )
        )
    if as_json:
        print_json(result.as_dict())
    else:
        verdict = {
            "ok": "[green]autorisé[/]",
            "not_found": "[yellow]introuvable[/]",
            "denied": "[red]refusé[/]",
        }[result.status]
        console.print(
            f"{verdict} — règle {result.decision.rule} : {result.decision.reason}", highlight=False
        )
        if result.data is not None:
            print_json(result.data)
    if result.status == "denied":
        raise typer.Exit(1)


def synergies(
    actor: ActorOption,
    purpose: PurposeOption = "service_synergies",
    min_cell: Annotated[
        int, typer.Option("--min-cell", help="Taille minimale d'une cellule publiée.")
    ] = DEFAULT_MIN_CELL,
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Usagers communs à chaque paire de services, sans voir personne.

    Un effectif sous la taille minimale (11 par défaut) est publié « moins de 11 ».
    """
    with handled(as_json), governed(workspace) as (_, _, gov):
        decision, cells = gov.synergies(actor, purpose, min_cell)
    if not decision.allowed:
        err_console.print(
            f"[red]Refusé[/] — règle {decision.rule} : {decision.reason}", highlight=False
        )
        raise typer.Exit(1)
    if as_json:
        print_json(
            {"min_cell": min_cell, "rule": decision.rule, "pairs": [c.as_dict() for c in cells]}
        )
        return
    table = Table(
        title=f"Usagers communs entre services (cellules de moins de {min_cell} masquées)"
    )
    for column in ("Service", "Service", "Usagers communs"):
        table.add_column(column)
    for cell in sorted(cells, key=lambda c: -(c.shared or 0)):
        table.add_row(cell.label_a, cell.label_b, cell.published)
    console.print(table)
    console.print(
        f"Règle : {decision.rule}. Chaque effectif compte les personnes de l'index des résidents ayant une fiche dans les deux services.",
        highlight=False,
    )
