"""A resident logging in (FranceConnect's identité pivot) is found in the index only when
exactly one person matches; never someone else, and every attempt is in the ledger."""

from __future__ import annotations

import csv
from pathlib import Path

from territoria.backends import Store
from territoria.core.config import WorkspaceConfig
from territoria.governance import Governance
from territoria.governance.residents import PivotIdentity, match_resident


def _truth(sandbox: Path) -> list[dict[str, str]]:
    with (sandbox / "truth" / "persons.csv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _records_of(sandbox: Path) -> dict[str, set[str]]:
    """Truth: the record ids of each person (to check the match is the right person)."""
    out: dict[str, set[str]] = {}
    with (sandbox / "truth" / "records.csv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            out.setdefault(row["person_id"], set()).add(f"{row['source']}|{row['record_id']}")
    return out


def _pivot(row: dict[str, str]) -> PivotIdentity:
    return PivotIdentity(
        given_name=row["given_name"],
        family_name=row["birth_name"] or row["family_name"],
        birthdate=row["birth_date"],
        usage_name=row["family_name"],
    )


def test_matches_are_the_right_person_or_none(
    linked: tuple[WorkspaceConfig, Store], sandbox: Path
) -> None:
    config, store = linked
    gov = Governance.open(config, store)
    records = _records_of(sandbox)
    found = wrong = 0
    for row in _truth(sandbox)[:300]:
        key, _ = match_resident(gov.db, _pivot(row))
        if key is None:
            continue
        found += 1
        mentions = {m.rsplit("|", 1)[0] for m, _src, _hh in gov.index.mentions_of(key)}
        if not (mentions & records.get(row["person_id"], set())):
            wrong += 1
    assert found > 50
    assert wrong == 0


def test_a_changed_birth_date_or_given_name_matches_nobody(
    linked: tuple[WorkspaceConfig, Store], sandbox: Path
) -> None:
    config, store = linked
    gov = Governance.open(config, store)
    for row in _truth(sandbox)[:300]:
        pivot = _pivot(row)
        if match_resident(gov.db, pivot)[0] is None:
            continue
        year = int(pivot.birthdate[:4])
        shifted = PivotIdentity(
            pivot.given_name, pivot.family_name, f"{year - 1}{pivot.birthdate[4:]}"
        )
        assert match_resident(gov.db, shifted)[0] is None
        renamed = PivotIdentity("Zébulon", pivot.family_name, pivot.birthdate)
        assert match_resident(gov.db, renamed)[0] is None
        break
    else:  # pragma: no cover - the sandbox always has matches
        raise AssertionError("no resident matched")
    assert match_resident(gov.db, PivotIdentity("", "", ""))[0] is None


def test_every_login_attempt_is_in_the_ledger(
    linked: tuple[WorkspaceConfig, Store], sandbox: Path
) -> None:
    config, store = linked
    gov = Governance.open(config, store)
    row = next(r for r in _truth(sandbox) if match_resident(gov.db, _pivot(r))[0])
    key = gov.identify_resident(_pivot(row), "FranceConnect")
    assert key is not None
    last = gov.ledger.records(limit=1)[0].entry
    assert (last.actor, last.view, last.decision) == (
        f"resident:{key}",
        "resident.identify",
        "allow",
    )
    assert last.persons == (key,)
    assert gov.identify_resident(PivotIdentity("Personne", "INCONNUE", "1900-01-01"), "FC") is None
    failed = gov.ledger.records(limit=1)[0].entry
    assert (failed.decision, failed.rule, failed.persons) == ("deny", "deny:no_single_match", ())
    assert "INCONNUE" not in failed.reason  # a failed match names nobody
    assert gov.ledger.verify().ok
