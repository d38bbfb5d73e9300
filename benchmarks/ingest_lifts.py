"""Benchmark: ingest a lift-events CSV against DuckDB's bare ``read_csv`` into a table.

Target (issue 2): Territoria's ingestion (sniff + hash + contract validation + quarantine +
commit) runs at least half as fast as DuckDB reading the same file into a table, i.e.
``ratio = duckdb_seconds / territoria_seconds >= 0.5``. Peak memory of each is printed.

    python benchmarks/ingest_lifts.py            # 10,000,000 rows
    python benchmarks/ingest_lifts.py --quick    # 1,000,000 rows
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_CHILD_TERRITORIA = """
import sys, time
from pathlib import Path
from territoria.backends import open_store
from territoria.core.config import init_workspace
from territoria.ingest import ContractCatalog, ingest_file
ws = init_workspace(Path(sys.argv[1]))
store = open_store(ws)
contract = ContractCatalog.load().get("waste_lifts")
t = time.perf_counter()
outcome = ingest_file(store, contract, Path(sys.argv[2]))
elapsed = time.perf_counter() - t
r = outcome.record
assert r.status == "loaded", r.message
import resource
print(elapsed, r.rows_read, r.rows_loaded, r.rows_quarantined, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

_CHILD_DUCKDB = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
con.execute("SET enable_progress_bar = false")
t = time.perf_counter()
con.execute(f"CREATE TABLE lifts AS SELECT * FROM read_csv('{sys.argv[2]}')")
elapsed = time.perf_counter() - t
n = con.execute("SELECT count(*) FROM lifts").fetchone()[0]
import resource
print(elapsed, n, n, 0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def write_lifts(path: Path, rows: int, header: list[str]) -> None:
    """A lift-events file shaped like the sandbox's, with one bad timestamp every 10,000 rows.

    Written by DuckDB (fast and deterministic); it is the reference side's own writer, which
    does not favour either side of the comparison.
    """
    import duckdb

    names = ", ".join(f'"{h}"' for h in header)
    query = f"""
        SELECT printf('L%010d', i), printf('BOM-%03d', i % 40),
            CASE WHEN i % 10000 = 9999 THEN '31/02/2025 25h61' ELSE
                strftime(TIMESTAMP '2025-01-01' + to_seconds((i * 31536000) // {rows}),
                         '%Y-%m-%dT%H:%M:%S') END,
            upper(printf('%016x', hash(i % 50000) >> 1)),
            CASE WHEN i % 3 = 0 THEN NULL ELSE round(2 + (hash(i) % 5800) / 100.0, 1) END,
            CASE i % 100 WHEN 97 THEN 'illisible' WHEN 98 THEN 'inconnue'
                WHEN 99 THEN 'doublon' ELSE 'ok' END
        FROM range({rows}) t(i)
    """
    with duckdb.connect() as con:
        con.execute(
            f"COPY (SELECT * FROM ({query}) AS lifts({names})) TO '{path}' "
            "(FORMAT csv, HEADER true)"
        )


def run_child(code: str, *args: str) -> tuple[float, int, int, int, float]:
    """Run one side in a fresh process; returns (seconds, read, loaded, quarantined, peak MB)."""
    out = subprocess.run(
        [sys.executable, "-c", code, *args], check=True, capture_output=True, text=True
    ).stdout.split()
    seconds, read, loaded, quarantined = float(out[0]), int(out[1]), int(out[2]), int(out[3])
    return seconds, read, loaded, quarantined, int(out[4]) / 1024


def lift_header() -> list[str]:
    from territoria.ingest import ContractCatalog

    contract = ContractCatalog.load().get("waste_lifts")
    return [f.aliases[0] if f.aliases else f.name for f in contract.fields]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 million rows instead of 10 million")
    parser.add_argument("--rows", type=int, default=None)
    args = parser.parse_args()
    rows = args.rows or (1_000_000 if args.quick else 10_000_000)
    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    try:
        csv_path = work / "lifts.csv"
        t = time.perf_counter()
        write_lifts(csv_path, rows, lift_header())
        print(
            f"fichier : {rows:,} lignes, {csv_path.stat().st_size / 1e6:.0f} Mo ({time.perf_counter() - t:.1f} s)"
        )
        ref = run_child(_CHILD_DUCKDB, str(work / "ref.duckdb"), str(csv_path))
        ours = run_child(_CHILD_TERRITORIA, str(work / "ws"), str(csv_path))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"DuckDB read_csv → table : {ref[0]:.2f} s, {ref[1]:,} lignes (mémoire max {ref[4]:.0f} Mo)"
    )
    print(
        f"Territoria ingest       : {ours[0]:.2f} s, lues {ours[1]:,} = chargées {ours[2]:,} + "
        f"quarantaine {ours[3]:,} (mémoire max {ours[4]:.0f} Mo)"
    )
    ratio = ref[0] / ours[0]
    print(
        json.dumps(
            {
                "benchmark": "ingest_lifts",
                "value": round(ours[0], 3),
                "unit": "s",
                "target": "ratio >= 0.5",
                "ratio": round(ratio, 3),
                "rows": rows,
                "reference_s": round(ref[0], 3),
                "peak_memory_mb": round(ours[4]),
                "reference_peak_memory_mb": round(ref[4]),
            }
        )
    )


if __name__ == "__main__":
    main()
