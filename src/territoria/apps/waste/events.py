"""Lift events: double reads removed, bad reads reported, each lift attributed to its payer.

The history of tags is the allocations table: each allocation binds a tag to a bin, a volume,
an address and a payer from ``start_date`` (included) to ``end_date`` (excluded; empty while
it runs). A tag swapped or lost mid-period therefore bills the right payer on each date: a
lift is attributed to the allocation of its tag valid on the lift's date. Two allocations of the
same tag that overlap are reported and the earlier one is cut at the later one's start, so a
lift is never attributed twice. Temporary suspensions cut an allocation in pieces.

A read is not billed, and is listed as an anomaly with its reason, when it is:

- ``illisible``: the tag could not be read (status ``illisible`` or no tag);
- ``puce_inconnue``: the truck reported an unknown tag, or the tag is in no allocation;
- ``puce_hors_dotation``: the tag is known but no allocation of it is valid on that date
  (lost tag still read, lift after a departure, during a suspension);
- ``doublon``: the same tag read again by the same truck (configurable) within the window
  (10 minutes by default) after the previous read; ``doublon_signale``: flagged by the truck;
- ``levee_annulee``: withdrawn after a dispute; ``horodatage_invalide``: no usable timestamp.

Everything runs as DuckDB SQL over the arrow tables: no Python loop per lift.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

import pyarrow as pa

from territoria.apps.waste.inputs import ALLOCATIONS, LIFTS, SUSPENSIONS, register
from territoria.apps.waste.sql import Connection, connect, run_script

REASONS: dict[str, str] = {
    "illisible": "puce illisible : la levée ne peut être rattachée à aucun bac",
    "puce_inconnue": "puce inconnue : aucune dotation ne porte cette puce",
    "puce_hors_dotation": "puce connue mais aucune dotation valide à cette date",
    "doublon": "double lecture de la même puce",
    "doublon_signale": "double lecture signalée par la benne",
    "levee_annulee": "levée retirée après contestation",
    "horodatage_invalide": "horodatage illisible",
    "dotations_chevauchantes": "deux dotations de la même puce se chevauchent",
    "dotation_vide": "dotation dont la fin précède ou égale le début",
    "suspension_hors_dotation": "suspension d'une dotation inconnue",
}


@dataclass(frozen=True)
class EventRules:
    """How double reads are recognised."""

    window_minutes: int = 10
    same_truck: bool = True

    def describe(self) -> str:
        who = "par la même benne " if self.same_truck else ""
        return (
            f"même puce relue {who}moins de {self.window_minutes} min après la lecture précédente"
        )


@dataclass(frozen=True)
class CleanedEvents:
    """Billable lifts (attributed to an allocation and payer) and the anomalies."""

    billable: pa.Table
    anomalies: pa.Table


@dataclass
class EventPipeline:
    """Builds ``alloc``, ``ev`` (good reads), ``dup`` (double reads), ``matched`` and ``anomalies``."""

    con: Connection
    rules: EventRules = field(default_factory=EventRules)

    def load_allocations(self, allocations: pa.Table, suspensions: pa.Table | None) -> None:
        register(self.con, "in_alloc", allocations, ALLOCATIONS)
        self.con.execute(_ANOMALIES_DDL)
        self.con.execute(
            """
            CREATE OR REPLACE TEMP TABLE alloc_raw AS
            SELECT allocation_id, bin_id, rfid_tag AS tag, volume_l, payer, start_date, end_date,
                   end_reason, housing_type, coalesce(service, 'bac') AS service
            FROM in_alloc
            """
        )
        if suspensions is not None and suspensions.num_rows:
            self._apply_suspensions(suspensions)
        run_script(self.con, _ALLOC_SQL, {})

    def _apply_suspensions(self, suspensions: pa.Table) -> None:
        """Cut suspended allocations in pieces (few rows: done in Python)."""
        register(self.con, "in_susp", suspensions, SUSPENSIONS)
        rows = self.con.execute(
            "SELECT allocation_id, start_date, end_date FROM in_susp ORDER BY 1, 2"
        ).fetchall()
        cuts: dict[str, list[tuple[date, date]]] = {}
        for allocation_id, start, end in rows:
            cuts.setdefault(str(allocation_id), []).append((start, end))
        affected: pa.Table = self.con.sql(
            "SELECT * FROM alloc_raw WHERE allocation_id IN (SELECT allocation_id FROM in_susp)"
        ).to_arrow_table()
        pieces = []
        found = set()
        for row in affected.to_pylist():
            start, end = row["start_date"], row["end_date"]
            found.add(row["allocation_id"])
            for s_start, s_end in cuts[row["allocation_id"]]:
                if s_start > start:
                    pieces.append({**row, "start_date": start, "end_date": s_start})
                start = max(start, s_end)
            if end is None or start < end:
                pieces.append({**row, "start_date": start, "end_date": end})
        for allocation_id in sorted(set(cuts) - found):
            self._anomaly("dotation", allocation_id, "suspension_hors_dotation")
        self.con.execute(
            "DELETE FROM alloc_raw WHERE allocation_id IN (SELECT allocation_id FROM in_susp)"
        )
        if pieces:
            self.con.register("susp_pieces", pa.Table.from_pylist(pieces, affected.schema))
            self.con.execute("INSERT INTO alloc_raw SELECT * FROM susp_pieces")

    def _anomaly(self, level: str, ref: str, reason: str) -> None:
        self.con.execute(
            "INSERT INTO anomalies VALUES (?, ?, NULL, NULL, ?, ?)",
            [level, ref, reason, REASONS[reason]],
        )

    def load_lifts(
        self,
        lifts: pa.Table,
        start: date,
        end: date,
        excluded: dict[str, str] | None = None,
    ) -> None:
        """Deduplicate and attribute the lifts of ``[start, end)``; report the others."""
        register(self.con, "in_lifts", lifts, LIFTS)
        self.con.register("excluded", _excluded_table(excluded or {}))
        margin = timedelta(minutes=self.rules.window_minutes)
        key = "hash(rfid_tag, truck_id)" if self.rules.same_truck else "hash(rfid_tag)"
        check = "prev_truck = truck_id" if self.rules.same_truck else "true"
        params = {
            "lo": start,
            "hi": end,
            "lo_margin": datetime.combine(start, time()) - margin,
            "minutes": self.rules.window_minutes,
        }
        run_script(self.con, _EV_SQL.format(key=key, same_truck_check=check), params)
        not_excluded = "e.lift_id NOT IN (SELECT lift_id FROM excluded)" if excluded else "true"
        run_script(self.con, _LIFTS_SQL.format(not_excluded=not_excluded), params)
        run_script(self.con, _LIFT_ANOMALIES_SQL, params)


_ANOMALIES_DDL = """
CREATE OR REPLACE TEMP TABLE anomalies (
    level VARCHAR, ref VARCHAR, payer VARCHAR, occurred_at TIMESTAMP, reason VARCHAR, detail VARCHAR
)
"""

_ALLOC_SQL = """
CREATE OR REPLACE TEMP TABLE alloc_seq AS
SELECT *,
       lead(start_date) OVER w AS next_start,
       lead(allocation_id) OVER w AS next_id
