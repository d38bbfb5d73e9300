"""The non-take-up screening on the governed read, shared by ``territoria tariffs`` and the console.

``run_screening`` reads the CCAS, school, transport and water records under the purpose
``ccas_non_take_up`` (one governed batch read: the purpose's fields only, objectors left out,
one ledger record naming every person read), builds each household from its records, runs
the OpenFisca screening, places each service use in its local tariff band and ranks the
non-take-up worklist by the monthly amount forgone. Nothing here decides anything about a
resident.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from territoria.apps.tariffs import (
    BandAssignment,
    Household,
    Screening,
    TariffInputError,
    Worklist,
    assign_bands,
    default_grids,
    household_from_records,
    non_take_up_worklist,
    screen,
)
from territoria.core.contract import SourceContract
from territoria.core.errors import GovernanceError, TerritoriaError
from territoria.governance import Governance
from territoria.governance.policy import Purpose

__all__ = [
    "ID_FIELDS",
    "PURPOSE",
    "SOURCES",
    "BandCount",
    "Run",
    "band_counts",
    "group_records",
    "household_contacts",
    "notice_data",
    "reference_month",
    "run_screening",
]

PURPOSE = "ccas_non_take_up"
SOURCES = ("ccas_aid", "school_enrolments", "transport_passes", "water_subscribers")
ID_FIELDS = {
    "ccas_aid": "aid_id",
    "school_enrolments": "enrolment_id",
    "transport_passes": "pass_id",
    "water_subscribers": "contract_id",
}


def reference_month(month: str | None, today: date | None = None) -> date:
    """The first day of ``month`` (YYYY-MM), or of the month before ``today``."""
    if month is None:
        today = today or date.today()
        return (
            date(today.year - 1, 12, 1)
            if today.month == 1
            else date(today.year, today.month - 1, 1)
        )
    try:
        year, mon = (int(part) for part in month.split("-"))
        return date(year, mon, 1)
    except ValueError:
        raise TerritoriaError(
            f"mois de référence illisible : {month!r}",
            code="tariffs_month",
            expected="AAAA-MM, par exemple 2025-11",
        ) from None


def _communes() -> dict[str, str]:
    """Postcode → INSEE code of the territory's communes (households without water contract)."""
    from territoria.sandbox.territory import load_communes

    return {pc: c.code_insee for c in load_communes() for pc in c.postcodes}


@dataclass
class Run:
    """A screening run: the households, the screening, the bands and the worklist."""

    reference: date
    households: list[Household]
    screening: Screening
    bands: list[BandAssignment]
    worklist: Worklist
    contacts: dict[str, str]  # household key → pseudonym of the person a contact is about
    skipped: dict[str, int] = field(default_factory=dict)
    persons: int = 0
    ledger_seq: int | None = None  # the ledger record of the governed batch read


def _person_key(source: str, row: Mapping[str, Any]) -> str:
    return str(row.get("person") or f"{source}:{row.get(ID_FIELDS[source])}")


def group_records(
    tables: Mapping[str, Sequence[Mapping[str, Any]]],
) -> tuple[dict[str, dict[str, list[dict[str, Any]]]], dict[str, str]]:
    """Records by household pseudonym (the person's when no household), with person keys.

    Returns the groups and, per household, the pseudonym a contact is recorded about (the
    CCAS applicant, else the first person named). The extract names one person per record
    (its holder); the CCAS spouse is the household's other person born on the spouse's birth
    date when one is named, else a member of their own.
    """
    groups: dict[str, dict[str, list[dict[str, Any]]]] = {}
    contacts: dict[str, str] = {}
    for source in SOURCES:
        for raw in tables.get(source, ()):
            key = raw.get("household") or raw.get("person")
            if not key:
                continue  # a record naming no resident of the index (a building's contract)
            row = dict(raw)
            row["person_key"] = _person_key(source, row)
            groups.setdefault(str(key), {}).setdefault(source, []).append(row)
            if raw.get("person") and (source == "ccas_aid" or str(key) not in contacts):
                contacts[str(key)] = str(raw["person"])
    for records in groups.values():
        others = [r for s, rows in records.items() if s != "ccas_aid" for r in rows]
        for aid in records.get("ccas_aid", ()):
            birth = aid.get("spouse_birth_date")
            if not birth and int(aid.get("adults") or 0) < 2:
                continue
            same = next(
                (r["person_key"] for r in others
                 if birth and r.get("birth_date") == birth and r["person_key"] != aid["person_key"]),
                None,
            )  # fmt: skip
            aid["spouse_person_key"] = same or f"{aid['person_key']}:conjoint"
    return groups, contacts


