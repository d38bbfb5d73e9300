"""Cases that 4P apps keep about residents: a contested bin lift, an outreach contact.

An app's case is a write of personal data under a purpose: it is decided (view ``records``),
its subject is a pseudonym of the purpose's domain resolved to the index's person only
inside the purpose's population, and every write and every listing leaves one ledger
record. Apps never keep such rows themselves (they have no path to the store).

A resident may address a request to a service from the portal (a contested bin lift): a case
of kind ``….requested`` recorded under the portal's purpose (limited to the resident's own
data), whose payload names the purpose it is ``addressed_to``. It is listed, with the cases of
that purpose, to its agents — for residents in that purpose's population only.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from territoria.backends import marks
from territoria.core.errors import GovernanceError

if TYPE_CHECKING:
    from territoria.governance.service import Governance

__all__ = ["ADDRESSED_TO", "CASES_SCHEMA", "REQUESTED", "Case", "add_case", "list_cases"]

REQUESTED = ".requested"  # suffix of the kind of a resident's request to a service
ADDRESSED_TO = "addressed_to"  # the payload field naming the purpose a request goes to

CASES_SCHEMA = """
CREATE TABLE IF NOT EXISTS gov_cases (
    case_id TEXT PRIMARY KEY, app TEXT NOT NULL, kind TEXT NOT NULL, purpose TEXT NOT NULL,
    person_key TEXT, payload TEXT NOT NULL, created_at TEXT NOT NULL, actor TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS gov_cases_app ON gov_cases (app, kind)
"""


@dataclass(frozen=True)
class Case:
    case_id: str
    app: str
    kind: str
    subject: str | None  # pseudonym of the purpose's domain (None: no resident named)
    payload: dict[str, Any]
    created_at: str
    actor: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "app": self.app,
            "kind": self.kind,
            "subject": self.subject,
            "payload": self.payload,
            "created_at": self.created_at,
            "actor": self.actor,
        }


def _decided(gov: Governance, actor: str, purpose: str, view: str) -> Any:
    decision = gov.decide(actor, purpose, "records")
    if not decision.allowed:
        gov.record(decision, kind="read", view=view)
        raise GovernanceError(
            f"refusé : {decision.reason}", code="access_denied", details={"rule": decision.rule}
        )
    return decision


def add_case(
    gov: Governance,
    actor: str,
    purpose: str,
    app: str,
    kind: str,
    subject: str | None,
    payload: dict[str, Any],
) -> Case:
    """Record a case about ``subject`` (or about no resident); one ledger write record."""
    decision = _decided(gov, actor, purpose, f"{app}.{kind}")
    if kind.endswith(REQUESTED):
        _check_request(gov, purpose, payload)
    person = None
    if subject:
        acting = gov.acting(actor, purpose, subject, "records")
        person = acting.person
    gov.db.script(CASES_SCHEMA)
    case = Case(
        f"{app[:3].upper()}-{secrets.token_hex(6).upper()}",
        app,
        kind,
        subject,
        payload,
        gov.clock().isoformat(timespec="seconds"),
        actor,
    )
    text = json.dumps(payload, ensure_ascii=False, sort_keys=True, default=str)
    gov.db.insert(
        "gov_cases",
        ["case_id", "app", "kind", "purpose", "person_key", "payload", "created_at", "actor"],
        [[case.case_id, app, kind, purpose, person, text, case.created_at, actor]],
    )
    gov.record(
        decision,
        kind="write",
        view=f"{app}.{kind}",
        persons=(person,) if person else (),
        reason=f"dossier {case.case_id} ({app}, {kind})",
    )
    return case


def _check_request(gov: Governance, purpose: str, payload: dict[str, Any]) -> None:
    """A request is a resident's, from the portal, to a purpose of the register."""
    target = gov.policy.purposes.get(str(payload.get(ADDRESSED_TO, "")))
    if not gov.policy.purposes[purpose].scope.self_only or target is None:
        raise GovernanceError(
            "une demande se dépose par un résident, depuis son espace, auprès d'une finalité "
            f"du registre (champ {ADDRESSED_TO})",
            code="case_request_invalid",
        )


def _requests_to(
    gov: Governance, actor: str, purpose: str, rows: list[tuple[Any, ...]]
) -> list[tuple[Any, ...]]:
    """Of these rows, the cases of the purpose and the requests addressed to it by residents
    of its population."""
    own = [r for r in rows if not str(r[2]).endswith(REQUESTED) or r[7] == purpose]
    asked = [r for r in rows if str(r[2]).endswith(REQUESTED) and r[7] != purpose]
    if not asked:
        return own
    population = gov.reader.population(gov.policy.purposes[purpose], actor)
    kept = [
        r
        for r in asked
        if json.loads(str(r[4])).get(ADDRESSED_TO) == purpose and str(r[3]) in population
    ]
    return sorted(own + kept, key=lambda r: (str(r[5]), str(r[0])))


def list_cases(
    gov: Governance, actor: str, purpose: str, app: str, kinds: tuple[str, ...] = ()
) -> list[Case]:
    """The app's cases recorded under this purpose, oldest first; one ledger read record.

    Under a purpose limited to the resident's own data (the portal's ``resident_access``),
    the cases listed are those about the resident, whatever purpose they were recorded under:
    the resident's right of access (RGPD art. 15) covers a dispute an agent keeps about them.
    """
    decision = _decided(gov, actor, purpose, f"{app}.list")
    gov.db.script(CASES_SCHEMA)
    sql = (
        "SELECT case_id, app, kind, person_key, payload, created_at, actor, purpose "
        "FROM gov_cases WHERE app = ? AND "
    )
    self_only = gov.policy.purposes[purpose].scope.self_only
    if self_only:
        sql += "person_key = ?"
        params: list[Any] = [app, gov.reader.actor_key(actor) or ""]
    else:
        sql += "(purpose = ? OR kind LIKE ?)"
        params = [app, purpose, f"%{REQUESTED}"]
    if kinds:
        sql += f" AND kind IN ({marks(kinds)})"
        params += list(kinds)
    rows = gov.db.query(sql + " ORDER BY created_at, case_id", params)
    if not self_only:
        rows = _requests_to(gov, actor, purpose, rows)
    domain = gov.policy.purposes[purpose].domain
    cases = [
        Case(
            str(case_id),
            str(app_),
            str(kind),
            gov.pseudonyms.pseudonym(domain, str(person)) if person else None,
            json.loads(str(payload)),
            str(created),
            str(by),
        )
        for case_id, app_, kind, person, payload, created, by, _ in rows
    ]
    persons = tuple(sorted({str(r[3]) for r in rows if r[3]}))
    gov.record(decision, kind="read", view=f"{app}.list", persons=persons)
    return cases
