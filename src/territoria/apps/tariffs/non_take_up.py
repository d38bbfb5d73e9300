"""The non-take-up worklist: households apparently eligible for what they do not receive.

A suggestion for a CCAS agent, never a decision: each entry lists the entitlements a household
appears to be eligible for without receiving them (as a source says, or where no source says),
and the local tariffs where the band applied is higher than its quotient's, ranked by the
monthly amount forgone, each line with how it was computed. The agent records each contact and
its outcome (``Outreach``) in an ``OutreachBook``; ``take_up_report`` then compares take-up
among households contacted and not contacted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from territoria.apps.tariffs.bands import BandAssignment, assign_bands
from territoria.apps.tariffs.explain import euros
from territoria.apps.tariffs.grids import Grid
from territoria.apps.tariffs.model import Household
from territoria.apps.tariffs.openfisca_sim import Screening

LineKind = Literal["droit", "tarif"]
LineStatus = Literal["non_percu", "non_renseigne", "tranche_trop_haute", "quotient_inconnu"]
LINE_STATUS_LABELS = {
    "non_percu": "non perçu selon la source",
    "non_renseigne": "perception inconnue des sources : à vérifier avec le foyer",
    "tranche_trop_haute": "tranche appliquée plus chère que celle du quotient",
    "quotient_inconnu": (
        "tranche par défaut appliquée faute de quotient connu : une attestation de quotient "
        "familial pourrait ouvrir une tranche plus basse"
    ),
}
Channel = Literal["courrier", "telephone", "courriel", "visite", "accueil"]
Outcome = Literal["joint", "pas_joignable", "refus", "demande_deposee", "droit_ouvert"]
OUTCOME_LABELS = {
    "joint": "joint",
    "pas_joignable": "pas joignable",
    "refus": "refus",
    "demande_deposee": "demande déposée",
    "droit_ouvert": "droit ouvert",
}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class WorklistLine(_Frozen):
    kind: LineKind
    item: str
    label: str
    famille: int
    member: str | None = None
    monthly_amount: float | None  # None: a right with no cash value (CSS)
    status: LineStatus
    how: str


class WorklistEntry(_Frozen):
    household_key: str
    rank: int
    monthly_total: float
    lines: list[WorklistLine]
    how: str


class Worklist(_Frozen):
    """The ranked suggestions, and what could not be assessed."""

    reference_month: date
    computed_with: str
    entries: list[WorklistEntry]
    households_screened: int
    households_unknown: list[str] = Field(default_factory=list)
    notice: str = (
        "Liste de suggestions pour un entretien d'accès aux droits : aucune décision n'est "
        "prise par cet outil ; un agent vérifie chaque situation avec la personne."
    )

    def entry(self, household_key: str) -> WorklistEntry | None:
        return next((e for e in self.entries if e.household_key == household_key), None)


class Outreach(_Frozen):
    """An agent's contact with a household about the worklist, and its outcome."""

    household_key: str
    contact_date: date
    channel: Channel
    outcome: Outcome
    agent: str
    items: list[str] = Field(default_factory=list)  # empty: the whole entry
    note: str = ""


class OutreachBook(Protocol):
    """Where outreach records are kept (the lead implements it on the workspace)."""

    def record(self, outreach: Outreach) -> None: ...

    def for_household(self, household_key: str) -> list[Outreach]: ...

    def all(self) -> Iterable[Outreach]: ...


class InMemoryOutreachBook:
    """An ``OutreachBook`` in memory, for tests and scripts."""

    def __init__(self) -> None:
        self._records: list[Outreach] = []

    def record(self, outreach: Outreach) -> None:
        self._records.append(outreach)

    def for_household(self, household_key: str) -> list[Outreach]:
        return [r for r in self._records if r.household_key == household_key]

    def all(self) -> Iterable[Outreach]:
        return list(self._records)


