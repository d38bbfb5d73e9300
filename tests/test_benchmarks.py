"""The benchmark scripts keep working (tiny sizes; timing is never asserted here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parents[1] / "benchmarks"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("script", "args"),
    [
        ("ingest_lifts.py", ["--rows", "20000"]),
        ("sandbox_generate.py", ["--population", "2000"]),
        ("governed_read.py", ["--quick"]),
        ("audit_ledger.py", ["--quick"]),
        ("tariffs_screening.py", ["--quick"]),
        ("pages_4p.py", ["--quick"]),
    ],
)
def test_benchmark_ends_with_its_json_line(script: str, args: list[str]) -> None:
    out = subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    assert {"benchmark", "value", "unit", "target", "ratio"} <= set(result)
