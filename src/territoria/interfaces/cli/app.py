"""Root of the ``territoria`` command: sub-commands are mounted here."""

from __future__ import annotations

import typer

from territoria.interfaces.cli import (
    contracts,
    demo,
    governance,
    identity,
    ingest,
    rights,
    serve,
    tariffs,
    waste,
    workspace,
)
from territoria.interfaces.cli.sandbox import app as sandbox_app

app = typer.Typer(
    name="territoria",
    help=(
        "Territoria : services publics 4P sur les données de la collectivité.\n\n"
        "Démarrage rapide : « territoria demo ./demo » crée un espace de travail, génère un "
        "territoire fictif, charge ses sources et affiche le bilan."
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
app.command("init")(workspace.init)
app.command("demo")(demo.demo)
app.add_typer(contracts.app, name="contracts")
app.command("ingest")(ingest.ingest)
app.command("loads")(ingest.loads)
app.command("quarantine")(ingest.quarantine)
app.command("report")(workspace.report)
app.command("link")(identity.link)
app.add_typer(identity.app, name="identity")
app.add_typer(governance.policy_app, name="policy")
app.add_typer(governance.audit_app, name="audit")
app.add_typer(rights.app, name="rights")
app.command("read")(governance.read)
app.command("synergies")(governance.synergies)
app.add_typer(waste.app, name="waste", help="Redevance incitative des déchets (REOMi / TEOMi).")
app.add_typer(
    tariffs.app, name="tariffs", help="Tarifs sociaux et non-recours aux droits (OpenFisca)."
)
app.command("serve")(serve.serve)
app.add_typer(serve.keys_app, name="api-keys")
app.add_typer(
    sandbox_app, name="sandbox", help="Territoire fictif (bac à sable) pour essayer Territoria."
)


def main() -> None:
    app()
