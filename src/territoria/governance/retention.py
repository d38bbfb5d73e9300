"""Retention engine: the *durée d'utilité administrative* (DUA) and the *sort final* of records.

Municipal records are public archives: when a record's DUA ends, "delete" is not ours to do
alone. The contract of each source says how long a record stays useful
(``retention.duration``, ISO 8601), which field starts the clock (``retention.date_field``) and
its final fate (``retention.final_fate``), the three fates of the archivists' *tableaux de
gestion*:

- ``archive`` (*conserver*): the record becomes ``archived``, kept for ever, readable only
  under an archives purpose;
- ``sort`` (*trier*): the record becomes ``to_sort`` and waits for the archivist's sort
  (:meth:`RetentionEngine.decide_sort`): the records kept become ``archived``, the others are
  eliminated under the visa given;
- ``eliminate`` (*éliminer*): the record becomes ``pending_elimination`` and goes on an
  elimination request (*bordereau d'élimination*). Nothing is eliminated until
  :meth:`RetentionEngine.approve_elimination` records the visa of the director of the
  departmental archives (code du patrimoine L212-2, L212-3, R212-14); the records then become
  ``eliminated`` and an *elimination record* keeps the visa, the approver and the SHA-256 of
  the sorted record ids (``"\\n".join(sorted(ids))``, UTF-8), so the list can be verified later.

Every status but ``active`` hides the record from service purposes (:meth:`hidden_records`,
read by the governed read); ``eliminated`` records are unreadable under every purpose. Statuses
live in ``gov_retention`` (only records that left the active state: active is the default), the
requests in ``gov_elimination_requests``, the elimination records in ``gov_eliminations``;
record ids are the source's internal ids (``linkage.record_id``), not personal data.

This module does **not** physically erase raw rows: raw loads are immutable (Parquet files in
the embedded store, append-only tables on PostgreSQL) and every row stays traceable to its load.
Physical erasure of eliminated rows, once the visa is recorded, is a separate, store-level
compaction step. Records without a parsable date, and sources without ``date_field``, stay
active and are counted as ``undated``: the engine never eliminates by default. Every date is
computed against an explicit ``as_of`` (today by the injectable clock), so tests freeze time.

The engine is here; the dates (durations, reading them from the raw loads) are in
``retention_dates.py`` and the tables and records it returns in ``retention_records.py``, both
re-exported here.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, date, datetime
from typing import Any

from territoria.backends import Store, TableDB, marks
from territoria.core.contract import SourceContract
from territoria.core.errors import GovernanceError
from territoria.governance.retention_dates import _as_days, add_duration, read_record_dates
from territoria.governance.retention_records import (
    ELIMINATION_COLUMNS,
    HIDDEN_STATUSES,
    REQUEST_COLUMNS,
    SCHEMA,
    EliminationRecord,
    EliminationRequest,
    RecordStatus,
    RequestKind,
    RetentionPlan,
    SourceRetention,
    ids_digest,
)

__all__ = [
    "HIDDEN_STATUSES",
    "SCHEMA",
    "EliminationRecord",
    "EliminationRequest",
    "RecordStatus",
    "RequestKind",
    "RetentionEngine",
    "RetentionPlan",
    "SourceRetention",
    "_as_days",
    "add_duration",
    "ids_digest",
    "read_record_dates",
]

_STATUS_OF_FATE: dict[str, RecordStatus] = {
    "archive": "archived",
    "sort": "to_sort",
    "eliminate": "pending_elimination",
}
_CHUNK = 500  # ids per IN (...) list: well under SQLite's bound on parameters


def _chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


# -- the engine ------------------------------------------------------------------------------


def _system_clock() -> datetime:
    return datetime.now(UTC)


class RetentionEngine:
    """Plans and applies the end of DUA of every tracked source of one store.

    >>> engine = RetentionEngine(store, catalog.contracts.values())  # doctest: +SKIP
    >>> requests = engine.apply(engine.plan())  # doctest: +SKIP
    >>> engine.approve_elimination(requests[0].request_id, visa="AD69-2025-014",
    ...                            approved_by="archiviste")  # doctest: +SKIP
    """

    def __init__(
        self,
        store: Store,
        contracts: Iterable[SourceContract],
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._store = store
        self._contracts = {c.id: c for c in contracts}
        self._clock = clock or _system_clock
        self.db: TableDB = store.tables()
        with self.db.transaction():
            self.db.script(SCHEMA)
            self.db.execute(
                "INSERT INTO gov_retention_lock VALUES ('engine', 0) ON CONFLICT DO NOTHING"
            )

    def _now(self) -> str:
        return self._clock().astimezone(UTC).isoformat(timespec="seconds")

    def _lock(self) -> None:
        """Serialise writers on both stores (a row lock on PostgreSQL, the write lock on SQLite)."""
        self.db.execute("UPDATE gov_retention_lock SET version = version + 1 WHERE name = 'engine'")

    # -- planning ----------------------------------------------------------------------------

    def plan(self, as_of: date | None = None) -> RetentionPlan:
        """Which active records have reached the end of their DUA at ``as_of`` (default today)."""
        day = as_of or self._clock().date()
        statuses = self._statuses()
        sources: list[SourceRetention] = []
        due: dict[str, list[str]] = {}
        dates: dict[str, dict[str, str]] = {}
        untracked: list[str] = []
        for contract in self._contracts.values():
            if contract.linkage.record_id is None:
                untracked.append(contract.id)
                continue
            summary, due_dates = self._plan_source(contract, day, statuses.get(contract.id, {}))
            sources.append(summary)
            if due_dates:
                due[contract.id] = sorted(due_dates)
                dates[contract.id] = due_dates
        return RetentionPlan(day.isoformat(), sources, due, sorted(untracked), dates)

    def _plan_source(
        self, contract: SourceContract, day: date, statuses: dict[str, str]
    ) -> tuple[SourceRetention, dict[str, str]]:
        retention = contract.retention
        records, missing = read_record_dates(self._store, contract)
        ends: dict[date, bool] = {}
        due: dict[str, str] = {}
        undated = active = 0
        for record_id, start in records.items():
            if record_id in statuses:
                continue
            if start is None:
                undated += 1
            elif ends.setdefault(start, add_duration(start, retention.duration) <= day):
                due[record_id] = start.isoformat()
                continue
            active += 1
        already: dict[str, int] = dict.fromkeys(HIDDEN_STATUSES, 0)
        for status in statuses.values():
            already[status] += 1
        summary = SourceRetention(
            contract.id, retention.duration, retention.final_fate, retention.date_field,
            active, len(due), undated, already, missing,
        )  # fmt: skip
        return summary, due

    # -- applying ----------------------------------------------------------------------------

    def apply(self, plan: RetentionPlan) -> list[EliminationRequest]:
        """Move the plan's due records to their fate's status, in one transaction.

        Returns the new requests (one per source whose fate is ``eliminate`` or ``sort``).
        Records that left the active state since the plan was made are skipped, so applying
        the same plan twice changes nothing. A plan dated after today is refused.
        """
        if plan.as_of > self._clock().date().isoformat():
            raise GovernanceError(
                f"le plan de conservation est daté du {plan.as_of}, après aujourd'hui",
                code="as_of_in_future",
                hint="une durée d'utilité administrative ne se termine pas par anticipation",
            )
        created: list[EliminationRequest] = []
        now = self._now()
        with self.db.transaction():
            self._lock()
            statuses = self._statuses()
            for source, ids in plan.due.items():
                contract = self._contract(source)
                known = statuses.get(source, {})
                fresh = sorted({r for r in ids if r not in known})
                if fresh:
                    request = self._move(contract, fresh, plan, now)
                    created.extend([request] if request else [])
        return created

    def _move(
        self, contract: SourceContract, ids: list[str], plan: RetentionPlan, now: str
    ) -> EliminationRequest | None:
        fate = contract.retention.final_fate
        request = None
        if fate != "archive":
            request = self._new_request(contract, ids, plan, now)
        self.db.insert(
            "gov_retention",
            ("source", "record_id", "status", "since", "request_id"),
            ((contract.id, r, _STATUS_OF_FATE[fate], now, request and request.request_id)
             for r in ids),
        )  # fmt: skip
        return request

    def _new_request(
        self, contract: SourceContract, ids: list[str], plan: RetentionPlan, now: str
    ) -> EliminationRequest:
        dates = plan.record_dates.get(contract.id, {})
        known = sorted(dates[r] for r in ids if r in dates)
        kind: RequestKind = "sort" if contract.retention.final_fate == "sort" else "eliminate"
        request = EliminationRequest(
            request_id=f"BE-{plan.as_of.replace('-', '')}-{secrets.token_hex(4).upper()}",
            source=contract.id,
            record_ids=tuple(ids),
            count=len(ids),
            oldest=known[0] if known else None,
            newest=known[-1] if known else None,
            reference=contract.retention.reference or contract.legal_reference,
            created_at=now,
            status="pending",
            kind=kind,
            as_of=plan.as_of,
        )
        r = request
        self.db.insert(
            "gov_elimination_requests",
            [c.strip() for c in REQUEST_COLUMNS.split(",")],
            [(r.request_id, r.source, r.kind, r.count, r.oldest, r.newest, r.reference,
              r.as_of, r.created_at, r.status)],
        )  # fmt: skip
        return request

    # -- the archives' visa ------------------------------------------------------------------

    def approve_elimination(
        self, request_id: str, *, visa: str, approved_by: str
    ) -> EliminationRecord:
        """Record the departmental archives' visa and eliminate the request's records."""
        with self.db.transaction():
            self._lock()
            request = self._pending_request(request_id)
            if request.kind == "sort":
                raise GovernanceError(
                    f"la demande {request_id} attend un tri, pas une élimination en bloc",
                    code="request_is_sort",
                    hint="indiquez les dossiers à conserver avec decide_sort",
                )
            _require_visa(visa)
            _require_approver(approved_by)
            return self._eliminate(request, "pending_elimination", visa, approved_by, kept=0)

    def decide_sort(
        self, request_id: str, *, keep: set[str], visa: str, approved_by: str
    ) -> EliminationRecord:
        """Apply the archivist's sort: ``keep`` becomes ``archived``, the rest is eliminated.

        The visa is required as soon as one record is eliminated.
        """
        with self.db.transaction():
            self._lock()
            request = self._pending_request(request_id)
            if request.kind != "sort":
                raise GovernanceError(
                    f"la demande {request_id} est un bordereau d'élimination, pas un tri",
                    code="request_not_sort",
                    hint="approuvez-la avec approve_elimination",
                )
            unknown = keep - set(request.record_ids)
            if unknown:
                raise GovernanceError(
                    f"{len(unknown)} dossier(s) à conserver ne figurent pas dans la demande",
                    code="sort_unknown_records",
                    details={"unknown": sorted(unknown)[:20]},
                )
            _require_approver(approved_by)
            if len(keep) < request.count:
                _require_visa(visa)
            now = self._now()
            for chunk in _chunks(sorted(keep)):
                self.db.execute(
                    "UPDATE gov_retention SET status = 'archived', since = ? "
                    f"WHERE request_id = ? AND record_id IN ({marks(chunk)})",
                    [now, request_id, *chunk],
                )
            return self._eliminate(request, "to_sort", visa, approved_by, kept=len(keep))

    def _eliminate(
        self, request: EliminationRequest, from_status: str, visa: str, by: str, kept: int
    ) -> EliminationRecord:
        now = self._now()
        self.db.execute(
            "UPDATE gov_retention SET status = 'eliminated', since = ? "
            "WHERE request_id = ? AND status = ?",
            [now, request.request_id, from_status],
        )
        ids = self._request_ids(request.request_id, "eliminated")
        record = EliminationRecord(
            elimination_id=f"EL-{secrets.token_hex(6).upper()}",
            request_id=request.request_id,
            source=request.source,
            count=len(ids),
            visa=visa.strip(),
            approved_by=by.strip(),
            approved_at=now,
            digest=ids_digest(ids),
            kept=kept,
        )
        e = record
        self.db.insert(
            "gov_eliminations",
            [c.strip() for c in ELIMINATION_COLUMNS.split(",")],
            [(e.elimination_id, e.request_id, e.source, e.count, e.kept, e.visa,
              e.approved_by, e.approved_at, e.digest)],
        )  # fmt: skip
        self.db.execute(
            "UPDATE gov_elimination_requests SET status = 'approved' WHERE request_id = ?",
            [request.request_id],
        )
        return record

    def _pending_request(self, request_id: str) -> EliminationRequest:
        found = self._requests("WHERE request_id = ?", [request_id])
        if not found:
            raise GovernanceError(
                f"demande d'élimination inconnue : {request_id}", code="request_unknown"
            )
        if found[0].status != "pending":
            raise GovernanceError(
                f"la demande {request_id} a déjà reçu son visa",
                code="already_approved",
                hint="l'élimination est enregistrée ; voir eliminations()",
            )
        return found[0]

    # -- reading -----------------------------------------------------------------------------

    def requests(self, status: str | None = None) -> list[EliminationRequest]:
        """Elimination and sort requests, oldest first (``status``: pending or approved)."""
        if status is None:
            return self._requests("", [])
        return self._requests("WHERE status = ?", [status])

    def _requests(self, where: str, params: list[Any]) -> list[EliminationRequest]:
        rows = self.db.query(
            f"SELECT {REQUEST_COLUMNS} FROM gov_elimination_requests {where} "
            "ORDER BY created_at, request_id",
            params,
        )
        return [
            EliminationRequest(
                request_id=rid, source=src, record_ids=tuple(self._request_ids(rid)),
                count=int(count), oldest=oldest, newest=newest, reference=ref,
                created_at=created, status=status, kind=kind, as_of=as_of,
            )
            for rid, src, kind, count, oldest, newest, ref, as_of, created, status in rows
        ]  # fmt: skip

    def _request_ids(self, request_id: str, status: str | None = None) -> list[str]:
        sql = "SELECT record_id FROM gov_retention WHERE request_id = ?"
        params = [request_id]
        if status is not None:
            sql += " AND status = ?"
            params.append(status)
        return [str(r[0]) for r in self.db.query(sql + " ORDER BY record_id", params)]

    def eliminations(self) -> list[EliminationRecord]:
        """Every elimination record, oldest first."""
        rows = self.db.query(
            f"SELECT {ELIMINATION_COLUMNS} FROM gov_eliminations ORDER BY approved_at, elimination_id"
        )
        return [
            EliminationRecord(
                elimination_id=eid, request_id=rid, source=src, count=int(count), visa=visa,
                approved_by=by, approved_at=at, digest=digest, kept=int(kept),
            )
            for eid, rid, src, count, kept, visa, by, at, digest in rows
        ]  # fmt: skip

    def hidden_records(self, source: str) -> set[str]:
        """Record ids service purposes must not read (every status but ``active``)."""
        rows = self.db.query("SELECT record_id FROM gov_retention WHERE source = ?", [source])
        return {str(r[0]) for r in rows}

    def hidden_among(self, records: dict[str, list[str]]) -> set[tuple[str, str]]:
        """Which of these (source → record ids) service purposes must not read."""
        if not records:
            return set()
        sources = sorted(records)
        rows = self.db.query(
            "SELECT DISTINCT source FROM gov_retention WHERE source IN (" + marks(sources) + ")",
            sources,
        )
        return {
            (str(source), record_id)
            for (source,) in rows
            for record_id in self._hidden_of(str(source), records[str(source)])
        }

    def _hidden_of(self, source: str, record_ids: list[str]) -> set[str]:
        hidden: set[str] = set()
        for start in range(0, len(record_ids), 500):
            chunk = record_ids[start : start + 500]
            rows = self.db.query(
                "SELECT record_id FROM gov_retention WHERE source = ? AND record_id IN ("
                + marks(chunk)
                + ")",
                [source, *chunk],
            )
            hidden.update(str(r[0]) for r in rows)
        return hidden

    def records_with_status(self, source: str, status: RecordStatus) -> set[str]:
        """Record ids of a source in one non-active status (``archived`` for an archives purpose)."""
        rows = self.db.query(
            "SELECT record_id FROM gov_retention WHERE source = ? AND status = ?",
            [source, status],
        )
        return {str(r[0]) for r in rows}

    def status_counts(self) -> dict[str, dict[str, int]]:
        """Per tracked source, how many records are in each status (active read from the raw)."""
        statuses = self._statuses()
        counts: dict[str, dict[str, int]] = {}
        for contract in self._contracts.values():
            if contract.linkage.record_id is None:
                continue
            known = statuses.get(contract.id, {})
            records, _ = read_record_dates(self._store, contract)
            tally = {"active": sum(1 for r in records if r not in known)}
            tally.update(dict.fromkeys(HIDDEN_STATUSES, 0))
            for status in known.values():
                tally[status] += 1
            counts[contract.id] = tally
        return counts

    def _statuses(self) -> dict[str, dict[str, str]]:
        statuses: dict[str, dict[str, str]] = {}
        for source, record_id, status in self.db.query(
            "SELECT source, record_id, status FROM gov_retention"
        ):
            statuses.setdefault(str(source), {})[str(record_id)] = str(status)
        return statuses

    def _contract(self, source: str) -> SourceContract:
        try:
            return self._contracts[source]
        except KeyError:
            raise GovernanceError(
                f"source inconnue dans le plan de conservation : {source}",
                code="source_unknown",
            ) from None


def _require_visa(visa: str) -> None:
    if not visa.strip():
        raise GovernanceError(
            "visa des archives départementales manquant",
            code="visa_missing",
            hint="aucune archive publique ne s'élimine sans le visa préalable du directeur des "
            "archives départementales (code du patrimoine L212-2)",
            field_name="visa",
        )


def _require_approver(approved_by: str) -> None:
    if not approved_by.strip():
        raise GovernanceError(
            "nom de la personne qui enregistre la décision manquant",
            code="approver_missing",
            field_name="approved_by",
        )
