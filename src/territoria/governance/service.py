"""``Governance``: the workspace's policy, keys, ledger, consents and governed read, together.

Interfaces (CLI, API, pages) and apps hold one ``Governance`` and call its methods; none of
them reads the store's personal data any other way. Every method that reads or writes
personal data decides first, then leaves one ledger record.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from territoria.backends import LoadRecord, Store, TableDB
from territoria.core.config import WorkspaceConfig
from territoria.core.errors import GovernanceError
from territoria.core.files import write_atomically
from territoria.governance.cases import Case, add_case, list_cases
from territoria.governance.consents import ConsentBook, ConsentRecord, ObjectionRecord
from territoria.governance.decide import Decision
from territoria.governance.extract import Extract, extract
from territoria.governance.ledger import AuditEntry, AuditLedger
from territoria.governance.policy import Policy, Purpose, builtin_policy_dir, load_policy
from territoria.governance.pseudonyms import Keyring, Pseudonymiser
from territoria.governance.read import GovernedReader, ReadRequest, ReadResult
from territoria.governance.residents import PivotIdentity, match_resident
from territoria.governance.retention import (
    EliminationRecord,
    EliminationRequest,
    RetentionEngine,
    RetentionPlan,
)
from territoria.governance.synergies import DEFAULT_MIN_CELL, SynergyCell, service_pairs
from territoria.governance.transparency import AccessEntry, transparency_entries
from territoria.identity import Registry
from territoria.ingest.catalog import ContractCatalog

__all__ = ["Governance", "install_policy", "policy_dir"]

POLICY_DIR = "policy"


def policy_dir(root: Path) -> Path:
    """The workspace's own policy folder if it has one, else the shipped default."""
    folder = root / POLICY_DIR
    return folder if (folder / "register.yaml").is_file() else builtin_policy_dir()


def install_policy(root: Path) -> Path:
    """Copy the shipped policy into a workspace's ``policy/`` (kept if already there)."""
    folder = root / POLICY_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("register.yaml", "actors.yaml"):
        target = folder / name
        if not target.exists():
            write_atomically(target, (builtin_policy_dir() / name).read_bytes(), what="politique")
    return folder


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Acting:
    """Who acts on a resident's rights, under which purpose, for which person."""

    decision: Decision
    purpose: Purpose
    person: str


