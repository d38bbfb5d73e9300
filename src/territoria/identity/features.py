"""Standardised comparison features of each mention (the input of the linkage model).

Raw mentions hold what each service typed; features hold the standardised values the model
compares: folded names with their given-name variant key, birth dates with their precision,
address keys (building, dwelling), national phone numbers, lower-case e-mails. Every value is
standardised once per distinct raw value (names and streets repeat a lot), so that millions of
mentions cost seconds.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import pyarrow as pa

from territoria.identity.standardise import (
    is_organisation,
    split_full_name,
    standardise_address,
    standardise_birth_date,
    standardise_email,
    standardise_name,
    standardise_phone,
    standardise_sex,
)

FEATURE_FIELDS: tuple[tuple[str, pa.DataType], ...] = (
    ("unique_id", pa.string()),
    ("source", pa.string()),
    ("fn", pa.string()),  # family name in use
    ("gn", pa.string()),  # all given names
    ("gn1", pa.string()),  # first given name
    ("gk", pa.string()),  # variant key of the first given name
    ("bn", pa.string()),  # birth name, when known
    ("fullname", pa.string()),  # fn + gk, for term frequencies
    ("sex", pa.string()),
    ("dob", pa.string()),  # ISO date, only when complete
    ("dob_y", pa.int32()),
    ("dob_m", pa.int32()),
    ("dob_d", pa.int32()),
    ("num", pa.string()),  # street number with its suffix
    ("street", pa.string()),  # street type and name
    ("cpl", pa.string()),  # flat / building complement
    ("pc", pa.string()),
    ("commune", pa.string()),
    ("bkey", pa.string()),  # building key
    ("dkey", pa.string()),  # dwelling key (building + complement)
    ("phone", pa.string()),
    ("email", pa.string()),
    ("ident", pa.string()),  # an identifier shared within a source or across files
)
FEATURE_SCHEMA = pa.schema(list(FEATURE_FIELDS))
FEATURE_COLUMNS: tuple[str, ...] = tuple(name for name, _ in FEATURE_FIELDS)


def _blank(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


def _name(key: tuple[str | None, str | None, str | None, str | None]) -> dict[str, Any] | None:
    full_name, family, given, birth = key
    sex_hint = ""
    if full_name and not (family or given):
        if is_organisation(full_name):
            return None
        sex_hint, family, given = split_full_name(full_name)
    name = standardise_name(family, given, birth)
    if not (name.family_name or name.given_name):
        return None
    return {
        "fn": name.family_name or None,
        "gn": name.given_name or None,
        "gn1": name.first_given_name or None,
        "gk": name.given_name_key or None,
        "bn": name.birth_name if name.birth_name and name.birth_name != name.family_name else None,
        "fullname": f"{name.family_name} {name.given_name_key}".strip() or None,
        "sex_hint": sex_hint or name.sex_hint or None,
    }


def _date(text: str | None) -> tuple[str | None, int | None, int | None, int | None]:
    parsed = standardise_birth_date(text)
    if parsed.problem and parsed.iso is None and parsed.year is None:
        return None, None, None, None
    return parsed.iso, parsed.year, parsed.month, parsed.day


def _address(key: tuple[str | None, ...]) -> dict[str, str | None]:
    line, number, street_name, postcode, commune = key
    if not line and (number or street_name):
        line = " ".join(p for p in (number, street_name) if p)
    a = standardise_address(line, postcode, commune)
    number_key = f"{a.number}{a.suffix}" if a.number else ""
    street = f"{a.street_type} {a.street_name}".strip()
    return {
        "num": number_key or None,
        "street": street or None,
        "cpl": a.complement or None,
        "pc": a.postcode or None,
        "commune": a.commune or None,
        "bkey": a.building_key or None,
        "dkey": a.dwelling_key or None,
    }


def _identifier(value: str | None, source: str, shared: bool) -> str | None:
    if not value:
        return None
    return value if shared else f"{source}:{value}"


def build_features(mentions: pa.Table, *, shared_identifiers: bool = False) -> pa.Table:
    """Standardised features of raw mentions (``MENTION_SCHEMA``); nameless mentions dropped.

    An identifier is kept as it is when ``shared_identifiers`` (one id across sources), else
    prefixed with its source (a customer number means nothing in another service).
    """
    batches = mentions.to_batches(BATCH_ROWS)
    if mentions.num_rows >= PARALLEL_ABOVE and (os.cpu_count() or 1) > 1:
        parts = _in_parallel(batches, shared_identifiers)
    else:
        standardisers = _Standardisers(shared_identifiers)
        parts = [standardisers.batch(batch) for batch in batches]
    return pa.concat_tables(parts) if parts else FEATURE_SCHEMA.empty_table()


BATCH_ROWS = 200_000  # rows turned into Python objects at a time (memory stays flat)
PARALLEL_ABOVE = 400_000  # below, starting processes costs more than it saves


def _in_parallel(batches: list[pa.RecordBatch], shared_identifiers: bool) -> list[pa.Table]:
    """Standardise batches on every core (forked processes, each with its own caches)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=os.cpu_count(), mp_context=context) as pool:
        return list(pool.map(_standardise_batch, batches, [shared_identifiers] * len(batches)))


_WORKER: dict[bool, _Standardisers] = {}


def _standardise_batch(batch: pa.RecordBatch, shared_identifiers: bool) -> pa.Table:
    standardisers = _WORKER.setdefault(shared_identifiers, _Standardisers(shared_identifiers))
    return standardisers.batch(batch)


class _Standardisers:
    """The standardisers with their caches, shared by every batch of one build."""

    def __init__(self, shared_identifiers: bool) -> None:
        self.shared = shared_identifiers
        self.name_of = cache(_name)
        self.date_of = cache(_date)
        self.address_of = cache(_address)
        self.phone_of = cache(standardise_phone)
        self.email_of = cache(standardise_email)
        self.sex_of = cache(standardise_sex)

    def batch(self, batch: pa.RecordBatch) -> pa.Table:
        cols = {c: batch.column(c).to_pylist() for c in batch.schema.names}
        out: dict[str, list[Any]] = {c: [] for c in FEATURE_COLUMNS}
        for i in range(batch.num_rows):
            row = self.row(cols, i)
            if row is not None:
                for key in FEATURE_COLUMNS:
                    out[key].append(row[key])
        return pa.table(out, schema=FEATURE_SCHEMA)

    def row(self, cols: dict[str, list[Any]], i: int) -> dict[str, Any] | None:
        name = self.name_of(
            (
                _blank(cols["full_name"][i]),
                _blank(cols["family_name"][i]),
                _blank(cols["given_name"][i]),
                _blank(cols["birth_name"][i]),
            )
        )
        if name is None:
            return None
        dob, year, month, day = self.date_of(_blank(cols["birth_date"][i]))
        address = self.address_of(
            tuple(
                _blank(cols[r][i])
                for r in ("address", "street_number", "street_name", "postcode", "commune")
            )
        )
        ident = _blank(cols["identifier"][i])
        row = {
            "unique_id": cols["mention_id"][i],
            "source": cols["source"][i],
            "sex": self.sex_of(_blank(cols["sex"][i])) or name["sex_hint"],
            "dob": dob,
            "dob_y": year,
            "dob_m": month,
            "dob_d": day,
            "phone": self.phone_of(_blank(cols["phone"][i])),
            "email": self.email_of(_blank(cols["email"][i])),
            "ident": _identifier(ident, cols["source"][i], self.shared),
            **address,
        }
        for key in ("fn", "gn", "gn1", "gk", "bn", "fullname"):
            row[key] = name[key]
        return row
