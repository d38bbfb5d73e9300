"""Consents and objections: an append-only log whose latest record is the current state."""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from territoria.backends import Store, TableDB, open_store
from territoria.core.config import WorkspaceConfig, init_workspace
from territoria.core.errors import GovernanceError
from territoria.governance.consents import (
    ConsentBook,
    ConsentRecord,
    ObjectionRecord,
)

ALICE = "P-000000000001"
BOB = "P-000000000002"
CAROL = "P-000000000003"
SUGGEST = "proactive_suggestions"
NEWSLETTER = "newsletter"
FROZEN = datetime(2025, 3, 14, 9, 26, 53, tzinfo=UTC)


@pytest.fixture
def book(store: Store) -> ConsentBook:
    return ConsentBook(store.tables(), clock=lambda: FROZEN)


def _code(exc: pytest.ExceptionInfo[GovernanceError]) -> str:
    return exc.value.code


def _snapshot(db: TableDB) -> dict[str, list[tuple[Any, ...]]]:
    return {
        table: db.query(f"SELECT * FROM {table} ORDER BY seq")
        for table in ("gov_consents", "gov_objections")
    }


# -- consent lifecycle ------------------------------------------------------------------------


def test_give_withdraw_and_give_again(book: ConsentBook) -> None:
    assert not book.has_consent(ALICE, SUGGEST)
    given = book.give(
        ALICE,
        SUGGEST,
        actor=f"resident:{ALICE}",
        controller="Commune de Sandbox",
        notice="notice-v2",
        purpose_label="Suggestions de services",
    )
    assert given.event == "given" and book.has_consent(ALICE, SUGGEST)
    withdrawn = book.withdraw(ALICE, SUGGEST, actor="agent:guichet-3", method="counter")
    assert withdrawn.event == "withdrawn" and not book.has_consent(ALICE, SUGGEST)
    # the withdrawal names what it ends, even though the caller did not repeat it
    assert (withdrawn.controller, withdrawn.notice, withdrawn.purpose_label) == (
        "Commune de Sandbox",
        "notice-v2",
        "Suggestions de services",
    )
    assert withdrawn.method == "counter" and withdrawn.actor == "agent:guichet-3"
    book.give(ALICE, SUGGEST, actor=f"resident:{ALICE}")
    assert book.has_consent(ALICE, SUGGEST)
    assert [r.event for r in book.history(ALICE)] == ["given", "withdrawn", "given"]
    assert book.current(ALICE) == {SUGGEST: "given"}


def test_consent_is_per_purpose_and_per_person(book: ConsentBook) -> None:
    book.give(ALICE, SUGGEST, actor="agent:1")
    assert not book.has_consent(ALICE, NEWSLETTER)
    assert not book.has_consent(BOB, SUGGEST)


def test_giving_twice_renews_without_error(book: ConsentBook) -> None:
    book.give(ALICE, SUGGEST, actor="agent:1", notice="v1")
    book.give(ALICE, SUGGEST, actor="agent:1", notice="v2")
    assert book.has_consent(ALICE, SUGGEST)
    assert book.withdraw(ALICE, SUGGEST, actor="agent:1").notice == "v2"


def test_withdraw_without_consent_is_refused(book: ConsentBook) -> None:
    with pytest.raises(GovernanceError) as never:
        book.withdraw(ALICE, SUGGEST, actor="agent:1")
    assert _code(never) == "consent_not_given" and "consentement" in never.value.message
    book.give(ALICE, SUGGEST, actor="agent:1")
    book.withdraw(ALICE, SUGGEST, actor="agent:1")
    with pytest.raises(GovernanceError) as twice:
        book.withdraw(ALICE, SUGGEST, actor="agent:1")
    assert _code(twice) == "consent_not_given"
    assert len(book.history(ALICE)) == 2  # the refused withdrawals left nothing behind


# -- objections -------------------------------------------------------------------------------