FROM alloc_raw
WHERE end_date IS NULL OR end_date > start_date
WINDOW w AS (PARTITION BY tag ORDER BY start_date, allocation_id);

INSERT INTO anomalies
SELECT 'dotation', allocation_id, payer, NULL, 'dotation_vide',
       'dotation vide : fin le ' || strftime(end_date, '%d/%m/%Y') || ', début le '
       || strftime(start_date, '%d/%m/%Y')
FROM alloc_raw WHERE end_date IS NOT NULL AND end_date <= start_date;

INSERT INTO anomalies
SELECT 'dotation', allocation_id, payer, NULL, 'dotations_chevauchantes',
       'la dotation ' || allocation_id || ' de la puce ' || tag || ' chevauche la dotation '
       || next_id || ' (début le ' || strftime(next_start, '%d/%m/%Y')
       || ') : elle est arrêtée à cette date'
FROM alloc_seq
WHERE next_start IS NOT NULL AND (end_date IS NULL OR end_date > next_start);

CREATE OR REPLACE TEMP TABLE alloc AS
SELECT *, CAST(dense_rank() OVER (ORDER BY contract) AS INTEGER) AS cid
FROM (
    SELECT allocation_id, bin_id, tag, volume_l, payer, start_date,
           CASE WHEN next_start IS NOT NULL AND (end_date IS NULL OR end_date > next_start)
                THEN next_start ELSE end_date END AS end_date,
           end_reason, housing_type, service,
           payer || '|' || service || '|' || bin_id || '|' || volume_l AS contract
    FROM alloc_seq
    WHERE next_start IS NULL OR start_date < next_start
);

