"""The audit ledger on every store: appends and filters, the tamper suite, concurrency, anchors.

The tamper suite edits the tables the way someone with write access to the database could, and
checks the verifier names the record concerned. Two edits cannot be seen from inside the store
(a truncated tail with a rewritten head, a chain re-hashed after an edit): the tests show that
they pass without an anchor and are caught with one, which is why heads are anchored outside.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from territoria.backends import Store, TableDB, open_store
from territoria.backends.tables import PostgresTables
from territoria.core.config import WorkspaceConfig
from territoria.core.errors import GovernanceError
from territoria.governance import ledger as ledger_module
from territoria.governance.ledger import (
    GENESIS,
    AuditEntry,
    AuditLedger,
    LedgerHead,
    VerifyReport,
    canonical,
    chain_hash,
    load_anchors,
    save_anchor,
)

START = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
COLUMNS = (
    "seq, at, kind, actor, service, role, purpose, legal_basis, view, persons, fields, "
    "decision, rule, reason, defer_until, prev_hash, hash"
)


class Clock:
    """A clock that moves one minute per reading."""

    def __init__(self) -> None:
        self.now = START - timedelta(minutes=1)

    def __call__(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now


def entry(number: int, **changes: Any) -> AuditEntry:
    base = AuditEntry(
        kind="read",
        actor=f"agent:{number % 3}",
        service="ccas",
        role="instructeur",
        purpose="ccas.instruction",
        legal_basis="public_task",
        view="person_360",
        persons=(f"P{number:04d}",),
        fields=("ccas.revenus", "eau.adresse"),
        rule="ccas.instruction.lecture",
        reason="Accès autorisé : dossier suivi",
    )
    return replace(base, **changes)


@pytest.fixture
def ledger(store: Store) -> Iterator[AuditLedger]:
    db = store.tables()
    yield AuditLedger(db, clock=Clock())
    db.close()


def _row(db: TableDB, seq: int) -> tuple[Any, ...]:
    return db.query(f"SELECT {COLUMNS} FROM audit_ledger WHERE seq = ?", [seq])[0]


def _insert_row(db: TableDB, values: tuple[Any, ...]) -> None:
    db.execute(f"INSERT INTO audit_ledger ({COLUMNS}) VALUES ({', '.join('?' * 17)})", values)


# -- appending and reading ------------------------------------------------------------------


def test_an_empty_ledger_has_the_genesis_head_and_verifies(ledger: AuditLedger) -> None:
    assert ledger.head() == LedgerHead(0, GENESIS, "")
    report = ledger.verify()
    assert report.ok and report.count == 0 and report.head == ledger.head()


def test_records_are_chained_from_genesis(ledger: AuditLedger) -> None:
    first = ledger.append(entry(1))
    more = ledger.append_many([entry(2), entry(3)])
    assert [r.seq for r in (first, *more)] == [1, 2, 3]
    assert first.prev_hash == GENESIS
    assert [r.prev_hash for r in more] == [first.hash, more[0].hash]
    for record in (first, *more):
        stored = _row(ledger.db, record.seq)
        assert chain_hash(record.prev_hash, canonical(stored[:15])) == record.hash == stored[16]
    head = ledger.head()
    assert (head.count, head.hash, head.at) == (3, more[-1].hash, more[-1].at)
    assert ledger.verify().ok


def test_persons_are_stored_sorted_and_unique_and_defer_until_round_trips(
    ledger: AuditLedger,
) -> None:
    ledger.append(entry(1, persons=("P2", "P1", "P2"), defer_until="2030-06-01"))
    ledger.append(entry(2, persons=(), defer_until=""))
    newest, oldest = ledger.records()
    assert oldest.entry.persons == ("P1", "P2") and oldest.entry.defer_until == "2030-06-01"
    assert newest.entry.persons == () and newest.entry.defer_until is None
    assert _row(ledger.db, 1)[9] == '["P1","P2"]'
    assert sorted(ledger.db.query("SELECT seq, person_key FROM audit_subjects")) == [
        (1, "P1"),
        (1, "P2"),
    ]
    assert oldest.entry == entry(1, persons=("P1", "P2"), defer_until="2030-06-01")


def test_unusual_text_hashes_the_same_in_the_database_and_in_python(ledger: AuditLedger) -> None:
    ledger.append(
        entry(
            1,
            actor="résident:P0001",
            reason='Refusé : « hors finalité » à 100 %s\nligne 2 \\ "guillemets" 🏠',
            fields=("école.prénom", 'x"y'),
            persons=("Pé-1", "P,2"),
            rule="",
            service="",
        )
    )
    ledger.append(entry(2, decision="deny", kind="policy", purpose="", legal_basis=""))
    assert ledger.verify().ok


def _varied(ledger: AuditLedger) -> None:
    ledger.append_many(
        [
            entry(1),
            entry(2, decision="deny", reason="Refusé : finalité absente"),
            entry(3, persons=("P0001", "P0003")),
            entry(4, kind="write", purpose="eau.facturation", actor="agent:9"),
            entry(5, kind="policy", persons=(), purpose="", view="policy.reload"),
        ]
    )
    ledger.append(entry(6, persons=("P0001",)))  # one minute later than the batch


def test_records_and_count_filter_newest_first(ledger: AuditLedger) -> None:
    _varied(ledger)
    assert [r.seq for r in ledger.records()] == [6, 5, 4, 3, 2, 1]
    cases: list[tuple[dict[str, Any], list[int]]] = [
        ({"person": "P0001"}, [6, 3, 1]),
        ({"person": "P0001", "decision": "allow", "limit": 1, "offset": 1}, [3]),
        ({"actor": "agent:9"}, [4]),
        ({"purpose": "eau.facturation"}, [4]),
        ({"decision": "deny"}, [2]),
        ({"kind": "policy"}, [5]),
        ({"since": "2025-03-01T09:01:00+00:00"}, [6]),
        ({"until": "2025-03-01T09:00:00+00:00"}, [5, 4, 3, 2, 1]),
        ({"since": "2025-03-01", "until": "2025-03-01"}, [6, 5, 4, 3, 2, 1]),
        ({"since": "2025-03-01T10:01:00+01:00"}, [6]),
        ({"until": "2025-02-28"}, []),
        ({"limit": 2, "offset": 1}, [5, 4]),
    ]
    for filters, seqs in cases:
        assert [r.seq for r in ledger.records(**filters)] == seqs, filters
        counted = {k: v for k, v in filters.items() if k not in ("limit", "offset")}
        if "limit" not in filters:
            assert ledger.count(**counted) == len(seqs), filters


def test_an_invalid_filter_date_is_refused(ledger: AuditLedger) -> None:
    with pytest.raises(GovernanceError) as caught:
        ledger.records(since="hier")
    assert caught.value.field_name == "since"


@pytest.mark.parametrize(
    ("changes", "field_name"),
    [
        ({"kind": "lecture"}, "kind"),
        ({"decision": "peut-être"}, "decision"),
        ({"reason": "a\x1fb"}, "reason"),
        ({"persons": ('P"1',)}, "persons"),
        ({"persons": ("",)}, "persons"),
        ({"defer_until": "bientôt"}, "defer_until"),
    ],
)
def test_invalid_entries_are_refused_and_nothing_is_written(
    ledger: AuditLedger, changes: dict[str, Any], field_name: str
) -> None:
    ledger.append(entry(1))
    with pytest.raises(GovernanceError) as caught:
        ledger.append_many([entry(2), entry(3, **changes)])
    assert caught.value.code == "audit_entry_invalid"
    assert caught.value.field_name == field_name
    assert ledger.count() == 1 and ledger.head().count == 1


def test_a_clean_ledger_of_ten_thousand_records_verifies(ledger: AuditLedger) -> None:
    for start in range(0, 10_000, 1_000):
        ledger.append_many([entry(i) for i in range(start, start + 1_000)])
    calls: list[tuple[int, int]] = []
    report = ledger.verify(progress=lambda done, total: calls.append((done, total)))
    assert report.ok, report.problems[:3]
    assert report.count == 10_000 and report.head == ledger.head()
    assert calls[-1] == (10_000, 10_000)
    assert json.loads(json.dumps(report.as_dict()))["count"] == 10_000


# -- the tamper suite -----------------------------------------------------------------------
# Each case edits a ledger of ten records and returns the seq of the first problem expected.


def _ten(ledger: AuditLedger) -> None:
    ledger.append_many([entry(i) for i in range(1, 5)])
    ledger.append(entry(5, persons=("P0005", "P0050"), defer_until="2030-01-01", service="eau"))
    ledger.append_many([entry(i) for i in range(6, 11)])


CHANGED_VALUES: dict[str, object] = {
    "seq": 1000,
    "at": "2025-01-01T00:00:00.000000+00:00",
    "kind": "write",
    "actor": "agent:intrus",
    "service": "ccas",
    "role": "directeur",
    "purpose": "autre.finalite",
    "legal_basis": "consent",
    "view": "search",
    "persons": '["P0005"]',
    "fields": "[]",
    "decision": "deny",
    "rule": "autre.regle",
    "reason": "Accès autorisé : dossier suivi.",
    "defer_until": None,
    "prev_hash": "f" * 64,
    "hash": "e" * 64,
}


def _in_parallel(monkeypatch: pytest.MonkeyPatch, workers: int = 3) -> None:
    """Verify any ledger in ``workers`` parts at once, by pages of three records."""
    monkeypatch.setattr(ledger_module, "PAGE_ROWS", 3)
    monkeypatch.setattr(ledger_module, "PARALLEL_MIN", 1)
    monkeypatch.setattr(ledger_module, "WORKERS", workers)


@pytest.fixture(params=["one_page", "pages_of_3", "parallel"])
def paged(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Verify in one page, in pages of three records (so page boundaries fall inside), or in
    three parts checked by worker processes (parts and pages end inside: on the embedded store;
    PostgreSQL is verified in one session)."""
    if request.param == "parallel":
        _in_parallel(monkeypatch)
    else:
        monkeypatch.setattr(
            ledger_module, "PAGE_ROWS", 10_000 if request.param == "one_page" else 3
        )


