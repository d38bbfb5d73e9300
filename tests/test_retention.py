"""Retention engine: DUA, elimination requests under the archives' visa, sort, archive (P16)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import write_csv
from territoria.backends import Store
from territoria.backends.tables import SQLiteTables
from territoria.core.contract import SourceContract
from territoria.core.errors import GovernanceError
from territoria.governance.retention import (
    RetentionEngine,
    _as_days,
    add_duration,
    ids_digest,
)
from territoria.ingest import ingest_file

TODAY = date(2025, 6, 1)
HEADER = ["N° dossier", "Nom", "Clôture"]


def frozen(day: date = TODAY) -> Any:
    return lambda: datetime(day.year, day.month, day.day, 9, 30, tzinfo=UTC)


def contract(
    source: str = "t_files", fate: str = "eliminate", *, date_field: str | None = "closed"
) -> SourceContract:
    retention: dict[str, Any] = {
        "duration": "P5Y",
        "final_fate": fate,
        "reference": "Cinq ans après la clôture (test)",
    }
    if date_field:
        retention["date_field"] = date_field
    return SourceContract.model_validate(
        {
            "id": source,
            "title": "Dossiers (test)",
            "owner_service": "ccas",
            "legal_basis": "public_task",
            "legal_reference": "Source de test",
            "retention": retention,
            "delivery": {"frequency": "monthly"},
            "linkage": {"record_id": "file_id"},
            "schema": {
                "fields": [
                    {"name": "file_id", "category": "service", "aliases": ["N° dossier"]},
                    {"name": "name", "category": "identifying", "aliases": ["Nom"]},
                    {
                        "name": "closed",
                        "type": "date",
                        "format": "%d/%m/%Y",
                        "category": "service",
                        "aliases": ["Clôture"],
                    },
                ]
            },
        }
    )


ROWS = [
    ["A1", "Dupont", "10/01/2019"],  # + P5Y = 10/01/2024 ≤ as_of: due
    ["A2", "Martin", "01/06/2020"],  # + P5Y = 01/06/2025 = as_of: due (≤)
    ["B1", "Petit", "02/06/2020"],  # + P5Y = 02/06/2025 > as_of: stays active
    ["C1", "Roux", ""],  # no date: undated, stays active
    ["", "Sansnuméro", "01/01/2001"],  # no record id: cannot be tracked
]


def load(store: Store, c: SourceContract, tmp_path: Path, rows: list[list[str]]) -> None:
    name = f"{c.id}_{len(list(tmp_path.iterdir()))}.csv"
    outcome = ingest_file(store, c, write_csv(tmp_path / name, rows, header=HEADER))
    assert outcome.record.status == "loaded", outcome.record.message


def statuses(engine: RetentionEngine) -> list[tuple[Any, ...]]:
    return sorted(engine.db.query("SELECT source, record_id, status FROM gov_retention"))


@pytest.fixture
def eliminating(store: Store, tmp_path: Path) -> Iterator[RetentionEngine]:
    c = contract()
    load(store, c, tmp_path, ROWS)
    yield RetentionEngine(store, [c], clock=frozen())


# -- durations -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "iso", "end"),
    [
        (date(2024, 2, 29), "P1Y", date(2025, 2, 28)),
        (date(2024, 2, 29), "P4Y", date(2028, 2, 29)),
        (date(2024, 1, 31), "P1M", date(2024, 2, 29)),
        (date(2023, 1, 31), "P1M", date(2023, 2, 28)),
        (date(2023, 8, 31), "P18M", date(2025, 2, 28)),
        (date(2023, 12, 15), "P1M", date(2024, 1, 15)),
        (date(2024, 12, 28), "P1W", date(2025, 1, 4)),
        (date(2024, 2, 28), "P1Y1M1D", date(2025, 3, 29)),
        (date(2024, 5, 5), "P0D", date(2024, 5, 5)),
        (date(9000, 1, 1), "P2000Y", date.max),
        (date(9999, 12, 1), "P60D", date.max),
    ],
)
def test_add_duration(start: date, iso: str, end: date) -> None:
    assert add_duration(start, iso) == end


@pytest.mark.parametrize("iso", ["P", "5Y", "PT1H", "P1.5Y", "", "P-1Y"])
def test_add_duration_refuses_what_is_not_a_calendar_duration(iso: str) -> None:
    with pytest.raises(ValueError, match="ISO 8601"):
        add_duration(TODAY, iso)


@given(st.dates(max_value=date(9000, 1, 1)), st.integers(0, 400), st.integers(0, 5000))
def test_add_duration_properties(start: date, months: int, days: int) -> None:
    assert add_duration(start, f"P{days}D") == start + timedelta(days)
    moved = add_duration(start, f"P{months}M")
    assert (moved.year * 12 + moved.month) - (start.year * 12 + start.month) == months
    assert moved.day <= start.day
    assert add_duration(start, f"P{months}M{days}D") == moved + timedelta(days)


def test_dates_come_as_dates_timestamps_or_text() -> None:
    want = [date(2024, 3, 1), None]
    assert _as_days(pa.array(want, pa.date32())).to_pylist() == want
    stamps = pa.array([datetime(2024, 3, 1, 23, 59), None], pa.timestamp("us"))
    assert _as_days(stamps).to_pylist() == want
    text = pa.array(["2024-03-01T23:59:00", "pas une date"])
    assert _as_days(text).to_pylist() == want
    assert _as_days(pa.array([1, 2])).to_pylist() == [None, None]


# -- main flow on every store ----------------------------------------------------------------


def test_plan_counts_due_active_and_undated(eliminating: RetentionEngine) -> None:
    plan = eliminating.plan()
    assert plan.as_of == "2025-06-01" and plan.due == {"t_files": ["A1", "A2"]}
    (summary,) = plan.sources
    assert (summary.due, summary.active, summary.undated, summary.missing_id) == (2, 2, 1, 1)
    assert summary.final_fate == "eliminate" and summary.date_field == "closed"
    assert set(summary.already.values()) == {0}
    assert plan.as_dict()["due"] == {"t_files": ["A1", "A2"]}
    assert eliminating.plan(date(2024, 1, 9)).due == {}


def test_apply_proposes_but_nothing_is_eliminated_before_the_visa(
    eliminating: RetentionEngine, store: Store
) -> None:
    (request,) = eliminating.apply(eliminating.plan())
    assert (request.source, request.record_ids, request.count) == ("t_files", ("A1", "A2"), 2)
    assert (request.oldest, request.newest) == ("2019-01-10", "2020-06-01")
    assert request.status == "pending" and request.kind == "eliminate"
    assert request.reference == "Cinq ans après la clôture (test)"
    assert statuses(eliminating) == [
        ("t_files", "A1", "pending_elimination"),
        ("t_files", "A2", "pending_elimination"),
    ]
    assert eliminating.requests("pending") == [request]
    assert eliminating.eliminations() == []
    assert eliminating.hidden_records("t_files") == {"A1", "A2"}
    counts = eliminating.status_counts()["t_files"]
    assert counts["active"] == 2 and counts["pending_elimination"] == 2
    assert counts["eliminated"] == 0
    assert store.raw_table("t_files").num_rows == 5  # the raw load is untouched


def test_plan_and_apply_again_change_nothing(eliminating: RetentionEngine) -> None:
    plan = eliminating.plan()
    eliminating.apply(plan)
    before = (statuses(eliminating), eliminating.requests())
    again = eliminating.plan()
    assert again.due == {} and again.sources[0].already["pending_elimination"] == 2
    assert eliminating.apply(again) == [] and eliminating.apply(plan) == []
    assert (statuses(eliminating), eliminating.requests()) == before


def test_the_visa_eliminates_and_leaves_an_elimination_record(
    eliminating: RetentionEngine,
) -> None:
    (request,) = eliminating.apply(eliminating.plan())
    record = eliminating.approve_elimination(
        request.request_id, visa="AD69/2025/014", approved_by="Mme Archiviste"
    )
    assert (record.request_id, record.source, record.count) == (request.request_id, "t_files", 2)
    assert (record.visa, record.approved_by) == ("AD69/2025/014", "Mme Archiviste")
    assert record.approved_at == "2025-06-01T09:30:00+00:00"
    assert record.digest == hashlib.sha256(b"A1\nA2").hexdigest() == ids_digest(["A2", "A1"])
    assert eliminating.eliminations() == [record]
    assert eliminating.requests("approved")[0].request_id == request.request_id
    assert {s for *_, s in statuses(eliminating)} == {"eliminated"}
    assert eliminating.hidden_records("t_files") == {"A1", "A2"}
    assert eliminating.plan().due == {}  # eliminated records are never proposed again
    with pytest.raises(GovernanceError) as twice:
        eliminating.approve_elimination(request.request_id, visa="x", approved_by="y")
    assert twice.value.code == "already_approved"
    assert eliminating.eliminations() == [record]


@pytest.mark.parametrize(
    ("visa", "by", "code"),
    [
        ("", "Mme Archiviste", "visa_missing"),
        ("  ", "M. X", "visa_missing"),
        ("V1", " ", "approver_missing"),
    ],
)
def test_approval_needs_a_visa_and_an_approver(
    eliminating: RetentionEngine, visa: str, by: str, code: str
) -> None:
    (request,) = eliminating.apply(eliminating.plan())
    with pytest.raises(GovernanceError) as refused:
        eliminating.approve_elimination(request.request_id, visa=visa, approved_by=by)
    assert refused.value.code == code
    assert {s for *_, s in statuses(eliminating)} == {"pending_elimination"}
    assert eliminating.eliminations() == []


def test_unknown_request_is_refused(eliminating: RetentionEngine) -> None:
    with pytest.raises(GovernanceError) as refused:
        eliminating.approve_elimination("BE-nope", visa="V", approved_by="A")
    assert refused.value.code == "request_unknown"


def test_archive_fate_never_creates_an_elimination(store: Store, tmp_path: Path) -> None:
    c = contract("t_archive", "archive")
    load(store, c, tmp_path, ROWS)
    engine = RetentionEngine(store, [c], clock=frozen())
    assert engine.apply(engine.plan()) == []
    assert engine.records_with_status("t_archive", "archived") == {"A1", "A2"}
    assert engine.hidden_records("t_archive") == {"A1", "A2"}
    assert engine.requests() == [] and engine.eliminations() == []
    assert engine.plan(date(2099, 1, 1)).sources[0].already["archived"] == 2


def test_sort_keeps_some_and_eliminates_the_rest_under_the_visa(
    store: Store, tmp_path: Path
) -> None:
    c = contract("t_sort", "sort")
    load(store, c, tmp_path, [*ROWS, ["A3", "Lefèvre", "05/05/2005"]])
    engine = RetentionEngine(store, [c], clock=frozen())
    (request,) = engine.apply(engine.plan())
    assert request.kind == "sort" and request.record_ids == ("A1", "A2", "A3")
    assert engine.records_with_status("t_sort", "to_sort") == {"A1", "A2", "A3"}
    for call, code in [
        (lambda: engine.approve_elimination(request.request_id, visa="V", approved_by="A"),
         "request_is_sort"),
        (lambda: engine.decide_sort(request.request_id, keep={"Z9"}, visa="V", approved_by="A"),
         "sort_unknown_records"),
        (lambda: engine.decide_sort(request.request_id, keep={"A2"}, visa="", approved_by="A"),
         "visa_missing"),
    ]:  # fmt: skip
        with pytest.raises(GovernanceError) as refused:
            call()
        assert refused.value.code == code
    record = engine.decide_sort(request.request_id, keep={"A2"}, visa="AD-7", approved_by="A")
    assert (record.count, record.kept, record.visa) == (2, 1, "AD-7")
    assert record.digest == ids_digest(["A1", "A3"])
    assert engine.records_with_status("t_sort", "archived") == {"A2"}
    assert engine.records_with_status("t_sort", "eliminated") == {"A1", "A3"}
    assert engine.hidden_records("t_sort") == {"A1", "A2", "A3"}
    with pytest.raises(GovernanceError) as twice:
        engine.decide_sort(request.request_id, keep=set(), visa="V", approved_by="A")
    assert twice.value.code == "already_approved"


def test_keeping_everything_needs_no_visa(store: Store, tmp_path: Path) -> None:
    c = contract("t_sort", "sort")
    load(store, c, tmp_path, ROWS)
    engine = RetentionEngine(store, [c], clock=frozen())
    (request,) = engine.apply(engine.plan())
    record = engine.decide_sort(request.request_id, keep={"A1", "A2"}, visa="", approved_by="A")
    assert (record.count, record.kept) == (0, 2)
    assert engine.records_with_status("t_sort", "archived") == {"A1", "A2"}


def test_the_newest_delivery_of_a_record_gives_its_date(store: Store, tmp_path: Path) -> None:
    c = contract()
    load(store, c, tmp_path, [["R1", "Dupont", ""], ["R2", "Durand", "01/01/2010"]])
    load(store, c, tmp_path, [["R1", "Dupont", "01/01/2010"], ["R2", "Durand", ""]])
    engine = RetentionEngine(store, [c], clock=frozen())
    plan = engine.plan()
    assert plan.due == {"t_files": ["R1"]}  # R1 closed since; R2 reopened: undated
    assert plan.sources[0].undated == 1


def test_undated_and_untracked_sources_stay_active(store: Store, tmp_path: Path) -> None:
    undated = contract("t_undated", date_field=None)
    load(store, undated, tmp_path, ROWS)
    untracked = SourceContract.model_validate(
        {**contract("t_untracked").model_dump(by_alias=True), "linkage": {}}
    )
    engine = RetentionEngine(store, [undated, untracked], clock=frozen(date(2099, 1, 1)))
    plan = engine.plan(date(2099, 1, 1))
    assert plan.due == {} and plan.untracked == ["t_untracked"]
    (summary,) = plan.sources
    assert (summary.active, summary.undated, summary.due) == (4, 4, 0)
    assert engine.apply(plan) == [] and statuses(engine) == []


def test_a_plan_dated_after_today_is_refused(eliminating: RetentionEngine) -> None:
    with pytest.raises(GovernanceError) as refused:
        eliminating.apply(eliminating.plan(date(2030, 1, 1)))
    assert refused.value.code == "as_of_in_future"
    assert statuses(eliminating) == []


def test_a_plan_for_an_unknown_source_is_refused(
    eliminating: RetentionEngine, store: Store
) -> None:
    plan = eliminating.plan()
    with pytest.raises(GovernanceError) as refused:
        RetentionEngine(store, [], clock=frozen()).apply(plan)
    assert refused.value.code == "source_unknown"


def test_a_datetime_field_starts_the_clock_on_its_day(store: Store, tmp_path: Path) -> None:
    data = contract().model_dump(by_alias=True)
    data["schema"]["fields"][2].update(type="datetime", format="%Y-%m-%dT%H:%M:%S")
    c = SourceContract.model_validate(data)
    rows = [["T1", "Dupont", "2020-06-01T23:59:59"], ["T2", "Durand", "2020-06-02T00:00:00"]]
    load(store, c, tmp_path, rows)
    assert RetentionEngine(store, [c], clock=frozen()).plan().due == {"t_files": ["T1"]}


@pytest.mark.parametrize(
    ("date_field", "message"),
    [("nowhere", "champ inconnu"), ("name", "pas de type date")],
)
def test_the_contract_checks_its_retention_date_field(date_field: str, message: str) -> None:
    data = contract().model_dump(by_alias=True)
    data["retention"]["date_field"] = date_field
    with pytest.raises(ValueError, match=message):
        SourceContract.model_validate(data)


# -- property: after plan + apply, exactly the records past their DUA left the active state ----


class MemoryStore:
    """Just what the engine reads of a store: one load of raw rows and a tables session."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows
        self.db = SQLiteTables(Path(":memory:"))

    def loads(self, source: str, limit: int = 1000) -> list[Any]:
        return [SimpleNamespace(load_id="L1")]

    def raw_batches(
        self, source: str, columns: list[str] | None = None, batch_size: int = 100_000
    ) -> Iterator[pa.RecordBatch]:
        schema = pa.schema(
            [("_load_id", pa.string()), ("file_id", pa.string()), ("closed", pa.date32())]
        )
        yield pa.RecordBatch.from_pylist([{"_load_id": "L1", **r} for r in self.rows], schema)

    def tables(self) -> SQLiteTables:
        return self.db


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    days=st.lists(st.none() | st.dates(date(1990, 1, 1), date(2030, 12, 31)), max_size=40),
    as_of=st.dates(date(1995, 1, 1), date(2035, 12, 31)),
    duration=st.sampled_from(["P1Y", "P5Y", "P18M", "P1M", "P2W", "P30D", "P10Y"]),
    fate=st.sampled_from(["eliminate", "archive", "sort"]),
)
def test_no_record_past_its_dua_stays_active_and_none_before_leaves(
    days: list[date | None], as_of: date, duration: str, fate: str
) -> None:
    c = contract(fate=fate)
    c = c.model_copy(update={"retention": c.retention.model_copy(update={"duration": duration})})
    store = MemoryStore([{"file_id": f"R{i}", "closed": d} for i, d in enumerate(days)])
    engine = RetentionEngine(store, [c], clock=frozen(as_of))  # type: ignore[arg-type]
    engine.apply(engine.plan(as_of))
    hidden = engine.hidden_records("t_files")
    for i, d in enumerate(days):
        past_dua = d is not None and add_duration(d, duration) <= as_of
        assert (f"R{i}" in hidden) == past_dua, (d, duration, as_of)
    assert engine.plan(as_of).due == {}
    store.db.close()
