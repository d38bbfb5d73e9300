"""The embedded store serves readers while batch commands write (web server + CLI together)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from helpers import GOOD_ROWS, add_contract, write_csv
from territoria.backends import open_store
from territoria.core.config import init_workspace
from territoria.ingest import ContractCatalog, ingest_file


def test_readers_never_wait_for_or_see_a_half_load(tmp_path: Path) -> None:
    config = init_workspace(tmp_path / "ws")
    add_contract(config)
    contract = ContractCatalog.load(*config.contract_paths).get("test_people")
    reader = open_store(config)
    ingest_file(reader, contract, write_csv(tmp_path / "first.csv", GOOD_ROWS))
    rows = [[f"P{i}", "Nom", "1970", "01/02/2024", "1", "actif"] for i in range(200_000)]
    big = write_csv(tmp_path / "big.csv", rows)
    writers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "territoria",
                "ingest",
                "test_people",
                str(path),
                "--workspace",
                str(config.root),
                "--json",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for path in (
            big,
            write_csv(tmp_path / "second.csv", [["Z1", "Nom", "", "01/01/2024", "1", "actif"]]),
        )
    ]
    seen: set[int] = set()
    slowest = 0.0
    try:
        while any(w.poll() is None for w in writers):
            t = time.perf_counter()
            loads = [r for r in reader.loads("test_people") if r.status == "loaded"]
            count = reader.raw_table("test_people", ["person_id"]).num_rows
            slowest = max(slowest, time.perf_counter() - t)
            assert count == sum(r.rows_loaded for r in loads)
            seen.add(count)
    finally:
        for w in writers:
            w.wait(timeout=120)
    assert all(w.returncode == 0 for w in writers), [w.stderr.read() for w in writers if w.stderr]
    final = reader.raw_table("test_people", ["person_id"]).num_rows
    assert final == 3 + 200_000 + 1
    assert seen <= {3, 4, 200_003, 200_004}
    reader.close()
