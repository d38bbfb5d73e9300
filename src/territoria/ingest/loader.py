"""Load delivered files into the store: sniff, map, validate, quarantine, commit.

Every file is one load. A load is all or nothing, its ledger row says
``rows_read = rows_loaded + rows_quarantined``, and the same content loaded twice for the same
source changes nothing (``skipped_duplicate``).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from territoria.backends import (
    LoadRecord,
    ReaderSpec,
    StagedLoad,
    StagePlan,
    Store,
    as_duplicate,
    claim_staging,
    stage_file,
)
from territoria.core.contract import SourceContract
from territoria.core.errors import StoreError, TerritoriaError
from territoria.ingest.catalog import ContractCatalog
from territoria.ingest.excel import xlsx_to_csv
from territoria.ingest.mapping import map_columns
from territoria.ingest.sniff import FileInfo, sniff_file, utf8_copy


@dataclass(frozen=True)
class LoadOutcome:
    """A load's ledger record, and the error that made it fail (if it did)."""

    record: LoadRecord
    error: TerritoriaError | None = None

    @property
    def ok(self) -> bool:
        return self.record.status != "failed"

    def as_dict(self) -> dict[str, object]:
        data = self.record.as_dict()
        if self.error is not None:
            data["error"] = self.error.as_dict()
        return data


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def new_load_id(source: str) -> str:
    return f"{source}-{datetime.now(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"


def contract_hash(contract: SourceContract) -> str:
    return hashlib.sha256(contract.model_dump_json(by_alias=True).encode()).hexdigest()[:16]


def _pending(source: str, path: Path, load_id: str = "", contract: str = "") -> LoadRecord:
    """A load about to start (``failed`` until it succeeds)."""
    stamp = now_iso()
    return LoadRecord(
        load_id=load_id,
        source=source,
        file_name=path.name,
        content_hash="",
        status="failed",
        started_at=stamp,
        finished_at=stamp,
        contract_hash=contract,
    )


def ingest_file(
    store: Store, contract: SourceContract, path: Path, *, replace_loaded: bool = False
) -> LoadOutcome:
    """Load one file for one source; never raises for bad input, the outcome says why.

    Content already loaded for the source is skipped, unless ``replace_loaded``: then it is
    loaded again (typically under a corrected contract) and the earlier load is superseded.
    """
    load_id = new_load_id(contract.id)
    base = _pending(contract.id, path, load_id, contract_hash(contract))
    try:
        info = sniff_file(path, contract.file_format)
    except TerritoriaError as exc:
        return _failed(store, replace(base, content_hash=_hash_if_file(path)), exc)
    except OSError as exc:
        return _failed(store, base, _io_error(exc, path, "lecture"))
    base = replace(base, content_hash=info.sha256)
    existing = store.find_loaded(contract.id, info.sha256)
    if existing is not None and not replace_loaded:
        return LoadOutcome(as_duplicate(replace(base, finished_at=now_iso()), existing))
    supersedes = existing.load_id if existing is not None else None
    try:
        with claim_staging(store.staging_dir() / load_id) as work:
            record = _stage_and_commit(store, contract, info, base, work, supersedes)
            return LoadOutcome(record)
    except TerritoriaError as exc:
        return _failed(store, base, exc)
    except OSError as exc:
        return _failed(store, base, _io_error(exc, path, "écriture"))