def test_small_pages_verify_a_clean_ledger(ledger: AuditLedger, paged: None) -> None:
    ledger.append_many([entry(i, persons=(f"P{i}",) * (i % 3)) for i in range(50)])
    calls: list[int] = []
    report = ledger.verify(progress=lambda done, total: calls.append(done))
    assert report.ok and report.count == 50 and calls == sorted(calls) and calls[-1] == 50


@pytest.mark.parametrize("column", list(CHANGED_VALUES))
def test_modifying_any_column_is_found_at_its_record(
    ledger: AuditLedger, paged: None, column: str
) -> None:
    _ten(ledger)
    ledger.db.execute(
        f"UPDATE audit_ledger SET {column} = ? WHERE seq = 5", [CHANGED_VALUES[column]]
    )
    report = ledger.verify()
    assert not report.ok
    assert report.problems[0].seq == 5, report.problems


def _shift_up_from(db: TableDB, seq: int) -> None:
    """Make room at ``seq`` (two steps, so no primary key is ever duplicated)."""
    for table in ("audit_ledger", "audit_subjects"):
        db.execute(f"UPDATE {table} SET seq = -seq WHERE seq >= ?", [seq])
        db.execute(f"UPDATE {table} SET seq = 1 - seq WHERE seq < 0")


def _forged(db: TableDB, seq: int, *, rehash: bool) -> tuple[Any, ...]:
    """A copy of the record before ``seq``, renumbered, chained to it (hash right or wrong)."""
    previous = _row(db, seq - 1)
    values = (seq, *previous[1:3], "agent:faussaire", *previous[4:15])
    digest = chain_hash(previous[16], canonical(values)) if rehash else "a" * 64
    return (*values, previous[16], digest)