def _require_notice(gov: Governance, actor: str, purpose: str) -> None:
    """The screening helps decisions about residents: it runs only under a purpose whose
    register entry declares the algorithm (its CRPA L311-3-1 notice); a refusal is recorded."""
    declared = gov.policy.purposes.get(purpose)
    if declared is None or declared.algorithm is not None:
        return  # an unknown purpose is refused by the governed read itself
    reason = (
        "la finalité ne déclare pas l'algorithme de repérage (notice CRPA L311-3-1 du "
        "registre) : il ne peut pas servir sous elle"
    )
    refused = replace(
        gov.decide(actor, purpose, "records"),
        allowed=False,
        rule="deny:algorithm_not_declared",
        reason=reason,
        fields={},
    )
    gov.record(refused, kind="read", view="records.batch")
    raise GovernanceError(
        f"refusé : {reason}",
        code="access_denied",
        details={"rule": refused.rule},
        hint=f"le repérage du CCAS s'exécute sous la finalité {PURPOSE}",
    )


def run_screening(
    gov: Governance,
    actor: str,
    purpose: str,
    reference: date,
    *,
    progress: Callable[[str], None] | None = None,
    lock: AbstractContextManager[Any] | None = None,
) -> Run:
    """Extract, build, screen, bands and worklist for one reference month.

    ``progress`` is told each step's label (the CLI shows it under a progress bar); ``lock``
    is held during the governed read only (the web state's), not while OpenFisca computes.
    """
    step = progress or (lambda _label: None)
    with lock or nullcontext():
        _require_notice(gov, actor, purpose)
        extract = gov.extract(actor, purpose, SOURCES)
    tables = {s: t.to_pylist() for s, t in extract.tables.items()}
    groups, contacts = group_records(tables)
    communes = _communes()
    households: list[Household] = []
    skipped: dict[str, int] = {}
    for key, records in sorted(groups.items()):
        try:
            households.append(household_from_records(key, records, reference, communes=communes))
        except TariffInputError as exc:
            skipped[exc.code] = skipped.get(exc.code, 0) + 1
    grids = default_grids()
    step(f"Simulation OpenFisca de {len(households)} foyers")
    screening = screen(households, reference)
    step("Tranches tarifaires et liste de repérage")
    bands = assign_bands(screening, grids)
    worklist = non_take_up_worklist(screening, grids, assignments=bands)
    return Run(
        reference,
        households,
        screening,
        bands,
        worklist,
        contacts,
        skipped,
        extract.persons,
        extract.ledger_seq,
    )


@dataclass(frozen=True)
class BandCount:
    """Uses of one local tariff's band, and how many of them pay a band too high."""

    service: str
    band: str
    uses: int
    higher: int


def band_counts(bands: Sequence[BandAssignment]) -> tuple[list[BandCount], dict[str, float]]:
    """Uses per (service, band), and each service's monthly gap of bands charged too high."""
    counts: dict[tuple[str, str], list[int]] = {}
    saving: dict[str, float] = {}
    for b in bands:
        cell = counts.setdefault((b.service_label, b.band), [0, 0])
        cell[0] += 1
        cell[1] += bool(b.monthly_saving and b.monthly_saving > 0)
        saving[b.service_label] = saving.get(b.service_label, 0.0) + max(0.0, b.monthly_saving or 0)
    rows = [BandCount(s, b, n, h) for (s, b), (n, h) in sorted(counts.items())]
    return rows, {s: round(t, 2) for s, t in sorted(saving.items()) if t > 0}


def notice_data(
    purpose: Purpose, contract_of: Callable[[str], SourceContract | None]
) -> dict[str, list[str]]:
    """The data the purpose's algorithm processes, by source, with the contracts' titles."""
    data: dict[str, list[str]] = {}
    for source, names in purpose.algorithm_data().items():
        contract = contract_of(source)
        titles = {f.name: f.title or f.name for f in contract.fields} if contract else {}
        wanted = list(titles) if names == "*" else names
        title = contract.title if contract else source
        data[f"{title} ({source})"] = [titles.get(n, n) for n in wanted]
    return data


def household_contacts(gov: Governance, actor: str, purpose: str) -> dict[str, str]:
    """Household key → contact person, from the CCAS file (else every source) under the purpose.

    A governed batch read: it checks that the household is still in the purpose's population
    (an objector is not) and leaves its ledger record.
    """
    extract = gov.extract(actor, purpose, ("ccas_aid",))
    _, contacts = group_records({s: t.to_pylist() for s, t in extract.tables.items()})
    return contacts
