"""Disputes: a payer contests a lift; the evidence is assembled; an agent upholds or credits.

The evidence trail of a lift comes from the billing run that counted it: timestamp, truck,
place (when the truck records one), weight, read status, the double-read decision, the
allocation (bin, volume, payer) it was attributed to, and how it counted on the bill. Its
*billed value* is exactly what the bill would lose without it (an extra lift's price, its
weight's price; nothing when it fell within the included lifts).

An agent's decision is recorded with their name, reason and date. A credit becomes a
:class:`~territoria.apps.waste.billing.Correction` on the payer's next bill
(:func:`corrections_due`), and the lift is no longer counted in later runs
(:func:`excluded_lifts`). Persistence goes through the small :class:`DisputeBook` protocol:
:class:`InMemoryDisputeBook` here, the workspace-backed book in the governance layer.
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal, Protocol

from pydantic import BaseModel

from territoria.apps.waste.billing import BillingRun, Correction
from territoria.apps.waste.money import euros
from territoria.apps.waste.sql import fetch_dicts
from territoria.core.errors import TerritoriaError

DisputeStatus = Literal["ouverte", "maintenue", "avoir"]
Decision = Literal["uphold", "credit"]


class Evidence(BaseModel):
    """Everything known about one lift, as the billing run saw it."""

    lift_id: str
    found: bool
    period: str
    grid_id: str
    lifted_at: datetime | None = None
    truck_id: str | None = None
    rfid_tag: str | None = None
    weight_kg: Decimal | None = None
    read_status: str | None = None
    place: str | None = None
    dedup: str = ""
    attribution: str = ""
    allocation_id: str | None = None
    payer: str | None = None
    billing: str = ""
    billed_value_cents: int = 0
    anomalies: list[dict[str, Any]] = []


class Dispute(BaseModel):
    """A contested lift and what became of it."""

    id: str
    payer: str
    lift_id: str
    opened_at: datetime
    claim: str
    evidence: Evidence
    status: DisputeStatus = "ouverte"
    decided_at: datetime | None = None
    agent: str | None = None
    decision_reason: str | None = None
    credit_cents: int = 0
    applied_in: str | None = None


class DisputeBook(Protocol):
    """Where disputes are kept (in memory for tests; in the workspace in production)."""

    def add(self, dispute: Dispute) -> None:
        """Store a new dispute (its id is new)."""

    def get(self, dispute_id: str) -> Dispute:
        """The dispute, or a ``waste_dispute_unknown`` error."""

    def save(self, dispute: Dispute) -> None:
        """Replace a stored dispute by its new state."""

    def all(self) -> list[Dispute]:
        """Every dispute, oldest first."""

    def next_id(self) -> str:
        """A fresh identifier."""


class InMemoryDisputeBook:
    """A :class:`DisputeBook` in a dict."""

    def __init__(self) -> None:
        self._disputes: dict[str, Dispute] = {}

    def add(self, dispute: Dispute) -> None:
        if dispute.id in self._disputes:
            raise TerritoriaError(
                f"contestation {dispute.id} déjà enregistrée", code="waste_dispute_exists"
            )
        self._disputes[dispute.id] = dispute

    def get(self, dispute_id: str) -> Dispute:
        try:
            return self._disputes[dispute_id]
        except KeyError:
            raise TerritoriaError(
                f"contestation {dispute_id} inconnue", code="waste_dispute_unknown"
            ) from None

    def save(self, dispute: Dispute) -> None:
        self.get(dispute.id)
        self._disputes[dispute.id] = dispute

    def all(self) -> list[Dispute]:
        return sorted(self._disputes.values(), key=lambda d: (d.opened_at, d.id))

    def next_id(self) -> str:
        return f"C-{len(self._disputes) + 1:05d}"


# --- evidence --------------------------------------------------------------------------------


def evidence(run: BillingRun, lift_id: str) -> Evidence:
    """The evidence trail of one lift in a billing run."""
    base = Evidence(lift_id=lift_id, found=False, period=run.period.label, grid_id=run.grid.id)
    rows = fetch_dicts(run.con, _RAW_SQL, [lift_id])
    if not rows:
        return base.model_copy(update={"billing": "levée absente des données transmises"})
    raw = rows[0]
    anomalies = fetch_dicts(
        run.con,
        "SELECT reason, detail FROM anomalies WHERE level = 'levee' AND ref = ?",
        [lift_id],
    )
    attribution = fetch_dicts(run.con, _ATTRIBUTION_SQL, [lift_id])
    value, billing = _billing(run, lift_id, raw, anomalies)
    return base.model_copy(
        update={
            "found": True,
            "lifted_at": raw["ts"],
            "truck_id": raw["truck_id"],
            "rfid_tag": raw["tag"],
            "weight_kg": raw["w"],
            "read_status": raw["status"],
            "place": _place(raw),
            "dedup": _dedup(run, lift_id),
            "attribution": _attribution_text(attribution),
            "allocation_id": attribution[0]["allocation_id"] if attribution else None,
            "payer": attribution[0]["payer"] if attribution else None,
            "billing": billing,
            "billed_value_cents": value,
            "anomalies": anomalies,
        }
    )


def _place(raw: dict[str, Any]) -> str | None:
    if raw["place"]:
        return str(raw["place"])
    if raw["latitude"] is not None and raw["longitude"] is not None:
        return f"{raw['latitude']:.5f}, {raw['longitude']:.5f}"
    return None


def _dedup(run: BillingRun, lift_id: str) -> str:
    mine = fetch_dicts(
        run.con, "SELECT prev_id, epoch(gap) AS s FROM dup WHERE lift_id = ?", [lift_id]
    )
    if mine:
        return (
            f"doublon de la levée {mine[0]['prev_id']} ({int(mine[0]['s'])} s après) : "
            f"écartée (règle : {run.rules_text})"
        )
    others = fetch_dicts(run.con, "SELECT lift_id FROM dup WHERE prev_id = ? ORDER BY 1", [lift_id])
    if others:
        ids = ", ".join(str(o["lift_id"]) for o in others)
        return f"lecture conservée ; relecture(s) écartée(s) comme doublon : {ids}"
    return f"lecture unique : aucune relecture écartée (règle : {run.rules_text})"


def _attribution_text(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "aucune dotation valide pour cette puce à cette date"
    a = rows[0]
    return (
        f"dotation {a['allocation_id']} : bac {a['bin_id']} de {a['volume_l']} L, "
        f"redevable {a['payer']}, du {a['start_date']:%d/%m/%Y}"
        + (f" au {a['end_date']:%d/%m/%Y} (exclu)" if a["end_date"] else " (en cours)")
    )


def _billing(
    run: BillingRun, lift_id: str, raw: dict[str, Any], anomalies: list[dict[str, Any]]
) -> tuple[int, str]:
    if anomalies:
        return 0, "non facturée : " + "; ".join(str(a["detail"]) for a in anomalies)
    detail = fetch_dicts(run.con, _DETAIL_SQL, [lift_id])
    if not detail:
        window = run.windows.count
        if window is None or raw["ts"] is None or not window[0] <= raw["ts"].date() < window[1]:
            return 0, (
                f"hors de la fenêtre de comptage de la facturation de {run.period.title} : "
                "à examiner sur la facture qui compte cette date"
            )
        return 0, "non facturée"
    row = detail[0]
    value = _marginal_value(run, row, raw["w"])
    status = next(
        (d.status for d in run.bill(row["payer"]).lifts if d.lift_id == lift_id), "comptée"
    )
    return value, (
        f"comptée sur la facture de {run.period.title} ({status}) ; "
        f"sans elle, la facture baisserait de {euros(value)}"
    )


def _marginal_value(run: BillingRun, row: dict[str, Any], weight: Decimal | None) -> int:
    """What the bill loses without this one lift (0 if its variable part is waived)."""
    if row["waives_variable"]:
        return 0
    if row["service"] == "badge":
        o = fetch_dicts(run.con, "SELECT * FROM op WHERE payer = ?", [row["payer"]])[0]
        return _extra(o["openings"], o["inc_eff"], 0, o["opening_cents"])
    f = fetch_dicts(run.con, "SELECT * FROM bf WHERE cid = ?", [row["cid"]])[0]
    value = _extra(f["counted"], f["inc_eff"], f["min_eff"], f["extra_cents"] or 0)
    if f["per_kg"] is not None and weight:
        before = max(Decimal(f["kg"]) - Decimal(f["kg_inc"]), Decimal(0))
        after = max(Decimal(f["kg"]) - Decimal(weight) - Decimal(f["kg_inc"]), Decimal(0))
        value += _kg_cents(before, f["per_kg"]) - _kg_cents(after, f["per_kg"])
    return value


def _extra(counted: int, included: int, minimum: int, price_cents: int) -> int:
    def billed(n: int) -> int:
        return max(max(n, minimum) - included, 0) * price_cents

    return billed(counted) - billed(counted - 1)


def _kg_cents(kg: Decimal, per_kg: Decimal) -> int:
    return int((kg * per_kg * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


_RAW_SQL = """
SELECT lift_id, truck_id, lifted_at AS ts, rfid_tag AS tag, weight_kg AS w, read_status AS status,
       place, latitude, longitude
