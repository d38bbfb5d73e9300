"""The linkage benchmarks keep working (timing and accuracy are never asserted here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parents[1] / "benchmarks"


@pytest.mark.slow
def test_link_febrl4_ends_with_its_json_line() -> None:
    out = subprocess.run(
        [sys.executable, str(BENCH / "link_febrl4.py"), "--quick", "--errors", "1"],
        capture_output=True,
        text=True,
        timeout=900,
        check=True,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    assert {"benchmark", "value", "unit", "target", "ratio"} <= set(result)
    assert result["benchmark"] == "link_febrl4"
    assert 0.0 <= result["value"] <= 1.0
