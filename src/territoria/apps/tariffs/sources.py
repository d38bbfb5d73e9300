"""From the services' records of one household to the ``Household`` the screening reads.

The caller (the governed read) gives, for one household key, the records each source holds
about its members, with the contracts' field names (``ccas_aid``, ``school_enrolments``,
``transport_passes``, ``water_subscribers``). A record may carry the pseudonyms of its persons
(``person_key``; ``spouse_person_key`` in the CCAS file) so that one person seen by two
services is one member; without them each record's persons are members of their own.

What each source gives (and the assumption where it is silent):

* ``ccas_aid`` (the most recent request): the applicant and spouse with their birth dates,
  the number of children, the household's monthly resources, carried as the applicant's
  income (the CCAS does not split them by person or kind: « salaire » is assumed, and the
  spouse's own income is counted in that total);
* ``school_enrolments``: each child's birth date and canteen use (days per week × 36 school
  weeks ÷ 12 months = meals per month on average over the year) with the band applied;
* ``transport_passes``: the pass valid on the reference month and its solidarity band;
* ``water_subscribers``: the commune's INSEE code and the water subscription.

No source holds the rent: housing stays unknown (housing aid is then not assessed), and a
household with no CCAS file has unknown incomes (it is not assessed, never counted as 0).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from territoria.apps.tariffs.model import (
    Household,
    Income,
    Member,
    Provenance,
    Role,
    ServiceUse,
    TariffInputError,
)

Record = Mapping[str, Any]
SCHOOL_WEEKS_PER_YEAR = 36


def as_date(value: Any) -> date | None:
    """A date from a date, an ISO string or a French dd/mm/yyyy (or dd/mm/yy) string."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    for fmt in ("%Y-%m-%d", "%d/%m/%Y", "%d/%m/%y"):
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None


