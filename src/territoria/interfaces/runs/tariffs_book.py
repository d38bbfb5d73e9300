"""The outreach book of the non-take-up worklist, kept as governed cases (app « tariffs »).

Each contact an agent records is an immutable case of kind ``outreach.contact`` written through
``Governance.add_case`` under the acting purpose: decided, about the household's contact person
(a pseudonym of the purpose's domain), and left in the ledger. The book reads them back through
``Governance.cases`` (one ledger record per listing) and implements the tariffs app's
``OutreachBook`` protocol, so ``take_up_report`` works on what agents actually recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from territoria.apps.tariffs import Outreach
from territoria.core.errors import TerritoriaError
from territoria.governance import Governance

APP = "tariffs"
CONTACT = "outreach.contact"


class GovernedOutreachBook:
    """``OutreachBook`` over the governed cases of one actor acting under one purpose.

    ``subject_of`` gives the pseudonym of the person a household's contact is recorded about
    (the household's applicant); a household it does not know cannot be recorded.
    """

    def __init__(
        self,
        gov: Governance,
        actor: str,
        purpose: str,
        subject_of: Callable[[str], str | None] | None = None,
    ) -> None:
        self.gov = gov
        self.actor = actor
        self.purpose = purpose
        self.subject_of = subject_of
        self._cache: list[Outreach] | None = None

    def record(self, outreach: Outreach) -> None:
        self.record_case(outreach)

    def record_case(self, outreach: Outreach) -> str:
        """Write the contact as a case; returns the case id."""
        subject = self.subject_of(outreach.household_key) if self.subject_of else None
        if subject is None:
            raise TerritoriaError(
                f"foyer inconnu de la liste de repérage : {outreach.household_key}",
                code="tariffs_household_unknown",
                hint="reprenez l'identifiant affiché par « territoria tariffs screen »",
            )
        case = self.gov.add_case(
            self.actor,
            self.purpose,
            APP,
            CONTACT,
            subject,
            outreach.model_dump(mode="json"),
        )
        self._cache = None
        return case.case_id

    def all(self) -> Iterable[Outreach]:
        if self._cache is None:
            cases = self.gov.cases(self.actor, self.purpose, APP, kinds=(CONTACT,))
            self._cache = [Outreach.model_validate(c.payload) for c in cases]
        return list(self._cache)

    def for_household(self, household_key: str) -> list[Outreach]:
        return [o for o in self.all() if o.household_key == household_key]
