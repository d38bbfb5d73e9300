"""Benchmark: time and peak memory of ``territoria sandbox generate``.

    python benchmarks/sandbox_generate.py            # 1,500,000 inhabitants (target: 300 s)
    python benchmarks/sandbox_generate.py --quick    # 50,000 inhabitants

The generation runs in a child process; peak memory is the largest resident set of that
process and of the workers it forks (``RUSAGE_CHILDREN``). The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_SECONDS = 300.0
_CHILD = """
import json, resource, sys
from pathlib import Path
from territoria.sandbox import generate
manifest = generate(int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]), workers=int(sys.argv[4]))
own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"self_kb": own, "workers_kb": workers, "files": manifest.data["files"]}))
"""


def run(population: int, seed: int, workers: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="territoria-bench-") as folder:
        started = time.perf_counter()
        completed = subprocess.run(
            [sys.executable, "-c", _CHILD, str(population), str(seed), folder, str(workers)],
            check=True,
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - started
        report = json.loads(completed.stdout.strip().splitlines()[-1])
        sizes = {p.name: p.stat().st_size for p in Path(folder).iterdir() if p.is_file()}
    peak_kb = max(report["self_kb"], report["workers_kb"])
    for name, info in sorted(report["files"].items()):
        size = sizes.get(name, 0) / 1e6
        print(f"  {name:28s} {info['rows']:>12,d} lignes {size:10.1f} Mo", file=sys.stderr)
    print(
        f"main process peak {report['self_kb'] / 1024:.0f} MB, largest worker peak "
        f"{report['workers_kb'] / 1024:.0f} MB",
        file=sys.stderr,
    )
    return {
        "benchmark": "sandbox_generate",
        "value": round(seconds, 2),
        "unit": "s",
        "target": TARGET_SECONDS,
        "ratio": round(seconds / TARGET_SECONDS, 3),
        "population": population,
        "peak_memory_mb": round(peak_kb / 1024, 1),
        "workers": workers,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="50 000 habitants au lieu de 1,5 million"
    )
    parser.add_argument("--population", type=int, default=None)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    population = args.population or (50_000 if args.quick else 1_500_000)
    print(json.dumps(run(population, args.seed, args.workers)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