def test_object_and_lift(book: ConsentBook) -> None:
    assert not book.has_objected(BOB, SUGGEST)
    objection = book.object(BOB, SUGGEST, actor=f"resident:{BOB}", reason="je refuse le profilage")
    assert objection.event == "objected" and book.has_objected(BOB, SUGGEST)
    assert objection.as_dict()["reason"] == "je refuse le profilage"
    assert "art. 21" in objection.as_dict()["legal_basis"]
    with pytest.raises(GovernanceError) as again:
        book.object(BOB, SUGGEST, actor=f"resident:{BOB}")
    assert _code(again) == "already_objected"
    lifted = book.lift_objection(BOB, SUGGEST, actor="agent:dpo")
    assert lifted.event == "lifted" and not book.has_objected(BOB, SUGGEST)
    with pytest.raises(GovernanceError) as not_objected:
        book.lift_objection(BOB, SUGGEST, actor="agent:dpo")
    assert _code(not_objected) == "not_objected"
    book.object(BOB, SUGGEST, actor=f"resident:{BOB}")
    assert book.has_objected(BOB, SUGGEST)


def test_lift_without_objection_is_refused(book: ConsentBook) -> None:
    with pytest.raises(GovernanceError) as exc:
        book.lift_objection(CAROL, SUGGEST, actor="agent:1")
    assert _code(exc) == "not_objected" and "opposition" in exc.value.message


def test_consenting_and_objecting_sets(book: ConsentBook) -> None:
    for person in (ALICE, BOB, CAROL):
        book.give(person, SUGGEST, actor="agent:1")
    book.withdraw(BOB, SUGGEST, actor="agent:1")
    book.give(CAROL, NEWSLETTER, actor="agent:1")
    book.object(ALICE, NEWSLETTER, actor="agent:1")
    book.object(CAROL, NEWSLETTER, actor="agent:1")
    book.lift_objection(CAROL, NEWSLETTER, actor="agent:1")
    assert book.consenting(SUGGEST) == {ALICE, CAROL}
    assert book.consenting(NEWSLETTER) == {CAROL}
    assert book.consenting("unknown_purpose") == set()
    assert book.objecting(NEWSLETTER) == {ALICE}
    assert book.objecting(SUGGEST) == set()


def test_current_summary_for_the_portal(book: ConsentBook) -> None:
    book.give(ALICE, SUGGEST, actor="agent:1")
    book.give(ALICE, NEWSLETTER, actor="agent:1")
    book.withdraw(ALICE, NEWSLETTER, actor="agent:1")
    book.object(ALICE, "school_outreach", actor="agent:1")
    book.object(ALICE, "lifted_one", actor="agent:1")
    book.lift_objection(ALICE, "lifted_one", actor="agent:1")
    assert book.current(ALICE) == {
        NEWSLETTER: "withdrawn",
        "school_outreach": "objected",
        SUGGEST: "given",
    }
    book.object(ALICE, SUGGEST, actor="agent:1")  # an objection in force wins over a consent
    assert book.current(ALICE)[SUGGEST] == "objected"
    assert book.current(BOB) == {}


# -- ordering, records, immutability ------------------------------------------------------------


def test_history_orders_events_of_the_same_second(book: ConsentBook) -> None:
    # every event below carries the same timestamp: only the sequence can order them
    book.give(ALICE, SUGGEST, actor="agent:1")
    book.object(ALICE, NEWSLETTER, actor="agent:1")
    book.withdraw(ALICE, SUGGEST, actor="agent:1")
    book.give(BOB, SUGGEST, actor="agent:1")
    book.lift_objection(ALICE, NEWSLETTER, actor="agent:1")
    book.give(ALICE, SUGGEST, actor="agent:1")
    history = book.history(ALICE)
    assert {r.at for r in history} == {"2025-03-14T09:26:53+00:00"}
    assert [(type(r), r.purpose, r.event) for r in history] == [
        (ConsentRecord, SUGGEST, "given"),
        (ObjectionRecord, NEWSLETTER, "objected"),
        (ConsentRecord, SUGGEST, "withdrawn"),
        (ObjectionRecord, NEWSLETTER, "lifted"),
        (ConsentRecord, SUGGEST, "given"),
    ]
    assert book.has_consent(ALICE, SUGGEST) and not book.has_objected(ALICE, NEWSLETTER)