CREATE OR REPLACE TEMP TABLE contracts AS
SELECT DISTINCT cid, contract, payer, service, bin_id, volume_l FROM alloc;
"""

# Double reads. The key is a 64-bit hash of the tag (and truck), so that the work is on
# integers; the previous read's tag and truck are compared too, so a hash collision can never
# make two different bins' reads a double read. Only reads that share a bucket of twice the
# window with another read of the same key (buckets at two offsets, one window apart) can be
# double reads: any two reads less than a window apart fall in the same bucket of at least one
# of the two grids. The window function (the exact rule: gap to the previous read of the key)
# then runs on those few candidates only; a candidate's previous read, when it is less than a
# window before, is itself a candidate.
_EV_SQL = """
CREATE OR REPLACE TEMP TABLE ev AS
SELECT lift_id, truck_id, lifted_at AS ts, rfid_tag AS tag, weight_kg AS w, {key} AS k,
       epoch_ms(lifted_at) // 1000 AS s
FROM in_lifts
WHERE read_status = 'ok' AND rfid_tag IS NOT NULL AND rfid_tag <> ''
  AND lifted_at >= $lo_margin AND lifted_at < $hi;

CREATE OR REPLACE TEMP TABLE hot AS
SELECT k, s // (120 * $minutes) AS b, 0 AS g
FROM ev GROUP BY k, s // (120 * $minutes) HAVING count(*) > 1
UNION ALL
SELECT k, (s + 60 * $minutes) // (120 * $minutes), 1
FROM ev GROUP BY k, (s + 60 * $minutes) // (120 * $minutes) HAVING count(*) > 1;

