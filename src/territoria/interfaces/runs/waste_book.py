"""The waste disputes kept in the workspace: a :class:`DisputeBook` over the governed cases.

The waste engine keeps its contested lifts through the small ``DisputeBook`` protocol; here
each change of a dispute is a new case of the app ``waste`` recorded by
``Governance.add_case`` under the acting purpose (a governed write, one ledger record), and
the book is rebuilt from ``Governance.cases`` (a governed listing, one ledger record, made once
per book). Cases are immutable: a dispute is opened (``dispute.opened``), then decided
(``dispute.decided``), then its credit is put on a bill (``dispute.applied``); each case holds
the dispute's whole state and a version number, and the book keeps each dispute's latest one.

A dispute's subject is its payer when the payer is a resident (the purpose's pseudonym); a
payer that names no resident of the index (a building's manager, keyed by name) gives a case
about no resident.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from territoria.apps.waste import Dispute
from territoria.core.errors import TerritoriaError
from territoria.governance import Governance
from territoria.governance.cases import ADDRESSED_TO

APP = "waste"
OPENED = "dispute.opened"
DECIDED = "dispute.decided"
APPLIED = "dispute.applied"
UPDATED = "dispute.updated"
KINDS = (OPENED, DECIDED, APPLIED, UPDATED)
REQUESTED = "dispute.requested"  # a resident contests a lift from the portal
# Payer keys derived from a name, for records that name no resident of the index.
MANAGER_PREFIX = "GESTIONNAIRE "
UNLINKED_PREFIX = "NON RAPPROCHÉ "
NAME_KEY_PREFIXES = (MANAGER_PREFIX, UNLINKED_PREFIX)


def resident_subject(payer: str) -> str | None:
    """The case's subject for a payer: its pseudonym, or ``None`` for a payer keyed by name."""
    return None if payer.startswith(NAME_KEY_PREFIXES) else payer


class GovernedDisputeBook:
    """A :class:`~territoria.apps.waste.DisputeBook` stored as governed cases."""

    def __init__(
        self, gov: Governance, actor: str, purpose: str, *, as_payer: str | None = None
    ) -> None:
        """``as_payer``: a resident reading their own disputes (the portal) — each is shown
        under the resident's own payer key, and the book cannot be written."""
        self.gov = gov
        self.actor = actor
        self.purpose = purpose
        self.as_payer = as_payer
        self._disputes: dict[str, tuple[int, Dispute]] | None = None

    def _state(self) -> dict[str, tuple[int, Dispute]]:
        if self._disputes is None:
            state: dict[str, tuple[int, Dispute]] = {}
            for case in self.gov.cases(self.actor, self.purpose, APP, KINDS):
                version = int(case.payload.get("version", 1))
                dispute = Dispute.model_validate(case.payload["dispute"])
                if self.as_payer is not None:
                    dispute = dispute.model_copy(update={"payer": self.as_payer})
                known = state.get(dispute.id)
                if known is None or version > known[0]:
                    state[dispute.id] = (version, dispute)
            self._disputes = state
        return self._disputes

    def _write(self, kind: str, version: int, dispute: Dispute) -> None:
        if self.as_payer is not None:
            raise TerritoriaError(
                "les contestations se lisent ici sans s'écrire : le service propreté les "
                "enregistre et les tranche",
                code="waste_dispute_read_only",
            )
        payload: dict[str, Any] = {
            "version": version,
            "dispute": dispute.model_dump(mode="json"),
        }
        self.gov.add_case(
            self.actor, self.purpose, APP, kind, resident_subject(dispute.payer), payload
        )
        self._state()[dispute.id] = (version, dispute)

    def add(self, dispute: Dispute) -> None:
        if dispute.id in self._state():
            raise TerritoriaError(
                f"contestation {dispute.id} déjà enregistrée", code="waste_dispute_exists"
            )
        self._write(OPENED, 1, dispute)

    def get(self, dispute_id: str) -> Dispute:
        try:
            return self._state()[dispute_id][1]
        except KeyError:
            raise TerritoriaError(
                f"contestation {dispute_id} inconnue",
                code="waste_dispute_unknown",
                hint="territoria waste dispute list montre les contestations enregistrées",
            ) from None

    def save(self, dispute: Dispute) -> None:
        version, before = self._state().get(dispute.id, (0, None))
        if before is None:
            self.get(dispute.id)  # raises waste_dispute_unknown
            return
        if before.status != dispute.status:
            kind = DECIDED
        elif before.applied_in != dispute.applied_in:
            kind = APPLIED
        else:
            kind = UPDATED
        self._write(kind, version + 1, dispute)

    def all(self) -> list[Dispute]:
        return sorted((d for _, d in self._state().values()), key=lambda d: (d.opened_at, d.id))

    def next_id(self) -> str:
        return f"C-{len(self._state()) + 1:05d}"


# -- residents' requests -------------------------------------------------------------------------


@dataclass(frozen=True)
class LiftRequest:
    """A resident's contest of one of their lifts, sent from the portal to the waste service."""

    case_id: str
    payer: str | None  # the resident, as a pseudonym of the listing purpose's domain
    lift_id: str
    lifted_at: datetime
    claim: str
    sent_at: str


def request_contest(
    gov: Governance,
    actor: str,
    portal_purpose: str,
    addressed_to: str,
    lift_id: str,
    lifted_at: datetime,
    claim: str,
) -> LiftRequest:
    """Record a resident's contest of their own lift as a request to the waste service's
    purpose (a governed write under the portal's purpose, about the resident)."""
    payload = {
        ADDRESSED_TO: addressed_to,
        "lift_id": lift_id,
        "lifted_at": lifted_at.isoformat(),
        "claim": claim,
    }
    case = gov.add_case(actor, portal_purpose, APP, REQUESTED, "moi", payload)
    return _request(case.case_id, case.subject, case.payload, case.created_at)


def lift_requests(gov: Governance, actor: str, purpose: str) -> list[LiftRequest]:
    """The contests residents sent (a resident: their own; an agent: those addressed to the
    purpose, from residents of its population). One governed listing."""
    return [
        _request(c.case_id, c.subject, c.payload, c.created_at)
        for c in gov.cases(actor, purpose, APP, (REQUESTED,))
    ]


def _request(case_id: str, payer: str | None, payload: dict[str, Any], at: str) -> LiftRequest:
    return LiftRequest(
        case_id,
        payer,
        str(payload["lift_id"]),
        datetime.fromisoformat(str(payload["lifted_at"])),
        str(payload["claim"]),
        at,
    )
