"""Resident index: linking the persons and households the services' records describe.

``link_workspace`` links every loaded source (identifying fields only) into persons and
households with stable pseudonymous keys; ``link_frames`` / ``link_files`` link or deduplicate
any tables given which column plays which role; ``Attacher`` attaches one new record in
milliseconds; ``evaluate_against_truth`` scores a linkage against the sandbox's truth.
"""

from territoria.identity.evaluate import EvaluationReport, Metrics, evaluate_against_truth
from territoria.identity.files import LinkSummary, link_files, link_frames
from territoria.identity.incremental import Attacher, Attachment
from territoria.identity.mentions import MENTION_SCHEMA, ROLES, Mentions, read_workspace_mentions
from territoria.identity.model import ModelParams
from territoria.identity.pipeline import LinkResult, link_mentions
from territoria.identity.registry import Registry
from territoria.identity.scoring import Explanation
from territoria.identity.service import (
    AttachReport,
    LinkReport,
    attach_new_mentions,
    evaluate_workspace,
    explain_pair,
    identity_status,
    link_workspace,
)

__all__ = [
    "MENTION_SCHEMA",
    "ROLES",
    "AttachReport",
    "Attacher",
    "Attachment",
    "EvaluationReport",
    "Explanation",
    "LinkReport",
    "LinkResult",
    "LinkSummary",
    "Mentions",
    "Metrics",
    "ModelParams",
    "Registry",
    "attach_new_mentions",
    "evaluate_against_truth",
    "evaluate_workspace",
    "explain_pair",
    "identity_status",
    "link_files",
    "link_frames",
    "link_mentions",
    "link_workspace",
    "read_workspace_mentions",
]
