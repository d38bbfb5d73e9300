"""``territoria tariffs``: social tariffs and non-take-up, on the governed read.

``screen`` reads the CCAS, school, transport and water records under the purpose
``ccas_non_take_up`` (one governed batch read: the purpose's fields only, objectors left out,
one ledger record naming every person read), builds each household from its records, runs
the OpenFisca screening, places each service use in its local tariff band and ranks the
non-take-up worklist by the monthly amount forgone. ``contact`` records an agent's contact
with a household (a governed case), ``takeup`` reports take-up after outreach, ``notice``
prints the CRPA L311-3-1 notice. Nothing here decides anything about a resident.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from territoria.apps.tariffs import (
    BandAssignment,
    Outreach,
    crpa_notice,
    default_grids,
    explain_household,
    screen,
    screening_summary,
    take_up_report,
)
from territoria.apps.tariffs.explain import euros
from territoria.apps.tariffs.non_take_up import OUTCOME_LABELS
from territoria.core.errors import TerritoriaError
from territoria.interfaces.cli.common import (
    ActorOption,
    JsonOption,
    WorkspaceOption,
    console,
    err_console,
    governed,
    handled,
    print_json,
)
from territoria.interfaces.runs.tariffs import (
    PURPOSE,
    Run,
    band_counts,
    household_contacts,
    notice_data,
    reference_month,
    run_screening,
)
from territoria.interfaces.runs.tariffs_book import GovernedOutreachBook

app = typer.Typer(
    help="Tarifs sociaux et non-recours : repérage OpenFisca, tranches, contacts, recours.",
    no_args_is_help=True,
)

CHANNELS = {
    "téléphone": "telephone",
    "telephone": "telephone",
    "courrier": "courrier",
    "courriel": "courriel",
    "visite": "visite",
    "accueil": "accueil",
}

PurposeOption = Annotated[
    str,
    typer.Option(
        "--purpose", "-p", help="Finalité du registre sous laquelle on agit (repérage du CCAS)."
    ),
]
MonthOption = Annotated[
    str | None,
    typer.Option(
        "--month",
        "-m",
        help="Mois de référence AAAA-MM (défaut : le mois précédent, toujours affiché).",
        show_default=False,
    ),
]


@contextmanager
def _progress(show: bool, label: str) -> Iterator[Any]:
    """An indeterminate progress bar on stderr while OpenFisca computes."""
    if not show:
        yield lambda _text: None
        return
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=True) as progress:
        task = progress.add_task(label, total=None)
        yield lambda text: progress.update(task, description=text)


# -- screen -----------------------------------------------------------------------------------


@app.command("screen")
def screen_command(
    actor: ActorOption,
    purpose: PurposeOption = PURPOSE,
    month: MonthOption = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, help="Foyers affichés dans la liste.")
    ] = 20,
    household: Annotated[
        str | None,
        typer.Option("--household", help="Détail complet du calcul pour un foyer de la liste."),
    ] = None,
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Repérer les droits et tarifs sociaux non perçus, foyers classés par montant mensuel.

    Lit les fichiers du CCAS, de la cantine, des transports et de l'eau sous la finalité
    ccas_non_take_up (les personnes opposées sont exclues ; la lecture est journalisée), calcule
    avec OpenFisca le quotient familial et les droits de chaque foyer, la tranche de chaque
    tarif local, et classe les foyers par montant mensuel non perçu, chaque ligne avec son
    calcul. Une suggestion pour un entretien : rien n'est décidé ni envoyé.

    Exemples :
      territoria tariffs screen --as claire.ccas
      territoria tariffs screen --as claire.ccas --month 2025-11 --limit 50
      territoria tariffs screen --as claire.ccas --household CCAS.k1.…
      territoria tariffs screen --as claire.ccas --json > reperage.json
    """
    with handled(as_json), governed(workspace) as (_, _, gov):
        reference = reference_month(month)
        with _progress(not as_json, "Lecture gouvernée des fiches") as step:
            run = run_screening(gov, actor, purpose, reference, progress=step)
        if household is not None and household not in {h.key for h in run.households}:
            raise _unknown_household(household)
    if household is not None:
        _print_household(run, household, as_json)
        return
    if as_json:
        summary = screening_summary(run.screening, run.bands, run.worklist)
        summary["skipped"] = run.skipped
        print_json(summary)
        return
    _print_screen(run, limit)


def _unknown_household(key: str) -> TerritoriaError:
    return TerritoriaError(
        f"foyer inconnu : {key}",
        code="tariffs_household_unknown",
        hint="reprenez un identifiant de foyer affiché par « territoria tariffs screen » (le "
        "foyer s'est peut-être opposé au repérage, ou n'a aucune fiche lisible)",
    )