def insert_before_first(ledger: AuditLedger) -> int:
    row = _row(ledger.db, 1)
    _insert_row(ledger.db, (0, *row[1:]))
    return 0


def delete_middle(ledger: AuditLedger) -> int:
    ledger.db.execute("DELETE FROM audit_ledger WHERE seq = 5")
    ledger.db.execute("DELETE FROM audit_subjects WHERE seq = 5")
    return 5


def insert_at_end(ledger: AuditLedger) -> int:
    _insert_row(ledger.db, _forged(ledger.db, 11, rehash=False))
    return 11


def insert_in_middle(ledger: AuditLedger) -> int:
    _shift_up_from(ledger.db, 5)
    forged = _forged(ledger.db, 5, rehash=False)
    _insert_row(ledger.db, forged)
    ledger.db.execute("INSERT INTO audit_subjects (seq, person_key) VALUES (5, 'P0004')")
    return 5


def insert_rehashed_in_middle(ledger: AuditLedger) -> int:
    """A forged record whose own hash is right: the next record's link breaks."""
    _shift_up_from(ledger.db, 5)
    _insert_row(ledger.db, _forged(ledger.db, 5, rehash=True))
    ledger.db.execute("INSERT INTO audit_subjects (seq, person_key) VALUES (5, 'P0004')")
    return 6


