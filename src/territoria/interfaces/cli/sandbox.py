"""``territoria sandbox``: generate the fictitious territory and its service exports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from territoria.sandbox import NOISE_LEVELS, Options, generate

app = typer.Typer(
    help="Bac à sable : une métropole fictive et les fichiers de ses services.",
    no_args_is_help=True,
)


@app.callback()
def _group() -> None:
    """Bac à sable : une métropole fictive et les fichiers de ses services."""


def _noise_factor(value: str) -> float:
    if value in NOISE_LEVELS:
        return NOISE_LEVELS[value]
    try:
        factor = float(value.replace(",", "."))
    except ValueError:
        factor = -1.0
    if factor < 0:
        levels = ", ".join(NOISE_LEVELS)
        raise typer.BadParameter(
            f"niveau inconnu « {value} » (attendu : {levels} ou un facteur ≥ 0)"
        )
    return factor


@app.command("generate")
def generate_command(
    out: Annotated[Path, typer.Option("--out", help="Dossier où écrire les fichiers.")],
    population: Annotated[int, typer.Option(help="Nombre d'habitants à générer.", min=1)] = 10000,
    seed: Annotated[
        int, typer.Option(help="Graine : la même graine donne les mêmes fichiers.")
    ] = 42,
    noise: Annotated[
        str, typer.Option(help="Bruit des données : aucun, faible, realiste, fort, ou un facteur.")
    ] = "realiste",
    year: Annotated[int, typer.Option(help="Année de référence.")] = 2025,
    lift_density: Annotated[
        float, typer.Option(help="Facteur du nombre de levées de bacs.", min=0)
    ] = 1.0,
    hourly_days: Annotated[
        int,
        typer.Option(help="Jours de relevés horaires des compteurs communicants.", min=0, max=365),
    ] = 14,
    force: Annotated[
        bool, typer.Option("--force", help="Écrire même si le dossier n'est pas vide.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Afficher le manifeste en JSON.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="Sans barre de progression.")] = False,
) -> None:
    """Générer le territoire fictif (Métropole de Lyon) et les exports de chaque service."""
    factor = _noise_factor(noise)
    if out.exists() and not out.is_dir():
        typer.secho(f"Erreur : {out} existe et n'est pas un dossier.", fg="red", err=True)
        raise typer.Exit(2)
    if out.is_dir() and any(out.iterdir()) and not force:
        typer.secho(
            f"Erreur : le dossier {out} n'est pas vide (ajoutez --force pour écrire quand même).",
            fg="red",
            err=True,
        )
        raise typer.Exit(2)
    options = Options(
        reference_year=year, noise=factor, lift_density=lift_density, hourly_days=hourly_days
    )
    try:
        manifest = generate(
            population, seed, out, progress=not quiet and not as_json, options=options
        )
    except OSError as exc:
        typer.secho(f"Erreur d'écriture : {exc.strerror} ({exc.filename})", fg="red", err=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(manifest.data, ensure_ascii=False, indent=2))
        return
    data = manifest.data
    typer.echo(f"{data['persons']} habitants, {data['households']} ménages écrits dans {out}")
    for name, info in data["files"].items():
        typer.echo(f"  {name} : {info['rows']} lignes")
