"""The policy decision point: may this actor, under this purpose, use this view, and see what?

Deny by default: a request is allowed only when one of the actor's roles holds a grant for the
purpose that lists the view. Every decision names the rule that settled it (``grant:<role>:
<purpose>`` when allowed, ``deny:<why>`` otherwise) and a French reason, and carries the fields
the purpose may see per source. The decision depends on the policy and the contracts only,
never on data, so it is the same for every person (and reveals nothing about them).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

from territoria.core.contract import SourceContract
from territoria.core.types import LEGAL_BASIS_LABELS
from territoria.governance.policy import (
    AGGREGATE_VIEWS,
    ALL_FIELDS,
    VIEW_LABELS,
    VIEWS,
    Policy,
    Purpose,
)

__all__ = ["Decision", "decide", "visible_fields"]


@dataclass(frozen=True)
class Decision:
    """What the policy says of one request, with the rule that said it."""

    allowed: bool
    rule: str
    reason: str
    actor: str
    view: str
    purpose: str
    role: str = ""
    service: str = ""
    legal_basis: str = ""
    output: str = ""
    fields: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["fields"] = {k: list(v) for k, v in self.fields.items()}
        return data

    @cached_property
    def field_names(self) -> tuple[str, ...]:
        """``source.field`` for every visible field (what the ledger records)."""
        return tuple(f"{s}.{f}" for s, names in sorted(self.fields.items()) for f in names)


def _deny(
    actor: str,
    view: str,
    purpose: str,
    rule: str,
    reason: str,
    *,
    role: str = "",
    service: str = "",
    legal_basis: str = "",
    output: str = "",
) -> Decision:
    return Decision(False, rule, reason, actor, view, purpose, role, service, legal_basis, output)


def visible_fields(
    policy: Policy, purpose: Purpose, contracts: dict[str, SourceContract]
) -> dict[str, tuple[str, ...]]:
    """The fields a purpose may see, per source, after the category rules.

    Special-category fields need an art. 9 basis; sensitive and special fields of a social
    service's source are visible only to a social service, to the resident's own view, or to
    the DPO's legal-obligation purposes; a pseudonymous output drops identifying fields.
    """
    service = policy.services.get(purpose.service)
    social_reader = bool(service and service.social)
    privileged = purpose.scope.self_only or (
        purpose.service == "dpo" and purpose.legal_basis == "legal_obligation"
    )
    out: dict[str, tuple[str, ...]] = {}
    for source, wanted in sorted(purpose.sources.items()):
        contract = contracts.get(source)
        if contract is None:
            continue
        owner = policy.services.get(contract.owner_service)
        secret_source = bool(owner and owner.social)
        names = []
        for spec in contract.fields:
            if wanted != ALL_FIELDS and spec.name not in wanted:
                continue
            if spec.category == "special_category" and not purpose.special_category_basis:
                continue
            if (
                spec.category in ("sensitive", "special_category")
                and secret_source
                and not (social_reader or privileged)
            ):
                continue
            if purpose.output == "pseudonymous" and spec.category == "identifying":
                continue
            names.append(spec.name)
        out[source] = tuple(names)
    return out


def _precondition(policy: Policy, purpose: Purpose | None, view: str) -> tuple[str, str] | None:
    """The rule and reason refusing a request before any grant is looked at, if any."""
    if purpose is None:
        return "deny:unregistered_purpose", "aucune finalité de ce nom au registre des traitements"
    if view not in VIEWS:
        return "deny:unknown_view", "vue inconnue"
    if not purpose.legal_basis:
        return "deny:no_legal_basis", "la finalité n'a pas de base légale au registre"
    if purpose.output == "aggregate" and view not in AGGREGATE_VIEWS:
        return "deny:aggregate_only", "cette finalité ne produit que des résultats agrégés"
    return None


def decide(
    policy: Policy, contracts: dict[str, SourceContract], actor: str, purpose_id: str, view: str
) -> Decision:
    """The decision for ``actor`` using ``view`` under ``purpose_id`` (see the module docstring)."""
    roles = policy.roles_of(actor)
    if not roles:
        return _deny(actor, view, purpose_id, "deny:unknown_actor", "acteur inconnu ou sans rôle")
    purpose = policy.purpose(purpose_id)
    refused = _precondition(policy, purpose, view)
    context = (
        {
            "service": purpose.service,
            "legal_basis": purpose.legal_basis or "",
            "output": purpose.output,
        }
        if purpose
        else {}
    )
    if refused or purpose is None:
        rule, reason = refused or ("deny:unregistered_purpose", "")
        return _deny(actor, view, purpose_id, rule, reason, **context)
    basis = purpose.legal_basis or ""
    for role in roles:
        for grant in role.grants:
            if grant.purpose == purpose_id and view in grant.views:
                return Decision(
                    True,
                    role.rule_id(grant),
                    f"le rôle « {role.name} » est habilité pour « {VIEW_LABELS[view]} » sous "
                    f"la finalité « {purpose.name} » ({LEGAL_BASIS_LABELS[basis]})",
                    actor,
                    view,
                    purpose_id,
                    role=role.id,
                    service=role.service,
                    legal_basis=basis,
                    output=purpose.output,
                    fields=visible_fields(policy, purpose, contracts),
                )
    return _deny(
        actor,
        view,
        purpose_id,
        "deny:no_grant",
        "aucune habilitation n'autorise cette vue sous cette finalité (refus par défaut)",
        role=roles[0].id,
        **{**context, "service": roles[0].service},
    )