def swap_two(ledger: AuditLedger) -> int:
    for table in ("audit_ledger", "audit_subjects"):
        ledger.db.execute(f"UPDATE {table} SET seq = -1 WHERE seq = 4")
        ledger.db.execute(f"UPDATE {table} SET seq = 4 WHERE seq = 5")
        ledger.db.execute(f"UPDATE {table} SET seq = 5 WHERE seq = -1")
    return 4


def truncate_tail(ledger: AuditLedger) -> int:
    ledger.db.execute("DELETE FROM audit_ledger WHERE seq > 7")
    ledger.db.execute("DELETE FROM audit_subjects WHERE seq > 7")
    return 8


def subject_added(ledger: AuditLedger) -> int:
    ledger.db.execute("INSERT INTO audit_subjects (seq, person_key) VALUES (6, 'P9999')")
    return 6


def subject_removed(ledger: AuditLedger) -> int:
    ledger.db.execute("DELETE FROM audit_subjects WHERE seq = 5 AND person_key = 'P0050'")
    return 5


def subject_orphan(ledger: AuditLedger) -> int:
    ledger.db.execute("INSERT INTO audit_subjects (seq, person_key) VALUES (999, 'P0001')")
    return 999


def subject_moved(ledger: AuditLedger) -> int:
    ledger.db.execute("UPDATE audit_subjects SET seq = 9 WHERE seq = 3")
    return 3


def subject_keys_merged(ledger: AuditLedger) -> int:
    """Two index rows replaced by one whose key reads like both: neither person finds it."""
    ledger.db.execute("DELETE FROM audit_subjects WHERE seq = 5")
    ledger.db.execute("INSERT INTO audit_subjects (seq, person_key) VALUES (5, 'P0005\",\"P0050')")
    return 5


def head_rewritten(ledger: AuditLedger) -> int:
    ledger.db.execute("UPDATE audit_head SET hash = ?", ["d" * 64])
    return 10


STRUCTURAL: dict[str, Callable[[AuditLedger], int]] = {
    f.__name__: f
    for f in (
        insert_before_first,
        delete_middle,
        insert_at_end,
        insert_in_middle,
        insert_rehashed_in_middle,
        swap_two,
        truncate_tail,
        subject_added,
        subject_removed,
        subject_orphan,
        subject_moved,
        subject_keys_merged,
        head_rewritten,
    )
}


@pytest.mark.parametrize("case", list(STRUCTURAL))
def test_structural_tampering_is_found_at_its_record(
    ledger: AuditLedger, paged: None, case: str
) -> None:
    _ten(ledger)
    expected = STRUCTURAL[case](ledger)
    report = ledger.verify()
    assert not report.ok
    assert report.problems[0].seq == expected, report.problems
    assert all(p.message for p in report.problems)


def test_a_missing_head_row_is_reported(ledger: AuditLedger) -> None:
    _ten(ledger)
    ledger.db.execute("DELETE FROM audit_head")
    report = ledger.verify()
    assert [p.code for p in report.problems] == ["head_missing"]
    with pytest.raises(GovernanceError):
        ledger.head()


