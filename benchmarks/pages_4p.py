"""Server-side time of the 4P pages on a sandbox built by ``territoria demo``.

Builds the sandbox territory end to end (``territoria demo --no-serve``: generation, loads,
resident index, governance) in a temporary folder, then asks the application in-process
(FastAPI's TestClient: no network, one request at a time) for the waste service's billing run
(first: the governed read and the billing; then the kept run), a payer's bill, the tariff
simulator, the CCAS non-take-up worklist (first: the OpenFisca screening; then kept), and a
resident's « Mes déchets » next to their « Mes services » (the reference page, same run).

    python benchmarks/pages_4p.py            # 10,000 inhabitants
    python benchmarks/pages_4p.py --quick    # 2,000 inhabitants

The last line is the JSON summary: value = « Mes déchets » median (ms), target = the web
pages' 100 ms, ratio = « Mes déchets » / « Mes services » (medians, same run).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
from territoria.interfaces.web.app import create_app
from web_sessions import log_in

TARGET_MS = 100.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 000 habitants au lieu de 10 000")
    parser.add_argument("--repeat", type=int, default=7, help="mesures par page gardée")
    args = parser.parse_args()
    population = 2000 if args.quick else 10000
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "demo"
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "territoria", "demo", str(root), "--no-serve",
             "--population", str(population)],
            check=True, capture_output=True,
        )  # fmt: skip
        print(f"bac à sable de {population} habitants : {time.perf_counter() - started:.1f} s")
        figures = measure(root, args.repeat)
    for name, value in figures.items():
        print(f"  {name} : {value:.0f} ms")
    value = figures["« Mes déchets » (médiane)"]
    reference = figures["« Mes services » (médiane)"]
    print(
        json.dumps(
            {
                "benchmark": "pages_4p",
                "value": round(value, 1),
                "unit": "ms",
                "target": TARGET_MS,
                "ratio": round(value / reference, 2),
                "population": population,
                "pages_ms": {k: round(v, 1) for k, v in figures.items()},
            },
            ensure_ascii=False,
        )
    )


def measure(root: Path, repeat: int) -> dict[str, float]:
    app = create_app(root)
    figures: dict[str, float] = {}
    with TestClient(app, follow_redirects=False) as client:
        state = app.state.web

        def once(path: str) -> float:
            start = time.perf_counter()
            response = client.get(path)
            elapsed = (time.perf_counter() - start) * 1000
            if response.status_code != 200:
                raise SystemExit(f"{path} : HTTP {response.status_code}")
            return elapsed

        def median(path: str) -> float:
            return statistics.median(once(path) for _ in range(repeat))

        log_in(client, state, "paul.dechets")
        figures["facturation 2025-S2, premier affichage"] = once("/console/dechets?periode=2025-S2")
        figures["facturation gardée, page 2 (médiane)"] = median(
            "/console/dechets?periode=2025-S2&page=2"
        )
        with state.lock:
            payer = next(
                str(p)
                for (p,) in state.gov.db.query(
                    "SELECT DISTINCT person_key FROM id_mentions WHERE source = 'waste_bins' "
                    "ORDER BY 1 LIMIT 1"
                )
            )
            domain = state.gov.policy.purposes["waste_billing"].domain
            pseudonym = state.gov.pseudonyms.pseudonym(domain, payer)
        figures["facture d'un redevable (médiane)"] = median(
            f"/console/dechets/facture?periode=2025-S2&redevable={pseudonym}"
        )
        figures["simulateur de grille"] = once("/console/dechets/simulation?periode=2025-S2")
        log_in(client, state, "claire.ccas")
        figures["non-recours 2025-11, premier affichage"] = once(
            "/console/non-recours?mois=2025-11"
        )
        figures["non-recours gardé, page 2 (médiane)"] = median(
            "/console/non-recours?mois=2025-11&page=2"
        )
        log_in(client, state, f"resident:{payer}", kind="resident")
        figures["« Mes déchets » (médiane)"] = median("/portail/dechets?periode=2025-S2")
        figures["« Mes services » (médiane)"] = median("/portail")
    return figures


if __name__ == "__main__":
    main()
