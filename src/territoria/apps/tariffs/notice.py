"""The notice owed where an algorithm helps a decision (CRPA art. L311-3-1 and R311-3-1-2).

Generated from what the screening actually used: the grids in force on the reference month
(with their deliberations), the OpenFisca variables and legal references of the entitlements,
the assumptions that fill the sources' gaps, and the sources the inputs came from. Its fields
follow the register's ``AlgorithmNotice`` (name, decision, degree, mode, data, parameters with
their weighting, operations, human review), so the lead can attach it to the purpose; ``text()``
renders it for a letter or a page.
"""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict

from territoria.apps.tariffs.explain import euros, number
from territoria.apps.tariffs.grids import AMOUNT_LABELS, Grid
from territoria.apps.tariffs.openfisca_sim import Screening

REFERENCE = "CRPA art. L311-3-1 et R311-3-1-2"
# Which household inputs each kind of fact comes from (for the notice's « data » section).
FACTS = {
    "member": "composition du foyer, rôle et date de naissance de chaque membre",
    "income": "revenus mensuels par nature (salaire, chômage, retraite, pension alimentaire)",
    "housing": "statut d'occupation du logement et loyer",
    "commune": "commune de résidence",
    "service": "services municipaux utilisés et tranche tarifaire appliquée aujourd'hui",
    "receipt": "droits déclarés perçus",
}


class NoticeParameter(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    value: str
    weight: str


class CrpaNotice(BaseModel):
    """The L311-3-1 notice of the social-tariff and non-take-up screening."""

    model_config = ConfigDict(frozen=True)

    name: str
    decision: str
    degree: str
    mode: str
    data: dict[str, list[str]]
    parameters: list[NoticeParameter]
    operations: list[str]
    human_review: str
    explanation: str
    reference: str = REFERENCE
    reference_month: date

    def as_algorithm(self) -> dict[str, object]:
        """The register's ``AlgorithmNotice`` fields (``Purpose.algorithm``)."""
        return self.model_dump(
            include={
                "name",
                "decision",
                "degree",
                "mode",
                "data",
                "parameters",
                "operations",
                "human_review",
                "explanation",
                "reference",
            }
        )

    def text(self) -> str:
        """The notice as plain French text."""
        out = [
            self.name,
            "",
            f"Décision concernée : {self.decision}",
            f"Contribution de l'algorithme : {self.degree}. {self.mode}",
            "",
            "Données traitées et leurs sources :",
        ]
        out += [f"- {source} : {', '.join(facts)}" for source, facts in self.data.items()]
        out += ["", "Paramètres et leur pondération :"]
        out += [f"- {p.name} : {p.value} ({p.weight})" for p in self.parameters]
        out += ["", "Opérations effectuées :"]
        out += [f"{i}. {op}" for i, op in enumerate(self.operations, start=1)]
        out += [
            "",
            f"Intervention humaine : {self.human_review}",
            self.explanation,
            f"Référence : {self.reference}.",
        ]
        return "\n".join(out)


def _data(screening: Screening) -> dict[str, list[str]]:
    seen: dict[str, set[str]] = {}

    def note(source: str, fact: str) -> None:
        seen.setdefault(source, set()).add(fact)

    for h in screening.households:
        note(h.commune_provenance.source, "commune")
        for m in h.members:
            note(m.provenance.source, "member")
            for i in m.incomes or []:
                note(i.provenance.source, "income")
        if h.housing is not None:
            note(h.housing.provenance.source, "housing")
        for use in h.services:
            note(use.provenance.source, "service")
        for r in h.receipts:
            note(r.provenance.source, "receipt")
    order = list(FACTS)
    return {
        s: [FACTS[f] for f in sorted(facts, key=order.index)] for s, facts in sorted(seen.items())
    }


def _grid_parameters(grids: dict[str, Grid], screening: Screening) -> list[NoticeParameter]:
    out = []
    for grid in grids.values():
        version = grid.version_at(screening.reference)
        if version is None:
            continue
        kind = AMOUNT_LABELS[grid.amount]
        bands = " ; ".join(
            f"{b.band} {b.range_label()} : {kind} {euros(b.amount)}" for b in version.bands
        )
        out.append(
            NoticeParameter(
                name=f"{grid.label} ({version.deliberation})",
                value=f"par {grid.unit}, selon le {screening.catalogue.quotient(grid.quotient).label} : {bands}",
                weight="la tranche dépend du seul quotient familial ; sans quotient connu, tranche "
                f"{grid.unknown_quotient_band}",
            )
        )
    return out


def crpa_notice(screening: Screening, grids: dict[str, Grid]) -> CrpaNotice:
    """The notice for this screening (grids in force, variables and sources actually used)."""
    a = screening.assumptions
    params = _grid_parameters(grids, screening)
    params += [
        NoticeParameter(
            name=e.label,
            value=f"règle nationale codée par OpenFisca (variable « {e.variable or ', '.join(t.variable for t in e.eligibility)} »), {e.reference}",
            weight="montant calculé, sans pondération",
        )
        for e in screening.catalogue.entitlements
    ]
    params += [
        NoticeParameter(
            name=f"Revenu imposable estimé ({kind})",
            value=f"net × {number(r.value)} : {r.justification}",
            weight="hypothèse, utilisée seulement quand la source ne donne que le net",
        )
        for kind, r in a.taxable_ratio.items()
    ]
    params.append(
        NoticeParameter(
            name="Revenus et prestations inconnus des sources",
            value=", ".join(n.label for n in a.not_held),
            weight="comptés nuls ; ces droits ne sont pas repérés",
        )
    )
    params.append(
        NoticeParameter(
            name="Classement",
            value="montant mensuel non perçu (droits et écarts de tarif additionnés)",
            weight="seul critère de classement ; aucun score, aucun apprentissage",
        )
    )
    return CrpaNotice(
        name="Repérage des droits et des tarifs sociaux non perçus (non-recours)",
        decision=(
            "Proposer, ou non, à un foyer un entretien d'accès aux droits (prestations "
            "nationales, tarifs sociaux de la cantine, du périscolaire, des transports et de l'eau)."
        ),
        degree="suggestion",
        mode=(
            "Des règles fixes, sans score ni apprentissage : la législation nationale telle "
            f"que la code {screening.versions}, et les grilles tarifaires délibérées par la "
            "collectivité. La liste ne change ni vos tarifs ni vos droits : un droit n'est ouvert "
            "que sur votre demande, instruite par l'organisme compétent."
        ),
        data=_data(screening),
        parameters=params,
        operations=[
            f"Mois de référence retenu : {screening.period}.",
            "Calcul du quotient familial et des droits nationaux de chaque foyer par OpenFisca, à "
            "partir des revenus mensuels transmis, supposés stables depuis janvier de l'année N-2.",
            "Les foyers dont les revenus d'un adulte sont inconnus ne sont pas évalués (un revenu "
            "inconnu n'est jamais compté comme nul).",
            "Recherche de la tranche de chaque grille tarifaire correspondant au quotient arrondi à l'euro.",
            "Comparaison avec les droits déclarés perçus et les tranches appliquées aujourd'hui.",
            "Classement des foyers par montant mensuel non perçu, avec le détail de chaque calcul.",
        ],
        human_review=(
            "Un agent du CCAS relit chaque situation, contacte le foyer s'il le juge "
            "utile et note le contact et sa suite ; aucune décision n'est automatique."
        ),
        explanation=(
            "Vous pouvez demander l'explication du calcul fait pour votre foyer (données "
            "utilisées, règles appliquées, montants) au CCAS ou au délégué à la protection des données."
        ),
        reference_month=screening.reference,
    )
