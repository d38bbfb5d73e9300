"""Generate the CLI reference (``docs/cli.md``) from the commands themselves.

    python -m territoria.interfaces.cli.reference > docs/cli.md

A test fails when the committed reference differs from what the code says.
"""

from __future__ import annotations

import typer
from typer.cli import get_docs_for_click

from territoria.interfaces.cli.app import app

_PREAMBLE = (
    "<!-- Généré par `python -m territoria.interfaces.cli.reference > docs/cli.md` ;"
    " ne pas modifier à la main. -->\n\n"
)


def render_reference() -> str:
    command = typer.main.get_command(app)
    with typer.Context(command, info_name="territoria") as ctx:
        docs = get_docs_for_click(
            obj=command,
            ctx=ctx,  # type: ignore[arg-type]
            name="territoria",
            title="Référence de la ligne de commande",
        )
    return _PREAMBLE + docs.strip() + "\n"


if __name__ == "__main__":
    print(render_reference(), end="")
