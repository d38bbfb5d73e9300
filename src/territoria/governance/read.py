"""The governed read: the one way to read personal data.

``GovernedReader.read(request)`` asks the policy decision point, and only if allowed:
computes the purpose's population (its own sources, its scope, consents for optional
purposes, objections for proactive ones), reads the records it may see, drops every field
the purpose may not see, replaces person and household keys by pseudonyms of the purpose's
domain, and appends exactly one record to the audit ledger — allowed, refused or not found
alike. A person outside the scope and a person that does not exist give the same answer,
so nothing hints at records the actor may not know of.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from territoria.backends import Store, TableDB, marks
from territoria.core.contract import SourceContract
from territoria.core.errors import GovernanceError
from territoria.governance.consents import ConsentBook
from territoria.governance.decide import Decision, decide
from territoria.governance.ledger import AuditEntry, AuditLedger
from territoria.governance.policy import Policy, Purpose
from territoria.governance.pseudonyms import Pseudonymiser
from territoria.governance.retention_dates import add_duration
from territoria.governance.scope import in_scope, population
from territoria.identity.standardise import fold

__all__ = ["GovernedReader", "ReadRequest", "ReadResult", "ReadStatus"]

ReadStatus = Literal["ok", "denied", "not_found"]
# Words that join two names ("MARTIN née DURAND"), never part of a name.
_LINK_WORDS = frozenset({"NEE", "NE", "EPOUSE", "EP", "VEUVE", "VVE", "DIT", "DITE"})
NOT_FOUND = "aucune personne de ce nom ou de cet identifiant dans le périmètre de la finalité"


@dataclass(frozen=True)
class ReadRequest:
    """What an actor asks: a view, under a purpose, about a subject or a query."""

    actor: str
    purpose: str
    view: str
    subject: str | None = None  # a pseudonym of the purpose's domain (person_360)
    query: str | None = None  # search text or autocomplete prefix
    source: str | None = None  # the source of the ``records`` view
    limit: int = 20
    offset: int = 0


@dataclass(frozen=True)
class ReadResult:
    decision: Decision
    status: ReadStatus
    data: Any = None
    ledger_seq: int | None = None
    persons: tuple[str, ...] = field(default=(), repr=False)  # keys touched, for the ledger
    fields: tuple[str, ...] | None = field(default=None, repr=False)  # shown, if not all

    def as_dict(self) -> dict[str, Any]:
        """What interfaces show: the decision with its rule, and the data (no ledger seq)."""
        return {
            "status": self.status,
            "allowed": self.decision.allowed,
            "rule": self.decision.rule,
            "reason": self.decision.reason,
            "purpose": self.decision.purpose,
            "view": self.decision.view,
            "output": self.decision.output,
            "data": self.data,
        }

    def canonical(self) -> str:
        """A byte-stable rendering (what non-interference tests compare)."""
        return json.dumps(self.as_dict(), sort_keys=True, ensure_ascii=False, default=str)


class GovernedReader:
    """Every view of personal data, behind the decision point and the ledger."""

    def __init__(
        self,
        store: Store,
        db: TableDB,
        contracts: dict[str, SourceContract],
        policy: Policy,
        ledger: AuditLedger,
        consents: ConsentBook,
        pseudonyms: Pseudonymiser,
        clock: Callable[[], datetime],
        hidden: Callable[[dict[str, list[str]]], set[tuple[str, str]]] | None = None,
    ) -> None:
        self.store, self.db, self.contracts, self.policy = store, db, contracts, policy
        self.ledger, self.consents, self.pseudonyms = ledger, consents, pseudonyms
        self.clock = clock
        self.hidden = hidden or (lambda records: set())
        self._all_keys: tuple[int, frozenset[str]] | None = None
        self._decisions: dict[tuple[str, str, str], Decision] = {}

    # -- entry point -----------------------------------------------------------------------

    def decide(self, actor: str, purpose: str, view: str) -> Decision:
        """The decision point's answer; it depends on the policy only, so it is memoised."""
        key = (actor, purpose, view)
        decision = self._decisions.get(key)
        if decision is None:
            decision = decide(self.policy, self.contracts, actor, purpose, view)
            if len(self._decisions) < 10_000:
                self._decisions[key] = decision
        return decision

    def read(self, request: ReadRequest) -> ReadResult:
        decision = self.decide(request.actor, request.purpose, request.view)
        if not decision.allowed:
            return self._record(request, ReadResult(decision, "denied"))
        purpose = self.policy.purposes[request.purpose]
        handler = getattr(self, f"_view_{request.view}", None)
        if handler is None:  # views served by other modules (ledger, synergies, export…)
            self._record(request, ReadResult(decision, "not_found"))
            raise GovernanceError(
                f"la vue « {request.view} » ne se lit pas par la lecture de fiches",
                code="view_not_readable",
            )
        result: ReadResult = handler(request, purpose, decision)
        return self._record(request, result)

    def _record(self, request: ReadRequest, result: ReadResult) -> ReadResult:
        decision = result.decision
        purpose = self.policy.purpose(request.purpose)
        delay = purpose.transparency_delay if purpose else None
        defer = None
        if delay and result.persons:
            defer = add_duration(self.clock().date(), delay).isoformat()
        reason = decision.reason if result.status != "not_found" else NOT_FOUND
        record = self.ledger.append(
            AuditEntry(
                kind="read",
                actor=request.actor,
                service=decision.service,
                role=decision.role,
                purpose=request.purpose,
                legal_basis=decision.legal_basis,
                view=request.view,
                persons=result.persons,
                fields=(result.fields or decision.field_names) if result.status == "ok" else (),
                decision="allow" if decision.allowed else "deny",
                rule=decision.rule,
                reason=reason,
                defer_until=defer,
            )
        )
        return ReadResult(
            decision, result.status, result.data, record.seq, result.persons, result.fields
        )

    # -- population ------------------------------------------------------------------------

    def actor_key(self, actor: str) -> str | None:
        return actor.split(":", 1)[1] if actor.startswith("resident:") else None

    def population(self, purpose: Purpose, actor: str) -> set[str]:
        """The persons a purpose may return now, consents and objections applied."""
        people = population(self.db, purpose, self.clock().date(), self.actor_key(actor))
        if purpose.optional:
            people &= self.consents.consenting(purpose.id)
        if purpose.proactive:
            people -= self.consents.objecting(purpose.id)
        return people

    def admits(self, purpose: Purpose, actor: str, person: str) -> bool:
        """Whether one person is in the purpose's population now (the 360° check)."""
        if not in_scope(self.db, purpose, self.clock().date(), self.actor_key(actor), person):
            return False
        if purpose.optional and not self.consents.has_consent(person, purpose.id):
            return False
        return not (purpose.proactive and self.consents.has_objected(person, purpose.id))

    def _known_keys(self, refresh: bool = False) -> frozenset[str]:
        """Every person key of the index (pseudonym resolution).

        Read once; on a miss (``refresh``) read again only if the index has grown, so that an
        unknown pseudonym costs one count, not a scan of every key.
        """
        if self._all_keys is None or refresh:
            count = int(self.db.query("SELECT COUNT(*) FROM id_mentions")[0][0])
            if self._all_keys is None or self._all_keys[0] != count:
                rows = self.db.query("SELECT DISTINCT person_key FROM id_mentions")
                self._all_keys = (count, frozenset(str(r[0]) for r in rows))
        return self._all_keys[1]

    def resolve(self, purpose: Purpose, subject: str | None, actor: str) -> str | None:
        """The person key behind a pseudonym of the purpose's domain (or the resident)."""
        own = self.actor_key(actor)
        if purpose.scope.self_only and own and subject in (None, "", "moi"):
            return own
        if not subject:
            return None
        # A key merged away since still resolves here; ``admits`` then finds no record of it.
        found = self.pseudonyms.resolve(purpose.domain, subject, self._known_keys())
        if found is None:  # perhaps a person indexed since the keys were read
            found = self.pseudonyms.resolve(purpose.domain, subject, self._known_keys(True))
        return found

    def pseudonym(self, purpose: Purpose, key: str) -> str:
        return self.pseudonyms.pseudonym(purpose.domain, key)

    # -- records ---------------------------------------------------------------------------

    def _mentions(self, persons: list[str], sources: list[str]) -> list[tuple[str, str, str]]:
        """(person key, source, record id) of the persons' records in these sources."""
        out: list[tuple[str, str, str]] = []
        for start in range(0, len(persons), 500):
            chunk = persons[start : start + 500]
            rows = self.db.query(
                "SELECT person_key, source, mention_id FROM id_mentions WHERE person_key IN ("
                + marks(chunk)
                + ") AND source IN ("
                + marks(sources)
                + ")",
                [*chunk, *sources],
            )
            out.extend((str(p), str(s), str(m).split("|")[1]) for p, s, m in rows)
        return sorted(set(out))

    def records(
        self, decision: Decision, persons: list[str], sources: list[str] | None = None
    ) -> dict[str, list[tuple[str, dict[str, Any]]]]:
        """Visible fields of the persons' records, per source: ``(person key, row)`` pairs."""
        wanted = [s for s in sorted(decision.fields) if sources is None or s in sources]
        by_source: dict[str, dict[str, set[str]]] = {}
        for person, source, record_id in self._mentions(persons, wanted):
            by_source.setdefault(source, {}).setdefault(record_id, set()).add(person)
        hidden = self.hidden({s: sorted(owners) for s, owners in by_source.items()})
        out: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for source, owners in by_source.items():
            contract = self.contracts[source]
            key_field = contract.linkage.record_id or ""
            visible = list(decision.fields[source])
            ids = sorted(r for r in owners if (source, r) not in hidden)
            rows = self.store.raw_rows(source, key_field, ids, visible)
            out[source] = [
                (person, row)
                for record_id, row in sorted(rows.items())
                for person in sorted(owners[record_id])
            ]
        return out

    # -- views -----------------------------------------------------------------------------

    def _view_person_360(self, req: ReadRequest, purpose: Purpose, dec: Decision) -> ReadResult:
        person = self.resolve(purpose, req.subject, req.actor)
        if person is None or not self.admits(purpose, req.actor, person):
            return ReadResult(dec, "not_found", {"message": NOT_FOUND})
        found = self.records(dec, [person])
        data = {
            "person": self.pseudonym(purpose, person),
            "sources": {
                source: {
                    "title": self.contracts[source].title,
                    "owner_service": self.contracts[source].owner_service,
                    "records": [row for _, row in rows],
                }
                for source, rows in sorted(found.items())
            },
        }
        shown = tuple(f"{s}.{f}" for s in sorted(found) for f in dec.fields[s])
        return ReadResult(dec, "ok", data, persons=(person,), fields=shown)

    def _view_records(self, req: ReadRequest, purpose: Purpose, dec: Decision) -> ReadResult:
        if req.source not in dec.fields:
            return ReadResult(dec, "not_found", {"message": NOT_FOUND})
        people = sorted(self.population(purpose, req.actor))
        found = self.records(dec, people, [req.source]).get(req.source, [])
        page = found[req.offset : req.offset + req.limit]
        data = {
            "source": req.source,
            "total": len(found),
            "rows": [{"person": self.pseudonym(purpose, p), **row} for p, row in page],
        }
        return ReadResult(dec, "ok", data, persons=tuple(sorted({p for p, _ in page})))

    def _view_count(self, req: ReadRequest, purpose: Purpose, dec: Decision) -> ReadResult:
        count = len(self.population(purpose, req.actor))
        return ReadResult(dec, "ok", {"persons": count})

    def _view_search(self, req: ReadRequest, purpose: Purpose, dec: Decision) -> ReadResult:
        tokens = [t for t in fold(req.query or "").split() if len(t) > 1 and t not in _LINK_WORDS]
        if not tokens:
            return ReadResult(dec, "ok", {"query": req.query or "", "results": []})
        sources = sorted(dec.fields)
        rows = self.db.query(
            "SELECT m.person_key, f.fn, f.gn, f.bn, f.dob_y FROM id_features f "
            "JOIN id_mentions m ON m.mention_id = f.unique_id "
            f"WHERE f.source IN ({', '.join('?' for _ in sources)}) "
            "AND (f.fn LIKE ? OR f.bn LIKE ? OR f.gn LIKE ?)",
            [*sources, *[f"%{max(tokens, key=len)}%"] * 3],
        )
        allowed = self.population(purpose, req.actor)
        hits: dict[str, tuple[str, str, int | None]] = {}
        for person, fn, gn, bn, year in rows:
            words = set(f"{fn or ''} {gn or ''} {bn or ''}".split())
            if person in allowed and all(t in words for t in tokens):
                hits.setdefault(str(person), (str(fn or ""), str(gn or ""), year))
        ordered = sorted(hits.items(), key=lambda kv: (kv[1][0], kv[1][1], kv[0]))[: req.limit]
        results = [
            self._search_hit(purpose, person, fn, gn, year) for person, (fn, gn, year) in ordered
        ]
        data = {"query": req.query or "", "results": results}
        return ReadResult(dec, "ok", data, persons=tuple(sorted(p for p, _ in ordered)))

    def _search_hit(
        self, purpose: Purpose, person: str, fn: str, gn: str, year: int | None
    ) -> dict[str, Any]:
        hit: dict[str, Any] = {"person": self.pseudonym(purpose, person)}
        if purpose.output == "identified":
            hit.update({"family_name": fn, "given_names": gn, "birth_year": year})
        return hit

    def _view_autocomplete(self, req: ReadRequest, purpose: Purpose, dec: Decision) -> ReadResult:
        prefix = fold(req.query or "").strip()
        if len(prefix) < 2 or purpose.output != "identified":
            return ReadResult(dec, "ok", {"query": req.query or "", "suggestions": []})
        sources = sorted(dec.fields)
        rows = self.db.query(
            "SELECT DISTINCT f.fn, m.person_key FROM id_features f "
            "JOIN id_mentions m ON m.mention_id = f.unique_id "
            f"WHERE f.source IN ({', '.join('?' for _ in sources)}) AND f.fn LIKE ?",
            [*sources, prefix.replace("%", "").replace("_", "") + "%"],
        )
        allowed = self.population(purpose, req.actor)
        names = sorted({str(fn) for fn, person in rows if person in allowed})[: req.limit]
        return ReadResult(dec, "ok", {"query": req.query or "", "suggestions": names})