def _entitlement_lines(
    screening: Screening, household: Household, include_unknown: bool
) -> list[WorklistLine]:
    lines: list[WorklistLine] = []
    for row in screening.famille_rows(household.key):
        if not screening.layout.famille_known[row]:
            continue
        number = row - screening.famille_rows(household.key)[0]
        for e in screening.catalogue.entitlements:
            value = float(screening.amount(e.id)[row])
            receipt = household.receipt(e.id)
            if value <= 0 or (receipt is not None and receipt.received):
                continue
            if receipt is None and not include_unknown:
                continue
            status: LineStatus = "non_percu" if receipt is not None else "non_renseigne"
            said = f" ({receipt.provenance.label()})" if receipt is not None else ""
            how = (
                f"{e.label} calculé à {euros(value)} par mois pour {screening.period} "
                f"(OpenFisca, variable « {e.variable} »)"
                if e.monetary
                else f"{e.label} : éligible pour {screening.period} (OpenFisca)"
            )
            lines.append(
                WorklistLine(
                    kind="droit",
                    item=e.id,
                    label=e.label,
                    famille=number,
                    monthly_amount=round(value, 2) if e.monetary else None,
                    status=status,
                    how=f"{how} ; {LINE_STATUS_LABELS[status]}{said}.",
                )
            )
    return lines


def _tariff_line(assignment: BandAssignment, unknown_quotient: bool) -> WorklistLine | None:
    if (
        unknown_quotient
        and assignment.quotient is None
        and assignment.current_band == assignment.band
    ):
        return WorklistLine(
            kind="tarif", item=assignment.service, label=assignment.service_label,
            famille=assignment.famille, member=assignment.member, monthly_amount=None,
            status="quotient_inconnu",
            how=f"{assignment.how} {LINE_STATUS_LABELS['quotient_inconnu'].capitalize()}.",
        )  # fmt: skip
    if not assignment.monthly_saving or assignment.monthly_saving <= 0:
        return None
    return WorklistLine(
        kind="tarif",
        item=assignment.service,
        label=assignment.service_label,
        famille=assignment.famille,
        member=assignment.member,
        monthly_amount=assignment.monthly_saving,
        status="tranche_trop_haute",
        how=assignment.how,
    )


def non_take_up_worklist(
    screening: Screening,
    grids: dict[str, Grid],
    *,
    include_unknown_receipts: bool = True,
    include_unknown_quotients: bool = False,
    minimum_monthly: float = 0.0,
    assignments: Sequence[BandAssignment] | None = None,
) -> Worklist:
    """Households eligible for what they do not receive, ranked by the monthly amount forgone.

    ``include_unknown_receipts``: list entitlements no source says are received (marked « à
    vérifier »); ``include_unknown_quotients``: list the service uses billed at the default
    band because no quotient is known (no amount: the purpose « canteen_tariff_outreach »);
    ``minimum_monthly``: leave out entries forgoing less (lines without an amount keep their
    entry whatever the amount).
    """
    by_household: dict[str, list[WorklistLine]] = {}
    for assignment in assignments if assignments is not None else assign_bands(screening, grids):
        line = _tariff_line(assignment, include_unknown_quotients)
        if line is not None:
            by_household.setdefault(assignment.household_key, []).append(line)
    candidates = []
    for household in screening.households:
        lines = _entitlement_lines(screening, household, include_unknown_receipts)
        lines += by_household.get(household.key, [])
        total = round(sum(line.monthly_amount or 0.0 for line in lines), 2)
        if not lines or (total < minimum_monthly and all(line.monthly_amount for line in lines)):
            continue
        candidates.append((household.key, total, lines))
    candidates.sort(key=lambda c: (-c[1], c[0]))
    entries = [
        WorklistEntry(
            household_key=key,
            rank=rank,
            monthly_total=total,
            lines=lines,
            how=_total_how(lines, total),
        )
        for rank, (key, total, lines) in enumerate(candidates, start=1)
    ]
    unknown = sorted(
        {
            screening.layout.household_keys[screening.layout.famille_household[row]]
            for row in range(screening.layout.familles)
            if not screening.layout.famille_known[row]
        }
    )
    return Worklist(
        reference_month=screening.reference,
        computed_with=screening.versions,
        entries=entries,
        households_screened=len(screening.households),
        households_unknown=unknown,
    )


def _total_how(lines: list[WorklistLine], total: float) -> str:
    parts = [
        f"{euros(line.monthly_amount)} ({line.label})" for line in lines if line.monthly_amount
    ]
    text = f"Montant mensuel non perçu : {' + '.join(parts) or '0,00 €'} = {euros(total)}."
    cashless = [line.label for line in lines if line.monthly_amount is None]
    if cashless:
        text += f" Droits sans montant en euros : {', '.join(cashless)}."
    return text


