"""Verifying parts of the audit chain at once, in forked worker processes.

Why a module of its own: process management (forking, pipes, a worker that dies or is
interrupted) is a concern apart from what is checked. Once records store their previous hash,
parts of the chain can be checked independently, each from the stored hash before it; a worker
sends the size of each page it checked (for progress) then its outcome, or ``None`` at the first
problem or failure. The caller then checks that part again itself (``ledger_check.py``), so
problems always come out exactly as in one pass. Only the embedded store offers worker sessions.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from typing import Any

from territoria.backends import marks
from territoria.governance.ledger_check import (
    Chain,
    Outcome,
    Part,
    Problems,
    Progress,
    check_part,
    hex_bytes,
)
from territoria.governance.ledger_tables import GENESIS, Dialect, Query

__all__ = [
    "PartVerifier",
    "plan_parts",
    "run_parts",
    "sound_prefix",
    "verify_part",
    "worker_count",
]

# What a worker process runs: ``verify_part``, or a stand-in.
PartVerifier = Callable[[Callable[[], Query], Dialect, Part, Connection, int], None]


def worker_count(total: int, parallel_min: int, workers: int | None) -> int:
    """Processes that verify ``total`` records: one (this one) below ``parallel_min``; else
    ``workers``, or one per CPU when ``None``.

    Workers are forked: only on Linux, and only from a single-threaded process (a fork copies
    the locks other threads may hold).
    """
    if total < parallel_min or not sys.platform.startswith("linux"):
        return 1
    if threading.active_count() > 1:
        return 1
    return max(1, min(workers or len(os.sched_getaffinity(0)), total))


def plan_parts(query: Query, total: int, workers: int) -> list[Part]:
    """``workers`` parts of equal size, each starting from the stored hash before it.

    Empty when a boundary record is missing or its hash unreadable: one pass then says why.
    """
    cuts = [total * i // workers for i in range(1, workers)]
    in_list = marks(cuts)
    hashes: dict[Any, Any] = dict(
        query(f"SELECT seq, hash FROM audit_ledger WHERE seq IN ({in_list})", cuts)
    )
    starts = [Chain(1, GENESIS, bytes(32))]
    for cut in cuts:
        link = hex_bytes(hashes.get(cut))
        if not link:
            return []
        starts.append(Chain(cut + 1, str(hashes[cut]), link))
    return [
        Part(after, upto, start)
        for after, upto, start in zip([None, *cuts], [*cuts, total], starts, strict=True)
    ]


def verify_part(
    open_reader: Callable[[], Query],
    dialect: Dialect,
    part: Part,
    out: Connection,
    page_rows: int,
) -> None:
    """In a worker process: check one part; send each page's size, then the outcome.

    The outcome is ``None`` at the first problem (or any failure): the parent then checks that
    part again itself, so problems are always reported exactly and in order.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # an interrupt is the parent's to handle
    outcome: Outcome | None = None
    try:
        problems = Problems(limit=0)
        found = check_part(open_reader(), dialect, part, problems, out.send, page_rows)
        outcome = None if problems.items else found
    except Exception:  # whatever failed, the parent checks the part itself
        outcome = None
    out.send(outcome)
    out.close()


def run_parts(
    open_reader: Callable[[], Query],
    dialect: Dialect,
    parts: list[Part],
    progress: Progress,
    page_rows: int,
    verify: PartVerifier,
) -> list[Outcome | None]:
    """Check each part in its own forked process (running ``verify``); their outcomes, in order."""
    context = multiprocessing.get_context("fork")
    waiting: dict[Any, int] = {}  # the read end of each worker's pipe: its part
    outcomes: dict[int, Outcome | None] = {}
    processes, readers = [], []
    try:
        for index, part in enumerate(parts):
            reader, writer = context.Pipe(duplex=False)
            readers.append(reader)
            args = (open_reader, dialect, part, writer, page_rows)
            processes.append(context.Process(target=verify, args=args, daemon=True))
            processes[-1].start()
            writer.close()
            waiting[reader] = index
        while waiting:
            for ready in wait(list(waiting)):
                message = _receive(ready)
                if isinstance(message, int):
                    progress.add(message)
                    continue
                outcomes[waiting.pop(ready)] = message
    finally:
        for process in processes:
            if len(outcomes) < len(parts):
                process.terminate()
            process.join()
        for reader in readers:
            reader.close()
    return [outcomes.get(index) for index in range(len(parts))]


def _receive(reader: Any) -> Any:
    """A worker's next message; ``None`` (its part unverified) if it died without one."""
    try:
        return reader.recv()
    except (EOFError, OSError):
        return None


def sound_prefix(parts: list[Part], outcomes: list[Outcome | None]) -> tuple[int, Part]:
    """Records of the leading parts found sound and linked, and what is left to check after them.

    A part counts only if it read up to its end and ends on the hash the next one started from.
    """
    read, rest = 0, Part(parts[0].after, None, parts[0].start)
    for index, (part, outcome) in enumerate(zip(parts, outcomes, strict=True)):
        following = parts[index + 1].start.last if index + 1 < len(parts) else None
        if outcome is None or part.upto is None or outcome.chain.expected != part.upto + 1:
            break
        if following is not None and outcome.chain.last != following:
            break
        read, rest = read + outcome.read, Part(part.upto, None, outcome.chain)
    return read, rest
