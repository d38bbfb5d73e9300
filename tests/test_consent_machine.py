"""Consent and objection as a state machine over the governed read (P14).

Hypothesis drives residents through give / withdraw / object / lift in any order. After every
step, the governed reads of the optional purpose (``service_information``, consent-based)
return exactly the residents whose consent is in force, and those of the proactive purpose
(``canteen_tariff_outreach``) never return a resident who objected.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from governance_fixtures import FrozenClock, persons_in
from territoria.backends import open_store
from territoria.core.config import load_workspace
from territoria.core.errors import GovernanceError
from territoria.governance import Governance, ReadRequest

OPTIONAL, PROACTIVE = "service_information", "canteen_tariff_outreach"
COMMUNICATION, SCHOOL = "yann.usagers", "samir.ecole"


class ConsentMachine(RuleBasedStateMachine):
    template: Path

    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="consent-machine-"))
        shutil.copytree(self.template, self.folder / "ws")
        config = load_workspace(self.folder / "ws")
        self.store = open_store(config)
        self.gov = Governance.open(config, self.store, clock=FrozenClock())
        self.members = persons_in(self.gov, "library_members")[:3]
        outreach = self.gov.read(
            ReadRequest(SCHOOL, PROACTIVE, "records", source="school_enrolments", limit=1000)
        )
        self.pupils = list(outreach.persons[:3])
        self.consented: set[str] = set()
        self.objected: set[str] = set()

    @initialize()
    def ready(self) -> None:
        assert self.members and self.pupils

    def _change(self, person: str, *, give: bool) -> None:
        valid = give or person in self.consented
        try:
            self.gov.change_consent(
                f"resident:{person}", "resident_access", None, OPTIONAL, give=give
            )
        except GovernanceError as exc:
            assert not valid and exc.code == "consent_not_given"
            return
        assert valid
        (self.consented.add if give else self.consented.discard)(person)

    @rule(index=st.integers(0, 2), give=st.booleans())
    def consent(self, index: int, give: bool) -> None:
        self._change(self.members[index], give=give)

    @rule(index=st.integers(0, 2), object_=st.booleans())
    def objection(self, index: int, object_: bool) -> None:
        person = self.pupils[index]
        valid = (person not in self.objected) if object_ else (person in self.objected)
        try:
            self.gov.change_objection(
                f"resident:{person}", "resident_access", None, PROACTIVE, object_=object_
            )
        except GovernanceError as exc:
            assert not valid and exc.code in ("already_objected", "not_objected")
            return
        assert valid
        (self.objected.add if object_ else self.objected.discard)(person)

    @invariant()
    def optional_purpose_returns_exactly_the_consenting(self) -> None:
        seen: set[str] = set()
        for source in ("library_members", "water_subscribers"):
            result = self.gov.read(
                ReadRequest(COMMUNICATION, OPTIONAL, "records", source=source, limit=1000)
            )
            seen |= set(result.persons)
        assert seen == self.consented
        count = self.gov.read(ReadRequest(COMMUNICATION, OPTIONAL, "count"))
        assert count.data == {"persons": len(self.consented)}

    @invariant()
    def proactive_purpose_never_returns_an_objector(self) -> None:
        result = self.gov.read(
            ReadRequest(SCHOOL, PROACTIVE, "records", source="school_enrolments", limit=1000)
        )
        assert not set(result.persons) & self.objected
        assert set(self.pupils) - self.objected <= set(result.persons)
        for person in self.objected:
            subject = self.gov.pseudonyms.pseudonym(
                self.gov.policy.purposes[PROACTIVE].domain, person
            )
            view = self.gov.read(ReadRequest(SCHOOL, PROACTIVE, "person_360", subject=subject))
            assert view.status == "not_found"

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def test_consent_and_objection_state_machine(linked_template: Path) -> None:
    ConsentMachine.template = linked_template
    runner = ConsentMachine.TestCase
    runner.settings = settings(
        max_examples=12,
        stateful_step_count=8,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    runner().runTest()


@pytest.mark.slow
def test_consent_state_machine_deep(linked_template: Path) -> None:
    ConsentMachine.template = linked_template
    runner = ConsentMachine.TestCase
    runner.settings = settings(
        max_examples=60,
        stateful_step_count=15,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    runner().runTest()
