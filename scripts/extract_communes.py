"""Regenerate the sandbox's commune list from the npm package ``@etalab/decoupage-administratif``.

Not run at runtime: the generator reads the small CSV this script writes, shipped in the package.

Usage (after ``npm install @etalab/decoupage-administratif@6.0.0`` in some folder)::

    python scripts/extract_communes.py /path/to/node_modules/@etalab/decoupage-administratif

It keeps the communes of the Métropole de Lyon (EPCI 200046977); Lyon itself is replaced by
its nine arrondissements municipaux (69381-69389), which have their own postcodes.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

EPCI_CODE = "200046977"
LYON_CODE = "69123"
OUT = Path(__file__).resolve().parents[1] / "src" / "territoria" / "sandbox" / "data"


def extract(package_dir: Path) -> list[dict[str, str]]:
    """Rows ``code_insee, nom, population, codes_postaux`` sorted by INSEE code."""
    data = package_dir / "data"
    epcis = json.loads((data / "epci.json").read_text(encoding="utf-8"))
    members = {m["code"] for e in epcis if e["code"] == EPCI_CODE for m in e["membres"]}
    communes = json.loads((data / "communes.json").read_text(encoding="utf-8"))
    rows: list[dict[str, str]] = []
    for commune in communes:
        kind = commune.get("type")
        is_member = kind == "commune-actuelle" and commune["code"] in members
        is_lyon_arrondissement = (
            kind == "arrondissement-municipal" and commune.get("commune") == LYON_CODE
        )
        if (is_member and commune["code"] != LYON_CODE) or is_lyon_arrondissement:
            rows.append(
                {
                    "code_insee": commune["code"],
                    "nom": commune["nom"],
                    "population": str(commune.get("population", 0)),
                    "codes_postaux": "|".join(sorted(commune.get("codesPostaux", []))),
                }
            )
    return sorted(rows, key=lambda r: r["code_insee"])


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__)
        return 2
    rows = extract(Path(argv[1]))
    OUT.mkdir(parents=True, exist_ok=True)
    with (OUT / "communes.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(
            handle, fieldnames=["code_insee", "nom", "population", "codes_postaux"]
        )
        writer.writeheader()
        writer.writerows(rows)
    print(f"{len(rows)} communes écrites dans {OUT / 'communes.csv'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