def _rehash_from(db: TableDB, seq: int) -> None:
    """What a careful forger does after an edit: recompute every later hash and the head."""
    last = _row(db, seq - 1)[16]
    for row in db.query(f"SELECT {COLUMNS} FROM audit_ledger WHERE seq >= ? ORDER BY seq", [seq]):
        digest = chain_hash(last, canonical(row[:15]))
        db.execute(
            "UPDATE audit_ledger SET prev_hash = ?, hash = ? WHERE seq = ?", [last, digest, row[0]]
        )
        last = digest
    count = db.query("SELECT MAX(seq) FROM audit_ledger")[0][0]
    db.execute("UPDATE audit_head SET count = ?, hash = ?", [count, last])


def test_truncate_and_rewrite_head_needs_an_anchor(ledger: AuditLedger) -> None:
    """Undetectable from inside the store; the anchor taken before shows the lost records."""
    _ten(ledger)
    anchor = ledger.head()
    ledger.db.execute("DELETE FROM audit_ledger WHERE seq > 7")
    ledger.db.execute("DELETE FROM audit_subjects WHERE seq > 7")
    ledger.db.execute("UPDATE audit_head SET count = 7, hash = ?", [_row(ledger.db, 7)[16]])
    assert ledger.verify().ok  # documented limit of a chain without anchors
    report = ledger.verify([anchor])
    assert [(p.seq, p.code) for p in report.problems] == [(10, "anchor_beyond_end")]


def test_a_rehashed_chain_needs_an_anchor(ledger: AuditLedger) -> None:
    """An edit followed by a full re-hash passes the chain; anchors after the edit catch it."""
    _ten(ledger)
    early, late = LedgerHead(3, _row(ledger.db, 3)[16], ""), ledger.head()
    ledger.db.execute("UPDATE audit_ledger SET decision = 'deny' WHERE seq = 5")
    _rehash_from(ledger.db, 5)
    assert ledger.verify().ok  # documented limit of a chain without anchors
    assert ledger.verify([early]).ok
    report = ledger.verify([early, late])
    assert [(p.seq, p.code) for p in report.problems] == [(10, "anchor_mismatch")]


def test_appending_to_a_broken_chain_is_refused(ledger: AuditLedger) -> None:
    _ten(ledger)
    truncate_tail(ledger)
    with pytest.raises(GovernanceError) as caught:
        ledger.append(entry(11))
    assert caught.value.code == "audit_head_mismatch"


def test_appending_after_records_added_behind_the_head_is_refused(ledger: AuditLedger) -> None:
    _ten(ledger)
    insert_at_end(ledger)
    with pytest.raises(GovernanceError) as caught:
        ledger.append(entry(12))
    assert caught.value.code == "audit_head_mismatch"


def test_appending_without_a_head_row_is_refused(ledger: AuditLedger) -> None:
    _ten(ledger)
    ledger.db.execute("DELETE FROM audit_head")
    with pytest.raises(GovernanceError) as caught:
        ledger.append_many([entry(11), entry(12)])
    assert caught.value.code == "audit_head_mismatch"
    assert ledger.count() == 10


def test_problems_stop_after_a_hundred(ledger: AuditLedger, paged: None) -> None:
    ledger.append_many([entry(i) for i in range(300)])
    ledger.db.execute("UPDATE audit_ledger SET reason = 'effacé'")
    report = ledger.verify()
    assert len(report.problems) == 101 and report.problems[-1].code == "too_many_problems"


# -- verifying in parallel ------------------------------------------------------------------


def _spy_parts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the number of parts each parallel verification ran."""
    runs: list[int] = []
    run_parts = ledger_module._run_parts

    def spy(*args: Any) -> Any:
        runs.append(len(args[2]))
        return run_parts(*args)

    monkeypatch.setattr(ledger_module, "_run_parts", spy)
    return runs


def test_a_large_ledger_is_verified_in_parallel_parts_on_the_embedded_store(
    ledger: AuditLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    if threading.active_count() > 1:
        pytest.skip("d'autres fils d'exécution tournent : la vérification ne se divise pas")
    ledger.append_many([entry(i, persons=(f"P{i}",) * (i % 3)) for i in range(2_000)])
    monkeypatch.setattr(ledger_module, "PARALLEL_MIN", 1_000)
    monkeypatch.setattr(ledger_module, "PAGE_ROWS", 100)
    monkeypatch.setattr(ledger_module, "WORKERS", 4)
    runs = _spy_parts(monkeypatch)
    calls: list[tuple[int, int]] = []
    report = ledger.verify(progress=lambda done, total: calls.append((done, total)))
    assert report.ok and report.count == 2_000 and report.head == ledger.head()
    assert calls == sorted(calls) and calls[-1] == (2_000, 2_000)
    embedded = not isinstance(ledger.db, PostgresTables)
    assert runs == ([4] if embedded else [])


def test_a_process_running_other_threads_verifies_in_one_pass(
    ledger: AuditLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No fork while another thread may hold a lock the worker would need."""
    _ten(ledger)
    _in_parallel(monkeypatch)
    runs = _spy_parts(monkeypatch)
    release = threading.Event()
    waiting = threading.Thread(target=release.wait)
    waiting.start()
    try:
        report = ledger.verify()
    finally:
        release.set()
        waiting.join()
    assert report.ok and report.count == 10 and runs == []


