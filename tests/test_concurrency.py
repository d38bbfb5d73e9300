"""The embedded store serves readers while batch commands write (web server + CLI together)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from helpers import GOOD_ROWS, add_contract, ingest_command, write_csv
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
            ingest_command(config, path),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for path in (
            big,
            write_csv(tmp_path / "second.csv", [["Z1", "Nom", "", "01/01/2024", "1", "actif"]]),
        )
    ]
    seen: set[int] = set()
    try:
        while any(w.poll() is None for w in writers):
            seen.add(reader.raw_table("test_people", ["person_id"]).num_rows)
            reader.loads("test_people")
    finally:
        for w in writers:
            w.wait(timeout=120)
    assert [w.returncode for w in writers] == [0, 0]
    sizes = [r.rows_loaded for r in reader.loads("test_people") if r.status == "loaded"]
    assert sorted(sizes) == [1, 3, 200_000]
    # Every state a reader saw is a set of whole loads: the first one plus any of the others.
    assert seen <= {3, 3 + 1, 3 + 200_000, 3 + 200_000 + 1}
    assert reader.raw_table("test_people", ["person_id"]).num_rows == 200_004
    reader.close()
