"""The policy a DPO reviews: the register of processing activities, services, roles and actors.

Two declarative files, both YAML a DPO can read and diff:

- ``register.yaml``: the controller and the register of processing activities (GDPR art. 30).
  Each *purpose* (finalité) names its service, legal basis (art. 6, and art. 9 where special
  categories are read), the sources and fields it may use, its population scope, its output
  form (identified, pseudonymous or aggregate only), retention, recipients, and whether it is
  proactive (residents may object) or optional (only residents who consented). A purpose
  where an algorithm helps a decision about a person carries its ``algorithm`` notice (CRPA
  L311-3-1 and R311-3-1-2), which the residents' portal shows.
- ``actors.yaml``: services, roles with their grants (a purpose and the views it opens),
  agents, delegated operators and the residents' role.

A workspace's ``policy/`` folder holds its own copy (``territoria init`` writes it); the
package ships the sandbox territory's policy as the default. Loading keeps each entry's line so
``territoria policy check`` can point at it; the models accept what is merely wrong (a purpose
without legal basis, an unknown field) so that the check can report every problem at once, and
the governed read refuses what the check would flag.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from territoria.core.errors import GovernanceError
from territoria.core.types import LegalBasis
from territoria.core.yaml_lines import line_of, load_with_lines

__all__ = [
    "CONTRIBUTION_LABELS",
    "OUTPUT_LABELS",
    "VIEWS",
    "VIEW_LABELS",
    "Agent",
    "AlgorithmNotice",
    "AlgorithmParameter",
    "ContributionDegree",
    "Controller",
    "Grant",
    "Operator",
    "OutputForm",
    "Policy",
    "Purpose",
    "Role",
    "Scope",
    "Service",
    "View",
    "builtin_policy_dir",
    "load_policy",
]

OutputForm = Literal["identified", "pseudonymous", "aggregate"]
OUTPUT_LABELS: dict[str, str] = {
    "identified": "nominative",
    "pseudonymous": "pseudonymisée",
    "aggregate": "agrégée uniquement (aucune personne visible)",
}
View = Literal[
    "person_360",
    "search",
    "autocomplete",
    "count",
    "records",
    "synergies",
    "rights_export",
    "ledger",
    "review",
    "quarantine",
    "retention",
]
VIEWS: tuple[str, ...] = View.__args__  # type: ignore[attr-defined]
VIEW_LABELS: dict[str, str] = {
    "person_360": "vue 360° d'une personne",
    "search": "recherche de personnes",
    "autocomplete": "suggestion de noms",
    "count": "comptage de la population",
    "records": "liste des fiches d'une source",
    "synergies": "usagers communs entre services (agrégé)",
    "rights_export": "export du droit d'accès (art. 15)",
    "ledger": "consultation du journal d'audit",
    "review": "file de revue des rapprochements",
    "quarantine": "lignes rejetées au chargement (quarantaine)",
    "retention": "sort final des fiches (conservation, tri, élimination)",
    # operations recorded in the ledger under a view of their own (shown to residents)
    "transparency": "liste des consultations de vos données",
    "consent.list": "consultation de vos consentements et oppositions",
    "resident.identify": "connexion à l'espace résident (rapprochement de votre identité)",
}
# How far an algorithm goes in a decision about a person. There is no "decides" degree: a
# decision based solely on automated processing (RGPD art. 22) has no place in Territoria.
ContributionDegree = Literal["suggestion", "preparation"]
CONTRIBUTION_LABELS: dict[str, str] = {
    "suggestion": "suggestion soumise à un agent, qui décide",
    "preparation": "préparation de la décision, qu'un agent vérifie et prend",
}
AGGREGATE_VIEWS: frozenset[str] = frozenset({"count", "synergies"})
ALL_FIELDS = "*"


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    line: int | None = Field(default=None, alias="__line__")


class Controller(_Entry):
    """The controller (responsable de traitement) and its DPO."""

    name: str
    address: str = ""
    dpo_name: str = ""
    dpo_contact: str = ""


class Scope(_Entry):
    """A purpose's population: whose rows it may return (every clause narrows it).

    ``known_to``: persons with a record in one of these sources (default: the purpose's own
    sources). ``communes``: persons with a record whose postcode or commune is listed.
    ``age``: persons whose birth date gives an age in ``[min, max]`` on the day of the read;
    ``household_child_age``: persons whose household holds a child of that age. ``self_only``:
    the acting resident only. Consent (optional purposes) and objections (proactive ones) are
    applied on top, at every read.
    """

    known_to: list[str] | None = None
    communes: list[str] | None = None
    age: tuple[int, int] | None = None
    household_child_age: tuple[int, int] | None = None
    self_only: bool = False


class AlgorithmParameter(_Entry):
    """One parameter of an algorithm: what it is, its setting, and its weighting."""

    name: str
    value: str
    weight: str = Field(description="sa pondération, ou « condition » s'il n'est pas pondéré")


class AlgorithmNotice(_Entry):
    """What the administration tells a person about an algorithm that helps a decision about
    them (CRPA L311-3-1; on request, R311-3-1-2): the degree and mode of its contribution to
    the decision, the data processed and their sources, the parameters and their weighting,
    the operations carried out; and who decides, and how to ask for an individual explanation.

    ``data`` lists the sources and fields the algorithm processes, within the purpose's own
    (``*`` = every field the purpose reads there); empty means all of the purpose's.
    """

    name: str
    decision: str
    degree: ContributionDegree
    mode: str
    data: dict[str, list[str] | Literal["*"]] = Field(default_factory=dict)
    parameters: list[AlgorithmParameter] = Field(min_length=1)
    operations: list[str] = Field(min_length=1)
    human_review: str
    explanation: str = ""  # how to ask for an individual explanation (default: the DPO)
    reference: str = "CRPA art. L311-3-1 et R311-3-1-2"

    @field_validator("data", mode="before")
    @classmethod
    def _drop_line(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: v for k, v in value.items() if k != "__line__"}
        return value


class Purpose(_Entry):
    """One processing activity of the register (see the module docstring)."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    description: str = ""
    service: str
    controller: str | None = None
    legal_basis: LegalBasis | None = None
    legal_reference: str = ""
    special_category_basis: str | None = None
    persons: list[str] = Field(default_factory=list)
    sources: dict[str, list[str] | Literal["*"]] = Field(default_factory=dict)
    scope: Scope = Field(default_factory=Scope)
    output: OutputForm = "identified"
    pseudonym_domain: str | None = None
    retention: str = ""
    recipients: list[str] = Field(default_factory=list)
    transfers: str = "Aucun transfert hors de l'Union européenne"
    security: str = ""
    dpia: str | None = None
    proactive: bool = False
    transparency_delay: str | None = None  # ISO 8601 duration before the resident sees a read
    algorithm: AlgorithmNotice | None = None  # CRPA L311-3-1 notice, where one helps decide

    @field_validator("sources", mode="before")
    @classmethod
    def _drop_line(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: v for k, v in value.items() if k != "__line__"}
        return value

    @model_validator(mode="after")
    def _notice_within_sources(self) -> Purpose:
        """A notice may only name data the purpose itself reads (it would mislead otherwise)."""
        for source, wanted in (self.algorithm.data if self.algorithm else {}).items():
            held = self.sources.get(source)
            if held is None:
                raise ValueError(f"la notice d'algorithme cite la source {source!r}, hors finalité")
            if ALL_FIELDS not in (wanted, held) and set(wanted) - set(held):
                extra = ", ".join(sorted(set(wanted) - set(held)))
                raise ValueError(f"la notice d'algorithme cite des champs hors finalité : {extra}")
        return self

    def algorithm_data(self) -> dict[str, list[str] | Literal["*"]]:
        """The sources and fields the purpose's algorithm processes (its notice's, else all)."""
        if self.algorithm is None:
            return {}
        return dict(self.algorithm.data) or dict(self.sources)

    @property
    def optional(self) -> bool:
        """Consent-based purposes only ever see residents who consented."""
        return self.legal_basis == "consent"

    @property
    def domain(self) -> str:
        return self.pseudonym_domain or self.service


