"""Linking a data team's own CSV files (``link_files``, ``link_frames``, ``parse_maps``).

The data is synthetic and fictitious: invented family names (TESTMAN, FICTIVEAU...), common
given names, generated dates and streets. A water file (cp1252, ``;``, one "NOM Prénom" field,
French dates) and a school file (UTF-8, ``,``, split names, ISO dates) hold 200 generated
persons, some in both files, some twice in the water file, plus a few scripted cases: typos,
dropped accents, a married name with "née", and two siblings sharing an address.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from territoria.core.errors import TerritoriaError
from territoria.identity.files import (
    LinkSummary,
    frames_to_mentions,
    link_files,
    link_frames,
    parse_maps,
    read_csv_file,
)
from territoria.identity.mentions import MENTION_SCHEMA

WATER_HEADER = ["N° contrat", "Titulaire", "Né(e) le", "Adresse", "Code postal", "Ville"]
SCHOOL_HEADER = [
    "id",
    "nom",
    "prenom",
    "nom_naissance",
    "date_naissance",
    "adresse",
    "cp",
    "commune",
]
WATER_MAPS = [
    "eau.csv:record_id=N° contrat",
    "eau.csv:full_name=titulaire",  # case and accents do not matter
    "eau.csv:birth_date=Ne(e) le",
    "eau.csv:address=Adresse",
    "eau.csv:postcode=Code postal",
    "eau.csv:commune=Ville",
]
SCHOOL_MAPS = [
    "ecole.csv:record_id=id",
    "ecole.csv:family_name=nom",
    "ecole.csv:given_name=prenom",
    "ecole.csv:birth_name=nom_naissance",
    "ecole.csv:birth_date=date_naissance",
    "ecole.csv:address=adresse",
    "ecole.csv:postcode=cp",
    "ecole.csv:commune=commune",
]
MAPS = WATER_MAPS + SCHOOL_MAPS

_SYLLABLES = ["TEST", "FICT", "EXEMPL", "ZORV", "QUIMB", "BLAV", "DRON", "PLUV", "GRIM", "VOST"]
_ENDINGS = ["MAN", "IVEAU", "ARD", "ONNET", "ELIN", "AZIER", "OURY", "INEAU"]
_GIVEN = [
    ("Hélène", "F"), ("Amélie", "F"), ("Chloé", "F"), ("Léa", "F"), ("Manon", "F"),
    ("Camille", "F"), ("Sarah", "F"), ("Inès", "F"), ("Jade", "F"), ("Zoé", "F"),
    ("Louise", "F"), ("Alice", "F"), ("Juliette", "F"), ("Emma", "F"), ("Lucie", "F"),
    ("Thomas", "M"), ("Lucas", "M"), ("Hugo", "M"), ("Théo", "M"), ("Jérôme", "M"),
    ("Nicolas", "M"), ("Julien", "M"), ("Antoine", "M"), ("Mathis", "M"), ("Raphaël", "M"),
    ("Louis", "M"), ("Gabriel", "M"), ("Arthur", "M"), ("Maxime", "M"), ("Clément", "M"),
]  # fmt: skip
_STREETS = ["rue des Essais", "avenue du Modèle", "place de l'Exemple", "chemin Fictif",
            "boulevard des Tests", "allée des Prototypes", "impasse du Brouillon"]  # fmt: skip
_TOWNS = [("99001", "TESTVILLE"), ("99002", "FICTIFBOURG"), ("99003", "EXEMPLE-SUR-MER")]


@dataclass
class Person:
    family: str
    given: str
    born: date
    street: str
    postcode: str
    town: str
    sex: str = ""
    birth_family: str = ""  # married women: the birth name


def _people(rng: random.Random, n: int) -> list[Person]:
    families = [s + e for s in _SYLLABLES for e in _ENDINGS]
    people = []
    for _ in range(n):
        given, sex = rng.choice(_GIVEN)
        postcode, town = rng.choice(_TOWNS)
        people.append(
            Person(
                family=rng.choice(families),
                given=given,
                born=date(1945, 1, 1) + timedelta(days=rng.randrange(60 * 365)),
                street=f"{rng.randrange(1, 120)} {rng.choice(_STREETS)}",
                postcode=postcode,
                town=town,
                sex=sex,
            )
        )
    return people


def _typo(text: str, rng: random.Random) -> str:
    i = rng.randrange(1, len(text) - 2)
    return text[:i] + text[i + 1] + text[i] + text[i + 2 :]


def _unaccented(text: str) -> str:
    return text.translate(str.maketrans("éèêëàâîïôöûüçÉÈ", "eeeeaaiioouucEE"))


def _water_row(person: Person, record_id: str, rng: random.Random, vary: bool) -> list[str]:
    family, given = person.family, person.given
    if vary and rng.random() < 0.5:
        family = _typo(family, rng)
    if vary and rng.random() < 0.5:
        given = _unaccented(given)
    civility = "Mme" if person.sex == "F" else "M."
    name = f"{family} {given}" if rng.random() < 0.7 else f"{civility} {given} {family}"
    return [record_id, name, person.born.strftime("%d/%m/%Y"), person.street, person.postcode,
            person.town]  # fmt: skip


def _school_row(person: Person, record_id: str, rng: random.Random, vary: bool) -> list[str]:
    given = _unaccented(person.given) if vary and rng.random() < 0.5 else person.given
    family = person.family.capitalize() if rng.random() < 0.5 else person.family
    return [record_id, family, given, person.birth_family, person.born.isoformat(),
            person.street, person.postcode, person.town]  # fmt: skip


@dataclass
class Dataset:
    water: Path
    school: Path
    truth: dict[tuple[str, str], int]  # (file, record id) → person number


# Scripted cases (persons 0 to 4): the tests look at them by record id.
_ESSAIS = ["12 rue des Essais", "99001", "TESTVILLE"]
_FICTIF = ["4 chemin Fictif", "99002", "FICTIFBOURG"]
_PROTO = ["7 allée des Prototypes", "99003", "EXEMPLE-SUR-MER"]
_MODELE = ["55 avenue du Modèle", "99001", "TESTVILLE"]
SCRIPTED_WATER = [
    ["S0", "TETSMAN Helene", "14/05/1971", *_ESSAIS],  # 0: typo, accents dropped
    ["S1", "Mme Amélie VOSTELIN née FICTIVEAU", "02/11/1983", *_FICTIF],  # 1: "née"
    ["S2", "ZORVARD Lucas", "09/03/2008", *_PROTO],  # 2: sibling of 3
    ["S4a", "QUIMBONNET Jérôme", "03/08/1966", *_MODELE],  # 4: two contracts...
    ["S4b", "QUIMBONNET Jerome", "08/03/1966", "55 av. du Modèle", "99001", "TESTVILLE"],
]  # ... the second with the day and month swapped
SCRIPTED_SCHOOL = [
    ["E0", "Testman", "Hélène", "", "1971-05-14", *_ESSAIS],
    ["E1", "VOSTELIN", "Amelie", "FICTIVEAU", "1983-11-02", *_FICTIF],
    ["E3", "ZORVARD", "Chloé", "", "2011-09-27", *_PROTO],  # 3: same address as 2
]
SCRIPTED_TRUTH = {
    **{("eau.csv", row[0]): int(row[0][1]) for row in SCRIPTED_WATER},
    **{("ecole.csv", row[0]): int(row[0][1]) for row in SCRIPTED_SCHOOL},
}
SCRIPTED_PERSONS = 5


def write_dataset(folder: Path, n: int = 200, seed: int = 7) -> Dataset:
    rng = random.Random(seed)
    water, school = list(SCRIPTED_WATER), list(SCRIPTED_SCHOOL)
    truth = dict(SCRIPTED_TRUTH)
    for i, person in enumerate(_people(rng, n), start=SCRIPTED_PERSONS):
        in_water = rng.random() < 0.7
        in_school = not in_water or rng.random() < 0.4
        if in_water:
            water.append(_water_row(person, f"W{i}", rng, vary=False))
            truth["eau.csv", f"W{i}"] = i
            if rng.random() < 0.15:
                water.append(_water_row(person, f"W{i}b", rng, vary=True))
                truth["eau.csv", f"W{i}b"] = i
        if in_school:
            school.append(_school_row(person, f"E{i}", rng, vary=in_water))
            truth["ecole.csv", f"E{i}"] = i
    dataset = Dataset(folder / "eau.csv", folder / "ecole.csv", truth)
    _write(dataset.water, WATER_HEADER, water, ";", "cp1252")
    _write(dataset.school, SCHOOL_HEADER, school, ",", "utf-8")
    return dataset


def _write(path: Path, header: list[str], rows: list[list[str]], delimiter: str, enc: str) -> None:
    with path.open("w", encoding=enc, newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter, lineterminator="\r\n")
        writer.writerow(header)
        writer.writerows(rows)


def _clusters(out: Path) -> dict[tuple[str, str], str]:
    with out.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {(r["file"], r["record_id"]): r["cluster_id"] for r in rows}


def _pairs(groups: dict[tuple[str, str], object]) -> set[frozenset[tuple[str, str]]]:
    by: dict[object, list[tuple[str, str]]] = {}
    for key, group in groups.items():
        by.setdefault(group, []).append(key)
    return {frozenset((a, b)) for m in by.values() for a in m for b in m if a < b}


# --- linking two files ----------------------------------------------------------------------


@dataclass
class Linked:
    dataset: Dataset
    summary: LinkSummary
    clusters: dict[tuple[str, str], str]
    header: str


@pytest.fixture(scope="module")
def linked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Linked]:
    folder = tmp_path_factory.mktemp("link")
    dataset = write_dataset(folder)
    out = folder / "clusters.csv"
    messages: list[str] = []
    summary = link_files([dataset.water, dataset.school], MAPS, out, progress=messages.append)
    assert messages and all(isinstance(m, str) for m in messages)
    header = out.read_text(encoding="utf-8").splitlines()[0]
    yield Linked(dataset, summary, _clusters(out), header)


def test_output_has_one_row_per_record(linked: Linked) -> None:
    assert linked.header == "file,record_id,cluster_id"
    assert set(linked.clusters) == set(linked.dataset.truth)
    assert linked.summary.records == len(linked.dataset.truth)
    assert linked.summary.files == 2
    assert linked.summary.clusters == len(set(linked.clusters.values()))


def test_cluster_ids_numbered_by_first_appearance(linked: Linked) -> None:
    first = list(dict.fromkeys(linked.clusters.values()))  # file then row order
    assert first == [f"C{i:06d}" for i in range(1, len(first) + 1)]


def test_scripted_duplicates_share_a_cluster(linked: Linked) -> None:
    c = linked.clusters
    assert c["eau.csv", "S0"] == c["ecole.csv", "E0"]  # typo, accents
    assert c["eau.csv", "S1"] == c["ecole.csv", "E1"]  # "née" in one field vs birth name column
    assert c["eau.csv", "S4a"] == c["eau.csv", "S4b"]  # same file, day and month swapped


def test_siblings_at_the_same_address_stay_apart(linked: Linked) -> None:
    assert linked.clusters["eau.csv", "S2"] != linked.clusters["ecole.csv", "E3"]


def test_generated_persons_recovered(linked: Linked) -> None:
    truth = _pairs(dict(linked.dataset.truth))
    found = _pairs(dict(linked.clusters))
    precision = len(truth & found) / len(found)
    recall = len(truth & found) / len(truth)
    assert precision >= 0.95, precision
    assert recall >= 0.9, recall


def test_summary_for_the_terminal(linked: Linked) -> None:
    data = linked.summary.as_dict()
    assert data["records"] == linked.summary.records
    assert 0 < float(str(data["threshold"])) < 1
    lines = linked.summary.lines_fr()
    assert lines[0].startswith("liaison de ")
    assert any("personnes distinctes, dont" in line for line in lines)


# --- one file, DataFrames ----------------------------------------------------------------------


def test_one_file_is_deduplicated(tmp_path: Path) -> None:
    dataset = write_dataset(tmp_path, n=150, seed=11)
    out = tmp_path / "doublons.csv"
    summary = link_files([dataset.water], WATER_MAPS, out)
    clusters = _clusters(out)
    assert set(clusters) == {k for k in dataset.truth if k[0] == "eau.csv"}
    assert clusters["eau.csv", "S4a"] == clusters["eau.csv", "S4b"]
    assert summary.lines_fr()[0].startswith("dédoublonnage de ")
    assert summary.clusters_with_several >= 1


def test_link_frames_on_pandas(tmp_path: Path) -> None:
    dataset = write_dataset(tmp_path, n=150, seed=3)
    water = read_csv_file(dataset.water).to_pandas()
    school = read_csv_file(dataset.school).to_pandas()
    maps = {
        "eau": {"full_name": "Titulaire", "birth_date": "Né(e) le", "address": "Adresse",
                "postcode": "Code postal", "commune": "Ville"},
        "ecole": {"record_id": "id", "family_name": "nom", "given_name": "prenom",
                  "birth_date": "date_naissance", "address": "adresse", "postcode": "cp"},
    }  # fmt: skip
    table = link_frames({"eau": water, "ecole": school}, maps)
    assert table.column_names == ["file", "record_id", "cluster_id"]
    assert table.num_rows == len(water) + len(school)
    rows = {(f, r): c for f, r, c in zip(*table.to_pydict().values(), strict=True)}
    assert rows["eau", "1"] == rows["ecole", "E0"]  # no record_id mapped: row numbers


def test_records_without_a_name_keep_their_own_cluster(tmp_path: Path) -> None:
    dataset = write_dataset(tmp_path, n=120, seed=5)
    water = read_csv_file(dataset.water)
    blank = pa.array(["SCI Les Tilleuls", None], pa.string())
    extra = pa.table(
        {c: blank if c == "Titulaire" else pa.array(["X1", "X2"]) for c in water.column_names}
    )
    frames = {"eau": pa.concat_tables([water, extra])}
    maps = {"eau": {"record_id": "N° contrat", "full_name": "Titulaire", "birth_date": "Né(e) le"}}
    table = link_frames(frames, maps)
    rows = dict(zip(table["record_id"].to_pylist(), table["cluster_id"].to_pylist(), strict=True))
    assert rows["X1"] != rows["X2"]
    assert list(rows.values()).count(rows["X1"]) == 1


# --- reading ------------------------------------------------------------------------------------


def test_read_csv_file_detects_encoding_and_delimiter(tmp_path: Path) -> None:
    dataset = write_dataset(tmp_path, n=5)
    water = read_csv_file(dataset.water)
    assert water.column_names == WATER_HEADER
    assert water.schema.types == [pa.string()] * len(WATER_HEADER)
    assert water["Titulaire"][1].as_py() == "Mme Amélie VOSTELIN née FICTIVEAU"
    school = read_csv_file(dataset.school)
    assert school["nom_naissance"][0].as_py() is None  # empty cell: null


def test_frames_to_mentions_shape() -> None:
    frame = pa.table({"Nom": ["TESTMAN Alpha", "TESTMAN Beta"], "Ident": ["A1", "A1"]})
    mentions = frames_to_mentions(
        {"f.csv": frame}, {"f.csv": {"full_name": "nom", "identifier": "ident"}}
    )
    assert mentions.schema == MENTION_SCHEMA
    assert mentions["mention_id"].to_pylist() == ["f.csv|1|person", "f.csv|2|person"]
    assert mentions["identifier"].to_pylist() == ["A1", "A1"]  # as is, not prefixed


def test_frames_to_mentions_from_pandas_types() -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(
        {
            "id": [10, 11],
            "nom": pd.Categorical(["TESTMAN Alpha", None]),
            "ddn": pd.to_datetime(["1980-02-01", None]),
            "cp": [99001.0, float("nan")],
            "tel": [612345678, "06 12 34 56 78"],  # mixed types in one object column
        }
    )
    maps = {"p": {"record_id": "id", "full_name": "nom", "birth_date": "ddn", "postcode": "cp",
                  "phone": "tel"}}  # fmt: skip
    rows = frames_to_mentions({"p": frame}, maps).to_pylist()
    assert [r["record_id"] for r in rows] == ["10", "11"]
    assert [r["full_name"] for r in rows] == ["TESTMAN Alpha", None]
    assert [r["birth_date"] for r in rows] == ["1980-02-01", None]
    assert [r["postcode"] for r in rows] == ["99001", None]
    assert [r["phone"] for r in rows] == ["612345678", "06 12 34 56 78"]


def test_parse_maps_global_and_per_file(tmp_path: Path) -> None:
    dataset = write_dataset(tmp_path, n=5)
    maps = parse_maps(
        ["address=ADRESSE", "family_name=nom", "eau.csv:full_name=Titulaire",
         "eau.csv:family_name=Titulaire", "ecole.csv:given_name=Prénom"],
        [dataset.water, dataset.school],
    )  # fmt: skip
    assert maps == {
        "eau.csv": {"address": "Adresse", "family_name": "Titulaire", "full_name": "Titulaire"},
        "ecole.csv": {"address": "adresse", "family_name": "nom", "given_name": "prenom"},
    }


# --- errors -------------------------------------------------------------------------------------


def _code(excinfo: pytest.ExceptionInfo[TerritoriaError]) -> str:
    return excinfo.value.code


@pytest.mark.parametrize(
    ("specs", "code", "words"),
    [
        (["nom_complet=Titulaire"], "map_role_unknown", ["nom_complet", "full_name"]),
        (["full_name"], "map_malformed", ["RÔLE=COLONNE"]),
        (["full_name="], "map_malformed", []),
        (["autre.csv:full_name=Titulaire"], "map_file_unknown", ["autre.csv", "eau.csv"]),
        (["full_name=Nom complet"], "map_column_missing", ["Nom complet", "Titulaire"]),
        (["birth_date=Né(e) le"], "map_name_missing", ["full_name"]),
        (["full_name=Titulaire", "full_name=Adresse"], "map_role_repeated", ["full_name"]),
    ],
)
def test_map_errors(tmp_path: Path, specs: list[str], code: str, words: list[str]) -> None:
    dataset = write_dataset(tmp_path, n=5)
    with pytest.raises(TerritoriaError) as excinfo:
        parse_maps(specs, [dataset.water])
    assert _code(excinfo) == code
    text = str(excinfo.value)
    for word in words:
        assert word in text


def test_column_missing_names_the_file(tmp_path: Path) -> None:
    dataset = write_dataset(tmp_path, n=5)
    with pytest.raises(TerritoriaError) as excinfo:
        parse_maps(["full_name=Titulaire"], [dataset.water, dataset.school])
    assert _code(excinfo) == "map_column_missing"
    assert excinfo.value.file == "ecole.csv"
    assert "nom, prenom" in str(excinfo.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TerritoriaError) as excinfo:
        link_files([tmp_path / "absent.csv"], ["full_name=Nom"], tmp_path / "out.csv")
    assert _code(excinfo) == "file_missing"
    assert "absent.csv" in str(excinfo.value)


def test_unsupported_format(tmp_path: Path) -> None:
    path = tmp_path / "classeur.xlsx"
    path.write_bytes(b"PK\x03\x04rest")
    with pytest.raises(TerritoriaError) as excinfo:
        read_csv_file(path)
    assert _code(excinfo) == "kind_unsupported"


def test_malformed_lines_are_named(tmp_path: Path) -> None:
    path = tmp_path / "abime.csv"
    path.write_text("id;nom\n1;TESTMAN Alpha\n2;TESTMAN Beta;en trop\n3;TESTMAN Gamma\n")
    with pytest.raises(TerritoriaError) as excinfo:
        read_csv_file(path)
    assert _code(excinfo) == "csv_malformed"
    assert excinfo.value.line == 3
    assert "colonnes en trop" in str(excinfo.value)


@pytest.mark.parametrize(
    ("ids", "code", "shown"),
    [(["A", "B", "A", "C", "B"], "record_id_duplicate", "« A », « B »"),
     (["A", " ", "C", "D", "E"], "record_id_empty", "n° 2")],
)  # fmt: skip
def test_record_id_errors(tmp_path: Path, ids: list[str], code: str, shown: str) -> None:
    frame = pa.table({"ref": ids, "nom": [f"TESTMAN {g}" for g in "ABCDE"]})
    with pytest.raises(TerritoriaError) as excinfo:
        frames_to_mentions({"x.csv": frame}, {"x.csv": {"record_id": "ref", "full_name": "nom"}})
    assert _code(excinfo) == code
    assert excinfo.value.file == "x.csv"
    assert shown in str(excinfo.value)


def test_output_never_overwrites_an_input(tmp_path: Path) -> None:
    dataset = write_dataset(tmp_path, n=5)
    before = dataset.water.read_bytes()
    with pytest.raises(TerritoriaError) as excinfo:
        link_files([dataset.water], WATER_MAPS, tmp_path / "." / "eau.csv")
    assert _code(excinfo) == "output_is_input"
    assert dataset.water.read_bytes() == before


def test_output_folder_must_exist(tmp_path: Path) -> None:
    dataset = write_dataset(tmp_path, n=5)
    with pytest.raises(TerritoriaError) as excinfo:
        link_files([dataset.water], WATER_MAPS, tmp_path / "absent" / "out.csv")
    assert _code(excinfo) == "output_invalid"


def test_linking_without_birth_dates() -> None:
    frame = pa.table({"nom": ["TESTMAN Alpha", "TESTMAN Alpha", "FICTIVEAU Beta"]})
    table = link_frames({"f": frame}, {"f": {"full_name": "nom"}})
    assert table.num_rows == 3
    clusters = table.column("cluster_id").to_pylist()
    assert clusters[0] != clusters[2]


def test_same_file_twice(tmp_path: Path) -> None:
    dataset = write_dataset(tmp_path, n=5)
    with pytest.raises(TerritoriaError) as excinfo:
        link_files([dataset.water, tmp_path / "." / "eau.csv"], WATER_MAPS, tmp_path / "o.csv")
    assert _code(excinfo) == "file_repeated"
