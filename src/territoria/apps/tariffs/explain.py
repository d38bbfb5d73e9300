"""Every computed figure says how it was computed: the rule, the variables, the inputs.

A ``Figure`` is a value (``None`` when unknown: never 0 for "unknown") with the sentence that
says how it was obtained, the OpenFisca variables that made it (with their values for this
famille), the household inputs it rests on (each with its source and date, or the assumption
that replaced a missing one) and the legal reference. Figures are built on demand from a
``Screening`` (``famille_figures``), so a batch of 100,000 households does not carry 10^6
explanation objects it will never show.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict

from territoria.apps.tariffs.inputs import taxable_monthly
from territoria.apps.tariffs.model import (
    HOUSING_LABELS,
    INCOME_LABELS,
    ROLE_LABELS,
    Household,
    Income,
    Provenance,
)
from territoria.apps.tariffs.openfisca_sim import Screening, tax_benefit_system
from territoria.apps.tariffs.parameters import QUARTER, Assumptions

Status = Literal["calculé", "estimé", "inconnu"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class VariableValue(_Frozen):
    """An OpenFisca variable's value for the famille, in the reference month."""

    variable: str
    label: str
    value: float | str | bool


class InputUsed(_Frozen):
    """A household input the figure rests on, with its provenance or the assumption made."""

    name: str
    value: str
    provenance: Provenance | None = None
    assumption: str | None = None


class Figure(_Frozen):
    """A computed figure and its explanation."""

    id: str
    label: str
    value: float | None
    unit: str
    period: str
    status: Status
    how: str
    variables: list[VariableValue] = []
    inputs: list[InputUsed] = []
    assumptions: list[str] = []
    reference: str | None = None


class FamilleFigures(_Frozen):
    """The figures of one famille (the CAF unit) of a household."""

    household_key: str
    famille: int
    members: list[str]
    known: bool
    unknown_reason: str | None
    quotients: dict[str, Figure]
    entitlements: dict[str, Figure]


def euros(value: float) -> str:
    """French money format: 1 234,56 €."""
    return f"{value:,.2f} €".replace(",", " ").replace(".", ",")


def number(value: float) -> str:
    """French decimal format, without trailing zeros: 1,036."""
    text = f"{value:,.4f}".rstrip("0").rstrip(".")
    return text.replace(",", " ").replace(".", ",")


def household_inputs(
    household: Household, members: list[str], assumptions: Assumptions
) -> tuple[list[InputUsed], list[str]]:
    """The inputs of a famille's figures, and the assumptions they needed."""
    used: list[InputUsed] = []
    notes: list[str] = []
    used.append(
        InputUsed(name="commune", value=household.commune, provenance=household.commune_provenance)
    )
    for key in members:
        member = household.member(key)
        who = f"{ROLE_LABELS[member.role]} {member.key}"
        if member.birth_date is not None:
            used.append(
                InputUsed(
                    name=f"date de naissance ({who})",
                    value=member.birth_date.strftime("%d/%m/%Y"),
                    provenance=member.provenance,
                )
            )
        else:
            age = (
                assumptions.unknown_child_age
                if member.role == "enfant"
                else assumptions.unknown_adult_age
            )
            note = f"âge de {who} inconnu : {int(age.value)} ans retenus ({age.justification})"
            used.append(
                InputUsed(name=f"âge ({who})", value=f"{int(age.value)} ans", assumption=note)
            )
            notes.append(note)
        notes += _income_inputs(used, who, member.role, member.incomes, assumptions)
    if household.housing is not None:
        h = household.housing
        since = f" depuis le {h.since.strftime('%d/%m/%Y')}" if h.since else ""
        used.append(
            InputUsed(
                name="logement",
                value=f"{HOUSING_LABELS[h.status]}, loyer {euros(h.monthly_rent)} par mois{since}",
                provenance=h.provenance,
            )
        )
    else:
        note = "logement inconnu des sources : ni loyer ni statut d'occupation transmis"
        used.append(InputUsed(name="logement", value="inconnu", assumption=note))
        notes.append(note)
    return used, list(dict.fromkeys(notes))


