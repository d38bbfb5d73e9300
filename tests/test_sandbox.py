"""The sandbox generator: determinism, truth, noise, encodings and contract conformance."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from territoria.core.contract import normalise_header
from territoria.ingest.catalog import ContractCatalog
from territoria.interfaces.cli.sandbox import app
from territoria.sandbox import SOURCES, Manifest, Options, generate

FAST = Options(traffic_loops=3, traffic_weeks=1, hourly_days=3)
PERSON_SOURCES = (
    "water_subscribers", "school_enrolments", "ccas_aid", "library_members",
    "transport_passes", "waste_bins",
)  # fmt: skip


@pytest.fixture(scope="module")
def territory(tmp_path_factory: pytest.TempPathFactory) -> Manifest:
    return generate(1500, 7, tmp_path_factory.mktemp("sandbox"), options=FAST)


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _csv(path: Path, encoding: str = "utf-8", delimiter: str = ",") -> list[dict[str, str]]:
    with path.open(encoding=encoding, newline="") as handle:
        return list(csv.DictReader(handle, delimiter=delimiter))


def _headers(manifest: Manifest, source: str) -> list[str]:
    path = manifest.file(source)
    if path.suffix == ".csv":
        encoding = "cp1252" if source == "ccas_aid" else "utf-8"
        with path.open(encoding=encoding) as handle:
            first = handle.readline().strip()
        return next(csv.reader(io.StringIO(first), delimiter=";" if ";" in first else ","))
    if path.suffix == ".ndjson":
        with path.open(encoding="utf-8") as handle:
            return list(json.loads(handle.readline()))
    if path.suffix == ".json":
        return list(json.loads(path.read_text(encoding="utf-8"))[0])
    if path.suffix == ".xlsx":
        import python_calamine

        book = python_calamine.CalamineWorkbook.from_path(str(path))
        return [str(c) for c in book.get_sheet_by_index(0).to_python()[0]]
    import pyarrow.parquet as pq

    return list(pq.read_schema(path).names)


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    generate(400, 3, tmp_path / "a", options=FAST)
    generate(400, 3, tmp_path / "b", options=FAST)
    generate(400, 4, tmp_path / "c", options=FAST)
    a, b, c = (_digests(tmp_path / n) for n in "abc")
    assert a == b
    assert a["water_subscribers.csv"] != c["water_subscribers.csv"]
    assert a["truth/persons.csv"] != c["truth/persons.csv"]


def test_manifest_lists_existing_files(territory: Manifest) -> None:
    data = json.loads(territory.path.read_text(encoding="utf-8"))
    assert data["generator"] == "territoria-sandbox" and data["version"] == 1
    assert data["seed"] == 7 and data["population"] == 1500 and data["reference_year"] == 2025
    assert set(data["sources"]) == set(SOURCES)
    for files in data["sources"].values():
        for name in files:
            path = territory.path.parent / name
            assert path.is_file()
            assert data["files"][name]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
            assert data["files"][name]["rows"] > 0
    assert data["deliberate_invalid_rows"]["waste_lifts"] == 5
    assert data["deliberate_invalid_rows"]["water_readings"] == 3


def test_truth_covers_every_person_record(territory: Manifest) -> None:
    folder = territory.path.parent
    truth = _csv(folder / "truth" / "records.csv")
    persons = {r["person_id"] for r in _csv(folder / "truth" / "persons.csv")}
    by_source: dict[str, set[str]] = {}
    for row in truth:
        by_source.setdefault(row["source"], set()).add(row["record_id"])
        assert not row["person_id"] or row["person_id"] in persons
    catalog = ContractCatalog.load()
    for source in PERSON_SOURCES:
        ids = _record_ids(territory, source, catalog.get(source).linkage.record_id or "")
        assert len(ids) == len(set(ids)), source
        assert set(ids) == by_source[source], source


def _record_ids(manifest: Manifest, source: str, field: str) -> list[str]:
    contract = ContractCatalog.load().get(source)
    names = {normalise_header(n) for n in contract.field(field).header_names()}
    path = manifest.file(source)
    if path.suffix == ".ndjson":
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    elif path.suffix == ".json":
        rows = json.loads(path.read_text(encoding="utf-8"))
    elif path.suffix == ".xlsx":
        import python_calamine

        sheet = python_calamine.CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0)
        table = sheet.to_python()
        rows = [dict(zip([str(h) for h in table[0]], r, strict=True)) for r in table[1:]]
    else:
        encoding = "cp1252" if source == "ccas_aid" else "utf-8"
        delimiter = "," if source.startswith("waste") else ";"
        rows = _csv(path, encoding, delimiter)
    key = next(k for k in rows[0] if normalise_header(k) in names)
    return [str(r[key]) for r in rows]


def test_every_contract_loads_and_headers_match(territory: Manifest) -> None:
    catalog = ContractCatalog.load()
    assert {c.id for c in catalog} >= set(SOURCES)
    for source in SOURCES:
        contract = catalog.get(source)
        known = {normalise_header(n) for f in contract.fields for n in f.header_names()}
        headers = [normalise_header(h) for h in _headers(territory, source)]
        assert set(headers) <= known, (source, set(headers) - known)
        required = [f for f in contract.fields if f.constraints.required]
        for spec in required:
            assert {normalise_header(n) for n in spec.header_names()} & set(headers), spec.name


def test_ccas_is_cp1252_with_accents(territory: Manifest) -> None:
    raw = territory.file("ccas_aid").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    text = raw.decode("cp1252")
    assert "é" in text and "Décision" in text


def test_noise_is_present(territory: Manifest) -> None:
    folder = territory.path.parent
    persons = {r["person_id"]: r for r in _csv(folder / "truth" / "persons.csv")}
    records = [r for r in _csv(folder / "truth" / "records.csv") if r["slot"] == "holder"]
    rows = {r["N° contrat"]: r for r in _csv(folder / "water_subscribers.csv", delimiter=";")}
    exact = noisy = 0
    for rec in records:
        if rec["source"] != "water_subscribers":
            continue
        person = persons[rec["person_id"]]
        if rows[rec["record_id"]]["Prénom"] == person["given_name"]:
            exact += 1
        else:
            noisy += 1
    assert exact > noisy > 0
    holders = Counter(r["person_id"] for r in records if r["source"] == "water_subscribers")
    assert any(n > 1 for n in holders.values())  # duplicates or moves within the service
    addresses = " ".join(r["Adresse de desserte"] for r in rows.values())
    assert any(abbr in addresses for abbr in (" av. ", " bd ", " r. ", " R ", " imp. "))


def test_twins_homonyms_married_names_and_kinds(territory: Manifest) -> None:
    folder = territory.path.parent
    persons = _csv(folder / "truth" / "persons.csv")
    assert any(p["twin_of"] for p in persons)
    assert any(p["homonym_of"] for p in persons)
    assert any(p["birth_name"] != p["family_name"] for p in persons)
    names = Counter((p["given_name"], p["family_name"]) for p in persons)
    assert any(n > 1 for n in names.values())
    kinds = {h["kind"] for h in _csv(folder / "truth" / "households.csv")}
    assert kinds == {
        "single", "elderly_alone", "couple_no_children", "couple_with_children",
        "single_parent", "shared_flat",
    }  # fmt: skip
    events = {e["kind"] for e in _csv(folder / "truth" / "events.csv")}
    assert {"birth", "death", "move"} <= events


def test_no_noise_gives_exact_names(tmp_path: Path) -> None:
    options = Options(noise=0.0, traffic_loops=1, traffic_weeks=1, hourly_days=1)
    generate(300, 1, tmp_path, options=options)
    persons = {r["person_id"]: r for r in _csv(tmp_path / "truth" / "persons.csv")}
    text = (tmp_path / "library_members.ndjson").read_text(encoding="utf-8")
    libraries = [json.loads(line) for line in text.splitlines()]
    truth = {r["record_id"]: r["person_id"] for r in _csv(tmp_path / "truth" / "records.csv")}
    for row in libraries:
        assert row["prenom"] == persons[truth[row["numero_carte"]]]["given_name"]


def test_cli_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("x")
    result = CliRunner().invoke(app, ["generate", "--out", str(tmp_path), "--population", "50"])
    assert result.exit_code == 2
    assert "n'est pas vide" in result.output
    assert "Traceback" not in result.output
