"""The waste service's words and numbers, shared by ``territoria waste`` and the console: a
dispute's evidence as labelled rows, why a payer has no bill, a weight, and amounts typed in
euros.

Pure functions. A parser answers ``None`` for what it cannot read, and each interface reports
it its own way: the command line raises a ``TerritoriaError`` naming the option, a page writes
the error beside its field.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from territoria.apps.waste import BillingRun, Evidence
from territoria.apps.waste.money import euros

__all__ = [
    "DISPUTE_STATUS",
    "MAX_EUROS",
    "euros_to_cents",
    "evidence_rows",
    "held_reasons",
    "kilograms",
    "parse_decimal",
]

DISPUTE_STATUS = {"ouverte": "ouverte", "maintenue": "levée maintenue", "avoir": "avoir accordé"}
"""A dispute's status as the waste service reads it (the portal words it for residents)."""

MAX_EUROS = Decimal(10**10)
"""An amount at or above ten billion euros is a typing error, not a service's budget."""

_SPACES = (" ", "\u202f", "\xa0")  # thousands separators: space, narrow and non-breaking


def parse_decimal(text: str) -> Decimal | None:
    """A number as typed in French or English, or ``None`` when it is not one.

    Accepts a decimal comma or point, spaces between thousands, the minus sign « − », a euro
    sign, and a final « % » (then a fraction: « −30 % » is −0.30).

    >>> parse_decimal("250 000,50"), parse_decimal("−30 %"), parse_decimal("beaucoup")
    (Decimal('250000.50'), Decimal('-0.3'), None)
    """
    cleaned = text.strip().replace("\u2212", "-").replace(",", ".").replace("€", "")
    percent = cleaned.endswith("%")
    for space in (*_SPACES, "%"):
        cleaned = cleaned.replace(space, "")
    try:
        number = Decimal(cleaned)
    except InvalidOperation:
        return None
    if not number.is_finite():
        return None
    return number / 100 if percent else number


def euros_to_cents(text: str) -> int | None:
    """An amount typed in euros, in whole cents; ``None`` unless it is a positive amount below
    :data:`MAX_EUROS` (a percentage is not an amount).

    >>> euros_to_cents("250 000,50"), euros_to_cents("-3"), euros_to_cents("5 %")
    (25000050, None, None)
    """
    amount = None if "%" in text else parse_decimal(text)
    if amount is None or not 0 < amount < MAX_EUROS:
        return None
    return int((amount * 100).to_integral_value())


def kilograms(weight: Decimal | None) -> str:
    """A weight in French (« 12,5 kg »); « — » when none was measured."""
    if weight is None:
        return "—"
    return format(weight.normalize(), "f").replace(".", ",") + " kg"


def evidence_rows(evidence: Evidence) -> list[tuple[str, str]]:
    """What is known of a contested lift, as (label, value) rows in French: when, where and how
    it was read, how it was billed, and every anomaly noted on it.

    The lift's own id is not a row: each interface shows it where it names the dispute.
    """

    def shown(value: object) -> str:
        return "—" if value is None or value == "" else str(value)

    when = evidence.lifted_at.strftime("%d/%m/%Y %H:%M:%S") if evidence.lifted_at else None
    rows = [
        ("Trouvée dans les données", "oui" if evidence.found else "non"),
        ("Horodatage", shown(when)),
        ("Benne", shown(evidence.truck_id)),
        ("Lieu", shown(evidence.place)),
        ("Poids", kilograms(evidence.weight_kg)),
        ("Statut de lecture", shown(evidence.read_status)),
        ("Puce lue", shown(evidence.rfid_tag)),
        ("Doublons", shown(evidence.dedup)),
        ("Rattachement", shown(evidence.attribution)),
        ("Facturation", shown(evidence.billing)),
        ("Valeur facturée", euros(evidence.billed_value_cents)),
    ]
    rows += [("Anomalie", str(a.get("detail") or a.get("reason"))) for a in evidence.anomalies]
    return rows


def held_reasons(run: BillingRun) -> dict[str, list[str]]:
    """Why each payer held back has no bill: the detail (else the reason) of each anomaly of
    theirs, by payer in order (a run never bills a payer partially)."""
    held = set(run.held)
    reasons: dict[str, list[str]] = {p: [] for p in sorted(held)}
    for row in run.anomalies.to_pylist():
        if row["payer"] in held:
            reasons[row["payer"]].append(str(row["detail"] or row["reason"]))
    return reasons
