"""``territoria serve``: the API, the agents' console and the residents' portal.

Also ``territoria api-keys``: keys for delegated operators and integrators (the secret is
shown once; only its hash is kept).
"""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.table import Table

from territoria.core.config import load_workspace
from territoria.interfaces.cli.common import (
    JsonOption,
    WorkspaceOption,
    console,
    handled,
    print_json,
)

__all__ = ["keys_app", "print_accounts", "serve"]

keys_app = typer.Typer(
    help="Clés d'API des opérateurs délégués et des intégrateurs.", no_args_is_help=True
)


def serve(
    workspace: WorkspaceOption = None,
    host: Annotated[str, typer.Option(help="Adresse d'écoute.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port d'écoute.")] = 8000,
    base_url: Annotated[
        str | None,
        typer.Option(
            help="Adresse publique du service (défaut : [web] base_url de territoria.toml, "
            "sinon http://HÔTE:PORT)."
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=16,
            help="Processus de service (1 par cœur au plus ; le magasin embarqué les accepte : "
            "le journal d'audit reste une seule chaîne).",
        ),
    ] = 1,
) -> None:
    """Démarre l'API, la console des agents et l'espace résident (Ctrl+C pour arrêter).

    Sur l'espace de démonstration, la connexion passe par un fournisseur d'identité local
    (comme ProConnect pour les agents et FranceConnect pour les résidents) : aucun service
    extérieur n'est nécessaire. La documentation de l'API est à /api/openapi.json.
    """
    import uvicorn

    from territoria.interfaces.web import create_app, load_web_settings
    from territoria.interfaces.web.app import BASE_URL_ENV

    with handled():
        config = load_workspace(workspace)
        overrides = {"base_url": base_url.rstrip("/")} if base_url else {}
        settings = load_web_settings(config, **overrides)
        if not base_url and settings.base_url == "http://127.0.0.1:8000":
            shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
            settings = load_web_settings(config, base_url=f"http://{shown}:{port}")
        app = create_app(config.root, settings)
        print_accounts(app.state.web)
        console.print(
            f"\n[bold]Territoria est servi sur {settings.base_url}/[/]  (Ctrl+C pour arrêter)",
            highlight=False,
        )
    if workers == 1:
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
        return
    app.state.web.store.close()  # each worker process opens its own
    os.environ["TERRITORIA_WORKSPACE"] = str(config.root.resolve())
    os.environ[BASE_URL_ENV] = settings.base_url
    uvicorn.run(
        "territoria.interfaces.web.app:create_app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
    )


def print_accounts(state: object) -> None:
    """The demo accounts of the local identity provider (agents and a few residents)."""
    from territoria.interfaces.web.oidc.accounts import agent_accounts, resident_accounts
    from territoria.interfaces.web.state import WebState

    assert isinstance(state, WebState)
    local = [a.label for a in state.settings.oidc.values() if a.provider == "local"]
    if not local:
        return
    policy = state.gov.policy
    agents = Table(title="Comptes de démonstration : agents (connexion « ProConnect » locale)")
    for column in ("Compte", "Rôle", "Service"):
        agents.add_column(column)
    seen: set[str] = set()
    for account in agent_accounts(policy):
        agent = policy.agents[account.id]
        role = policy.roles.get(agent.roles[0]) if agent.roles else None
        service = policy.services.get(role.service) if role else None
        agents.add_row(account.id, role.name if role else "—", service.name if service else "—")
        seen.add(role.service if role else "")
    console.print(agents)
    residents = [r for r in resident_accounts(state.settings.local_residents_file) if r.demo]
    if residents:
        table = Table(
            title="Comptes de démonstration : résidents (connexion « FranceConnect » locale)"
        )
        table.add_column("Résident (fictif)")
        table.add_column("Détail")
        for account in residents:
            table.add_row(account.label, account.detail)
        console.print(table)
    console.print(
        "Connexion : « Se connecter » sur la page d'accueil, puis choisir le compte dans le "
        "fournisseur d'identité de démonstration.",
        highlight=False,
    )


@keys_app.command("create")
def create_key(
    actor: Annotated[
        str, typer.Option("--for", help="Acteur : opérateur délégué ou agent (actors.yaml).")
    ],
    label: Annotated[str, typer.Option(help="Libellé (qui l'utilise, pour quoi).")] = "",
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Crée une clé d'API ; son secret n'est affiché qu'une fois."""
    from territoria.governance import load_policy, policy_dir
    from territoria.interfaces.web.principals import ApiKeys
    from territoria.interfaces.web.state import secrets_folder

    with handled(as_json):
        config = load_workspace(workspace)
        policy = load_policy(policy_dir(config.root))
        kind = "operator" if actor in policy.operators else "agent"
        if actor not in policy.operators and actor not in policy.agents:
            from territoria.core.errors import TerritoriaError

            raise TerritoriaError(
                f"acteur inconnu de la politique : {actor!r}",
                code="actor_unknown",
                expected="un opérateur ou un agent de policy/actors.yaml",
            )
        key, secret = ApiKeys(secrets_folder(config.root)).create(actor, kind, label)  # type: ignore[arg-type]
        if as_json:
            print_json({"key_id": key.key_id, "actor": actor, "kind": kind, "secret": secret})
            return
        console.print(f"Clé {key.key_id} pour {actor} ({kind}) :\n\n  {secret}\n", highlight=False)
        console.print("Conservez-la maintenant : elle ne sera plus affichée.", highlight=False)


@keys_app.command("list")
def list_keys(workspace: WorkspaceOption = None, as_json: JsonOption = False) -> None:
    """Liste les clés (identifiant, acteur, création, révocation ; jamais le secret)."""
    from territoria.interfaces.web.principals import ApiKeys
    from territoria.interfaces.web.state import secrets_folder

    with handled(as_json):
        keys = ApiKeys(secrets_folder(load_workspace(workspace).root)).all()
        if as_json:
            print_json([{k: v for k, v in key.__dict__.items() if k != "digest"} for key in keys])
            return
        table = Table(title="Clés d'API")
        for column in ("Identifiant", "Acteur", "Type", "Libellé", "Créée", "Révoquée"):
            table.add_column(column)
        for key in keys:
            table.add_row(
                key.key_id, key.actor, key.kind, key.label, key.created, key.revoked or "—"
            )
        console.print(table)


@keys_app.command("revoke")
def revoke_key(
    key_id: Annotated[
        str, typer.Argument(help="Identifiant de la clé (territoria api-keys list).")
    ],
    workspace: WorkspaceOption = None,
) -> None:
    """Révoque une clé : elle est refusée dès la requête suivante."""
    from territoria.interfaces.web.principals import ApiKeys
    from territoria.interfaces.web.state import secrets_folder

    with handled():
        key = ApiKeys(secrets_folder(load_workspace(workspace).root)).revoke(key_id)
        console.print(f"Clé {key.key_id} ({key.actor}) révoquée le {key.revoked}.", highlight=False)
