"""``territoria rights``: access export, transparency, consents, objections, rectification,
retention. A resident acts as ``resident:<key>`` under ``resident_access``; the DPO acts for a
resident under ``rights_handling`` with the person's pseudonym (``--person``)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from territoria.core.errors import GovernanceError
from territoria.core.files import write_atomically
from territoria.governance import (
    access_export,
    file_rectification,
    rectifications,
    render_access_html,
)
from territoria.governance.rights import receipt
from territoria.interfaces.cli.common import (
    ActorOption,
    JsonOption,
    OptionalPurpose,
    WorkspaceOption,
    console,
    governed,
    handled,
    print_json,
)

app = typer.Typer(
    help="Droits des résidents : accès, consentements, opposition, rectification, conservation.",
    no_args_is_help=True,
)

ActingPurpose = Annotated[
    str | None,
    typer.Option(
        "--purpose",
        "-p",
        help="Finalité sous laquelle on agit (défaut : resident_access pour un résident, rights_handling sinon).",
    ),
]
PersonOption = Annotated[
    str | None,
    typer.Option("--person", help="Pseudonyme de la personne (DPO) ; inutile pour un résident."),
]


def _acting(actor: str, purpose: str | None) -> str:
    return purpose or ("resident_access" if actor.startswith("resident:") else "rights_handling")


@app.command("access")
def access(
    actor: ActorOption,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Dossier où écrire acces.json et acces.html.")
    ],
    purpose: ActingPurpose = None,
    person: PersonOption = None,
    workspace: WorkspaceOption = None,
) -> None:
    """Droit d'accès (art. 15) : tout ce qui est détenu sur la personne, en JSON et en page lisible."""
    with handled(), governed(workspace) as (_, _, gov):
        export = access_export(gov, actor, _acting(actor, purpose), person)
        out.mkdir(parents=True, exist_ok=True)
        text = json.dumps(export, ensure_ascii=False, indent=2, default=str)
        write_atomically(out / "acces.json", text.encode(), what="export")
        write_atomically(out / "acces.html", render_access_html(export).encode(), what="export")
    sources = len(export["records"])
    console.print(
        f"Export écrit dans {out} (acces.json, acces.html) : {sources} source(s), {len(export['accesses'])} consultation(s).",
        highlight=False,
    )