def _print_screen(run: Run, limit: int) -> None:
    w = run.worklist
    console.print(
        f"Mois de référence : [bold]{run.reference:%m/%Y}[/] (changer avec --month AAAA-MM). "
        f"{w.computed_with}.",
        highlight=False,
    )
    skipped = sum(run.skipped.values())
    console.print(
        f"{len(run.households)} foyers lus ({run.persons} personnes), "
        f"{len(run.households) - len(w.households_unknown)} évalués, "
        f"{len(w.households_unknown)} non évalués (revenus inconnus des sources)"
        + (f", {skipped} écartés (commune ou adulte inconnus)" if skipped else "")
        + ".",
        highlight=False,
    )
    _print_bands(run.bands)
    table = Table(
        title=f"Liste de repérage : {len(w.entries)} foyers, par montant mensuel non perçu"
    )
    for column in ("Rang", "Foyer", "Non perçu / mois", "Droits et tarifs, et leur calcul"):
        table.add_column(column, overflow="fold")
    for entry in w.entries[:limit]:
        lines = "\n".join(
            f"• {line.label} : "
            f"{euros(line.monthly_amount) if line.monthly_amount is not None else 'sans montant'}"
            f" — {line.how}"
            for line in entry.lines
        )
        table.add_row(str(entry.rank), entry.household_key, euros(entry.monthly_total), lines)
    console.print(table)
    if len(w.entries) > limit:
        console.print(f"… {len(w.entries) - limit} foyers de plus (--limit N).")
    console.print(w.notice, style="italic", highlight=False)


def _print_bands(bands: Sequence[BandAssignment]) -> None:
    rows, gaps = band_counts(bands)
    table = Table(title="Tranches tarifaires selon le quotient familial")
    for column in ("Service", "Tranche", "Usages", "Tranche appliquée trop chère"):
        table.add_column(column)
    for row in rows:
        table.add_row(row.service, row.band, str(row.uses), str(row.higher) if row.higher else "")
    console.print(table)
    for service, total in gaps.items():
        console.print(f"  {service} : {euros(total)} par mois d'écart de tranche au total.")


def _print_household(run: Run, key: str, as_json: bool) -> None:
    figures = explain_household(run.screening, key)
    bands = [b for b in run.bands if b.household_key == key]
    entry = run.worklist.entry(key)
    if as_json:
        print_json(
            {
                "reference_month": run.screening.period,
                "household": key,
                "worklist_entry": entry.model_dump(mode="json") if entry else None,
                "familles": [f.model_dump(mode="json") for f in figures],
                "bands": [b.model_dump(mode="json") for b in bands],
            }
        )
        return
    console.print(
        f"Foyer [bold]{key}[/] — mois de référence {run.reference:%m/%Y}", highlight=False
    )
    if entry is not None:
        console.print(f"Rang {entry.rank} de la liste. {entry.how}", highlight=False)
        for line in entry.lines:
            console.print(f"  • {line.how}", highlight=False)
    else:
        console.print("Ce foyer n'est pas dans la liste de repérage.", highlight=False)
    for famille in figures:
        console.print(
            f"\n[bold]Famille {famille.famille + 1}[/] : {', '.join(famille.members)}",
            highlight=False,
        )
        if not famille.known:
            console.print(f"  Non évaluée : {famille.unknown_reason}", highlight=False)
            continue
        for figure in [*famille.quotients.values(), *famille.entitlements.values()]:
            console.print(f"  {figure.label} : {figure.how}", highlight=False)
            for used in figure.inputs:
                where = f" ({used.provenance.label()})" if used.provenance else ""
                console.print(f"    – {used.name} = {used.value}{where}", highlight=False)
    for b in bands:
        console.print(f"\n{b.service_label} : {b.how}", highlight=False)


# -- outreach ---------------------------------------------------------------------------------