def _income_inputs(
    used: list[InputUsed],
    who: str,
    role: str,
    incomes: list[Income] | None,
    assumptions: Assumptions,
) -> list[str]:
    notes: list[str] = []
    if incomes is None:
        if role == "enfant":
            return []
        used.append(InputUsed(name=f"revenus ({who})", value="inconnus"))
        return []
    for income in incomes:
        label = INCOME_LABELS[income.kind]
        text = f"{euros(income.monthly_net)} net par mois"
        if income.monthly_taxable is None and income.monthly_net:
            ratio = assumptions.taxable_ratio[income.kind]
            text += f", imposable estimé {euros(taxable_monthly(income, assumptions))}"
            notes.append(
                f"{label} imposable estimé = net × {number(ratio.value)} ({ratio.justification})"
            )
        if income.annual_taxable_n2 is not None:
            text += f", imposable N-2 {euros(income.annual_taxable_n2)} par an"
        elif income.monthly_net:
            notes.append(
                "revenus de l'année N-2 supposés égaux aux revenus mensuels actuels (aucun avis d'imposition transmis)"
            )
        if income.since is not None:
            text += f", depuis le {income.since.strftime('%d/%m/%Y')}"
        used.append(InputUsed(name=f"{label} ({who})", value=text, provenance=income.provenance))
    notes.append("revenus antérieurs à l'année N-2 inconnus : comptés nuls")
    return notes


def _variables(screening: Screening, row: int, names: list[str]) -> list[VariableValue]:
    system = tax_benefit_system()
    out = []
    for name in names:
        array = screening.values[name]
        base = name.removesuffix(QUARTER)
        label = system.variables[base].label
        if base != name:
            label += " (moyenne des trois mois précédents)"
        value: float | str | bool
        if array.dtype.kind == "b":
            value = bool(array[row])
        elif array.dtype.kind in "USO":
            value = str(array[row])
        else:
            value = round(float(array[row]), 2)
        out.append(VariableValue(variable=base, label=label, value=value))
    return out


def _status(known: bool, notes: list[str]) -> Status:
    if not known:
        return "inconnu"
    return "estimé" if notes else "calculé"


def famille_figures(screening: Screening, row: int) -> FamilleFigures:
    """The explained figures of the famille on ``row`` of the screening."""
    layout = screening.layout
    household = screening.households[layout.famille_household[row]]
    members = layout.famille_members[row]
    known = layout.famille_known[row]
    inputs, notes = household_inputs(household, members, screening.assumptions)
    status = _status(known, notes)
    not_held = ", ".join(n.label for n in screening.assumptions.not_held)
    notes = [*notes, f"inconnus des sources, comptés nuls : {not_held}"]
    unknown = layout.famille_unknown_reason[row]
    period = screening.period
    quotients = {}
    for q in screening.catalogue.quotients:
        value = screening.quotient(q.id)[row]
        how = (
            f"{q.label} = {q.formula} = {euros(value)} pour {period}, calculé par "
            f"{screening.versions}."
            if known
            else f"{q.label} inconnu : {unknown}."
        )
        quotients[q.id] = Figure(
            id=q.id,
            label=q.label,
            value=None if math.isnan(value) else float(value),
            unit="€ par mois",
            period=period,
            status=status,
            how=how,
            variables=_variables(screening, row, q.explain) if known else [],
            inputs=inputs,
            assumptions=notes,
            reference="openfisca-france-local, variable quotient_familial_caf",
        )
    entitlements = {}
    for e in screening.catalogue.entitlements:
        value = screening.amount(e.id)[row]
        entitlements[e.id] = Figure(
            id=e.id,
            label=e.label,
            value=None if math.isnan(value) else float(value),
            unit="€ par mois" if e.monetary else "éligibilité (1 : oui, 0 : non)",
            period=period,
            status=status,
            how=_entitlement_how(screening, e.id, value, unknown),
            variables=_variables(screening, row, e.explain_keys()) if known else [],
            inputs=inputs,
            assumptions=notes,
            reference=e.reference,
        )
    return FamilleFigures(
        household_key=household.key,
        famille=row - screening.famille_rows(household.key)[0],
        members=members,
        known=known,
        unknown_reason=unknown,
        quotients=quotients,
        entitlements=entitlements,
    )


def _entitlement_how(
    screening: Screening, entitlement_id: str, value: float, unknown: str | None
) -> str:
    e = screening.catalogue.entitlement(entitlement_id)
    if math.isnan(value):
        return f"{e.label} non évalué : {unknown}."
    if e.variable is not None:
        return (
            f"{e.label} : {euros(value)} par mois pour {screening.period}, montant calculé par "
            f"{screening.versions} (variable « {e.variable} ») à partir des entrées ci-dessous."
        )
    tests = " ou ".join(f"« {t.variable} » ({t.label})" for t in e.eligibility)
    verdict = "éligible" if value > 0 else "non éligible"
    return (
        f"{e.label} : {verdict} pour {screening.period} selon {screening.versions} "
        f"(variables {tests})."
    )


def explain_household(screening: Screening, household_key: str) -> list[FamilleFigures]:
    """Every famille of a household, with its explained figures."""
    return [famille_figures(screening, row) for row in screening.famille_rows(household_key)]