def as_number(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(str(value).replace(" ", "").replace(",", "."))
    except ValueError:
        return None


def _prov(
    source: str, record: Record, id_field: str, *date_fields: str, default: date
) -> Provenance:
    day = next((d for f in date_fields if (d := as_date(record.get(f))) is not None), default)
    rid = record.get(id_field)
    return Provenance(source=source, as_of=day, record=None if rid is None else str(rid))


class _Builder:
    """Collects the members and service uses of one household, source by source."""

    def __init__(self, key: str, reference: date) -> None:
        self.key = key
        self.reference = reference
        self.members: dict[str, Member] = {}
        self.services: list[ServiceUse] = []
        self.commune: tuple[str, Provenance] | None = None
        self.declared_children: tuple[int, Provenance | None] = (0, None)

    def add(self, member: Member) -> None:
        known = self.members.get(member.key)
        if known is None:
            self.members[member.key] = member
        elif known.birth_date is None and member.birth_date is not None:
            self.members[member.key] = known.model_copy(update={"birth_date": member.birth_date})

    def has_applicant(self) -> bool:
        return any(m.role == "demandeur" for m in self.members.values())

    def ccas(self, records: Sequence[Record]) -> None:
        if not records:
            return
        r = max(records, key=lambda x: as_date(x.get("request_date")) or date.min)
        prov = _prov(
            "ccas_aid", r, "aid_id", "request_date", "decision_date", default=self.reference
        )
        resources = as_number(r.get("monthly_resources"))
        incomes = (
            None
            if resources is None
            else [Income(kind="salaire", monthly_net=resources, provenance=prov)]
        )
        applicant = str(r.get("person_key") or f"ccas:{r.get('file_id')}:demandeur")
        self.add(Member(key=applicant, role="demandeur", birth_date=as_date(r.get("birth_date")),
                        incomes=incomes, provenance=prov))  # fmt: skip
        if r.get("spouse_given_name") or r.get("spouse_family_name") or r.get("spouse_person_key"):
            spouse = str(r.get("spouse_person_key") or f"ccas:{r.get('file_id')}:conjoint")
            zero = (
                None
                if incomes is None
                else [Income(kind="salaire", monthly_net=0, provenance=prov)]
            )
            self.add(Member(key=spouse, role="conjoint", birth_date=as_date(r.get("spouse_birth_date")),
                            incomes=zero, provenance=prov))  # fmt: skip
        self.declared_children = int(as_number(r.get("children")) or 0), prov

    def school(self, records: Sequence[Record]) -> None:
        for r in records:
            prov = _prov(
                "school_enrolments", r, "enrolment_id", "enrolment_date", default=self.reference
            )
            child = str(r.get("person_key") or f"school:{r.get('enrolment_id')}")
            self.add(
                Member(
                    key=child,
                    role="enfant",
                    birth_date=as_date(r.get("child_birth_date")),
                    provenance=prov,
                )
            )
            days = as_number(r.get("canteen_days")) or 0
            if days > 0:
                meals = round(days * SCHOOL_WEEKS_PER_YEAR / 12, 2)
                self.services.append(ServiceUse(
                    service="restauration_scolaire", member=child, monthly_quantity=meals,
                    current_band=r.get("tariff_band") or None, provenance=prov,
                ))  # fmt: skip
            if not self.has_applicant():
                guardian = str(
                    r.get("guardian_1_person_key") or f"school:{r.get('enrolment_id')}:responsable"
                )
                self.add(Member(key=guardian, role="demandeur", provenance=prov))

    def transport(self, records: Sequence[Record]) -> None:
        latest: dict[str, Record] = {}
        for r in records:
            start, end = as_date(r.get("valid_from")), as_date(r.get("valid_to"))
            if (
                start is None
                or start > self.reference
                or (end is not None and end < self.reference)
            ):
                continue
            holder = str(r.get("person_key") or f"transport:{r.get('customer_number')}")
            if holder not in latest or str(r.get("valid_from")) > str(
                latest[holder].get("valid_from")
            ):
                latest[holder] = r
        for holder, r in sorted(latest.items()):
            prov = _prov("transport_passes", r, "pass_id", "valid_from", default=self.reference)
            if holder not in self.members:
                birth = as_date(r.get("birth_date"))
                minor = birth is not None and (self.reference.year - birth.year) < 18
                role: Role = "enfant" if minor else "autre_adulte"
                if not minor and not self.has_applicant():
                    role = "demandeur"
                self.add(Member(key=holder, role=role, birth_date=birth, provenance=prov))
            self.services.append(ServiceUse(
                service="transport_solidaire", member=holder, monthly_quantity=1,
                current_band=r.get("solidarity_tariff") or None, provenance=prov,
            ))  # fmt: skip

    def water(self, records: Sequence[Record]) -> None:
        for r in records:
            if (
                r.get("contract_end")
                and (end := as_date(r.get("contract_end")))
                and end < self.reference
            ):
                continue
            prov = _prov(
                "water_subscribers", r, "contract_id", "contract_start", default=self.reference
            )
            if r.get("code_insee"):
                self.commune = (str(r["code_insee"]), prov)
            if r.get("customer_type", "particulier") == "particulier":
                self.services.append(
                    ServiceUse(service="eau_tarif_social", monthly_quantity=1, provenance=prov)
                )
            if not self.has_applicant():
                key = str(r.get("person_key") or f"water:{r.get('contract_id')}")
                self.add(Member(key=key, role="demandeur", provenance=prov))
            break


def _commune_from_postcodes(
    records: Mapping[str, Sequence[Record]], communes: Mapping[str, str], reference: date
) -> tuple[str, Provenance] | None:
    id_fields = {
        "ccas_aid": "aid_id",
        "school_enrolments": "enrolment_id",
        "transport_passes": "pass_id",
    }
    for source, id_field in id_fields.items():
        for r in records.get(source, ()):
            code = communes.get(str(r.get("postcode") or "").strip())
            if code:
                return code, _prov(source, r, id_field, default=reference)
    return None


def household_from_records(
    household_key: str,
    records: Mapping[str, Sequence[Record]],
    reference: date,
    *,
    communes: Mapping[str, str] | None = None,
) -> Household:
    """The household as its members' service records describe it (see the module docstring).

    ``communes`` maps a postcode to its INSEE code (the caller's reference table), for
    households with no water subscription, whose records give only postcodes.
    """
    b = _Builder(household_key, reference)
    b.ccas(records.get("ccas_aid", ()))
    b.school(records.get("school_enrolments", ()))
    b.transport(records.get("transport_passes", ()))
    b.water(records.get("water_subscribers", ()))
    declared, prov = b.declared_children
    known_children = sum(1 for m in b.members.values() if m.role == "enfant")
    if prov is not None:  # children the CCAS counts that no school enrolment names
        for n in range(max(0, declared - known_children)):
            b.add(Member(key=f"{household_key}:enfant{n + 1}", role="enfant", provenance=prov))
    where = b.commune or _commune_from_postcodes(records, communes or {}, reference)
    if where is None:
        raise TariffInputError(f"commune du foyer {household_key} inconnue : ni abonnement d'eau ni code postal connu",
                               code="tariffs_commune", field_name="commune")  # fmt: skip
    if not b.has_applicant():
        raise TariffInputError(
            f"le foyer {household_key} n'a aucun adulte connu", code="tariffs_empty"
        )
    return Household(
        key=household_key, commune=where[0], commune_provenance=where[1],
        members=list(b.members.values()), services=b.services,
    )  # fmt: skip