FROM in_lifts WHERE lift_id = ?
"""
_ATTRIBUTION_SQL = """
SELECT a.allocation_id, a.bin_id, a.volume_l, a.payer, a.start_date, a.end_date
FROM (SELECT rfid_tag AS tag, lifted_at AS ts FROM in_lifts WHERE lift_id = ?) e JOIN alloc a
  ON a.tag = e.tag AND a.start_date <= CAST(e.ts AS DATE)
 AND (a.end_date IS NULL OR CAST(e.ts AS DATE) < a.end_date)
"""
_DETAIL_SQL = """
SELECT c.payer, m.cid, c.service, coalesce(x.waives_variable, false) AS waives_variable
FROM matched m
JOIN contracts c USING (cid)
LEFT JOIN pf p ON p.payer = c.payer
LEFT JOIN g_exempt x ON x.code = p.exemption
WHERE m.lift_id = ?
"""


# --- the workflow ----------------------------------------------------------------------------


def open_dispute(
    book: DisputeBook,
    run: BillingRun,
    payer: str,
    lift_id: str,
    claim: str,
    at: datetime,
) -> Dispute:
    """Record a payer's contestation of a lift, with the evidence from ``run``."""
    for existing in book.all():
        if existing.lift_id == lift_id and existing.status != "maintenue":
            raise TerritoriaError(
                f"la levée {lift_id} est déjà contestée ({existing.id})",
                code="waste_dispute_exists",
            )
    trail = evidence(run, lift_id)
    if trail.found and trail.payer is not None and trail.payer != payer:
        raise TerritoriaError(
            f"la levée {lift_id} n'est pas rattachée à ce redevable",
            code="waste_dispute_not_payer",
            field_name="lift_id",
        )
    dispute = Dispute(
        id=book.next_id(), payer=payer, lift_id=lift_id, opened_at=at, claim=claim, evidence=trail
    )
    book.add(dispute)
    return dispute


