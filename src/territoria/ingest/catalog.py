"""The contracts a workspace knows: those shipped with Territoria, then the workspace's own."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from territoria.core.contract import SourceContract, load_contract
from territoria.core.errors import ContractError


def builtin_contracts_dir() -> Path:
    """Folder of the contracts shipped with the package (every sandbox source)."""
    return Path(str(resources.files("territoria.ingest") / "contracts"))


@dataclass(frozen=True)
class ContractCatalog:
    """Contracts by source id; a workspace contract overrides a built-in one of the same id."""

    contracts: dict[str, SourceContract]
    origins: dict[str, Path]

    @classmethod
    def load(cls, *extra_dirs: Path) -> ContractCatalog:
        contracts: dict[str, SourceContract] = {}
        origins: dict[str, Path] = {}
        for folder in (builtin_contracts_dir(), *extra_dirs):
            if not folder.is_dir():
                continue
            for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
                contract = load_contract(path)
                contracts[contract.id] = contract
                origins[contract.id] = path
        return cls(contracts, origins)

    def get(self, source_id: str) -> SourceContract:
        try:
            return self.contracts[source_id]
        except KeyError:
            known = ", ".join(sorted(self.contracts)) or "aucune"
            raise ContractError(
                f"source inconnue : {source_id!r}",
                code="source_unknown",
                expected=f"une source déclarée par un contrat ({known})",
                hint="une collectivité ajoute une source en écrivant son contrat YAML "
                "dans le dossier contracts/ de l'espace de travail",
            ) from None

    def __iter__(self) -> Iterator[SourceContract]:
        return iter(sorted(self.contracts.values(), key=lambda c: c.id))

    def __len__(self) -> int:
        return len(self.contracts)
