"""Stewards' views: quarantined rows go to the owning service only, and a pair decision on
records the index does not hold is refused without writing anything."""

from __future__ import annotations

import pytest

from territoria.backends import Store
from territoria.core.config import WorkspaceConfig
from territoria.core.errors import GovernanceError
from territoria.governance import Governance
from territoria.governance.steward import decide_pair, quarantine_rows


def test_quarantine_is_for_the_owning_service_only(linked: tuple[WorkspaceConfig, Store]) -> None:
    config, store = linked
    gov = Governance.open(config, store)
    # claire.ccas's purpose reads the water subscribers, but the water service owns them
    assert "water_subscribers" in gov.policy.purposes["ccas_social_support"].sources
    with pytest.raises(GovernanceError) as refused:
        quarantine_rows(gov, "claire.ccas", "ccas_social_support", "water_subscribers")
    assert refused.value.details["rule"] == "deny:not_owner_service"
    last = gov.ledger.records(limit=1)[0].entry
    assert (last.decision, last.rule) == ("deny", "deny:not_owner_service")
    count, _rows = quarantine_rows(gov, "ines.eau", "water_billing", "water_subscribers")
    assert count >= 0
    assert gov.ledger.records(limit=1)[0].entry.decision == "allow"


def test_a_decision_on_unknown_records_writes_nothing(
    linked: tuple[WorkspaceConfig, Store],
) -> None:
    config, store = linked
    gov = Governance.open(config, store)
    writes = gov.ledger.records(kind="write", limit=1)
    with pytest.raises(GovernanceError) as unknown:
        decide_pair(
            gov,
            "marc.donnees",
            "identity_resolution",
            "ccas_aid|NOPE|holder",
            "library_members|NOPE|holder",
            "same",
        )
    assert unknown.value.code == "mention_unknown"
    assert gov.ledger.records(kind="write", limit=1) == writes
    assert gov.index.decisions() == []