def decide_dispute(
    book: DisputeBook,
    dispute_id: str,
    decision: Decision,
    agent: str,
    reason: str,
    at: datetime,
) -> Dispute:
    """An agent upholds the lift (``uphold``) or credits it (``credit``), with a reason."""
    dispute = book.get(dispute_id)
    if dispute.status != "ouverte":
        raise TerritoriaError(
            f"contestation {dispute_id} déjà tranchée ({dispute.status})",
            code="waste_dispute_decided",
        )
    if not reason.strip():
        raise TerritoriaError(
            "une décision doit être motivée", code="waste_dispute_reason", field_name="reason"
        )
    decided = dispute.model_copy(
        update={
            "status": "avoir" if decision == "credit" else "maintenue",
            "decided_at": at,
            "agent": agent,
            "decision_reason": reason,
            "credit_cents": dispute.evidence.billed_value_cents if decision == "credit" else 0,
        }
    )
    book.save(decided)
    return decided


def corrections_due(book: DisputeBook, payer: str | None = None) -> list[Correction]:
    """Credits decided but not yet on a bill, as correction lines for the next run."""
    return [
        Correction(
            payer=d.payer,
            amount_cents=-d.credit_cents,
            reference=d.id,
            label=f"Avoir : levée {d.lift_id} contestée",
            explanation=(
                f"Contestation {d.id} du {d.opened_at:%d/%m/%Y} : levée {d.lift_id} du "
                f"{_when(d)} retirée de la facture de {d.evidence.period} par {d.agent} le "
                f"{d.decided_at:%d/%m/%Y} ({d.decision_reason}) : avoir de {euros(d.credit_cents)}"
            ),
        )
        for d in book.all()
        if d.status == "avoir"
        and d.credit_cents > 0
        and d.applied_in is None
        and (payer is None or d.payer == payer)
    ]


def _when(dispute: Dispute) -> str:
    at = dispute.evidence.lifted_at
    return "?" if at is None else f"{at:%d/%m/%Y à %H:%M}"


def excluded_lifts(book: DisputeBook) -> dict[str, str]:
    """Lifts credited after a dispute: not counted by any later run."""
    return {
        d.lift_id: f"levée retirée après la contestation {d.id} ({d.decision_reason})"
        for d in book.all()
        if d.status == "avoir"
    }


def mark_applied(book: DisputeBook, run: BillingRun) -> list[Dispute]:
    """Record that the credits due were put on the bills of ``run`` (payers billed in it)."""
    billed = set(run.bills.column("payer").to_pylist())
    applied = []
    for correction in corrections_due(book):
        if correction.payer in billed:
            dispute = book.get(correction.reference).model_copy(
                update={"applied_in": run.period.label}
            )
            book.save(dispute)
            applied.append(dispute)
    return applied
