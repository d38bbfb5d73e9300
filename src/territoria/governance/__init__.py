"""Governance: the one way to personal data, and the residents' rights over it.

``Governance.open(config, store)`` loads the workspace's policy (register of processing
activities and actors), its pseudonymisation keys (kept outside the store), the audit ledger
and the consent book. ``Governance.read(ReadRequest(...))`` is the governed read: decision with
its rule, masking, row scope, per-domain pseudonyms and exactly one ledger record. Rights
(art. 15 export, rectification, consents, objections), the transparency ledger, retention and
synergies between services are built on it.
"""

from territoria.governance.consents import ConsentBook, ConsentRecord, ObjectionRecord
from territoria.governance.decide import Decision, decide
from territoria.governance.ledger import (
    AuditEntry,
    AuditLedger,
    LedgerHead,
    LedgerRecord,
    VerifyReport,
    load_anchors,
    save_anchor,
)
from territoria.governance.lint import Finding, check_policy
from territoria.governance.policy import VIEWS, Policy, Purpose, load_policy
from territoria.governance.pseudonyms import Keyring, Pseudonymiser
from territoria.governance.read import GovernedReader, ReadRequest, ReadResult
from territoria.governance.register_export import register_rows, write_register
from territoria.governance.retention import RetentionEngine, RetentionPlan
from territoria.governance.rights import (
    Rectification,
    access_export,
    file_rectification,
    rectifications,
    render_access_html,
)
from territoria.governance.service import Governance, install_policy, policy_dir
from territoria.governance.synergies import DEFAULT_MIN_CELL, SynergyCell, service_pairs
from territoria.governance.transparency import AccessEntry, transparency_entries

__all__ = [
    "DEFAULT_MIN_CELL",
    "VIEWS",
    "AccessEntry",
    "AuditEntry",
    "AuditLedger",
    "ConsentBook",
    "ConsentRecord",
    "Decision",
    "Finding",
    "Governance",
    "GovernedReader",
    "Keyring",
    "LedgerHead",
    "LedgerRecord",
    "ObjectionRecord",
    "Policy",
    "Pseudonymiser",
    "Purpose",
    "ReadRequest",
    "ReadResult",
    "Rectification",
    "RetentionEngine",
    "RetentionPlan",
    "SynergyCell",
    "VerifyReport",
    "access_export",
    "check_policy",
    "decide",
    "file_rectification",
    "install_policy",
    "load_anchors",
    "load_policy",
    "policy_dir",
    "rectifications",
    "register_rows",
    "render_access_html",
    "save_anchor",
    "service_pairs",
    "transparency_entries",
    "write_register",
]