class Service(_Entry):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    social: bool = False  # holds data under social professional secrecy (CASF L133-5)


class Grant(_Entry):
    """A role may act under a purpose, for these views (rule id ``grant:<role>:<purpose>``)."""

    purpose: str
    views: list[str]
    id: str | None = None


class Role(_Entry):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    service: str
    grants: list[Grant] = Field(default_factory=list)
    resident: bool = False  # the residents' own role (portal)

    def rule_id(self, grant: Grant) -> str:
        return grant.id or f"grant:{self.id}:{grant.purpose}"


class Agent(_Entry):
    id: str = Field(pattern=r"^[a-z][a-z0-9_.\-]*$")
    name: str
    roles: list[str]
    email: str | None = None  # the login the identity provider vouches for (ProConnect)


class Operator(_Entry):
    """A delegated operator (DSP): delivers its sources, reads nothing through Territoria."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_.\-]*$")
    name: str
    service: str
    sources: list[str] = Field(default_factory=list)
    siret: str | None = None


class _Register(_Entry):
    controller: Controller
    purposes: list[Purpose]


class _Actors(_Entry):
    services: list[Service]
    roles: list[Role]
    agents: list[Agent] = Field(default_factory=list)
    operators: list[Operator] = Field(default_factory=list)


@dataclass(frozen=True)
class Policy:
    """Register and actors as loaded, with the files they came from and a version digest."""

    controller: Controller
    purposes: dict[str, Purpose]
    services: dict[str, Service]
    roles: dict[str, Role]
    agents: dict[str, Agent]
    operators: dict[str, Operator]
    register_file: Path
    actors_file: Path
    digest: str

    def purpose(self, purpose_id: str) -> Purpose | None:
        return self.purposes.get(purpose_id)

    def resident_role(self) -> Role | None:
        return next((r for r in self.roles.values() if r.resident), None)

    def grants_of(self, actor: str) -> list[tuple[Role, Grant, Purpose]]:
        """The actor's grants whose purpose is in the register, with their role and purpose."""
        return [
            (role, grant, purpose)
            for role in self.roles_of(actor)
            for grant in role.grants
            if (purpose := self.purposes.get(grant.purpose)) is not None
        ]

    def roles_of(self, actor: str) -> list[Role]:
        """The roles of an agent id, or the residents' role for ``resident:<key>``."""
        if actor.startswith("resident:"):
            role = self.resident_role()
            return [role] if role else []
        agent = self.agents.get(actor)
        return [self.roles[r] for r in agent.roles if r in self.roles] if agent else []


