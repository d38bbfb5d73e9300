"""Person mentions: one row per person a source record describes, with its linkage roles.

A water contract names a holder and a co-holder, a school enrolment a child and two guardians:
each is a *mention*, keyed ``source|record_id|slot``. Only the fields a contract lists in its
``linkage`` section (all ``identifying``, the contract validator checks it) are read: this is
the privacy boundary of the resident index. Relationships the sources state (guardian of,
co-holder, household member) come out as pairs of mention ids.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from territoria.backends import Store
from territoria.core.contract import SourceContract

# The roles a mention may carry, all as text (see ``territoria link --help`` for their meaning).
PERSON_ROLES: tuple[str, ...] = (
    "identifier",
    "full_name",
    "given_name",
    "family_name",
    "birth_name",
    "birth_date",
    "sex",
    "phone",
    "email",
)
DWELLING_ROLES: tuple[str, ...] = ("address", "street_number", "street_name", "postcode", "commune")
ROLES: tuple[str, ...] = PERSON_ROLES + DWELLING_ROLES
MENTION_COLUMNS: tuple[str, ...] = ("mention_id", "source", "record_id", "slot", *ROLES)
MENTION_SCHEMA = pa.schema([(c, pa.string()) for c in MENTION_COLUMNS])
RELATION_SCHEMA = pa.schema(
    [("mention_a", pa.string()), ("mention_b", pa.string()), ("kind", pa.string())]
)


def mention_id(source: str, record_id: str, slot: str) -> str:
    return f"{source}|{record_id}|{slot}"


@dataclass(frozen=True)
class Mentions:
    """Mentions of every linkable source, and the relationships the sources state."""

    table: pa.Table  # MENTION_SCHEMA, one row per mention id (latest load wins)
    relations: pa.Table  # RELATION_SCHEMA

    @property
    def sources(self) -> list[str]:
        return sorted(set(self.table.column("source").to_pylist()))


def linkable(contract: SourceContract) -> bool:
    return bool(contract.linkage.persons and contract.linkage.record_id)


def read_workspace_mentions(store: Store, contracts: Iterable[SourceContract]) -> Mentions:
    """Every person mention of the workspace's loaded sources (identifying fields only)."""
    tables, relations = [], []
    for contract in contracts:
        if not linkable(contract):
            continue
        wanted = _fields_read(contract)
        raw = store.raw_table(contract.id, wanted)
        if raw.num_rows == 0 or contract.linkage.record_id not in raw.column_names:
            continue
        table, rel = source_mentions(contract, raw)
        tables.append(table)
        relations.append(rel)
    return Mentions(
        table=pa.concat_tables(tables) if tables else MENTION_SCHEMA.empty_table(),
        relations=pa.concat_tables(relations) if relations else RELATION_SCHEMA.empty_table(),
    )


def _fields_read(contract: SourceContract) -> list[str]:
    link = contract.linkage
    names = {link.record_id or ""} | set(link.dwelling.values())
    for person in link.persons:
        names |= set(person.roles.values())
    return sorted(n for n in names if n)


def _text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_string(column.type):
        return column
    if pa.types.is_large_string(column.type):
        return column.cast(pa.string())
    return pc.cast(column, pa.string())


def source_mentions(contract: SourceContract, raw: pa.Table) -> tuple[pa.Table, pa.Table]:
    """The mentions of one source's raw rows (a mention per person slot with a name)."""
    link = contract.linkage
    assert link.record_id is not None
    record_ids = _text(raw.column(link.record_id))
    n = raw.num_rows
    empty = pa.nulls(n, pa.string())
    dwelling = {
        role: _text(raw.column(field)) if field in raw.column_names else empty
        for role, field in link.dwelling.items()
    }
    parts = []
    for person in link.persons:
        columns: dict[str, pa.Array | pa.ChunkedArray] = {
            "mention_id": pc.binary_join_element_wise(contract.id, record_ids, person.slot, "|"),
            "source": pa.array([contract.id] * n, pa.string()),
            "record_id": record_ids,
            "slot": pa.array([person.slot] * n, pa.string()),
        }
        for role in ROLES:
            field = person.roles.get(role)  # type: ignore[call-overload]
            if field is not None and field in raw.column_names:
                columns[role] = _text(raw.column(field))
            else:
                columns[role] = dwelling.get(role, empty)  # type: ignore[call-overload]
        table = pa.table(columns, schema=MENTION_SCHEMA)
        parts.append(table.filter(_has_name(table)))
    mentions = _latest_per_id(pa.concat_tables(parts))
    present = set(mentions.column("mention_id").to_pylist())
    relations = _relations(contract, record_ids.to_pylist(), present)
    return mentions, relations


def _has_name(table: pa.Table) -> pa.ChunkedArray:
    def filled(col: str) -> pa.ChunkedArray:
        return pc.fill_null(
            pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(table[col])), 0), False
        )

    return pc.or_(pc.or_(filled("family_name"), filled("full_name")), filled("given_name"))


def _latest_per_id(table: pa.Table) -> pa.Table:
    """One row per mention id: a record delivered again in a later load replaces the earlier."""
    ids = table.column("mention_id").to_pylist()
    last = {mid: i for i, mid in enumerate(ids)}
    if len(last) == len(ids):
        return table
    return table.take(sorted(last.values()))


def _relations(
    contract: SourceContract, record_ids: list[str | None], present: set[str]
) -> pa.Table:
    a, b, kinds = [], [], []
    for rel in contract.linkage.relationships:
        for rid in dict.fromkeys(record_ids):
            if rid is None:
                continue
            left = mention_id(contract.id, rid, rel.from_slot)
            right = mention_id(contract.id, rid, rel.to_slot)
            if left in present and right in present:
                a.append(left)
                b.append(right)
                kinds.append(rel.kind)
    return pa.table({"mention_a": a, "mention_b": b, "kind": kinds}, schema=RELATION_SCHEMA)