@app.command("contact")
def contact_command(
    household: Annotated[str, typer.Argument(help="Identifiant du foyer (liste de repérage).")],
    actor: ActorOption,
    channel: Annotated[
        str, typer.Option("--channel", help="téléphone, courrier, courriel, visite ou accueil.")
    ],
    outcome: Annotated[
        str,
        typer.Option(
            "--outcome", help="joint, pas_joignable, refus, demande_deposee ou droit_ouvert."
        ),
    ],
    note: Annotated[str, typer.Option("--note", help="Note libre de l'agent.")] = "",
    items: Annotated[
        list[str] | None,
        typer.Option("--item", help="Droit ou tarif concerné (répétable ; défaut : tous)."),
    ] = None,
    when: Annotated[
        str | None, typer.Option("--date", help="Date du contact AAAA-MM-JJ (défaut : ce jour).")
    ] = None,
    purpose: PurposeOption = PURPOSE,
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Noter un contact avec un foyer de la liste et sa suite (journalisé, jamais modifié).

    Exemples :
      territoria tariffs contact CCAS.k1.… --as claire.ccas --channel téléphone --outcome joint
      territoria tariffs contact CCAS.k1.… --as claire.ccas --channel visite \\
          --outcome demande_deposee --item ppa --note "dossier CAF rempli ensemble"
    """
    with handled(as_json), governed(workspace) as (_, _, gov):
        if channel not in CHANNELS:
            raise TerritoriaError(
                f"canal inconnu : {channel}", code="tariffs_channel", expected=", ".join(CHANNELS)
            )
        if outcome not in OUTCOME_LABELS:
            raise TerritoriaError(
                f"suite inconnue : {outcome}",
                code="tariffs_outcome",
                expected=", ".join(OUTCOME_LABELS),
            )
        day = _day(when)
        contacts = household_contacts(gov, actor, purpose)
        if household not in contacts:
            raise _unknown_household(household)
        book = GovernedOutreachBook(gov, actor, purpose, contacts.get)
        outreach = Outreach(
            household_key=household,
            contact_date=day,
            channel=CHANNELS[channel],  # type: ignore[arg-type]
            outcome=outcome,  # type: ignore[arg-type]
            agent=actor,
            items=list(items or []),
            note=note,
        )
        case_id = book.record_case(outreach)
    if as_json:
        print_json({"case_id": case_id, "outreach": outreach.model_dump(mode="json")})
        return
    console.print(
        f"Contact noté ({case_id}) : foyer {household}, {channel}, "
        f"{OUTCOME_LABELS[outcome]}, le {day:%d/%m/%Y}.",
        highlight=False,
    )


def _day(when: str | None) -> date:
    if when is None:
        return date.today()
    try:
        return date.fromisoformat(when)
    except ValueError:
        raise TerritoriaError(
            f"date illisible : {when!r}", code="tariffs_date", expected="AAAA-MM-JJ"
        ) from None


@app.command("takeup")
def takeup_command(
    actor: ActorOption,
    purpose: PurposeOption = PURPOSE,
    month: MonthOption = None,
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Recours après contact : foyers de la liste contactés ou non, et ceux dont le droit est ouvert.

    Rejoue le repérage du mois de référence (défaut : le mois précédent) et le rapproche des
    contacts notés (« territoria tariffs contact »).

    Exemple : territoria tariffs takeup --as claire.ccas --month 2025-11
    """
    with handled(as_json), governed(workspace) as (_, _, gov):
        with _progress(not as_json, "Lecture gouvernée des fiches") as step:
            run = run_screening(gov, actor, purpose, reference_month(month), progress=step)
        book = GovernedOutreachBook(gov, actor, purpose, run.contacts.get)
        report = take_up_report(run.worklist, book)
        contacts = len(list(book.all()))
    if as_json:
        print_json(
            {"reference_month": run.screening.period, "contacts": contacts}
            | report.model_dump(mode="json")
        )
        return
    console.print(f"Mois de référence : {run.reference:%m/%Y} ; {contacts} contact(s) noté(s).")
    table = Table(title="Recours après contact")
    for column in ("Foyers", "Nombre", "Droit ouvert", "Taux"):
        table.add_column(column)
    for label, group in (("contactés", report.contacted), ("non contactés", report.not_contacted)):
        rate = "—" if group.rate is None else f"{100 * group.rate:.1f} %".replace(".", ",")
        table.add_row(label, str(group.households), str(group.taken_up), rate)
    console.print(table)
    for outcome, n in sorted(report.outcomes.items()):
        console.print(f"  {outcome} : {n}", highlight=False)
    console.print(report.how, highlight=False)


@app.command("notice")
def notice_command(
    month: MonthOption = None,
    purpose: PurposeOption = PURPOSE,
    workspace: WorkspaceOption = None,
    fmt: Annotated[
        Literal["text", "json"], typer.Option("--format", "-f", help="text ou json.")
    ] = "text",
) -> None:
    """La notice de l'algorithme de repérage (CRPA art. L311-3-1 et R311-3-1-2).

    Générée à partir des grilles en vigueur le mois de référence et des règles OpenFisca ; ne
    lit aucune donnée personnelle.

    Exemple : territoria tariffs notice --month 2025-11
    """
    with handled(fmt == "json"):
        reference = reference_month(month)
        screening = screen([], reference)
        notice = crpa_notice(screening, default_grids())
        notice = notice.model_copy(update={"data": _notice_data(workspace, purpose)})
    if fmt == "json":
        print_json(notice.model_dump(mode="json"))
    else:
        typer.echo(notice.text())


def _notice_data(workspace: Path | None, purpose_id: str) -> dict[str, list[str]]:
    """The data the purpose's algorithm processes, by source, with the contracts' titles."""
    from territoria.core.config import load_workspace
    from territoria.governance import load_policy, policy_dir
    from territoria.ingest.catalog import ContractCatalog

    config = load_workspace(workspace)
    policy = load_policy(policy_dir(config.root))
    purpose = policy.purposes.get(purpose_id)
    if purpose is None:
        raise TerritoriaError(f"finalité inconnue : {purpose_id}", code="unknown_purpose")
    catalog = ContractCatalog.load(*config.contract_paths)
    return notice_data(purpose, catalog.get)