def builtin_policy_dir() -> Path:
    """The sandbox territory's policy, shipped with the package."""
    return Path(str(resources.files("territoria.governance") / "default_policy"))


def _read(path: Path) -> tuple[Any, bytes]:
    try:
        raw = path.read_bytes()
        return load_with_lines(raw.decode("utf-8")), raw
    except FileNotFoundError:
        raise GovernanceError(
            "fichier de politique introuvable",
            code="policy_missing",
            file=path,
            hint="« territoria init » écrit la politique par défaut dans policy/",
        ) from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise GovernanceError(
            f"fichier de politique illisible : {exc}", code="policy_unreadable", file=path
        ) from None


def _validate(model: type[_Entry], data: Any, path: Path) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        location = ".".join(str(p) for p in first["loc"])
        raise GovernanceError(
            f"politique invalide : {first['msg']}",
            code="policy_invalid",
            file=path,
            line=line_of(data, first["loc"]),
            field_name=location or None,
            details={"errors": len(exc.errors())},
        ) from None


def load_policy(folder: Path | None = None) -> Policy:
    """Read ``register.yaml`` and ``actors.yaml`` of a folder (default: the shipped policy)."""
    folder = folder or builtin_policy_dir()
    register_file, actors_file = folder / "register.yaml", folder / "actors.yaml"
    register_data, register_raw = _read(register_file)
    actors_data, actors_raw = _read(actors_file)
    register: _Register = _validate(_Register, register_data, register_file)
    actors: _Actors = _validate(_Actors, actors_data, actors_file)
    digest = hashlib.sha256(register_raw + b"\x1f" + actors_raw).hexdigest()
    return Policy(
        controller=register.controller,
        purposes={p.id: p for p in register.purposes},
        services={s.id: s for s in actors.services},
        roles={r.id: r for r in actors.roles},
        agents={a.id: a for a in actors.agents},
        operators={o.id: o for o in actors.operators},
        register_file=register_file,
        actors_file=actors_file,
        digest=digest,
    )
