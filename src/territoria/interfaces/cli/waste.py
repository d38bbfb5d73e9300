"""``territoria waste``: pay-as-you-throw billing (REOMi / TEOMi) on the governed read.

Every command reads the bin registry (``waste_bins``) and the lift events (``waste_lifts``)
through ``Governance.extract`` under the acting agent's purpose: one decision, only the
purpose's fields, payers named by the purpose's pseudonyms, one ledger record naming every
payer read. A record that names no resident of the index (a building's manager) is billed to a
payer key derived from its name (« GESTIONNAIRE … »). Disputes are governed cases of the app
``waste`` (see :mod:`territoria.interfaces.runs.waste_book`).
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from territoria.apps.waste import (
    Assumptions,
    Dispute,
    SimulationResult,
    TariffGrid,
    decide_dispute,
    get_grid,
    mark_applied,
    open_dispute,
    parse_period,
)
from territoria.apps.waste.money import euros
from territoria.core.errors import TerritoriaError
from territoria.interfaces.cli.common import (
    ActorOption,
    JsonOption,
    OptionalPurpose,
    WorkspaceOption,
    console,
    err_console,
    governed,
    handled,
    print_json,
)
from territoria.interfaces.runs.waste import (
    DEFAULT_GRID,
    Inputs,
    acting_purpose,
    bill_run,
    checked_period,
    governed_inputs,
    load_grid_option,
    simulate_grid,
)
from territoria.interfaces.runs.waste_book import GovernedDisputeBook
from territoria.interfaces.runs.waste_text import (
    DISPUTE_STATUS,
    euros_to_cents,
    evidence_rows,
    held_reasons,
)

app = typer.Typer(
    help="Redevance incitative des déchets (REOMi / TEOMi) : facturation, simulation de "
    "grille, contestations de levées.\n\n"
    "Exemples :\n\n"
    "  territoria waste bill --as paul.dechets --period 2025-S2\n\n"
    "  territoria waste simulate --as paul.dechets --grid ma_grille.yaml --period 2025-S2\n\n"
    "  territoria waste dispute list --as paul.dechets",
    no_args_is_help=True,
)
dispute_app = typer.Typer(
    help="Contestations de levées : preuve rassemblée, décision motivée, avoir sur la "
    "facture suivante.",
    no_args_is_help=True,
)
app.add_typer(dispute_app, name="dispute")

PeriodOption = Annotated[
    str,
    typer.Option(
        "--period",
        help="Période de facturation : 2025 (année), 2025-S1/S2 (semestre), 2025-Q1/Q2/Q3 "
        "(quadrimestre).",
    ),
]
GridOption = Annotated[
    str | None,
    typer.Option(
        "--grid",
        help=f"Grille tarifaire : identifiant d'une grille livrée (ex. estuaire_sillon_2024) ou "
        f"fichier YAML (défaut : {DEFAULT_GRID}, la grille d'exemple du bac à sable).",
        show_default=False,
    ),
]


def _grid_line(grid: TariffGrid, default: bool) -> str:
    text = f"Grille : {grid.title} ({grid.id}) — {grid.deliberation.reference}"
    if default:
        text += " [dim](grille par défaut : l'exemple du bac à sable, sans valeur réglementaire ; --grid pour une autre)[/]"
    return text


def _trace_line(inputs: Inputs) -> str:
    where = f"n° {inputs.ledger_seq}" if inputs.ledger_seq is not None else "enregistrée"
    return (
        f"Lecture gouvernée sous la finalité {inputs.purpose} : {inputs.allocations.num_rows} "
        f"dotation(s), {inputs.lifts.num_rows} levée(s), {inputs.persons} résident(s) nommé(s) "
        f"au journal d'audit ({where})."
    )


# -- waste bill -------------------------------------------------------------------------------


@app.command("bill")
def bill(
    actor: ActorOption,
    period: PeriodOption,
    grid: GridOption = None,
    payer: Annotated[
        str | None,
        typer.Option(
            "--payer",
            help="Montrer la facture d'un redevable ligne par ligne (pseudonyme, ou clé "
            "« GESTIONNAIRE … » d'un immeuble).",
        ),
    ] = None,
    apply_credits: Annotated[
        bool,
        typer.Option(
            "--apply-credits",
            help="Émettre : les avoirs dus figurent sur cette facturation et ne seront plus "
            "reportés (sans cette option, la facturation est un aperçu).",
        ),
    ] = False,
    purpose: OptionalPurpose = None,
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Facturer une période : chaque redevable, chaque ligne expliquée, les anomalies.

    Lit le parc de bacs et les levées par la lecture gouvernée (un enregistrement au journal
    nommant chaque redevable lu), applique la grille, ajoute les avoirs des contestations.

    Exemples :
      territoria waste bill --as paul.dechets --period 2025-S2
      territoria waste bill --as paul.dechets --period 2025-S2 --payer DEC.k1.…
      territoria waste bill --as paul.dechets --period 2024 --grid estuaire_sillon_2024 --json
    """
    with handled(as_json), governed(workspace) as (_, _, gov):
        tariff, default = load_grid_option(grid)
        parsed = checked_period(tariff, period)
        acting = acting_purpose(gov, actor, purpose)
        with err_console.status("Lecture gouvernée des bacs et des levées…"):
            inputs = governed_inputs(gov, actor, acting)
        book = GovernedDisputeBook(gov, actor, acting)
        with err_console.status(f"Facturation du {parsed.title}…"):
            run = bill_run(tariff, parsed, inputs, book)
        try:
            payer_bill = None
            if payer is not None:
                if run.total(payer) is None and payer not in run.held:
                    raise TerritoriaError(
                        f"redevable « {payer} » absent de la facturation de {parsed.title}",
                        code="waste_payer_unknown",
                        field_name="payer",
                        hint="territoria waste bill --json liste les redevables facturés",
                    )
                payer_bill = run.bill(payer)
            data = run.as_dict(None if payer is None else [payer])
            held = held_reasons(run)
            applied = mark_applied(book, run) if apply_credits else []
        finally:
            run.close()
    if as_json:
        data["grid_default"] = default
        data["held_reasons"] = held
        data["governance"] = {
            "purpose": inputs.purpose,
            "ledger_seq": inputs.ledger_seq,
            "persons": inputs.persons,
        }
        data["credits_applied"] = [d.id for d in applied]
        if payer_bill is not None:
            data["bill"] = payer_bill.model_dump(mode="json")
        print_json(data)
        return
    _print_run(data, held, tariff, default)
    if payer_bill is not None:
        _print_bill(payer_bill.model_dump(mode="json"))
    if applied:
        console.print(
            f"{len(applied)} avoir(s) imputé(s) sur cette facturation : "
            + ", ".join(d.id for d in applied),
            highlight=False,
        )
    console.print(_trace_line(inputs), highlight=False)