@app.command("transparency")
def transparency(
    actor: ActorOption,
    purpose: ActingPurpose = None,
    person: PersonOption = None,
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Qui a consulté mes données, quand et pourquoi (sans nom d'agent ni autre personne)."""
    with handled(as_json), governed(workspace) as (_, _, gov):
        entries = gov.who_accessed(actor, _acting(actor, purpose), person)
    if as_json:
        print_json([e.as_dict() for e in entries])
        return
    table = Table(title="Qui a consulté vos données")
    for column in ("Date", "Service", "Pour quoi", "Base légale", "Consultation"):
        table.add_column(column)
    for e in entries:
        table.add_row(
            e.at[:16].replace("T", " "),
            "Vous-même" if e.by_yourself else e.service,
            e.purpose,
            e.legal_basis,
            e.what,
        )
    console.print(table)


@app.command("consent")
def consent(
    target: Annotated[str, typer.Argument(help="Finalité facultative (sur consentement).")],
    actor: ActorOption,
    withdraw: Annotated[
        bool, typer.Option("--withdraw", help="Retirer le consentement (sinon : le donner).")
    ] = False,
    method: Annotated[str, typer.Option(help="portal, counter, paper, phone ou api.")] = "portal",
    purpose: ActingPurpose = None,
    person: PersonOption = None,
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Donner ou retirer un consentement ; effet immédiat sur toutes les lectures."""
    with handled(as_json), governed(workspace) as (_, _, gov):
        acting = _acting(actor, purpose)
        record = gov.change_consent(actor, acting, person, target, give=not withdraw, method=method)
        domain = gov.policy.purposes[acting].domain
        shown = receipt(record, gov.pseudonyms.pseudonym(domain, record.person))
    if as_json:
        print_json(shown)
    else:
        console.print(
            f"Consentement {'retiré' if withdraw else 'donné'} pour « {record.purpose_label} » (reçu {record.record_id}).",
            highlight=False,
        )


@app.command("object")
def object_(
    target: Annotated[str, typer.Argument(help="Finalité proactive.")],
    actor: ActorOption,
    lift: Annotated[bool, typer.Option("--lift", help="Lever l'opposition.")] = False,
    reason: Annotated[str, typer.Option(help="Motif (facultatif).")] = "",
    purpose: ActingPurpose = None,
    person: PersonOption = None,
    workspace: WorkspaceOption = None,
) -> None:
    """S'opposer (art. 21) à un traitement proactif, ou lever l'opposition ; effet immédiat."""
    with handled(), governed(workspace) as (_, _, gov):
        record = gov.change_objection(
            actor, _acting(actor, purpose), person, target, object_=not lift, reason=reason
        )
    console.print(
        f"Opposition {'levée' if lift else 'enregistrée'} (n° {record.record_id}).", highlight=False
    )


@app.command("rectify")
def rectify(
    actor: ActorOption,
    source: Annotated[str, typer.Option(help="Source de la fiche.")],
    record: Annotated[str, typer.Option(help="Numéro de la fiche.")],
    field: Annotated[str, typer.Option(help="Champ à corriger.")],
    value: Annotated[str, typer.Option(help="Valeur demandée.")],
    reason: Annotated[str, typer.Option(help="Motif.")] = "",
    purpose: ActingPurpose = None,
    person: PersonOption = None,
    workspace: WorkspaceOption = None,
) -> None:
    """Demander une rectification (art. 16) : transmise au service qui détient la fiche."""
    with handled(), governed(workspace) as (_, _, gov):
        request = file_rectification(
            gov,
            actor,
            _acting(actor, purpose),
            person,
            source=source,
            record_id=record,
            field=field,
            value=value,
            reason=reason,
        )
    console.print(
        f"Demande {request.request_id} transmise au service {request.owner_service}.",
        highlight=False,
    )


@app.command("requests")
def requests(
    actor: ActorOption,
    purpose: Annotated[
        str, typer.Option("--purpose", "-p", help="Finalité du service destinataire.")
    ],
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Demandes de rectification reçues par le service (celles des sources de sa finalité)."""
    with handled(as_json), governed(workspace) as (_, _, gov):
        found = rectifications(gov, actor, purpose)
    if as_json:
        print_json([r.as_dict() for r in found])
        return
    for r in found:
        console.print(
            f"{r.request_id} {r.created_at[:10]} {r.source}/{r.record_id} {r.field} → « {r.requested_value} » ({r.status})",
            highlight=False,
        )
    console.print(f"{len(found)} demande(s).")


@app.command("retention")
def retention(
    actor: ActorOption,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Date de référence AAAA-MM-JJ (défaut : aujourd'hui)."),
    ] = None,
    apply: Annotated[
        bool,
        typer.Option(
            "--apply", help="Appliquer : archiver, mettre en tri, proposer l'élimination."
        ),
    ] = False,
    purpose: OptionalPurpose = None,
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Durées de conservation : ce qui arrive au terme de sa DUA, et son sort final.

    Rien n'est éliminé sans le visa des archives départementales (« rights approve »).
    Exemple : territoria rights retention --as alice.archives --as-of 2031-01-01 --apply
    """
    with handled(as_json), governed(workspace) as (_, _, gov):
        plan = gov.retention_plan(actor, purpose, _date(as_of))
        created = gov.apply_retention(actor, purpose, plan) if apply else []
    if as_json:
        print_json({"plan": plan.as_dict(), "requests": [r.request_id for r in created]})
        return
    table = Table(title=f"Conservation au {plan.as_of}")
    for column in ("Source", "DUA", "Sort final", "Actives", "Échues", "Sans date"):
        table.add_column(column)
    for s in plan.sources:
        table.add_row(s.source, s.duration, s.final_fate, str(s.active), str(s.due), str(s.undated))
    console.print(table)
    for r in created:
        console.print(
            f"Bordereau {r.request_id} : {r.count} fiche(s) de {r.source}, en attente du visa.",
            highlight=False,
        )


@app.command("approve")
def approve(
    request_id: Annotated[str, typer.Argument(help="Bordereau d'élimination.")],
    visa: Annotated[str, typer.Option(help="Référence du visa des archives départementales.")],
    actor: ActorOption,
    purpose: OptionalPurpose = None,
    workspace: WorkspaceOption = None,
) -> None:
    """Enregistrer le visa d'élimination (code du patrimoine L212-2) : les fiches deviennent illisibles."""
    with handled(), governed(workspace) as (_, _, gov):
        record = gov.approve_elimination(actor, purpose, request_id, visa=visa)
    console.print(
        f"Élimination {record.elimination_id} : {record.count} fiche(s), visa {record.visa}, empreinte {record.digest}.",
        highlight=False,
    )


def _date(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise GovernanceError(
            f"date invalide : {text!r}",
            code="date_invalid",
            field_name="--as-of",
            expected="AAAA-MM-JJ",
        ) from None