CREATE OR REPLACE TEMP TABLE dupw AS
SELECT rid, lift_id, ts, tag, prev_id, gap
FROM (
    SELECT rid, lift_id, ts, tag, truck_id,
           ts - lag(ts) OVER w AS gap,
           lag(lift_id) OVER w AS prev_id,
           lag(tag) OVER w AS prev_tag,
           lag(truck_id) OVER w AS prev_truck
    FROM (
        SELECT e.rowid AS rid, e.lift_id, e.ts, e.tag, e.truck_id, e.k
        FROM ev e
        WHERE (e.k, e.s // (120 * $minutes)) IN (SELECT (k, b) FROM hot WHERE g = 0)
           OR (e.k, (e.s + 60 * $minutes) // (120 * $minutes))
              IN (SELECT (k, b) FROM hot WHERE g = 1)
    )
    WINDOW w AS (PARTITION BY k ORDER BY ts, lift_id)
)
WHERE ts >= $lo AND gap < to_minutes($minutes) AND prev_tag = tag
  AND ({same_truck_check});
"""

_ON_DATE = """
  ON a.tag = e.tag AND a.start_date <= CAST(e.ts AS DATE)
 AND (a.end_date IS NULL OR CAST(e.ts AS DATE) < a.end_date)
"""

_LIFTS_SQL = (
    """
CREATE OR REPLACE TEMP TABLE matched AS
SELECT e.rowid AS rid, e.lift_id, e.ts, e.w, a.cid
FROM ev e
LEFT JOIN alloc a"""
    + _ON_DATE
    + """
WHERE e.ts >= $lo
  AND e.rowid NOT IN (SELECT rid FROM dupw)
  AND {not_excluded};

CREATE OR REPLACE TEMP VIEW lifts AS
SELECT m.lift_id, e.truck_id, m.ts, e.tag, m.w, m.cid, c.payer, c.contract, c.service,
       c.bin_id, c.volume_l
FROM matched m JOIN contracts c USING (cid) JOIN ev e ON e.rowid = m.rid;

CREATE OR REPLACE TEMP TABLE dup AS
SELECT e.lift_id, e.ts, e.tag, e.prev_id, e.gap, a.payer
FROM dupw e
LEFT JOIN alloc a"""
    + _ON_DATE
    + """;
"""
)

_LIFT_ANOMALIES_SQL = (
    """
INSERT INTO anomalies
SELECT 'levee', lift_id, NULL, lifted_at,
       CASE WHEN lifted_at IS NULL THEN 'horodatage_invalide'
            WHEN read_status = 'inconnue' THEN 'puce_inconnue'
            WHEN read_status = 'doublon' THEN 'doublon_signale'
            ELSE 'illisible' END,
       CASE WHEN lifted_at IS NULL THEN 'horodatage illisible'
            WHEN read_status = 'doublon' THEN 'double lecture signalée par la benne ' || truck_id
            WHEN read_status = 'inconnue' THEN 'puce ' || coalesce(rfid_tag, '?')
                 || ' inconnue de la benne ' || truck_id
            ELSE 'puce illisible (benne ' || truck_id || ')' END
FROM in_lifts
WHERE ((lifted_at IS NULL AND $lo < $hi) OR (lifted_at >= $lo AND lifted_at < $hi))
  AND (lifted_at IS NULL OR read_status IS DISTINCT FROM 'ok' OR rfid_tag IS NULL
       OR rfid_tag = '');

INSERT INTO anomalies
SELECT 'levee', lift_id, payer, ts, 'doublon',
       'même puce relue ' || CAST(CAST(epoch(gap) AS BIGINT) AS VARCHAR)
       || ' s après la levée ' || prev_id || ' : non facturée'
FROM dup;

INSERT INTO anomalies
SELECT 'levee', x.lift_id, a.payer, e.ts, 'levee_annulee', x.reason
FROM excluded x JOIN ev e USING (lift_id)
LEFT JOIN alloc a"""
    + _ON_DATE
    + """
WHERE e.ts >= $lo;

INSERT INTO anomalies
SELECT 'levee', e.lift_id, NULL, e.ts,
       CASE WHEN k.tag IS NOT NULL THEN 'puce_hors_dotation' ELSE 'puce_inconnue' END,
       CASE WHEN k.tag IS NOT NULL
            THEN 'puce ' || e.tag || ' sans dotation valide le ' || strftime(e.ts, '%d/%m/%Y')
            ELSE 'puce ' || e.tag || ' absente du registre des dotations' END
FROM (SELECT rid FROM matched WHERE cid IS NULL) m
JOIN ev e ON e.rowid = m.rid
LEFT JOIN (SELECT DISTINCT tag FROM alloc) k ON k.tag = e.tag;
"""
)


def _excluded_table(excluded: dict[str, str]) -> pa.Table:
    return pa.table(
        {
            "lift_id": pa.array(list(excluded), pa.string()),
            "reason": pa.array(list(excluded.values()), pa.string()),
        }
    )


def clean_events(
    allocations: pa.Table,
    lifts: pa.Table,
    start: date,
    end: date,
    *,
    rules: EventRules | None = None,
    suspensions: pa.Table | None = None,
    excluded: dict[str, str] | None = None,
) -> CleanedEvents:
    """The lifts of ``[start, end)`` attributed to their allocation, and the anomalies."""
    con = connect()
    try:
        pipeline = EventPipeline(con, rules or EventRules())
        pipeline.load_allocations(allocations, suspensions)
        pipeline.load_lifts(lifts, start, end, excluded)
        billable = con.sql(
            "SELECT lift_id, truck_id, ts AS lifted_at, tag AS rfid_tag, w AS weight_kg, "
            "bin_id, volume_l, service, payer FROM lifts ORDER BY ts, lift_id"
        ).to_arrow_table()
        anomalies = con.sql(
            "SELECT * FROM anomalies ORDER BY level, occurred_at NULLS FIRST, ref"
        ).to_arrow_table()
        return CleanedEvents(billable, anomalies)
    finally:
        con.close()