def _print_run(
    data: dict[str, Any], held: dict[str, list[str]], grid: TariffGrid, default: bool
) -> None:
    summary = data["run"]
    console.print(_grid_line(grid, default), highlight=False)
    console.print(
        f"Facturation du {summary['period_title']} — proratisation : {summary['proration']}",
        highlight=False,
    )
    table = Table(title="Facturation")
    table.add_column("Indicateur")
    table.add_column("Valeur", justify="right")
    lines = sum(len(b["lines"]) for b in data["bills"])
    table.add_row("Redevables facturés", str(summary["bills"]))
    table.add_row("Lignes de facture", str(lines))
    table.add_row("Total", euros(summary["total_cents"]))
    table.add_row("dont part fixe", euros(summary["fixed_cents"]))
    table.add_row("dont part variable", euros(summary["variable_cents"]))
    table.add_row("dont avoirs et autres", euros(summary["other_cents"]))
    table.add_row("Redevables retenus (sans facture)", str(summary["held_payers"]))
    for reason, count in summary["anomalies"].items():
        table.add_row(f"Anomalie : {reason}", str(count))
    console.print(table)
    for note in summary["notes"]:
        console.print(f"[yellow]Note :[/] {note}", highlight=False)
    if held:
        kept = Table(title="Redevables retenus : pas de facture partielle, la raison")
        kept.add_column("Redevable")
        kept.add_column("Raison")
        for who, reasons in held.items():
            kept.add_row(who, "\n".join(reasons) or "—")
        console.print(kept)