def _stage_and_commit(
    store: Store,
    contract: SourceContract,
    info: FileInfo,
    base: LoadRecord,
    work: Path,
    supersedes: str | None,
) -> LoadRecord:
    reader, header = _reader_for(info, contract, work)
    mapping = map_columns(contract, header, info.path)
    plan = StagePlan(
        reader=reader,
        fields=mapping.fields,
        missing_values=contract.table_schema.missing_values,
        extra_columns=mapping.extra_columns,
        iso_fallback=info.kind in ("parquet", "xlsx", "json", "ndjson"),
    )
    result = stage_file(plan, work / "stage", load_id=base.load_id, source=contract.id)
    details: dict[str, object] = {"kind": info.kind, "encoding": info.encoding, "size": info.size}
    if info.delimiter:
        details["delimiter"] = info.delimiter
    if mapping.ignored_columns:
        details["ignored_columns"] = mapping.ignored_columns
    if mapping.extra_columns:
        details["kept_columns"] = dict(mapping.extra_columns)
    if mapping.missing_columns:
        details["missing_columns"] = mapping.missing_columns
    if supersedes is not None:
        details["supersedes"] = supersedes
    record = replace(
        base,
        status="loaded",
        rows_loaded=result.rows_loaded,
        rows_quarantined=result.rows_quarantined,
        rows_read=result.rows_loaded + result.rows_quarantined,
        finished_at=now_iso(),
        message=_summary(result.rows_loaded, result.rows_quarantined),
        details=details,
    )
    valid_dir = result.valid_files[0].parent if result.valid_files else None
    staged = StagedLoad(record, valid_dir, result.quarantine, result.columns, supersedes)
    return store.commit_load(staged)


def _reader_for(
    info: FileInfo, contract: SourceContract, work: Path
) -> tuple[ReaderSpec, tuple[str, ...]]:
    if info.kind == "xlsx":
        csv_path = work / "sheet.csv"
        header = xlsx_to_csv(info.path, csv_path, contract.file_format.sheet)
        return ReaderSpec("csv", csv_path, header, ","), header
    header = info.header or ()
    if info.kind == "csv":
        text = utf8_copy(info, work)
        return ReaderSpec("csv", text, header, info.delimiter or ","), header
    if info.kind == "ndjson":
        return ReaderSpec("ndjson", utf8_copy(info, work), header, header_lines=0), header
    if info.kind == "json":
        return ReaderSpec("json", utf8_copy(info, work), header, header_lines=0), header
    return ReaderSpec("parquet", info.path, header, header_lines=0), header


def _summary(loaded: int, quarantined: int) -> str:
    if quarantined:
        return f"{loaded} lignes chargées, {quarantined} en quarantaine"
    return f"{loaded} lignes chargées"


def _hash_if_file(path: Path) -> str:
    """The content hash of a file that could not be read as data (for the ledger), if any."""
    try:
        with path.open("rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError:
        return ""


def _io_error(exc: OSError, path: Path, action: str) -> StoreError:
    return StoreError(
        f"{action} impossible : {exc.strerror or exc}",
        code="store_io_error",
        file=exc.filename or path,
        hint="vérifiez l'espace disque et les droits sur les fichiers ; rien n'a été chargé",
    )


def _failed(store: Store, base: LoadRecord, error: TerritoriaError) -> LoadOutcome:
    """A failed load: written in the ledger when there was a file to speak of."""
    failed = replace(
        base,
        status="failed",
        finished_at=now_iso(),
        message=str(error),
        details={"error": error.as_dict()},
    )
    if failed.content_hash:
        store.record_failed_load(failed)
    return LoadOutcome(failed, error)


def ingest_files(
    store: Store,
    catalog: ContractCatalog,
    items: Iterable[tuple[str, Path]],
    on_done: Callable[[LoadOutcome], None] | None = None,
    *,
    replace_loaded: bool = False,
) -> list[LoadOutcome]:
    """Load several (source, file) pairs in order; an unknown source is a failed outcome."""
    store.recover()
    outcomes = []
    for source, path in items:
        try:
            contract = catalog.get(source)
        except TerritoriaError as exc:
            outcome = LoadOutcome(replace(_pending(source, path), message=str(exc)), exc)
        else:
            outcome = ingest_file(store, contract, path, replace_loaded=replace_loaded)
        outcomes.append(outcome)
        if on_done is not None:
            on_done(outcome)
    return outcomes
