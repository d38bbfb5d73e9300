"""Small builders for ingestion tests: a test contract and files in several formats."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from territoria.core.config import WorkspaceConfig

PEOPLE_CONTRACT = {
    "id": "test_people",
    "title": "Personnes (source de test)",
    "owner_service": "library",
    "legal_basis": "public_task",
    "legal_reference": "Source de test",
    "retention": {"duration": "P1Y"},
    "delivery": {"frequency": "monthly"},
    "linkage": {
        "record_id": "person_id",
        "persons": [
            {"slot": "member", "roles": {"family_name": "family_name", "birth_date": "birth_date"}}
        ],
    },
    "schema": {
        "fields": [
            {
                "name": "person_id",
                "category": "identifying",
                "aliases": ["N° personne"],
                "constraints": {"required": True},
            },
            {"name": "family_name", "category": "identifying", "aliases": ["Nom"]},
            {"name": "birth_date", "category": "identifying", "aliases": ["Date de naissance"]},
            {
                "name": "joined",
                "type": "date",
                "format": "%d/%m/%Y",
                "category": "service",
                "aliases": ["Inscription"],
            },
            {
                "name": "amount",
                "type": "number",
                "decimalChar": ",",
                "category": "sensitive",
                "aliases": ["Montant"],
                "constraints": {"minimum": 0},
            },
            {
                "name": "status",
                "category": "service",
                "aliases": ["Statut"],
                "constraints": {"enum": ["actif", "inactif"]},
            },
        ]
    },
}

GOOD_ROWS = [
    ["P1", "Dupont", "03/04/1971", "01/02/2024", "12,50", "actif"],
    ["P2", "Lefèvre", "1980", "15/03/2024", "0", "inactif"],
    ["P3", "Œuvray", "", "28/02/2024", "7", "actif"],
]
HEADER = ["N° personne", "Nom", "Date de naissance", "Inscription", "Montant", "Statut"]


def add_contract(config: WorkspaceConfig, contract: dict[str, object] | None = None) -> None:
    data = contract or PEOPLE_CONTRACT
    path = config.root / "contracts" / f"{data['id']}.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def write_csv(
    path: Path,
    rows: list[list[str]],
    *,
    header: list[str] = HEADER,
    sep: str = ";",
    encoding: str = "utf-8",
) -> Path:
    lines = [sep.join(header), *(sep.join(r) for r in rows)]
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


def ingest_command(
    workspace: WorkspaceConfig, path: Path, source: str = "test_people"
) -> list[str]:
    """``territoria ingest`` as a separate process would run it (JSON output)."""
    return [
        sys.executable, "-m", "territoria", "ingest", source, str(path),
        "--workspace", str(workspace.root), "--json",
    ]  # fmt: skip


def grant_test_people(workspace: WorkspaceConfig, agent: str = "agent.test") -> str:
    """Write a workspace policy (the shipped one plus a purpose on ``test_people``, granted to
    ``agent``) so that governed views of the test source can be exercised; returns the agent."""
    from territoria.governance import install_policy

    folder = install_policy(workspace.root)
    register = yaml.safe_load((folder / "register.yaml").read_text(encoding="utf-8"))
    actors = yaml.safe_load((folder / "actors.yaml").read_text(encoding="utf-8"))
    register["purposes"].append(
        {
            "id": "test_people_management",
            "name": "Gestion de la source de test",
            "service": "library",
            "legal_basis": "public_task",
            "legal_reference": "Source de test",
            "retention": "P1Y",
            "sources": {"test_people": "*"},
        }
    )
    actors["services"].append({"id": "library", "name": "Service de test"})
    actors["roles"].append(
        {
            "id": "test_steward",
            "name": "Agent de test",
            "service": "library",
            "grants": [{"purpose": "test_people_management", "views": ["records", "quarantine"]}],
        }
    )
    actors["agents"].append({"id": agent, "name": "Agent de test", "roles": ["test_steward"]})
    for name, data in (("register.yaml", register), ("actors.yaml", actors)):
        (folder / name).write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return agent