def test_as_iso27560_receipt(book: ConsentBook) -> None:
    book.give(
        ALICE,
        SUGGEST,
        actor=f"resident:{ALICE}",
        controller="Commune de Sandbox",
        notice="https://sandbox.example/fr/information-suggestions",
        purpose_label="Suggestions de services",
    )
    record = book.withdraw(ALICE, SUGGEST, actor=f"resident:{ALICE}", method="paper")
    receipt = record.as_iso27560()
    assert json.loads(json.dumps(receipt)) == receipt  # plain JSON
    required = {"schema_version", "record_id", "pii_principal_id", "controller", "purposes"}
    required |= {"notice", "event", "jurisdiction", "language", "recorded_by", "state"}
    assert required <= receipt.keys()
    assert receipt["schema_version"] == "ISO/IEC TS 27560:2023"
    assert receipt["pii_principal_id"] == ALICE and receipt["record_id"] == record.record_id
    assert receipt["controller"] == [{"name": "Commune de Sandbox"}]
    assert receipt["purposes"] == [
        {
            "purpose": SUGGEST,
            "label": "Suggestions de services",
            "legal_basis": "consent (RGPD art. 6-1-a)",
        }
    ]
    assert receipt["notice"]["url"] == "https://sandbox.example/fr/information-suggestions"
    assert receipt["event"] == {
        "type": "withdrawn",
        "timestamp": "2025-03-14T09:26:53+00:00",
        "method": "paper",
    }
    assert (receipt["jurisdiction"], receipt["language"], receipt["state"]) == (
        "FR",
        "fr",
        "withdrawn",
    )
    assert receipt["recorded_by"] == f"resident:{ALICE}"


def test_record_ids_are_random(book: ConsentBook) -> None:
    records = [book.give(ALICE, SUGGEST, actor="agent:1") for _ in range(20)]
    ids = [r.record_id for r in records]
    assert len(set(ids)) == 20 and all(i.startswith("CR-") for i in ids)
    assert all("000000000001" not in i for i in ids)
    assert book.object(ALICE, SUGGEST, actor="agent:1").record_id.startswith("OB-")


def test_records_are_never_updated_or_deleted(store: Store, book: ConsentBook) -> None:
    db = store.tables()
    book.give(ALICE, SUGGEST, actor="agent:1")
    book.object(BOB, SUGGEST, actor="agent:1")
    before = _snapshot(db)
    book.withdraw(ALICE, SUGGEST, actor="agent:1")
    book.lift_objection(BOB, SUGGEST, actor="agent:1")
    book.give(ALICE, SUGGEST, actor="agent:1")
    for refused in (
        lambda: book.withdraw(CAROL, SUGGEST, actor="agent:1"),
        lambda: book.lift_objection(BOB, SUGGEST, actor="agent:1"),
    ):
        with pytest.raises(GovernanceError):
            refused()
    after = _snapshot(db)
    assert len(after["gov_consents"]) == len(before["gov_consents"]) + 2
    assert len(after["gov_objections"]) == len(before["gov_objections"]) + 1
    for table, rows in before.items():
        assert after[table][: len(rows)] == rows


def test_reopening_the_book_keeps_records_and_order(store: Store) -> None:
    ConsentBook(store.tables(), clock=lambda: FROZEN).give(ALICE, SUGGEST, actor="agent:1")
    reopened = ConsentBook(store.tables(), clock=lambda: FROZEN)
    reopened.withdraw(ALICE, SUGGEST, actor="agent:1")
    assert [r.event for r in reopened.history(ALICE)] == ["given", "withdrawn"]


