"""``territoria policy check``: every problem of a policy, at once, with its file and line.

Loading a policy accepts what is merely wrong (a purpose without legal basis, an unknown field,
a grant to a purpose that does not exist) so that this check can report all of it in one pass,
the way a compiler does, instead of failing on the first mistake. The governed read refuses
what an error here flags; a warning is something a DPO should look at but that does not open
any access by itself.

Each rule is a small function over the policy and the source contracts that yields findings
with a stable ``code`` (what tests, the CLI and the documentation refer to), a French message,
and the YAML file and line of the entry at fault. The pydantic models lose duplicate ids (the
dicts keep the last one), so duplicates are found by re-reading the YAML node tree.

The rules themselves are in ``lint_rules.py``; this module holds what they produce (``Finding``,
the closed list ``RULE_CODES``), what they read (``RuleContext`` and the YAML node helpers that
recover lines and duplicate ids) and runs them all.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import yaml

from territoria.core.contract import SourceContract
from territoria.governance.policy import Policy, Purpose
from territoria.ingest.catalog import ContractCatalog

__all__ = [
    "RULE_CODES",
    "Finding",
    "RuleContext",
    "Severity",
    "check_policy",
    "yaml_get",
    "yaml_items",
    "yaml_scalar",
]

Severity = Literal["error", "warning"]

# code -> severity: the closed list of what the check can say (documented in docs/).
RULE_CODES: dict[str, Severity] = {
    "purpose_no_legal_basis": "error",
    "purpose_no_legal_reference": "warning",
    "purpose_no_retention": "error",
    "invalid_duration": "error",
    "unknown_source": "error",
    "unknown_field": "error",
    "special_category_without_art9": "error",
    "sensitive_to_non_social": "error",
    "scope_source_not_read": "error",
    "unknown_service": "error",
    "unknown_purpose": "error",
    "unknown_view": "error",
    "aggregate_view_granted": "error",
    "cross_service_grant": "warning",
    "role_no_grants": "warning",
    "unknown_role": "error",
    "agent_no_roles": "warning",
    "duplicate_id": "error",
    "proactive_consent": "warning",
    "proactive_without_objection": "warning",
    "consent_no_recipients": "warning",
    "purpose_unused": "warning",
    "operator_source_not_owned": "error",
    "source_without_purpose": "warning",
}


@dataclass(frozen=True)
class Finding:
    """One problem of the policy: how bad, which rule, where, and about what."""

    severity: Severity
    code: str
    message: str
    file: str
    line: int | None
    subject: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def sort_key(self) -> tuple[str, int, str, str]:
        return (self.file, self.line or 0, self.code, self.subject)


@dataclass(frozen=True)
class RuleContext:
    """What every rule reads: the policy, the contracts, and where things are written."""

    policy: Policy
    catalog: ContractCatalog

    @property
    def register(self) -> str:
        return str(self.policy.register_file)

    @property
    def actors(self) -> str:
        return str(self.policy.actors_file)

    @cached_property
    def register_tree(self) -> yaml.Node | None:
        return _compose(self.policy.register_file)

    @cached_property
    def actors_tree(self) -> yaml.Node | None:
        return _compose(self.policy.actors_file)

    @cached_property
    def source_lines(self) -> dict[tuple[str, str], int]:
        """Line of each ``sources`` key by (purpose, source); as in Policy, the last wins."""
        lines: dict[tuple[str, str], int] = {}
        for item in yaml_items(self.register_tree, "purposes"):
            purpose_id = yaml_scalar(yaml_get(item, "id"))
            for key, _value in _pairs(yaml_get(item, "sources")):
                lines[purpose_id, key.value] = key.start_mark.line + 1
        return lines

    def contract(self, source: str) -> SourceContract | None:
        return self.catalog.contracts.get(source)

    def on_purpose(
        self, purpose: Purpose, code: str, message: str, *, source: str | None = None
    ) -> Finding:
        line = purpose.line
        if source is not None:
            line = self.source_lines.get((purpose.id, source), line)
        return Finding(
            RULE_CODES[code], code, message, self.register, line, f"purpose:{purpose.id}"
        )

    def on_actor(self, code: str, message: str, line: int | None, subject: str) -> Finding:
        return Finding(RULE_CODES[code], code, message, self.actors, line, subject)


# --- YAML node helpers (for lines and duplicates the models do not keep) ---------------------


def _compose(path: Path) -> yaml.Node | None:
    try:
        return yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None  # load_policy read it a moment ago; a file changed since is not ours to judge


def _pairs(node: yaml.Node | None) -> list[tuple[yaml.ScalarNode, yaml.Node]]:
    if not isinstance(node, yaml.MappingNode):
        return []
    return [(k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode)]


def yaml_get(node: yaml.Node | None, key: str) -> yaml.Node | None:
    return next((v for k, v in _pairs(node) if k.value == key), None)


def yaml_items(tree: yaml.Node | None, key: str) -> list[yaml.Node]:
    seq = yaml_get(tree, key)
    return list(seq.value) if isinstance(seq, yaml.SequenceNode) else []


def yaml_scalar(node: yaml.Node | None) -> str:
    return str(node.value) if isinstance(node, yaml.ScalarNode) else ""


def check_policy(policy: Policy, catalog: ContractCatalog) -> list[Finding]:
    """Every finding of every rule on ``policy``, sorted by file and line.

    >>> from territoria.governance.policy import load_policy
    >>> [f for f in check_policy(load_policy(), ContractCatalog.load()) if f.severity == "error"]
    []
    """
    from territoria.governance.lint_rules import RULES  # the rules import this module

    ctx = RuleContext(policy, catalog)
    findings = [finding for rule in RULES for finding in rule(ctx)]
    return sorted(findings, key=Finding.sort_key)
