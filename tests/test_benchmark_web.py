"""The web load benchmark keeps working (quick mode; its timings are never asserted here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "web_load.py"


@pytest.mark.slow
def test_web_load_benchmark_ends_with_its_json_line() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    tail = "\n".join((done.stdout + done.stderr).splitlines()[-30:])
    assert done.returncode == 0, tail  # 1: some request failed (non-2xx); 2: it could not run
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert {"benchmark", "value", "unit", "target", "ratio"} <= set(result)
    assert result["benchmark"] == "web_load" and result["unit"] == "ms"
    assert result["errors"] == 0
    measured = set(result["p95_ms"])
    assert {"console", "api", "health"} <= measured
    assert measured | set(result["absent"]) == {"portal", "console", "api", "health"}
