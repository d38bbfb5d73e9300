"""Ingestion: source contracts, file sniffing, vectorised validation, quarantine, load ledger."""

from territoria.ingest.catalog import ContractCatalog, builtin_contracts_dir
from territoria.ingest.loader import LoadOutcome, ingest_file, ingest_files
from territoria.ingest.quarantine import export_quarantine
from territoria.ingest.sandbox_manifest import sandbox_items

__all__ = [
    "ContractCatalog",
    "LoadOutcome",
    "builtin_contracts_dir",
    "export_quarantine",
    "ingest_file",
    "ingest_files",
    "sandbox_items",
]