def test_a_withdrawal_is_seen_at_once_by_another_session(
    workspace: WorkspaceConfig, store: Store
) -> None:
    writer = ConsentBook(store.tables())
    with open_store(workspace) as other:
        reader = ConsentBook(other.tables())
        assert not reader.has_consent(ALICE, SUGGEST)
        writer.give(ALICE, SUGGEST, actor="agent:1")
        assert reader.has_consent(ALICE, SUGGEST) and reader.consenting(SUGGEST) == {ALICE}
        writer.withdraw(ALICE, SUGGEST, actor="agent:1")
        assert not reader.has_consent(ALICE, SUGGEST) and reader.consenting(SUGGEST) == set()
        writer.object(ALICE, SUGGEST, actor="agent:1")
        assert reader.has_objected(ALICE, SUGGEST) and reader.objecting(SUGGEST) == {ALICE}


def test_concurrent_withdrawals_only_one_wins(workspace: WorkspaceConfig, store: Store) -> None:
    ConsentBook(store.tables()).give(ALICE, SUGGEST, actor="agent:1")
    outcomes: list[str] = []
    lock = threading.Lock()

    def withdraw() -> None:
        with open_store(workspace) as own:
            try:
                ConsentBook(own.tables()).withdraw(ALICE, SUGGEST, actor="agent:1")
                result = "ok"
            except GovernanceError as exc:
                result = exc.code
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=withdraw) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["consent_not_given"] * 3 + ["ok"]
    assert [r.event for r in ConsentBook(store.tables()).history(ALICE)] == ["given", "withdrawn"]


def test_timestamps_are_utc(store: Store) -> None:
    paris = timezone(timedelta(hours=1))
    aware = ConsentBook(store.tables(), clock=lambda: datetime(2025, 1, 1, 10, 0, tzinfo=paris))
    assert aware.give(ALICE, SUGGEST, actor="a").at == "2025-01-01T09:00:00+00:00"
    naive = ConsentBook(store.tables(), clock=lambda: datetime(2025, 1, 1, 10, 0))
    assert naive.give(BOB, SUGGEST, actor="a").at == "2025-01-01T10:00:00+00:00"
    assert ConsentBook(store.tables()).give(CAROL, SUGGEST, actor="a").at.endswith("+00:00")


# -- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "person", ["", "P-123", "p-000000000001", "X-000000000001", "P-00000000000a", f"{ALICE}\n"]
)
def test_person_keys_are_checked(book: ConsentBook, person: str) -> None:
    for call in (
        lambda: book.give(person, SUGGEST, actor="agent:1"),
        lambda: book.object(person, SUGGEST, actor="agent:1"),
        lambda: book.has_consent(person, SUGGEST),
        lambda: book.has_objected(person, SUGGEST),
        lambda: book.history(person),
        lambda: book.current(person),
    ):
        with pytest.raises(GovernanceError) as exc:
            call()
        assert _code(exc) == "person_invalid" and "personne" in exc.value.message


@pytest.mark.parametrize("purpose", ["", "Suggest", "1abc", "a-b", "a b", "sugg\n", "é"])
def test_purpose_ids_are_checked(book: ConsentBook, purpose: str) -> None:
    for call in (
        lambda: book.give(ALICE, purpose, actor="agent:1"),
        lambda: book.withdraw(ALICE, purpose, actor="agent:1"),
        lambda: book.lift_objection(ALICE, purpose, actor="agent:1"),
        lambda: book.consenting(purpose),
        lambda: book.objecting(purpose),
    ):
        with pytest.raises(GovernanceError) as exc:
            call()
        assert _code(exc) == "purpose_invalid" and "finalité" in exc.value.message


def test_method_and_actor_are_checked(store: Store, book: ConsentBook) -> None:
    with pytest.raises(GovernanceError) as method:
        book.give(ALICE, SUGGEST, actor="agent:1", method="fax")  # type: ignore[arg-type]
    assert _code(method) == "method_invalid"
    with pytest.raises(GovernanceError) as actor:
        book.object(ALICE, SUGGEST, actor="  ")
    assert _code(actor) == "actor_invalid"
    assert _snapshot(store.tables()) == {"gov_consents": [], "gov_objections": []}


