"""The governed batch read: what a 4P app (a billing run, a screening) reads in one go.

``extract`` is the ``records`` view for a whole population: one decision, the purpose's
population (its own sources, scope, consents, objections), retention applied, only the
fields the purpose may see, person and household keys replaced by pseudonyms of the
purpose's domain — and one ledger record naming every person it returned, so each of them
finds the run in « qui a consulté mes données ». An event that names nobody but is attached to
another source's record (``linkage.attached_to``: a lift belongs to the bin that carried the
tag that day) is about that record's persons. Records that name no resident of the index (a
building's manager, a lift of an unknown tag) come with empty person and household — and are
left out of a purpose limited to the resident's own data (``scope.self_only``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from territoria.backends import marks
from territoria.core.contract import SourceContract
from territoria.core.errors import GovernanceError
from territoria.governance.decide import Decision
from territoria.governance.ledger import AuditEntry
from territoria.governance.policy import Purpose

if TYPE_CHECKING:
    from territoria.governance.service import Governance

__all__ = ["HOUSEHOLD", "PERSON", "Extract", "attached_events", "extract"]

PERSON = "person"
HOUSEHOLD = "household"
HOUSEHOLD_SIZE_FIELD = "index.household_size"


@dataclass(frozen=True)
class Extract:
    """Per source, its visible columns plus ``person`` and ``household`` pseudonyms."""

    decision: Decision
    tables: dict[str, pa.Table] = field(default_factory=dict)
    persons: int = 0
    ledger_seq: int | None = None
    # household pseudonym → residents the index places in it (a REOMi fixed part by household
    # size, the simulator's distribution); recorded in the ledger as « index.household_size ».
    household_sizes: dict[str, int] = field(default_factory=dict)


def _attribution(gov: Governance, source: str) -> dict[str, tuple[str, str | None]]:
    """record id → (person key, household key) of its first mention (holder first)."""
    rows = gov.db.query(
        "SELECT mention_id, person_key, household_key FROM id_mentions WHERE source = ? "
        "ORDER BY mention_id",
        [source],
    )
    out: dict[str, tuple[str, str | None]] = {}
    for mention, person, household in rows:
        record = str(mention).split("|")[1]
        out.setdefault(record, (str(person), None if household is None else str(household)))
    return out


def _attached(
    gov: Governance, contract: SourceContract, table: pa.Table, only: set[str] | None = None
) -> list[tuple[str, str | None] | None]:
    """Each event's (person key, household key) through the record it is attached to.

    ``only``: the persons wanted (a resident's own data); the events of anyone else's records
    then come back unattributed, and only the wanted persons' tags are looked at row by row.
    """
    link = contract.linkage.attached_to
    assert link is not None
    parent = gov.contracts[link.source]
    parent_id = parent.linkage.record_id or ""
    window = [c for c in (link.parent_from, link.parent_until) if c]
    columns = [parent_id, link.parent_key, *window]
    owners = _attribution(gov, link.source)
    spans: dict[str, list[tuple[str, str | None, tuple[str, str | None] | None]]] = {}
    for batch in gov.store.raw_batches(link.source, columns):
        rows = batch.to_pydict()
        starts = rows.get(link.parent_from or "", [None] * batch.num_rows)
        ends = rows.get(link.parent_until or "", [None] * batch.num_rows)
        for record, key, start, end in zip(
            rows[parent_id], rows[link.parent_key], starts, ends, strict=True
        ):
            owner = owners.get(str(record))
            if key is None or (only is not None and (owner is None or owner[0] not in only)):
                continue
            spans.setdefault(str(key), []).append((_day(start) or "", _day(end), owner))
    found: list[tuple[str, str | None] | None] = [None] * table.num_rows
    if not spans or table.num_rows == 0:
        return found
    keys = table.column(link.key).cast(pa.string())
    known = pc.indices_nonzero(pc.is_in(keys, value_set=pa.array(list(spans), pa.string())))
    dates = table.column(link.at).take(known).to_pylist()
    for position, key, at in zip(
        known.to_pylist(), keys.take(known).to_pylist(), dates, strict=True
    ):
        day = _day(at)
        if day is not None:
            found[position] = next(
                (o for start, end, o in spans[key]
                 if start <= day and (end is None or day < end)),
                None,
            )  # fmt: skip
    return found


def attached_events(
    gov: Governance, source: str, person: str, visible: Sequence[str]
) -> list[dict[str, Any]]:
    """The visible fields of a source's events attached to this person's records (art. 15).

    Not recorded here: the caller's operation (the access export) records what it returns.
    Events past their retention period are left out.
    """
    contract = gov.contracts[source]
    link = contract.linkage.attached_to
    if link is None:
        return []
    key_field = contract.linkage.record_id or ""
    columns = list(dict.fromkeys([c for c in (key_field, link.key, link.at) if c] + [*visible]))
    batches = list(gov.store.raw_batches(source, columns))
    if not batches:
        return []
    table = pa.Table.from_batches(batches).drop_columns(["_load_id"])
    owners = _attached(gov, contract, table, only={person})
    mine = [i for i, owner in enumerate(owners) if owner is not None and owner[0] == person]
    rows = table.take(pa.array(mine, pa.int64())).to_pylist()
    ids = [str(r[key_field]) for r in rows] if key_field else []
    hidden = gov.reader.hidden({source: sorted(set(ids))}) if ids else set()
    return [
        {name: row[name] for name in visible}
        for row in rows
        if not key_field or (source, str(row[key_field])) not in hidden
    ]


def _day(value: object) -> str | None:
    """``YYYY-MM-DD`` of a date, a datetime or their ISO text."""
    return None if value is None or value == "" else str(value)[:10]


def _source_table(
    gov: Governance,
    source: str,
    visible: list[str],
    allowed: set[str],
    purpose: Purpose,
    touched: dict[str, str | None],
) -> pa.Table:
    """One source's records for the purpose, with pseudonyms; adds each person named, with
    their household, to ``touched``."""
    contract = gov.contracts[source]
    key_field = contract.linkage.record_id or ""
    link = contract.linkage.attached_to
    needed = [key_field] if key_field else []
    if link is not None:
        needed += [link.key, link.at]
    columns = list(dict.fromkeys([*needed, *visible]))
    batches = list(gov.store.raw_batches(source, columns))
    table = (
        pa.Table.from_batches(batches).drop_columns(["_load_id"])
        if batches
        else pa.table({c: pa.array([], pa.string()) for c in columns})
    )
    owners = _attribution(gov, source) if key_field else {}
    only = allowed if purpose.scope.self_only else None
    attached = _attached(gov, contract, table, only) if link is not None else None
    ids = table.column(key_field).cast(pa.string()).to_pylist() if key_field else []
    hidden = gov.reader.hidden({source: sorted({i for i in ids if i})}) if ids else set()
    pseudonym, domain = gov.pseudonyms.pseudonym, purpose.domain
    keep: list[int] = []
    persons: list[str | None] = []
    households: list[str | None] = []
    for position, record in enumerate(ids or [None] * table.num_rows):
        owner = attached[position] if attached is not None else owners.get(record or "")
        if owner is None and purpose.scope.self_only:
            continue  # names nobody: not the resident's own data
        if owner is not None and owner[0] not in allowed:
            continue  # a resident outside the purpose's population
        if record is not None and (source, record) in hidden:
            continue  # past its retention period
        keep.append(position)
        if owner is None:
            persons.append(None)
            households.append(None)
        else:
            touched.setdefault(owner[0], owner[1])
            persons.append(pseudonym(domain, owner[0]))
            households.append(pseudonym(domain, owner[1]) if owner[1] else None)
    kept = table.take(pa.array(keep, pa.int64())).select(visible)
    kept = kept.append_column(PERSON, pa.array(persons, pa.string()))
    return kept.append_column(HOUSEHOLD, pa.array(households, pa.string()))


def extract(gov: Governance, actor: str, purpose_id: str, sources: Sequence[str]) -> Extract:
    """Every record of ``sources`` the purpose may read now (see the module docstring)."""
    decision = gov.decide(actor, purpose_id, "records")
    missing = [s for s in sources if s not in decision.fields]
    if not decision.allowed or missing:
        reason = decision.reason if not decision.allowed else "source hors de la finalité"
        gov.record(decision, kind="read", view="records.batch", reason=reason)
        rule = decision.rule if not decision.allowed else "deny:source_not_in_purpose"
        raise GovernanceError(
            f"refusé : {reason}", code="access_denied", details={"rule": rule, "sources": missing}
        )
    purpose = gov.policy.purposes[purpose_id]
    allowed = gov.reader.population(purpose, actor)
    tables: dict[str, pa.Table] = {}
    touched: dict[str, str | None] = {}
    for source in sources:
        tables[source] = _source_table(
            gov, source, list(decision.fields[source]), allowed, purpose, touched
        )
    rows = sum(t.num_rows for t in tables.values())
    sizes = _household_sizes(gov, {h for h in touched.values() if h})
    fields = [f"{s}.{f}" for s in sources for f in decision.fields[s]]
    entry = AuditEntry(
        kind="read",
        actor=actor,
        service=decision.service,
        role=decision.role,
        purpose=purpose_id,
        legal_basis=decision.legal_basis,
        view="records",
        persons=tuple(sorted(touched)),
        fields=tuple(fields + ([HOUSEHOLD_SIZE_FIELD] if sizes else [])),
        rule=decision.rule,
        reason=f"extraction par lot : {rows} fiche(s) de {', '.join(sources)}, "
        f"{len(touched)} personne(s)",
    )
    record = gov.ledger.append(entry)
    domain = purpose.domain
    return Extract(
        decision,
        tables,
        len(touched),
        record.seq,
        {gov.pseudonyms.pseudonym(domain, h): n for h, n in sizes.items()},
    )


def _household_sizes(gov: Governance, households: set[str]) -> dict[str, int]:
    """How many residents the index places in each of these households.

    Only records of sources without special-category data count: a person known only to the
    social services (the CCAS) never changes a size another service sees (non-interference).
    """
    if not households:
        return {}
    sensitive = sorted(
        c.id
        for c in gov.contracts.values()
        if c.special_category_basis or any(f.category == "special_category" for f in c.fields)
    )
    rows = gov.db.query(
        "SELECT household_key, COUNT(DISTINCT person_key) FROM id_mentions "
        f"WHERE household_key IS NOT NULL AND source NOT IN ({marks(sensitive) or 'NULL'}) "
        "GROUP BY household_key",
        sensitive,
    )
    return {str(h): int(n) for h, n in rows if str(h) in households}