class Governance:
    """See the module docstring; ``Governance.open(config, store)`` is the usual way in."""

    def __init__(
        self,
        store: Store,
        catalog: ContractCatalog,
        policy: Policy,
        keyring: Keyring,
        *,
        clock: Callable[[], datetime] | None = None,
        db: TableDB | None = None,
    ) -> None:
        self.store, self.catalog, self.policy, self.keyring = store, catalog, policy, keyring
        self.clock = clock or _utc_now
        self.db = db or store.tables()
        self.contracts = dict(catalog.contracts)
        self.ledger = AuditLedger(self.db, clock=self.clock)
        self.consents = ConsentBook(self.db, clock=self.clock)
        self.pseudonyms = Pseudonymiser(keyring)
        self.retention = RetentionEngine(store, catalog, clock=self.clock)
        self.index = Registry(self.db)  # its tables exist even before the first link
        self.reader = GovernedReader(
            store,
            self.db,
            self.contracts,
            policy,
            self.ledger,
            self.consents,
            self.pseudonyms,
            self.clock,
            hidden=self.retention.hidden_among,
        )
        self._note_policy()

    @classmethod
    def open(
        cls,
        config: WorkspaceConfig,
        store: Store,
        *,
        clock: Callable[[], datetime] | None = None,
        policy: Policy | None = None,
    ) -> Governance:
        catalog = ContractCatalog.load(*config.contract_paths)
        policy = policy or load_policy(policy_dir(config.root))
        return cls(store, catalog, policy, Keyring.for_workspace(config.root), clock=clock)

    def _note_policy(self) -> None:
        """A policy whose digest differs from the last one recorded is a policy change."""
        rule = f"policy:{self.policy.digest[:16]}"
        last = self.ledger.records(kind="policy", limit=1)
        if last and last[0].entry.rule == rule:
            return
        self.ledger.append(
            AuditEntry(
                kind="policy",
                actor="system",
                service="",
                role="",
                purpose="",
                legal_basis="",
                view="policy.load",
                rule=rule,
                reason=f"politique en vigueur : {len(self.policy.purposes)} finalités, "
                f"{len(self.policy.roles)} rôles ({self.policy.register_file.parent})",
            )
        )

    # -- reads -----------------------------------------------------------------------------

    def decide(self, actor: str, purpose: str, view: str) -> Decision:
        return self.reader.decide(actor, purpose, view)

    def read(self, request: ReadRequest) -> ReadResult:
        """The governed read (see ``territoria.governance.read``)."""
        return self.reader.read(request)

    def add_case(
        self,
        actor: str,
        purpose: str,
        app: str,
        kind: str,
        subject: str | None,
        payload: dict[str, Any],
    ) -> Case:
        """Record an app's case about a resident (see ``territoria.governance.cases``)."""
        return add_case(self, actor, purpose, app, kind, subject, payload)

    def cases(self, actor: str, purpose: str, app: str, kinds: tuple[str, ...] = ()) -> list[Case]:
        return list_cases(self, actor, purpose, app, kinds)

    def extract(self, actor: str, purpose: str, sources: Sequence[str]) -> Extract:
        """The governed batch read of a 4P app (see ``territoria.governance.extract``)."""
        return extract(self, actor, purpose, sources)

    def record(
        self,
        decision: Decision,
        *,
        kind: str,
        view: str,
        persons: tuple[str, ...] = (),
        fields: tuple[str, ...] = (),
        reason: str | None = None,
    ) -> int:
        """Append the ledger record of an operation decided elsewhere; returns its seq."""
        entry = AuditEntry(
            kind=kind,  # type: ignore[arg-type]
            actor=decision.actor,
            service=decision.service,
            role=decision.role,
            purpose=decision.purpose,
            legal_basis=decision.legal_basis,
            view=view,
            persons=persons,
            fields=fields,
            decision="allow" if decision.allowed else "deny",
            rule=decision.rule,
            reason=reason or decision.reason,
        )
        return self.ledger.append(entry).seq

    def authorise(
        self,
        actor: str,
        purpose: str | None,
        view: str,
        *,
        source: str | None = None,
        persons: tuple[str, ...] = (),
        owner_only: bool = False,
    ) -> Decision:
        """Decide and record an operation served outside the record reader; raise if refused.

        For views whose data another module serves (the linkage review queue, quarantined
        rows). Without ``purpose``, the first of the actor's grants that opens the view (on
        ``source`` when given) is used. A ``source`` the purpose may not read is refused, and
        with ``owner_only`` so is a source another service owns (quarantined rows are raw
        deliveries: only the owning service sorts them out).
        """
        purpose = purpose or self.purpose_for(actor, view, source)
        if purpose is None:
            decision = Decision(
                False,
                "deny:no_grant",
                "aucune habilitation de l'acteur n'ouvre cette vue (refus par défaut)",
                actor,
                view,
                "",
            )
        else:
            decision = self.decide(actor, purpose, view)
        if decision.allowed and source is not None and source not in decision.fields:
            decision = replace(
                decision,
                allowed=False,
                rule="deny:source_not_in_purpose",
                reason="cette finalité ne lit pas cette source (refus par défaut)",
                fields={},
            )
        contract = self.contracts.get(source or "")
        if (
            decision.allowed
            and owner_only
            and contract
            and contract.owner_service != decision.service
        ):
            decision = replace(
                decision,
                allowed=False,
                rule="deny:not_owner_service",
                reason=f"seul le service détenteur de la source ({contract.owner_service}) "
                "traite ses lignes rejetées",
                fields={},
            )
        fields = tuple(f"{source}.{f}" for f in decision.fields.get(source or "", ()))
        self.record(
            decision,
            kind="read",
            view=view,
            persons=persons if decision.allowed else (),
            fields=fields if decision.allowed else (),
        )
        if not decision.allowed:
            raise GovernanceError(
                f"refusé : {decision.reason}",
                code="access_denied",
                details={"rule": decision.rule},
                hint="« territoria policy decide » explique la décision ; le DPO gère les habilitations",
            )
        return decision

    def purpose_for(self, actor: str, view: str, source: str | None = None) -> str | None:
        """The first purpose the actor's grants open for a view (and a source)."""
        for _role, grant, purpose in self.policy.grants_of(actor):
            if view in grant.views and (source is None or source in purpose.sources):
                return grant.purpose
        return None

    # -- acting on a resident's rights -----------------------------------------------------

    def acting(self, actor: str, purpose_id: str, subject: str | None, view: str) -> Acting:
        """Decide a rights operation and find its person; a refusal is recorded and raised."""
        decision = self.decide(actor, purpose_id, view)
        if not decision.allowed:
            self.record(decision, kind="read", view=view)
            raise GovernanceError(
                f"refusé : {decision.reason}", code="access_denied", details={"rule": decision.rule}
            )
        purpose = self.policy.purposes[purpose_id]
        person = self.reader.resolve(purpose, subject, actor)
        if person is None or not self.reader.admits(purpose, actor, person):
            self.record(decision, kind="read", view=view, reason="personne introuvable")
            raise GovernanceError(
                "personne introuvable dans le périmètre de la finalité", code="person_not_found"
            )
        return Acting(decision, purpose, person)

    def _target(
        self, purpose_id: str, *, optional: bool | None = None, proactive: bool | None = None
    ) -> Purpose:
        purpose = self.policy.purpose(purpose_id)
        if purpose is None:
            raise GovernanceError(
                f"finalité inconnue : {purpose_id!r}",
                code="purpose_unknown",
                hint="« territoria policy show » liste les finalités du registre",
            )
        if optional and not purpose.optional:
            raise GovernanceError(
                f"« {purpose.name} » ne repose pas sur le consentement : rien à donner ni retirer",
                code="purpose_not_optional",
            )
        if proactive and not purpose.proactive:
            raise GovernanceError(
                f"« {purpose.name} » n'est pas un traitement proactif : l'opposition ne s'y "
                "applique pas ici (adressez-vous au DPO)",
                code="purpose_not_proactive",
            )
        return purpose

    def change_consent(
        self,
        actor: str,
        acting_purpose: str,
        subject: str | None,
        purpose_id: str,
        *,
        give: bool,
        method: str = "portal",
    ) -> ConsentRecord:
        """Give or withdraw consent to an optional purpose; effective at the next read."""
        target = self._target(purpose_id, optional=True)
        acting = self.acting(actor, acting_purpose, subject, "rights_export")
        if give:
            record = self.consents.give(
                acting.person,
                target.id,
                actor=actor,
                method=method,  # type: ignore[arg-type]
                controller=target.controller or self.policy.controller.name,
                notice=f"registre : {target.id}",
                purpose_label=target.name,
            )
        else:
            record = self.consents.withdraw(acting.person, target.id, actor=actor, method=method)  # type: ignore[arg-type]
        verb = "donné" if give else "retiré"
        self.record(
            acting.decision,
            kind="write",
            view=f"consent.{record.event}",
            persons=(acting.person,),
            reason=f"consentement {verb} pour « {target.name} »",
        )
        return record

    def change_objection(
        self,
        actor: str,
        acting_purpose: str,
        subject: str | None,
        purpose_id: str,
        *,
        object_: bool,
        reason: str = "",
    ) -> ObjectionRecord:
        """Object (art. 21) to a proactive purpose, or lift the objection; effective at once."""
        target = self._target(purpose_id, proactive=True)
        acting = self.acting(actor, acting_purpose, subject, "rights_export")
        if object_:
            record = self.consents.object(acting.person, target.id, actor=actor, reason=reason)
        else:
            record = self.consents.lift_objection(acting.person, target.id, actor=actor)
        self.record(
            acting.decision,
            kind="write",
            view=f"objection.{record.event}",
            persons=(acting.person,),
            reason=f"opposition {'enregistrée' if object_ else 'levée'} pour « {target.name} »",
        )
        return record

    def identify_resident(self, pivot: PivotIdentity, provider: str) -> str | None:
        """The index's person behind an identity a provider vouches for (portal login).

        One ledger record either way: the person found (kind read, the resident's own
        purpose) or the failed match (no person named, the number of candidates given).
        """
        key, candidates = match_resident(self.db, pivot)
        purpose = self.policy.purposes.get("resident_access")
        self.ledger.append(
            AuditEntry(
                kind="read",
                actor=f"resident:{key}" if key else "resident:?",
                service=purpose.service if purpose else "",
                role="",
                purpose=purpose.id if purpose else "",
                legal_basis=purpose.legal_basis or "" if purpose else "",
                view="resident.identify",
                persons=(key,) if key else (),
                decision="allow" if key else "deny",
                rule="login:identity_match" if key else "deny:no_single_match",
                reason=f"connexion par {provider} : identité rapprochée de l'index"
                if key
                else f"connexion par {provider} : {candidates} dossier(s) correspondant(s), "
                "aucun rattachement",
            )
        )
        return key

    def choices(
        self, actor: str, acting_purpose: str, subject: str | None
    ) -> list[ConsentRecord | ObjectionRecord]:
        """A person's consent and objection history, oldest first (one ledger record)."""
        acting = self.acting(actor, acting_purpose, subject, "rights_export")
        history = self.consents.history(acting.person)
        self.record(acting.decision, kind="read", view="consent.list", persons=(acting.person,))
        return history

    # -- aggregate and transparency views ----------------------------------------------------

    def synergies(
        self, actor: str, purpose: str, min_cell: int = DEFAULT_MIN_CELL
    ) -> tuple[Decision, list[SynergyCell]]:
        """Residents shared by each pair of services, small cells suppressed (aggregate only)."""
        decision = self.decide(actor, purpose, "synergies")
        if min_cell < DEFAULT_MIN_CELL:
            raise GovernanceError(
                f"taille minimale de cellule trop basse : {min_cell}",
                code="min_cell_too_low",
                expected=f"au moins {DEFAULT_MIN_CELL} (secret statistique)",
            )
        self.record(decision, kind="read", view="synergies")
        if not decision.allowed:
            return decision, []
        return decision, service_pairs(self.db, self.policy, decision, self.contracts, min_cell)

    def who_accessed(
        self, actor: str, acting_purpose: str, subject: str | None
    ) -> list[AccessEntry]:
        """The resident's transparency ledger (« qui a consulté mes données »)."""
        acting = self.acting(actor, acting_purpose, subject, "rights_export")
        entries = transparency_entries(
            self.ledger, self.policy, self.contracts, acting.person, self.clock().date()
        )
        self.record(acting.decision, kind="read", view="transparency", persons=(acting.person,))
        return entries

    # -- retention (archival sort) -----------------------------------------------------------

    def retention_plan(self, actor: str, purpose: str | None, as_of: date | None) -> RetentionPlan:
        """What reaches the end of its retention period on ``as_of`` (nothing is changed)."""
        self.authorise(actor, purpose, "retention")
        return self.retention.plan(as_of)

    def apply_retention(
        self, actor: str, purpose: str | None, plan: RetentionPlan
    ) -> list[EliminationRequest]:
        """Archive, set aside for sorting, or propose for elimination; recorded in the ledger."""
        decision = self.authorise(actor, purpose, "retention")
        created = self.retention.apply(plan)
        due = sum(len(ids) for ids in plan.due.values())
        self.record(
            decision,
            kind="write",
            view="retention.apply",
            reason=f"sort final au {plan.as_of} : {due} fiche(s) échue(s), "
            f"{len(created)} bordereau(x) d'élimination ou de tri",
        )
        return created

    def approve_elimination(
        self, actor: str, purpose: str | None, request_id: str, *, visa: str
    ) -> EliminationRecord:
        """Record the departmental archives' visa: the records become unreadable for good."""
        decision = self.authorise(actor, purpose, "retention")
        record = self.retention.approve_elimination(request_id, visa=visa, approved_by=actor)
        self.record(
            decision,
            kind="write",
            view="retention.eliminate",
            reason=f"élimination {record.elimination_id} de {record.count} fiche(s) de "
            f"{record.source}, visa {record.visa}, empreinte {record.digest[:16]}",
        )
        return record

    # -- writes by batch jobs --------------------------------------------------------------

    def record_loads(self, actor: str, loads: Iterable[LoadRecord]) -> int:
        """One write record per load that stored personal data; returns how many were noted."""
        entries = []
        for load in loads:
            contract = self.contracts.get(load.source)
            if load.status != "loaded" or contract is None:
                continue
            personal = contract.fields_of("identifying", "sensitive", "special_category")
            if not personal:
                continue
            entries.append(
                AuditEntry(
                    kind="write",
                    actor=actor or "system",
                    service=contract.owner_service,
                    role="",
                    purpose="",
                    legal_basis=contract.legal_basis,
                    view="ingest.load",
                    fields=tuple(f"{contract.id}.{f.name}" for f in personal),
                    rule=f"load:{load.load_id}",
                    reason=f"chargement de {load.rows_loaded} ligne(s) de « {contract.title} » "
                    f"({load.file_name}, SHA-256 {load.content_hash[:12]}…)",
                )
            )
        self.ledger.append_many(entries)
        return len(entries)

    def record_link(self, actor: str, run_id: str, summary: str) -> None:
        """A linkage run (or incremental attach) rewrote person keys: one write record."""
        self.ledger.append(
            AuditEntry(
                kind="write",
                actor=actor or "system",
                service="donnees",
                role="",
                purpose="identity_resolution",
                legal_basis="public_task",
                view="identity.link",
                rule=f"link:{run_id}",
                reason=summary,
            )
        )