def _dies(*args: Any) -> None:
    os._exit(3)


def _fails(*args: Any) -> None:
    raise RuntimeError("panne simulée")


@pytest.mark.parametrize("worker", [_dies, _fails])
def test_a_failing_worker_leaves_its_part_to_the_parent(
    ledger: AuditLedger, monkeypatch: pytest.MonkeyPatch, worker: Callable[..., None]
) -> None:
    """A worker that dies or fails: the parts are checked in this process instead."""
    _ten(ledger)
    _in_parallel(monkeypatch)
    monkeypatch.setattr(ledger_module, "_verify_part", worker)
    report = ledger.verify()
    assert report.ok and report.count == 10
    delete_middle(ledger)
    assert [p.seq for p in ledger.verify().problems][:1] == [5]


def test_problems_found_in_parallel_are_those_found_in_one_pass(
    ledger: AuditLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tampering in several parts: the same problems, in the same order, as one pass."""
    ledger.append_many([entry(i) for i in range(1, 41)])
    ledger.db.execute("UPDATE audit_ledger SET reason = 'effacé' WHERE seq IN (3, 17, 29, 38)")
    ledger.db.execute("DELETE FROM audit_subjects WHERE seq = 22")
    monkeypatch.setattr(ledger_module, "PAGE_ROWS", 3)
    expected = ledger.verify().problems
    _in_parallel(monkeypatch, workers=4)
    assert [p.seq for p in expected] == [3, 17, 22, 29, 38]
    calls: list[tuple[int, int]] = []
    report = ledger.verify(progress=lambda done, total: calls.append((done, total)))
    assert report.problems == expected and report.count == 40
    assert calls == sorted(calls) and calls[-1] == (40, 40)


def test_tables_of_the_former_layout_are_still_used(store: Store) -> None:
    """A workspace created before ``audit_subjects`` was clustered by seq keeps working."""
    db = store.tables()
    with db.transaction():
        db.execute(
            "CREATE TABLE audit_subjects (seq BIGINT NOT NULL, person_key TEXT NOT NULL, "
            "PRIMARY KEY (seq, person_key))"
        )
    ledger = AuditLedger(db, clock=Clock())
    AuditLedger(db, clock=Clock())  # creating the tables twice changes nothing
    _varied(ledger)
    ledger.append(entry(7, persons=tuple(f"P{i:03d}" for i in range(100))))  # bulk index rows
    assert ledger.verify().ok
    assert [r.seq for r in ledger.records(person="P001")] == [7]
    assert [r.seq for r in ledger.records(person="P0001")] == [6, 3, 1]
    db.close()


# -- concurrency ----------------------------------------------------------------------------


def _append(config: WorkspaceConfig, actor: str, records: int, barrier: Any) -> None:
    """A separate process appending one record at a time (pausing now and then)."""
    store = open_store(config)
    ledger = AuditLedger(store.tables())
    barrier.wait(timeout=120)
    for number in range(records):
        ledger.append(entry(number, actor=actor, persons=(f"P{number}", f"Q{number}")))
        if number % 20 == 0:
            time.sleep(0.002)  # lets the other process in, so appends interleave
    store.close()


def _start(config: WorkspaceConfig, actors: list[str], records: int) -> list[Any]:
    """Appending processes, started together (the list also keeps their barrier alive)."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(len(actors))
    workers = [
        context.Process(target=_append, args=(config, actor, records, barrier)) for actor in actors
    ]
    for worker in workers:
        worker.start()
    return [*workers, barrier]


def test_two_processes_append_at_once(workspace: WorkspaceConfig, store: Store) -> None:
    ledger = AuditLedger(store.tables())
    *workers, _barrier = _start(workspace, ["agent:1", "agent:2"], 200)
    for worker in workers:
        worker.join(timeout=300)
    assert [w.exitcode for w in workers] == [0, 0]
    report = ledger.verify()
    assert report.ok, report.problems[:3]
    assert report.count == 400 == ledger.head().count
    assert ledger.count(actor="agent:1") == ledger.count(actor="agent:2") == 200
    actors = [r.entry.actor for r in ledger.records(limit=400)]
    assert sum(a != b for a, b in itertools.pairwise(actors)) > 1  # interleaved


@pytest.mark.parametrize("parallel", [False, True], ids=["one_pass", "parallel"])
def test_verifying_while_another_process_appends_finds_nothing_wrong(
    workspace: WorkspaceConfig, store: Store, monkeypatch: pytest.MonkeyPatch, parallel: bool
) -> None:
    """Verification takes no lock; records appended meanwhile are never reported as problems."""
    if parallel:
        _in_parallel(monkeypatch)
        monkeypatch.setattr(ledger_module, "PAGE_ROWS", 100)
    ledger = AuditLedger(store.tables())
    ledger.append_many([entry(i) for i in range(2_000)])
    worker, _barrier = _start(workspace, ["agent:1"], 400)
    reports: list[VerifyReport] = []
    while worker.is_alive() or not reports:
        reports.append(ledger.verify())
    worker.join(timeout=300)
    assert worker.exitcode == 0
    assert [r.problems for r in reports if not r.ok] == []
    assert ledger.verify().count == 2_400


def test_a_writer_killed_mid_burst_leaves_a_valid_chain(
    workspace: WorkspaceConfig, store: Store
) -> None:
    ledger = AuditLedger(store.tables())
    worker, _barrier = _start(workspace, ["agent:1"], 100_000)
    while ledger.head().count < 50 and worker.is_alive():
        time.sleep(0.01)
    os.kill(worker.pid or 0, signal.SIGKILL)
    worker.join(timeout=60)
    assert worker.exitcode == -signal.SIGKILL
    report = ledger.verify()
    assert report.ok, report.problems[:3]
    assert report.count == ledger.head().count >= 50
    ledger.append(entry(1))  # and the ledger goes on
    assert ledger.verify().ok


# -- anchors --------------------------------------------------------------------------------


def test_anchors_round_trip_and_verify(ledger: AuditLedger, tmp_path: Path) -> None:
    path = tmp_path / "hors-magasin" / "ancres.jsonl"
    save_anchor(path, ledger.head())
    ledger.append_many([entry(1), entry(2)])
    save_anchor(path, ledger.head())
    anchors = load_anchors(path)
    assert [a.count for a in anchors] == [0, 2] and anchors[1] == ledger.head()
    assert ledger.verify(anchors).ok


@pytest.mark.parametrize(
    "bad_line",
    [
        "pas du json",
        '{"count": 2}',
        '{"count": -1, "hash": "' + "0" * 64 + '", "at": ""}',
        '{"count": true, "hash": "' + "0" * 64 + '", "at": ""}',
        '{"count": 2, "hash": "xyz", "at": ""}',
        "[1, 2]",
    ],
)
def test_a_malformed_anchor_names_its_file_and_line(tmp_path: Path, bad_line: str) -> None:
    path = tmp_path / "ancres.jsonl"
    good = json.dumps({"count": 0, "hash": GENESIS, "at": ""})
    path.write_text(f"{good}\n\n{bad_line}\n", encoding="utf-8")
    with pytest.raises(GovernanceError) as caught:
        load_anchors(path)
    assert (caught.value.file, caught.value.line, caught.value.code) == (path, 3, "anchor_invalid")
    assert "ligne 3" in str(caught.value)


def test_a_missing_anchor_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(GovernanceError) as caught:
        load_anchors(tmp_path / "absent.jsonl")
    assert caught.value.code == "anchor_file_unreadable"
