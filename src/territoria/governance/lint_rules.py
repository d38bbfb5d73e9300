"""The rules of ``territoria policy check``, one small function each.

Why apart from ``lint.py``: rules are added as the register grows (a new legal constraint, a new
kind of actor), and each reads as a self-contained statement of one obligation: a function over
the policy and the source contracts (``RuleContext``) that yields findings with a stable code from
``RULE_CODES``, a French message and the YAML file and line at fault. ``RULES`` is the ordered
list ``check_policy`` runs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator

from territoria.core.contract import FieldSpec, SourceContract
from territoria.core.types import FieldCategory
from territoria.governance.lint import (
    Finding,
    RuleContext,
    yaml_get,
    yaml_items,
    yaml_scalar,
)
from territoria.governance.policy import (
    AGGREGATE_VIEWS,
    ALL_FIELDS,
    VIEWS,
    Grant,
    Purpose,
)

__all__ = ["RULES"]

# A duration per ISO 8601 as the rest of Territoria reads it (years, months, weeks, days).
_ISO_DURATION = re.compile(r"^P(?=\d)(?:\d+Y)?(?:\d+M)?(?:\d+W)?(?:\d+D)?$")
# A word of a free-text retention that is meant as a duration: "P5Y", "P18M"... or "P5A".
_DURATION_LIKE = re.compile(r"(?<![\w-])P\d\w*")
_PERSONAL: tuple[FieldCategory, ...] = ("identifying", "sensitive", "special_category")
_SECRET = ("sensitive", "special_category")
_OBJECTION_BASES = ("public_task", "legitimate_interests")  # RGPD art. 21-1


# --- field helpers ----------------------------------------------------------------------------


def _read_fields(contract: SourceContract, wanted: list[str] | str) -> list[FieldSpec]:
    """The contract fields a purpose lists for a source (``*`` = all), unknown names left out."""
    if wanted == ALL_FIELDS:
        return list(contract.fields)
    names = set(wanted)
    return [f for f in contract.fields if f.name in names]


def _names(specs: Iterable[FieldSpec]) -> str:
    return ", ".join(s.name for s in specs)


def _quoted(items: Iterable[str]) -> str:
    return ", ".join(f"« {i} »" for i in items)


# --- rules on purposes ------------------------------------------------------------------------


def _proactive_without_objection(p: Purpose) -> bool:
    return p.proactive and p.legal_basis not in (None, "consent", *_OBJECTION_BASES)


# Checks of one purpose on its own: (code, failing when, message with {id} and {basis}).
_PURPOSE_CHECKS: tuple[tuple[str, Callable[[Purpose], bool], str], ...] = (
    (
        "purpose_no_legal_basis",
        lambda p: p.legal_basis is None,
        "la finalité « {id} » n'a pas de base légale (RGPD art. 6) : aucune lecture n'est "
        "possible sous cette finalité",
    ),
    (
        "purpose_no_legal_reference",
        lambda p: not p.legal_reference.strip(),
        "la finalité « {id} » ne cite aucun texte (legal_reference) : le registre doit "
        "permettre de vérifier la base légale",
    ),
    (
        "purpose_no_retention",
        lambda p: not p.retention.strip(),
        "la finalité « {id} » n'indique pas de durée de conservation (RGPD art. 30-1-f)",
    ),
    (
        "proactive_consent",
        lambda p: p.proactive and p.legal_basis == "consent",
        "la finalité « {id} » est proactive et fondée sur le consentement : le retrait du "
        "consentement suffit, l'opposition (proactive) est redondante",
    ),
    (
        "proactive_without_objection",
        _proactive_without_objection,
        "la finalité « {id} » est proactive mais fondée sur « {basis} » : le droit "
        "d'opposition (RGPD art. 21) ne vaut que pour une mission d'intérêt public ou un "
        "intérêt légitime ; vérifiez la base légale",
    ),
    (
        "consent_no_recipients",
        lambda p: p.legal_basis == "consent" and not p.recipients,
        "la finalité « {id} » repose sur le consentement mais ne nomme aucun destinataire : "
        "le résident ne sait pas à qui il consent",
    ),
)


def _purpose_checks(ctx: RuleContext) -> Iterator[Finding]:
    for p in ctx.policy.purposes.values():
        for code, failing, template in _PURPOSE_CHECKS:
            if failing(p):
                yield ctx.on_purpose(p, code, template.format(id=p.id, basis=p.legal_basis))


def _durations(ctx: RuleContext) -> Iterator[Finding]:
    for p in ctx.policy.purposes.values():
        for token in _DURATION_LIKE.findall(p.retention):
            if not _ISO_DURATION.match(token):
                yield ctx.on_purpose(
                    p,
                    "invalid_duration",
                    f"durée de conservation « {token} » de la finalité « {p.id} » : "
                    "durée ISO 8601 attendue (P5Y, P18M, P6M, P30D)",
                )
        delay = p.transparency_delay
        if delay is not None and not _ISO_DURATION.match(delay):
            yield ctx.on_purpose(
                p,
                "invalid_duration",
                f"transparency_delay « {delay} » de la finalité « {p.id} » : "
                "durée ISO 8601 attendue (P6M, P1Y, P30D)",
            )


def _sources_and_fields(ctx: RuleContext) -> Iterator[Finding]:
    known = ", ".join(sorted(ctx.catalog.contracts)) or "aucune"
    for p in ctx.policy.purposes.values():
        for source, wanted in sorted(p.sources.items()):
            contract = ctx.contract(source)
            if contract is None:
                yield ctx.on_purpose(
                    p,
                    "unknown_source",
                    f"la finalité « {p.id} » lit la source inconnue « {source} » "
                    f"(sources connues : {known})",
                    source=source,
                )
                continue
            names = {f.name for f in contract.fields}
            unknown = [] if wanted == ALL_FIELDS else [w for w in wanted if w not in names]
            if unknown:
                yield ctx.on_purpose(
                    p,
                    "unknown_field",
                    f"la finalité « {p.id} » lit des champs absents du contrat « {source} » : "
                    f"{_quoted(unknown)}",
                    source=source,
                )


def _special_categories(ctx: RuleContext) -> Iterator[Finding]:
    for p in ctx.policy.purposes.values():
        if p.special_category_basis and p.special_category_basis.strip():
            continue
        for source, wanted in sorted(p.sources.items()):
            contract = ctx.contract(source)
            if contract is None:
                continue
            special = [
                f for f in _read_fields(contract, wanted) if f.category == "special_category"
            ]
            if special:
                yield ctx.on_purpose(
                    p,
                    "special_category_without_art9",
                    f"la finalité « {p.id} » lit des données de catégorie particulière de "
                    f"« {source} » ({_names(special)}) sans special_category_basis (RGPD art. 9)",
                    source=source,
                )


def _may_read_social_secrets(ctx: RuleContext, p: Purpose) -> bool:
    """Social service, the resident's own data, or the DPO's legal-obligation purposes."""
    service = ctx.policy.services.get(p.service)
    if service is not None and service.social:
        return True
    if p.scope.self_only:
        return True
    return p.legal_basis == "legal_obligation" and p.service == "dpo"


def _social_secrecy(ctx: RuleContext) -> Iterator[Finding]:
    for p in ctx.policy.purposes.values():
        if _may_read_social_secrets(ctx, p):
            continue
        for source, wanted in sorted(p.sources.items()):
            contract = ctx.contract(source)
            owner = ctx.policy.services.get(contract.owner_service) if contract else None
            if contract is None or owner is None or not owner.social:
                continue
            secret = [f for f in _read_fields(contract, wanted) if f.category in _SECRET]
            if secret:
                yield ctx.on_purpose(
                    p,
                    "sensitive_to_non_social",
                    f"la finalité « {p.id} » (service « {p.service} », non social) lit des "
                    f"données sensibles de « {source} », source du service social "
                    f"« {owner.id} » couverte par le secret professionnel (CASF L133-5) : "
                    f"{_names(secret)}",
                    source=source,
                )


def _scope(ctx: RuleContext) -> Iterator[Finding]:
    for p in ctx.policy.purposes.values():
        outside = [s for s in p.scope.known_to or [] if s not in p.sources]
        if outside:
            yield Finding(
                "error",
                "scope_source_not_read",
                f"le périmètre (scope.known_to) de la finalité « {p.id} » cite des sources "
                f"qu'elle ne lit pas : {_quoted(outside)}",
                ctx.register,
                p.scope.line or p.line,
                f"purpose:{p.id}",
            )


def _unused_purposes(ctx: RuleContext) -> Iterator[Finding]:
    granted = {g.purpose for r in ctx.policy.roles.values() for g in r.grants}
    for p in ctx.policy.purposes.values():
        if p.id not in granted:
            yield ctx.on_purpose(
                p,
                "purpose_unused",
                f"la finalité « {p.id} » n'est accordée à aucun rôle : personne ne peut l'utiliser",
            )


# --- rules on services, roles, agents, operators --------------------------------------------


def _services(ctx: RuleContext) -> Iterator[Finding]:
    known = ", ".join(sorted(ctx.policy.services)) or "aucun"
    for p in ctx.policy.purposes.values():
        if p.service not in ctx.policy.services:
            yield ctx.on_purpose(
                p,
                "unknown_service",
                f"la finalité « {p.id} » relève du service inconnu « {p.service} » "
                f"(services déclarés dans actors.yaml : {known})",
            )
    actors: list[tuple[str, str, str, int | None]] = [
        *(("rôle", f"role:{r.id}", r.service, r.line) for r in ctx.policy.roles.values()),
        *(
            ("opérateur", f"operator:{o.id}", o.service, o.line)
            for o in ctx.policy.operators.values()
        ),
    ]
    for kind, subject, service, line in actors:
        if service not in ctx.policy.services:
            ident = subject.split(":", 1)[1]
            message = f"le {kind} « {ident} » relève du service inconnu « {service} » ({known})"
            yield ctx.on_actor("unknown_service", message, line, subject)


def _contract_owners(ctx: RuleContext) -> Iterator[Finding]:
    for contract in ctx.catalog:
        if contract.owner_service not in ctx.policy.services:
            yield Finding(
                "error",
                "unknown_service",
                f"la source « {contract.id} » appartient au service « {contract.owner_service} », "
                "absent de actors.yaml : déclarez-le (et s'il est social, social: true)",
                str(ctx.catalog.origins.get(contract.id, "")),
                None,
                f"source:{contract.id}",
            )


def _grant_findings(
    ctx: RuleContext, role_id: str, grant_line: int | None, grant: Grant
) -> Iterator[Finding]:
    subject = f"grant:{role_id}:{grant.purpose}"
    purpose = ctx.policy.purposes.get(grant.purpose)
    if purpose is None:
        known = ", ".join(sorted(ctx.policy.purposes)) or "aucune"
        message = (
            f"le rôle « {role_id} » est habilité pour la finalité inconnue « {grant.purpose} » "
            f"(finalités du registre : {known})"
        )
        yield ctx.on_actor("unknown_purpose", message, grant_line, subject)
    unknown = [v for v in grant.views if v not in VIEWS]
    if unknown:
        message = (
            f"vues inconnues pour le rôle « {role_id} » : {_quoted(unknown)} "
            f"(vues possibles : {', '.join(VIEWS)})"
        )
        yield ctx.on_actor("unknown_view", message, grant_line, subject)
    if purpose is None or purpose.output != "aggregate":
        return
    detailed = [v for v in grant.views if v in VIEWS and v not in AGGREGATE_VIEWS]
    if detailed:
        message = (
            f"la finalité « {purpose.id} » ne produit que des agrégats mais le rôle « {role_id} » "
            f"reçoit des vues individuelles : {_quoted(detailed)} (autorisées : count, synergies)"
        )
        yield ctx.on_actor("aggregate_view_granted", message, grant_line, subject)


def _grants(ctx: RuleContext) -> Iterator[Finding]:
    for role in ctx.policy.roles.values():
        if not role.grants:
            message = f"le rôle « {role.id} » n'a aucune habilitation : il ne peut rien consulter"
            yield ctx.on_actor("role_no_grants", message, role.line, f"role:{role.id}")
        for grant in role.grants:
            line = grant.line or role.line
            yield from _grant_findings(ctx, role.id, line, grant)
            purpose = ctx.policy.purposes.get(grant.purpose)
            if purpose is not None and not role.resident and purpose.service != role.service:
                message = (
                    f"le rôle « {role.id} » (service « {role.service} ») est habilité pour la "
                    f"finalité « {purpose.id} » du service « {purpose.service} » : vérifiez que "
                    "ce service a besoin d'en connaître"
                )
                yield ctx.on_actor("cross_service_grant", message, line, role.rule_id(grant))


def _agents(ctx: RuleContext) -> Iterator[Finding]:
    for agent in ctx.policy.agents.values():
        subject = f"agent:{agent.id}"
        if not agent.roles:
            message = f"l'agent « {agent.id} » n'a aucun rôle : il ne peut rien consulter"
            yield ctx.on_actor("agent_no_roles", message, agent.line, subject)
        unknown = [r for r in agent.roles if r not in ctx.policy.roles]
        if unknown:
            known = ", ".join(sorted(ctx.policy.roles)) or "aucun"
            message = (
                f"l'agent « {agent.id} » a des rôles inconnus : {_quoted(unknown)} "
                f"(rôles déclarés : {known})"
            )
            yield ctx.on_actor("unknown_role", message, agent.line, subject)


def _operators(ctx: RuleContext) -> Iterator[Finding]:
    for op in ctx.policy.operators.values():
        subject = f"operator:{op.id}"
        for source in op.sources:
            contract = ctx.contract(source)
            if contract is None:
                message = f"l'opérateur « {op.id} » livre la source inconnue « {source} »"
                yield ctx.on_actor("unknown_source", message, op.line, subject)
            elif contract.owner_service != op.service:
                message = (
                    f"l'opérateur « {op.id} » (service « {op.service} ») livre la source "
                    f"« {source} », qui appartient au service « {contract.owner_service} »"
                )
                yield ctx.on_actor("operator_source_not_owned", message, op.line, subject)


# --- rules across files -----------------------------------------------------------------------


def _duplicates(ctx: RuleContext) -> Iterator[Finding]:
    sections = [
        (ctx.register, ctx.register_tree, "purposes"),
        *((ctx.actors, ctx.actors_tree, k) for k in ("services", "roles", "agents", "operators")),
    ]
    for file, tree, key in sections:
        seen: dict[str, int] = {}
        for item in yaml_items(tree, key):
            ident = yaml_scalar(yaml_get(item, "id"))
            line = item.start_mark.line + 1
            if ident and ident in seen:
                yield Finding(
                    "error",
                    "duplicate_id",
                    f"identifiant « {ident} » en double dans « {key} » (déjà ligne "
                    f"{seen[ident]}) : seule la dernière entrée serait prise en compte",
                    file,
                    line,
                    f"{key.rstrip('s')}:{ident}",
                )
            seen.setdefault(ident, line)


def _sources_without_purpose(ctx: RuleContext) -> Iterator[Finding]:
    """Registry lint (LG-1): personal data held with no purpose in the register."""
    read = {s for p in ctx.policy.purposes.values() for s in p.sources}
    for contract in ctx.catalog:
        if contract.id in read or not contract.fields_of(*_PERSONAL):
            continue
        yield Finding(
            "warning",
            "source_without_purpose",
            f"la source « {contract.id} » contient des données personnelles mais aucune "
            "finalité du registre ne la lit : à inscrire au registre ou à ne plus collecter",
            str(ctx.catalog.origins.get(contract.id, "")),
            None,
            f"source:{contract.id}",
        )


RULES: tuple[Callable[[RuleContext], Iterator[Finding]], ...] = (
    _purpose_checks,
    _durations,
    _sources_and_fields,
    _special_categories,
    _social_secrecy,
    _scope,
    _unused_purposes,
    _services,
    _contract_owners,
    _grants,
    _agents,
    _operators,
    _duplicates,
    _sources_without_purpose,
)
