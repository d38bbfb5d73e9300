"""The generated authorisation matrix: every actor × every purpose × every view.

Deny unless the hand-reviewed allow list (tests/data/authz_allow.yaml) names the case, and
then the decision names that rule. For each allowed case, every visible field is checked
against the category rules (P1: no social-secret field outside social services, the
resident's own space and the DPO's rights handling; art. 9 fields only with an art. 9 basis).
The slow variant runs the governed read itself for every case and checks that each leaves
exactly one ledger record carrying the same rule and outcome (P10).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import yaml

from governance_fixtures import FrozenClock, persons_in
from territoria.backends import Store
from territoria.core.config import WorkspaceConfig
from territoria.governance import VIEWS, Governance, ReadRequest, decide, load_policy
from territoria.ingest import ContractCatalog

ALLOW = yaml.safe_load((Path(__file__).parent / "data" / "authz_allow.yaml").read_text("utf-8"))
POLICY = load_policy()
CONTRACTS = dict(ContractCatalog.load().contracts)
RESIDENT = "resident:P-000000000000"
ACTORS = [*sorted(POLICY.agents), *sorted(POLICY.operators), RESIDENT, "intrus", ""]
PURPOSES = [*sorted(POLICY.purposes), "finalite_inconnue", ""]
ALL_VIEWS = [*VIEWS, "vue_inconnue"]
CASES = list(itertools.product(ACTORS, PURPOSES, ALL_VIEWS))
READABLE = ("person_360", "search", "autocomplete", "count", "records")


def _expected(actor: str, purpose: str, view: str) -> str | None:
    """The rule the allow list names for this case, or None (must be refused)."""
    who = "resident:*" if actor.startswith("resident:") else actor
    for entry in ALLOW:
        if entry["actor"] == who and entry["purpose"] == purpose and view in entry["views"]:
            return str(entry["rule"])
    return None


def _privileged(purpose: str) -> bool:
    p = POLICY.purposes[purpose]
    return p.scope.self_only or (p.service == "dpo" and p.legal_basis == "legal_obligation")


def test_the_matrix_is_large_and_its_allow_list_is_exactly_the_policy() -> None:
    assert len(CASES) >= 2000
    granted = {
        (agent.id, grant.purpose, view)
        for agent in POLICY.agents.values()
        for role in agent.roles
        for grant in POLICY.roles[role].grants
        for view in grant.views
    }
    listed = {
        (e["actor"], e["purpose"], v)
        for e in ALLOW
        for v in e["views"]
        if e["actor"] != "resident:*"
    }
    assert granted == listed


@pytest.mark.parametrize("actor", ACTORS)
def test_every_case_is_denied_unless_allowed_by_the_named_rule(actor: str) -> None:
    checked = fields_checked = 0
    for purpose, view in itertools.product(PURPOSES, ALL_VIEWS):
        decision = decide(POLICY, CONTRACTS, actor, purpose, view)
        rule = _expected(actor, purpose, view)
        assert decision.allowed == (rule is not None), (actor, purpose, view, decision.rule)
        assert decision.rule == (rule or decision.rule) and decision.rule.startswith(
            "grant:" if rule else "deny:"
        )
        assert decision.reason
        checked += 1
        if decision.allowed:
            fields_checked += _check_fields(decision.fields, purpose, decision.service)
        else:
            assert decision.fields == {}
    assert checked == len(PURPOSES) * len(ALL_VIEWS)


def _check_fields(fields: dict[str, tuple[str, ...]], purpose: str, service: str) -> int:
    social = POLICY.services[service].social
    p = POLICY.purposes[purpose]
    count = 0
    for source, names in fields.items():
        contract = CONTRACTS[source]
        secret = POLICY.services[contract.owner_service].social
        for name in names:
            category = contract.field(name).category
            if category == "special_category":
                assert p.special_category_basis, (purpose, source, name)
            if secret and category in ("sensitive", "special_category"):
                assert social or _privileged(purpose), (purpose, source, name)
            if p.output == "pseudonymous":
                assert category != "identifying"
            count += 1
    return count


def test_non_social_purposes_never_see_ccas_secret_fields() -> None:
    secret = {f.name for f in CONTRACTS["ccas_aid"].fields_of("sensitive", "special_category")}
    for purpose in POLICY.purposes.values():
        if POLICY.services[purpose.service].social or _privileged(purpose.id):
            continue
        from territoria.governance.decide import visible_fields

        visible = visible_fields(POLICY, purpose, CONTRACTS).get("ccas_aid", ())
        assert not set(visible) & secret, purpose.id


@pytest.mark.slow
def test_every_governed_read_of_the_matrix_leaves_exactly_one_record(
    linked: tuple[WorkspaceConfig, Store],
) -> None:
    config, store = linked
    gov = Governance.open(config, store, clock=FrozenClock())
    someone = persons_in(gov, "library_members")[0]
    reads = 0
    for actor, purpose, view in CASES:
        if view not in READABLE:
            continue
        who = f"resident:{someone}" if actor == RESIDENT else actor
        before = gov.ledger.head().count
        result = gov.read(_request(gov, who, purpose, view, someone))
        assert gov.ledger.head().count == before + 1
        (record,) = gov.ledger.records(limit=1)
        assert record.entry.rule == result.decision.rule
        assert record.entry.decision == ("allow" if result.decision.allowed else "deny")
        assert (result.status == "denied") == (not result.decision.allowed)
        reads += 1
    assert reads == len(ACTORS) * len(PURPOSES) * len(READABLE)
    assert gov.ledger.verify().ok


def _request(gov: Governance, actor: str, purpose: str, view: str, someone: str) -> ReadRequest:
    p = gov.policy.purpose(purpose)
    extra: dict[str, Any] = {}
    if view == "person_360" and p is not None:
        extra["subject"] = gov.pseudonyms.pseudonym(p.domain, someone)
    if view in ("search", "autocomplete"):
        extra["query"] = "MAR"
    if view == "records" and p is not None and p.sources:
        extra["source"] = sorted(p.sources)[0]
    return ReadRequest(actor, purpose, view, **extra)