# -- the log against a model --------------------------------------------------------------------

PERSONS = (ALICE, BOB, CAROL)
PURPOSES = (SUGGEST, NEWSLETTER, "school_outreach")


class ConsentMachine(RuleBasedStateMachine):
    """Random give/withdraw/object/lift sequences compared with a plain dict (embedded store)."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="consents-"))
        self.store = open_store(init_workspace(self.dir / "ws", name="Test"))
        self.book = ConsentBook(self.store.tables(), clock=lambda: FROZEN)
        self.consent: dict[tuple[str, str], str] = {}
        self.objection: dict[tuple[str, str], str] = {}
        self.records: dict[str, int] = dict.fromkeys(PERSONS, 0)

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _expect(self, valid: bool, code: str, action: Callable[[], object]) -> bool:
        if valid:
            action()
            return True
        with pytest.raises(GovernanceError) as exc:
            action()
        assert exc.value.code == code
        return False

    @rule(person=st.sampled_from(PERSONS), purpose=st.sampled_from(PURPOSES))
    def give(self, person: str, purpose: str) -> None:
        self.book.give(person, purpose, actor="agent:1")
        self.consent[person, purpose] = "given"
        self.records[person] += 1

    @rule(person=st.sampled_from(PERSONS), purpose=st.sampled_from(PURPOSES))
    def withdraw(self, person: str, purpose: str) -> None:
        valid = self.consent.get((person, purpose)) == "given"
        call = partial(self.book.withdraw, person, purpose, actor="agent:1")
        if self._expect(valid, "consent_not_given", call):
            self.consent[person, purpose] = "withdrawn"
            self.records[person] += 1

    @rule(person=st.sampled_from(PERSONS), purpose=st.sampled_from(PURPOSES))
    def object(self, person: str, purpose: str) -> None:
        valid = self.objection.get((person, purpose)) != "objected"
        call = partial(self.book.object, person, purpose, actor="agent:1")
        if self._expect(valid, "already_objected", call):
            self.objection[person, purpose] = "objected"
            self.records[person] += 1

    @rule(person=st.sampled_from(PERSONS), purpose=st.sampled_from(PURPOSES))
    def lift(self, person: str, purpose: str) -> None:
        valid = self.objection.get((person, purpose)) == "objected"
        call = partial(self.book.lift_objection, person, purpose, actor="agent:1")
        if self._expect(valid, "not_objected", call):
            self.objection[person, purpose] = "lifted"
            self.records[person] += 1

    @invariant()
    def states_match_the_model(self) -> None:
        for person in PERSONS:
            for purpose in PURPOSES:
                key = (person, purpose)
                assert self.book.has_consent(*key) == (self.consent.get(key) == "given")
                assert self.book.has_objected(*key) == (self.objection.get(key) == "objected")

    @invariant()
    def sets_match_the_model(self) -> None:
        for purpose in PURPOSES:
            given = {p for p in PERSONS if self.consent.get((p, purpose)) == "given"}
            objected = {p for p in PERSONS if self.objection.get((p, purpose)) == "objected"}
            assert self.book.consenting(purpose) == given
            assert self.book.objecting(purpose) == objected

    @invariant()
    def history_and_summary_match_the_model(self) -> None:
        for person in PERSONS:
            assert len(self.book.history(person)) == self.records[person]
            expected = {u: e for (p, u), e in self.consent.items() if p == person}
            expected |= {
                u: "objected"
                for (p, u), e in self.objection.items()
                if p == person and e == "objected"
            }
            assert self.book.current(person) == expected


ConsentMachine.TestCase.settings = settings(max_examples=50, stateful_step_count=30, deadline=None)
test_consent_machine = ConsentMachine.TestCase
