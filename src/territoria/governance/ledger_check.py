"""Checking a stretch of the audit chain page by page: the verifier's hot path and diagnosis.

Why a module of its own: the same code checks a part of the chain in the caller's process and in
each worker process (``ledger_workers.py``), and it is where speed and exactness meet. A page of
records whose canonical texts the engine has built is checked in bulk (one SHA-256 per record,
every comparison done on whole tuples or joined strings); only a page where something is wrong is
checked again record by record, so each problem is named exactly, at its record, in order.
The person index (``audit_subjects``) is compared with the chained ``persons`` column the same way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

from territoria.backends.tables import Row
from territoria.governance.ledger_tables import PATTERN, Dialect, Query

__all__ = [
    "MAX_PROBLEMS",
    "Chain",
    "LedgerProblem",
    "Outcome",
    "Part",
    "Problems",
    "Progress",
    "check_part",
    "hex_bytes",
    "orphan",
    "seq_order",
    "seq_range",
    "short",
]

MAX_PROBLEMS = 100


@dataclass(frozen=True)
class LedgerProblem:
    """One thing the verifier found wrong, at record ``seq`` (French message)."""

    seq: int | None
    code: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Problems:
    """Problems found so far; past ``limit``, one last problem says the list stops."""

    def __init__(self, limit: int = MAX_PROBLEMS) -> None:
        self.items: list[LedgerProblem] = []
        self.limit = limit

    @property
    def full(self) -> bool:
        return len(self.items) > self.limit

    def add(self, seq: int | None, code: str, message: str) -> None:
        if len(self.items) < self.limit:
            self.items.append(LedgerProblem(seq, code, message))
        elif len(self.items) == self.limit:
            stop = f"plus de {MAX_PROBLEMS} anomalies : vérification arrêtée"
            self.items.append(LedgerProblem(None, "too_many_problems", stop))


class Progress:
    """Calls ``callback(done, total)`` as pages are checked, never going backwards."""

    def __init__(self, callback: Callable[[int, int], None] | None, total: int) -> None:
        self.callback, self.total, self.done, self.shown = callback, total, 0, 0

    def add(self, rows: int) -> None:
        self.done += rows
        if self.callback is not None and self.done > self.shown:
            self.shown = self.done
            self.callback(min(self.done, self.total), max(self.done, self.total))

    def restart(self, done: int) -> None:
        """Count from ``done`` again (after parallel parts, some checked again here)."""
        self.done = done


class Chain(NamedTuple):
    """Where the verifier stands: the next seq, the last stored hash and its bytes."""

    expected: int
    last: str
    link: bytes


def short(hash_: object) -> str:
    return f"{str(hash_)[:12]}…"


def hex_bytes(value: object) -> bytes:
    """The bytes of a stored hash; ``b""`` (never a valid link) when it is not one."""
    try:
        return bytes.fromhex(value) if isinstance(value, str) and len(value) == 64 else b""
    except ValueError:
        return b""


def _sound_page(columns: list[tuple[Any, ...]], chain: Chain) -> Chain | None:
    """The chain after a page whose records are all intact and linked; ``None`` otherwise.

    The verifier's hot path: per record only one SHA-256, every comparison done in bulk
    (element-wise on tuples, or on joined hashes of a checked fixed length).
    """
    seqs, canons, prevs, hashes = columns[:4]
    end = chain.expected + len(seqs)
    try:
        if (
            seqs != tuple(range(chain.expected, end))
            or prevs[0] != chain.last
            or prevs[1:] != hashes[:-1]
            or set(map(len, hashes)) != {64}
        ):
            return None
        sha256, digest, digests = hashlib.sha256, chain.link, list[bytes]()
        append = digests.append
        for canon in canons:
            digest = sha256(digest + canon).digest()
            append(digest)
        if b"".join(digests).hex() != "".join(hashes):
            return None
    except TypeError:  # a value of the wrong type stored in a column
        return None
    return Chain(end, hashes[-1], digest)


def _diagnose(row: Row, chain: Chain, problems: Problems) -> Chain:
    """Say what is wrong with one record, exactly; the chain after it."""
    seq, canon, prev, stored = row[:4]
    if not isinstance(seq, int) or seq < chain.expected:
        expected = f"attendu : n°{chain.expected}"
        problems.add(
            seq if isinstance(seq, int) else None,
            "seq_out_of_order",
            f"enregistrement n°{seq} hors séquence ({expected}) : ligne ajoutée",
        )
        return chain
    if seq > chain.expected:
        gap = f"n°{chain.expected}" + (f" à {seq - 1}" if seq > chain.expected + 1 else "")
        problems.add(
            chain.expected,
            "records_missing",
            f"enregistrement(s) {gap} absent(s) : le registre passe du n°{chain.expected - 1} "
            f"au n°{seq}",
        )
    elif prev != chain.last:
        problems.add(
            seq,
            "link_broken",
            f"enregistrement n°{seq} : son lien ({short(prev)}) n'est pas l'empreinte du "
            f"n°{seq - 1} ({short(chain.last)}) : enregistrement inséré, déplacé ou remplacé",
        )
    link = hex_bytes(prev)
    content = canon if isinstance(canon, bytes) else str(canon).encode()
    if not link or hashlib.sha256(link + content).hexdigest() != stored:
        problems.add(
            seq,
            "hash_mismatch",
            f"enregistrement n°{seq} modifié : son contenu ne correspond plus à son "
            f"empreinte ({short(stored)})",
        )
    return Chain(seq + 1, str(stored), hex_bytes(stored))


def _named_keys(persons: object) -> list[str]:
    """Keys of a stored persons array (keys never contain a quote, see ``_check_entry``)."""
    text = str(persons)
    return [] if text == "[]" else text[2:-2].split('","')


def seq_order(seq: object) -> tuple[int, int, str]:
    return (0, seq, "") if isinstance(seq, int) else (1, 0, str(seq))


def orphan(seq: Any, keys: Iterable[str], problems: Problems) -> None:
    problems.add(
        seq,
        "subject_orphan",
        f"index des personnes : {', '.join(sorted(keys))} rattaché(s) à l'enregistrement "
        f"n°{seq}, qui n'existe pas",
    )


def _index_matches(
    query: Query,
    dialect: Dialect,
    page: tuple[Any, Any],
    seqs: Sequence[Any],
    persons: Sequence[Any],
) -> bool:
    """The person index of a page holds exactly the keys its records name, compared in bulk.

    The engine joins the page's index rows (in (seq, key) order) into the keys and their seqs;
    Python joins the records' persons arrays the same way. Indexed keys holding a quote are
    refused (they could mimic two keys): recorded keys never hold one (``_check_entry``), so
    each joined string then reads one way only.
    """
    where, params = seq_range(*page)
    keys, key_seqs, quotes = query(dialect.index_summary.format(where=where), params)[0]
    named = [(seq, p) for seq, p in zip(seqs, persons, strict=True) if p != "[]"]
    try:
        named_keys = '","'.join([p[2:-2] for _, p in named])
        named_seqs = "".join([f"{seq}," * (p.count('","') + 1) for seq, p in named])[:-1]
    except (TypeError, AttributeError):  # a persons value that is not text: diagnosed instead
        return False
    return not quotes and (keys or "") == named_keys and (key_seqs or "") == named_seqs


def _check_subject_page(
    seqs: Sequence[Any], persons: Sequence[Any], index_rows: list[Row], problems: Problems
) -> None:
    """Say, record by record, where the person index and the keys the records name differ."""
    named = {seq: set(_named_keys(p)) for seq, p in zip(seqs, persons, strict=True)}
    indexed: dict[Any, set[str]] = {}
    for seq, key in index_rows:
        indexed.setdefault(seq, set()).add(str(key))
    for seq in sorted(named.keys() | indexed.keys(), key=seq_order):
        keys, found = named.get(seq), indexed.get(seq, set())
        if keys is None:
            orphan(seq, found, problems)
            continue
        if found - keys:
            problems.add(
                seq,
                "subject_extra",
                f"index des personnes : l'enregistrement n°{seq} ne nomme pas "
                f"{', '.join(sorted(found - keys))}",
            )
        if keys - found:
            problems.add(
                seq,
                "subject_missing",
                f"index des personnes : {', '.join(sorted(keys - found))} manque(nt) pour "
                f"l'enregistrement n°{seq} (accès caché à la personne concernée)",
            )


class Part(NamedTuple):
    """Records ``after < seq <= upto`` (``None``: unbounded), checked from chain state ``start``."""

    after: int | None
    upto: int | None
    start: Chain


class Outcome(NamedTuple):
    """What checking a part read: records, the last seq read (``None``: none), the chain after."""

    read: int
    last_read: Any
    chain: Chain


def seq_range(after: Any, upto: Any) -> tuple[str, list[Any]]:
    """The condition ``after < seq <= upto`` (a ``None`` bound left out) and its parameters."""
    pairs = (("seq > ?", after), ("seq <= ?", upto))
    bounds = [(clause, value) for clause, value in pairs if value is not None]
    return " AND ".join(clause for clause, _ in bounds) or "1 = 1", [v for _, v in bounds]


def _index_rows(query: Query, after: Any, upto: Any) -> list[Row]:
    """(seq, person key) rows of the index for ``after < seq <= upto``."""
    where, params = seq_range(after, upto)
    return query(f"SELECT seq, person_key FROM audit_subjects WHERE {where}", params)


def _pages(
    query: Query, dialect: Dialect, after: Any, upto: Any, page_rows: int
) -> Iterator[list[Row]]:
    """Records ``after < seq <= upto``, by keyset pages of ``page_rows`` records."""
    select = f"SELECT seq, {dialect.canonical}, prev_hash, hash, persons FROM audit_ledger WHERE "
    while True:
        where, params = seq_range(after, upto)
        rows = query(f"{select}{where} ORDER BY seq LIMIT {page_rows}", [PATTERN, *params])
        if not rows:
            return
        yield rows
        if len(rows) < page_rows:
            return
        after = rows[-1][0]


def check_part(
    query: Query,
    dialect: Dialect,
    part: Part,
    problems: Problems,
    on_page: Callable[[int], None],
    page_rows: int,
) -> Outcome:
    """Check a part's chain and person index page by page (in bulk; one by one if need be)."""
    chain, read, after = part.start, 0, part.after
    for rows in _pages(query, dialect, part.after, part.upto, page_rows):
        columns = list(zip(*rows, strict=True))
        columns[1] = dialect.as_bytes(columns[1])
        sound = _sound_page(columns, chain)
        if sound is None:
            for row in rows:
                chain = _diagnose(row, chain, problems)
                if problems.full:
                    break
        else:
            chain = sound
        page = (after, rows[-1][0])
        if not _index_matches(query, dialect, page, columns[0], columns[4]):
            _check_subject_page(columns[0], columns[4], _index_rows(query, *page), problems)
        read, after = read + len(rows), rows[-1][0]
        on_page(len(rows))
        if problems.full:
            break
    return Outcome(read, after if read else None, chain)
