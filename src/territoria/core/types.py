"""Closed vocabularies, as types: English identifiers, French labels for the UI."""

from __future__ import annotations

from typing import Literal

LegalBasis = Literal[
    "consent",
    "contract",
    "legal_obligation",
    "vital_interests",
    "public_task",
    "legitimate_interests",
]
LEGAL_BASIS_LABELS: dict[str, str] = {
    "consent": "Consentement (RGPD art. 6-1-a)",
    "contract": "Exécution d'un contrat (RGPD art. 6-1-b)",
    "legal_obligation": "Obligation légale (RGPD art. 6-1-c)",
    "vital_interests": "Sauvegarde des intérêts vitaux (RGPD art. 6-1-d)",
    "public_task": "Mission d'intérêt public (RGPD art. 6-1-e)",
    "legitimate_interests": "Intérêts légitimes (RGPD art. 6-1-f)",
}

FieldCategory = Literal["identifying", "service", "sensitive", "special_category"]
FIELD_CATEGORY_LABELS: dict[str, str] = {
    "identifying": "Donnée d'identification",
    "service": "Donnée de service",
    "sensitive": "Donnée sensible (confidentialité renforcée)",
    "special_category": "Catégorie particulière (RGPD art. 9)",
}

LoadStatus = Literal["loaded", "skipped_duplicate", "failed", "superseded"]
LOAD_STATUS_LABELS: dict[str, str] = {
    "loaded": "chargé",
    "skipped_duplicate": "ignoré (fichier déjà chargé)",
    "failed": "échec",
    "superseded": "remplacé (rechargé depuis)",
}