def _print_bill(bill: dict[str, Any]) -> None:
    table = Table(title=f"Facture de {bill['payer']} — {bill['period']} : {bill['total']}")
    table.add_column("N°", justify="right")
    table.add_column("Ligne")
    table.add_column("Montant", justify="right")
    table.add_column("Comment il est calculé")
    for line in bill["lines"]:
        table.add_row(str(line["line_no"]), line["label"], line["amount"], line["explanation"])
    console.print(table)
    statuses: dict[str, int] = {}
    for lift in bill["lifts"]:
        statuses[lift["status"]] = statuses.get(lift["status"], 0) + 1
    if statuses:
        console.print(
            f"{len(bill['lifts'])} levée(s) comptée(s) : "
            + ", ".join(f"{n} {s}" for s, n in sorted(statuses.items())),
            highlight=False,
        )
    for anomaly in bill["anomalies"]:
        console.print(
            f"[yellow]Anomalie[/] {anomaly['ref']} : {anomaly['detail']}", highlight=False
        )


# -- waste simulate ---------------------------------------------------------------------------


def _euros_to_cents(value: str, field: str) -> int:
    cents = euros_to_cents(value)
    if cents is None:
        raise TerritoriaError(
            f"montant « {value} » incompréhensible",
            code="waste_budget",
            field_name=field,
            expected="un montant positif en euros, ex. 250000 ou 250000,50",
        )
    return cents


