"""A file far larger than the memory given to the engine loads with bounded memory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import HEADER, add_contract
from territoria.core.config import init_workspace

# Peak memory of the child itself: VmHWM belongs to the address space created by exec, whereas
# ru_maxrss keeps the high-water mark of the forked parent (pytest, large after other tests).
CHILD = """
import sys
from pathlib import Path
from territoria.backends import open_store
from territoria.core.config import load_workspace
from territoria.ingest import ContractCatalog, ingest_file
config = load_workspace(Path(sys.argv[1]))
contract = ContractCatalog.load(*config.contract_paths).get("test_people")
outcome = ingest_file(open_store(config), contract, Path(sys.argv[2]))
hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:")).split()[1]
print(outcome.record.status, outcome.record.rows_loaded, hwm)
"""


@pytest.mark.slow
def test_file_larger_than_engine_memory(tmp_path: Path) -> None:
    config = init_workspace(tmp_path / "ws")
    add_contract(config)
    path = tmp_path / "huge.csv"
    rows = 10_000_000
    line = "P{0};Nom-de-famille-assez-long-{1};03/04/1971;01/02/2024;{1},50;actif\n"
    with path.open("w", encoding="utf-8") as out:
        out.write(";".join(HEADER) + "\n")
        for start in range(0, rows, 100_000):
            out.write("".join(line.format(i, i % 997) for i in range(start, start + 100_000)))
    size_mb = path.stat().st_size / 1e6
    env = {**os.environ, "TERRITORIA_DUCKDB_MEMORY": "256MB"}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(config.root), str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.split()
    status, loaded, peak_mb = out[0], int(out[1]), int(out[2]) / 1024
    assert (status, loaded) == ("loaded", rows)
    assert peak_mb < size_mb * 0.7, f"pic {peak_mb:.0f} Mo pour un fichier de {size_mb:.0f} Mo"