class TakeUpGroup(_Frozen):
    households: int
    taken_up: int
    rate: float | None


class TakeUpReport(_Frozen):
    """Take-up after outreach: among households contacted, and among those not contacted."""

    contacted: TakeUpGroup
    not_contacted: TakeUpGroup
    difference_points: float | None
    outcomes: dict[str, int]
    by_item: dict[str, dict[str, int]]
    how: str


def _taken_up(line: WorklistLine, later: Household | None, records: list[Outreach]) -> bool:
    if any(r.outcome == "droit_ouvert" and (not r.items or line.item in r.items) for r in records):
        return True
    if later is None:
        return False
    if line.kind == "droit":
        receipt = later.receipt(line.item)
        return receipt is not None and receipt.received
    return False


def take_up_report(
    worklist: Worklist,
    book: OutreachBook,
    later: Sequence[Household] = (),
    later_assignments: Sequence[BandAssignment] = (),
) -> TakeUpReport:
    """Share of worklist households that took up at least one listed item, by contact.

    Taken up: an outreach outcome « droit ouvert », a later source saying the entitlement is
    received (``later``), or a later band assignment with no saving left on that service.
    """
    later_by_key = {h.key: h for h in later}
    fixed = {
        (a.household_key, a.service)
        for a in later_assignments
        if not a.monthly_saving or a.monthly_saving <= 0
    }
    counts = {True: [0, 0], False: [0, 0]}
    outcomes: dict[str, int] = {}
    by_item: dict[str, dict[str, int]] = {}
    for entry in worklist.entries:
        records = [
            r
            for r in book.for_household(entry.household_key)
            if r.contact_date >= worklist.reference_month
        ]
        contacted = bool(records)
        for r in records:
            outcomes[OUTCOME_LABELS[r.outcome]] = outcomes.get(OUTCOME_LABELS[r.outcome], 0) + 1
        taken_items = {
            line.item
            for line in entry.lines
            if _taken_up(line, later_by_key.get(entry.household_key), records)
            or (line.kind == "tarif" and (entry.household_key, line.item) in fixed)
        }
        counts[contacted][0] += 1
        counts[contacted][1] += bool(taken_items)
        for line in entry.lines:
            item = by_item.setdefault(line.item, {"listés": 0, "contactés": 0, "ouverts": 0})
            item["listés"] += 1
            item["contactés"] += contacted
            item["ouverts"] += line.item in taken_items
    groups = {
        c: TakeUpGroup(households=n, taken_up=k, rate=k / n if n else None)
        for c, (n, k) in counts.items()
    }
    a, b = groups[True].rate, groups[False].rate
    diff = None if a is None or b is None else round(100 * (a - b), 1)
    how = (
        f"Recours après contact : {groups[True].taken_up} foyers sur {groups[True].households} "
        f"contactés, contre {groups[False].taken_up} sur {groups[False].households} non "
        "contactés. Un droit compte comme pris quand un contact a abouti à « droit ouvert », "
        "quand une source postérieure le dit perçu, ou quand la tranche appliquée est devenue "
        "celle du quotient. L'écart ne mesure l'effet du contact que si les foyers à contacter "
        "ont été tirés au sort (voir evaluation_groups)."
    )
    return TakeUpReport(
        contacted=groups[True],
        not_contacted=groups[False],
        difference_points=diff,
        outcomes=outcomes,
        by_item=by_item,
        how=how,
    )


def evaluation_groups(worklist: Worklist, control_share: float, salt: str) -> dict[str, str]:
    """A reproducible random split of the worklist: « contacter » or « témoin » per household.

    The draw hashes the household key with ``salt`` (keep the salt with the evaluation plan);
    a control group makes the take-up difference an estimate of the effect of outreach.
    """
    import hashlib

    if not 0 <= control_share < 1:
        raise ValueError("control_share must be in [0, 1)")
    groups = {}
    for entry in worklist.entries:
        digest = hashlib.sha256(f"{salt}|{entry.household_key}".encode()).digest()
        draw = int.from_bytes(digest[:8], "big") / 2**64
        groups[entry.household_key] = "témoin" if draw < control_share else "contacter"
    return groups