@app.command("simulate")
def simulate_cmd(
    actor: ActorOption,
    grid: Annotated[
        str, typer.Option("--grid", help="Grille proposée : identifiant livré ou fichier YAML.")
    ],
    period: PeriodOption,
    baseline: Annotated[
        str,
        typer.Option(
            "--baseline", help="Grille actuelle, référence de comparaison (identifiant ou YAML)."
        ),
    ] = DEFAULT_GRID,
    budget: Annotated[
        str | None,
        typer.Option(
            "--budget",
            help="Budget à couvrir en euros (défaut : la recette de la grille de référence).",
            show_default=False,
        ),
    ] = None,
    residual_change: Annotated[
        float,
        typer.Option(
            "--residual-change",
            min=-1.0,
            max=1.0,
            help="Variation des ordures résiduelles (ADEME : environ −0,30).",
        ),
    ] = -0.30,
    lift_change: Annotated[
        float | None,
        typer.Option(
            "--lift-change",
            min=-1.0,
            max=1.0,
            help="Variation du nombre de levées (défaut : celle des ordures résiduelles).",
            show_default=False,
        ),
    ] = None,
    chart: Annotated[
        Path | None,
        typer.Option("--chart", help="Écrire le graphique (spécification Vega-Lite, JSON)."),
    ] = None,
    purpose: OptionalPurpose = None,
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Simuler une grille : recette contre budget, qui paie plus ou moins.

    Rejoue les bacs et levées de la période sous la grille proposée, après la réaction des
    ménages (ADEME : environ −30 % d'ordures résiduelles, paramètre ajustable), et compare à
    la grille de référence.

    Exemples :
      territoria waste simulate --as paul.dechets --grid nouvelle.yaml --period 2025-S2
      territoria waste simulate --as paul.dechets --grid nouvelle.yaml --period 2025-S2 \\
          --budget 250000 --residual-change -0.20 --chart variation.json
    """
    with handled(as_json), governed(workspace) as (_, _, gov):
        proposed = get_grid(grid)
        reference = get_grid(baseline)
        parsed = parse_period(period)
        proposed.check_period(parsed, check_validity=False)
        reference.check_period(parsed, check_validity=False)
        budget_cents = None if budget is None else _euros_to_cents(budget, "budget")
        assumptions = Assumptions(
            residual_waste_change=Decimal(str(residual_change)),
            lift_change=None if lift_change is None else Decimal(str(lift_change)),
        )
        acting = acting_purpose(gov, actor, purpose)
        with err_console.status("Lecture gouvernée des bacs et des levées…"):
            inputs = governed_inputs(gov, actor, acting)
        with err_console.status("Simulation…"):
            result = simulate_grid(inputs, proposed, reference, parsed, budget_cents, assumptions)
        if chart is not None:
            chart.write_text(
                json.dumps(result.chart, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
            )
    if as_json:
        data = result.model_dump(mode="json")
        data["governance"] = {"purpose": inputs.purpose, "ledger_seq": inputs.ledger_seq}
        print_json(data)
        return
    _print_simulation(result, chart, inputs)


def _print_simulation(result: SimulationResult, chart: Path | None, inputs: Inputs) -> None:
    table = Table(title=f"Simulation de la grille « {result.proposed_grid} » — {result.period}")
    table.add_column("Indicateur")
    table.add_column("Valeur", justify="right")
    table.add_row("Recette simulée", euros(result.revenue_cents))
    table.add_row(f"Recette de référence ({result.baseline})", euros(result.baseline_revenue_cents))
    table.add_row("Budget à couvrir", euros(result.budget_cents))
    table.add_row("Taux de couverture", f"{result.coverage * 100:.1f} %".replace(".", ","))
    table.add_row("Écart au budget", euros(result.gap_cents))
    table.add_row("Levées avant / après", f"{result.lifts_before} / {result.lifts_after}")
    table.add_row("Redevables comparés", str(result.payers_compared))
    table.add_row("Redevables retenus (sans facture)", str(result.held_payers))
    console.print(table)
    if result.groups:
        dist = Table(title="Variation des factures par groupe (10e–90e centile en JSON)")
        for column in ("Groupe", "Redevables", "Moyenne avant", "Moyenne après", "Variation"):
            dist.add_column(column, justify="left" if column == "Groupe" else "right")
        dist.add_column("Médiane", justify="right")
        dist.add_column("Paient plus", justify="right")
        for g in result.groups:
            dist.add_row(
                f"{g.dimension} : {g.group}",
                str(g.payers),
                euros(g.mean_before_cents),
                euros(g.mean_after_cents),
                euros(g.mean_change_cents),
                euros(g.median_change_cents),
                f"{g.share_paying_more * 100:.0f} %",
            )
        console.print(dist)
    for line in result.explanation:
        console.print(line, highlight=False)
    if chart is not None:
        console.print(f"Graphique (Vega-Lite) écrit : {chart}", highlight=False)
    console.print(_trace_line(inputs), highlight=False)


# -- waste dispute ----------------------------------------------------------------------------


def _print_dispute(dispute: Dispute) -> None:
    table = Table(
        title=f"Contestation {dispute.id} — {DISPUTE_STATUS[dispute.status]}", show_header=False
    )
    table.add_column("")
    table.add_column("")
    table.add_row("Redevable", dispute.payer)
    table.add_row("Ouverte le", f"{dispute.opened_at:%d/%m/%Y %H:%M}")
    table.add_row("Réclamation", dispute.claim)
    table.add_row("Période facturée", dispute.evidence.period)
    table.add_row("Levée", dispute.evidence.lift_id)
    for label, value in evidence_rows(dispute.evidence):
        table.add_row(label, value)
    if dispute.decided_at is not None:
        table.add_row(
            "Décision",
            f"{DISPUTE_STATUS[dispute.status]} par {dispute.agent} le {dispute.decided_at:%d/%m/%Y}",
        )
        table.add_row("Motif", dispute.decision_reason or "—")
        table.add_row("Avoir", euros(dispute.credit_cents))
    if dispute.applied_in:
        table.add_row("Imputé sur", dispute.applied_in)
    console.print(table)


@dispute_app.command("open")
def dispute_open(
    actor: ActorOption,
    payer: Annotated[str, typer.Option("--payer", help="Redevable qui conteste (pseudonyme).")],
    lift: Annotated[str, typer.Option("--lift", help="Identifiant de la levée contestée.")],
    claim: Annotated[str, typer.Option("--claim", help="Ce que dit le redevable.")],
    period: PeriodOption,
    grid: GridOption = None,
    purpose: OptionalPurpose = None,
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Enregistrer la contestation d'une levée, avec sa preuve (horodatage, benne, lieu, poids).

    La preuve vient de la facturation de la période qui a compté la levée : ce que la facture
    perdrait sans elle est l'avoir possible.

    Exemple :
      territoria waste dispute open --as paul.dechets --payer DEC.k1.… --lift L0000001234 \\
          --claim "Mon bac n'était pas sorti" --period 2025-S2
    """
    with handled(as_json), governed(workspace) as (_, _, gov):
        tariff, _ = load_grid_option(grid)
        parsed = checked_period(tariff, period)
        if not claim.strip():
            raise TerritoriaError(
                "la réclamation est vide", code="waste_dispute_claim", field_name="claim"
            )
        acting = acting_purpose(gov, actor, purpose)
        with err_console.status("Lecture gouvernée des bacs et des levées…"):
            inputs = governed_inputs(gov, actor, acting)
        book = GovernedDisputeBook(gov, actor, acting)
        run = bill_run(tariff, parsed, inputs, book)
        try:
            dispute = open_dispute(book, run, payer, lift, claim.strip(), gov.clock())
        finally:
            run.close()
    if as_json:
        print_json(dispute.model_dump(mode="json"))
        return
    _print_dispute(dispute)
    console.print(
        f'Décider : territoria waste dispute decide {dispute.id} --credit|--uphold --reason "…"',
        highlight=False,
    )


@dispute_app.command("decide")
def dispute_decide(
    dispute_id: Annotated[str, typer.Argument(help="Numéro de la contestation (ex. C-00001).")],
    actor: ActorOption,
    reason: Annotated[str, typer.Option("--reason", help="Motif de la décision (obligatoire).")],
    credit: Annotated[
        bool, typer.Option("--credit", help="Accorder un avoir : la levée est retirée.")
    ] = False,
    uphold: Annotated[
        bool, typer.Option("--uphold", help="Maintenir la levée : aucun avoir.")
    ] = False,
    purpose: OptionalPurpose = None,
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Trancher une contestation : avoir (--credit) ou levée maintenue (--uphold), motivé.

    Un avoir figure sur la prochaine facturation (territoria waste bill).

    Exemples :
      territoria waste dispute decide C-00001 --as paul.dechets --credit \\
          --reason "lecture fantôme confirmée par le prestataire"
      territoria waste dispute decide C-00002 --as paul.dechets --uphold \\
          --reason "photo de la benne et pesée concordantes"
    """
    with handled(as_json), governed(workspace) as (_, _, gov):
        if credit == uphold:
            raise TerritoriaError(
                "choisissez --credit (avoir) ou --uphold (levée maintenue)",
                code="waste_decision_missing",
                field_name="decision",
            )
        book = GovernedDisputeBook(gov, actor, acting_purpose(gov, actor, purpose))
        dispute = decide_dispute(
            book, dispute_id, "credit" if credit else "uphold", actor, reason, gov.clock()
        )
    if as_json:
        print_json(dispute.model_dump(mode="json"))
        return
    _print_dispute(dispute)
    if dispute.credit_cents > 0:
        console.print(
            f"Avoir de {euros(dispute.credit_cents)} : il figurera sur la prochaine facture "
            "du redevable (territoria waste bill).",
            highlight=False,
        )


@dispute_app.command("list")
def dispute_list(
    actor: ActorOption,
    purpose: OptionalPurpose = None,
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Lister les contestations : statut, avoir, facture où il a été imputé.

    Exemple :
      territoria waste dispute list --as paul.dechets --json
    """
    with handled(as_json), governed(workspace) as (_, _, gov):
        disputes = GovernedDisputeBook(gov, actor, acting_purpose(gov, actor, purpose)).all()
    if as_json:
        print_json([d.model_dump(mode="json") for d in disputes])
        return
    table = Table(title=f"Contestations de levées ({len(disputes)})")
    for column in (
        "N°",
        "Redevable",
        "Levée",
        "Ouverte le",
        "Réclamation",
        "Statut",
        "Avoir",
        "Imputé",
    ):
        table.add_column(column)
    for d in disputes:
        table.add_row(
            d.id,
            d.payer,
            d.lift_id,
            f"{d.opened_at:%d/%m/%Y}",
            d.claim,
            DISPUTE_STATUS[d.status],
            euros(d.credit_cents) if d.status == "avoir" else "—",
            d.applied_in or "—",
        )
    console.print(table)
