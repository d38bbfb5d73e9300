"""Standardisers of French identity data: examples from real habits, and properties (never
raise on any text, idempotent, round-trips). All names and addresses are fictitious."""

from __future__ import annotations

import csv
from datetime import date
from importlib import resources

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from territoria.identity.standardise import (
    Address,
    BirthDate,
    PersonName,
    fold,
    given_name_key,
    is_given_name,
    is_organisation,
    jaro_winkler,
    names_compatible,
    split_full_name,
    standardise_address,
    standardise_birth_date,
    standardise_email,
    standardise_name,
    standardise_phone,
    standardise_sex,
)
from territoria.identity.standardise.names import variant_table

TODAY = date(2026, 5, 1)
# Any code point of any category, surrogates included.
ANY_TEXT = st.text(st.characters(exclude_categories=()))
MAYBE_TEXT = st.none() | ANY_TEXT | st.text()
FRENCH_WORDS = st.text(
    st.sampled_from(list("abcdeéèêfghijklmnopqrstuvwxyzçœ ABCDEÉFHLMNRSTV-'.,0123456789°")),
    max_size=40,
)


# -- fold -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "folded"),
    [
        ("Élodie-Anne d'Arc", "ELODIE ANNE D ARC"),
        ("  Lætitia  ", "LAETITIA"),
        ("Œillet", "OEILLET"),
        ("Straße", "STRASSE"),
        ("l’Été", "L ETE"),
        ("Jean--Pierre", "JEAN PIERRE"),
        ("N° 12", "N 12"),
        ("Ǆemal", "DZEMAL"),
        ("a\x00b\tc\u00a0d", "A B C D"),
        ("", ""),
        (None, ""),
    ],
)
def test_fold(raw: str | None, folded: str) -> None:
    assert fold(raw) == folded


@given(ANY_TEXT)
def test_fold_is_upper_ascii_and_idempotent(text: str) -> None:
    folded = fold(text)
    assert folded == " ".join(folded.split())
    assert all(c.isascii() and (c.isupper() or c.isdigit() or c == " ") for c in folded)
    assert fold(folded) == folded


def test_fold_huge_string() -> None:
    assert fold("é" * 1_000_000) == "E" * 1_000_000


# -- Jaro-Winkler ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("MARTHA", "MARHTA", 0.9611),
        ("DIXON", "DICKSONX", 0.8133),
        ("JELLYFISH", "SMELLYFISH", 0.8963),
        ("", "", 1.0),
        ("ABC", "", 0.0),
        ("ABC", "XYZ", 0.0),
    ],
)
def test_jaro_winkler_known_values(a: str, b: str, expected: float) -> None:
    assert jaro_winkler(a, b) == pytest.approx(expected, abs=1e-4)


@settings(max_examples=150)
@given(st.text("ABCDEJMNR", max_size=12), st.text("ABCDEJMNR", max_size=12))
def test_jaro_winkler_matches_rapidfuzz(a: str, b: str) -> None:
    rapid = pytest.importorskip("rapidfuzz.distance")
    assert jaro_winkler(a, b) == pytest.approx(rapid.JaroWinkler.similarity(a, b), abs=1e-9)


# -- names ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("family", "given_", "birth", "expected"),
    [
        ("DUPONT épouse MARTIN", "Claire", None, ("MARTIN", "CLAIRE", "CLAIRE", "DUPONT", "")),
        ("MARTIN née DUPONT", "Marie", None, ("MARTIN", "MARIE", "MARIE", "DUPONT", "")),
        ("MARTIN ép. DUPONT", "Anne", None, ("DUPONT", "ANNE", "ANNE", "MARTIN", "")),
        ("Durand Vve Leroy", "Jeanne", None, ("LEROY", "JEANNE", "JEANNE", "DURAND", "")),
        ("Durand veuve Leroy", "Jeanne", None, ("LEROY", "JEANNE", "JEANNE", "DURAND", "")),
        ("Mme DURAND (née PETIT)", "Lise", None, ("DURAND", "LISE", "LISE", "PETIT", "F")),
        ("de la Fontaine", "Jean-Pierre Marie", None,
         ("DE LA FONTAINE", "JEAN PIERRE MARIE", "JEAN PIERRE", "", "")),
        ("d'Arc", "Jeanne", None, ("D ARC", "JEANNE", "JEANNE", "", "")),
        ("M. Fabre", "Paul", None, ("FABRE", "PAUL", "PAUL", "", "M")),
        ("Monsieur FABRE", "Paul", None, ("FABRE", "PAUL", "PAUL", "", "M")),
        ("Mlle Roux", "Inès", None, ("ROUX", "INES", "INES", "", "F")),
        ("M. et Mme Roux", "", None, ("ROUX", "", "", "", "")),
        ("Roux", "Mme Inès", None, ("ROUX", "INES", "INES", "", "F")),
        ("BLANC", "Lucie", "née Morel", ("BLANC", "LUCIE", "LUCIE", "MOREL", "")),
        ("BLANC", "Lucie", "Morel", ("BLANC", "LUCIE", "LUCIE", "MOREL", "")),
        ("née MOREL", "Lucie", None, ("MOREL", "LUCIE", "LUCIE", "MOREL", "")),
        ("LE GOFF", "Yann, Loïc", None, ("LE GOFF", "YANN LOIC", "YANN", "", "")),
        ("Mme", "Marie", None, ("MME", "MARIE", "MARIE", "", "")),
        (None, None, None, ("", "", "", "", "")),
    ],
)  # fmt: skip
def test_standardise_name(
    family: str | None, given_: str | None, birth: str | None, expected: tuple[str, ...]
) -> None:
    name = standardise_name(family, given_, birth)
    got = (name.family_name, name.given_name, name.first_given_name, name.birth_name)
    assert (*got, name.sex_hint) == expected


@pytest.mark.parametrize(
    ("given_", "first", "key"),
    [
        ("Matthieu", "MATTHIEU", "MATHIEU"),
        ("Stéphanie", "STEPHANIE", "STEPHANIE"),
        ("Jean-Pierre", "JEAN PIERRE", "JEAN PIERRE"),
        ("Jeanpierre", "JEANPIERRE", "JEAN PIERRE"),
        ("J.-P.", "J P", "JEAN PIERRE"),
        ("JP", "JP", "JEAN PIERRE"),
        ("Cathy", "CATHY", "CATHERINE"),
        ("Mickaël", "MICKAEL", "MICKAEL"),
        ("Michael", "MICHAEL", "MICKAEL"),
        ("Anne Marie", "ANNE", "ANNE"),
        ("Anne-Marie", "ANNE MARIE", "ANNE MARIE"),
        ("Annemarie", "ANNEMARIE", "ANNE MARIE"),
        ("Yolande", "YOLANDE", "YOLANDE"),
    ],
)
def test_given_name_key(given_: str, first: str, key: str) -> None:
    name = standardise_name("ROUX", given_)
    assert (name.first_given_name, name.given_name_key) == (first, key)
    assert given_name_key(first) == key


def test_variant_table_is_canonical() -> None:
    data = resources.files("territoria.identity.standardise") / "data/given_name_variants.csv"
    rows = list(csv.DictReader(data.read_text(encoding="utf-8").splitlines()))
    assert len(rows) >= 150
    variants = {fold(r["variant"]) for r in rows}
    keys = {fold(r["key"]) for r in rows}
    assert not variants & keys, "a key must not be a variant of another key"
    assert all(fold(r["variant"]) == r["variant"] and fold(r["key"]) == r["key"] for r in rows)
    direct, spaceless = variant_table()
    for name, key in direct.items():  # spaceless forms do not merge two different keys
        assert spaceless[name.replace(" ", "")] == key


@pytest.mark.parametrize(
    ("a", "b", "compatible"),
    [
        ("JEAN", "JEAN", True),
        ("MATTHIEU", "MATHIEU", True),
        ("JEAN PIERRE", "JEAN", True),
        ("JEAN", "JEAN PIERRE", True),
        ("JP", "JEAN", True),
        ("CATHY", "CATHERINE", True),
        ("MARTHA", "MARHTA", True),
        ("Jean-Pierre", "JEANPIERRE", True),
        ("MARIE", "PIERRE", False),
        ("PIERRE", "JEAN PIERRE", False),
        ("LUC", "PAUL", False),
        ("", "", False),
        ("JEAN", "", False),
    ],
)
def test_names_compatible(a: str, b: str, compatible: bool) -> None:
    assert names_compatible(a, b) is compatible
    assert names_compatible(b, a) is compatible


@given(MAYBE_TEXT, MAYBE_TEXT, MAYBE_TEXT)
def test_standardise_name_never_raises_and_is_stable(
    family: str | None, given_: str | None, birth: str | None
) -> None:
    name = standardise_name(family, given_, birth)
    assert isinstance(name, PersonName)
    assert all(isinstance(v, str) for v in (name.family_name, name.given_name, name.birth_name))
    assert name.sex_hint in {"", "F", "M"}
    again = standardise_name(name.family_name, name.given_name, name.birth_name)
    assert (again.family_name, again.given_name, again.birth_name) == (
        name.family_name,
        name.given_name,
        name.birth_name,
    )
    assert given_name_key(name.given_name_key) == name.given_name_key


@given(MAYBE_TEXT, MAYBE_TEXT)
def test_names_compatible_never_raises(a: str | None, b: str | None) -> None:
    assert isinstance(names_compatible(a or "", b or ""), bool)
    assert isinstance(given_name_key(fold(a)), str)


# -- one-field names and organisations ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("M. DUPONT Jean-Pierre", ("M", "DUPONT", "Jean-Pierre")),
        ("Mme Marie DURAND", ("F", "DURAND", "Marie")),
        ("DURAND Marie", ("", "DURAND", "Marie")),
        ("Jean-Pierre DUPONT", ("", "DUPONT", "Jean-Pierre")),
        ("DUPONT épouse MARTIN Claire", ("", "DUPONT épouse MARTIN", "Claire")),
        ("de la FONTAINE Jean", ("", "de la FONTAINE", "Jean")),
        ("Jean de la Fontaine", ("", "de la Fontaine", "Jean")),
        ("Yann Le Goff", ("", "Le Goff", "Yann")),
        ("LE GOFF YANN", ("", "LE GOFF", "YANN")),
        ("DUPONT JEAN", ("", "DUPONT", "JEAN")),
        ("JEAN DUPONT", ("", "DUPONT", "JEAN")),
        ("MARIE CLAIRE FABRE", ("", "FABRE", "MARIE CLAIRE")),
        ("fabre marie", ("", "fabre", "marie")),
        ("Marie Fabre", ("", "Fabre", "Marie")),
        ("PIERRE LAURENT", ("", "PIERRE", "LAURENT")),  # undecidable: "NOM Prénom"
        ("Jeanne d'Arc", ("", "d'Arc", "Jeanne")),
        ("M. et Mme ROUX Paul", ("", "ROUX", "Paul")),
        ("FABRE J.", ("", "FABRE", "J.")),
        ("FABRE", ("", "FABRE", "")),
        ("SCI Les Tilleuls", ("", "SCI Les Tilleuls", "")),
        ("", ("", "", "")),
        (None, ("", "", "")),
    ],
)
def test_split_full_name(text: str | None, expected: tuple[str, str, str]) -> None:
    assert split_full_name(text) == expected


@pytest.mark.parametrize(
    ("text", "organisation"),
    [
        ("COPROPRIÉTÉ LE PARC DU CHÂTEAU", True),
        ("SCI Les Tilleuls", True),
        ("Syndic Fictif Gestion", True),
        ("OPH de l'Ain", True),
        ("Fictiv SA", True),
        ("SARL Boulangerie Dupont", True),
        ("SAS Exemple", True),
        ("Résidence les Acacias", True),
        ("Association des Amis du Parc", True),
        ("Mairie de Fictiville", True),
        ("GRAND LYON HABITAT", True),
        ("Ville de Fictiville", True),
        ("DUPONT Jean", False),
        ("Marie-Sabine DE LA SALLE", False),
        ("", False),
        (None, False),
    ],
)
def test_is_organisation(text: str | None, organisation: bool) -> None:
    assert is_organisation(text) is organisation


def test_is_given_name() -> None:
    assert is_given_name("MARIE")
    assert is_given_name("JEAN PIERRE")
    assert is_given_name("GERARD")  # older names, rare among recent births
    assert not is_given_name("FICTIVEVILLE")
    assert not is_given_name("")


@given(MAYBE_TEXT)
def test_split_full_name_never_raises(text: str | None) -> None:
    sex, family, given_ = split_full_name(text)
    assert sex in {"", "F", "M"}
    assert isinstance(family, str)
    assert isinstance(given_, str)
    assert isinstance(is_organisation(text), bool)
    standardise_name(family, given_)


# -- birth dates ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "iso", "ymd", "precision"),
    [
        ("1971-04-03", "1971-04-03", (1971, 4, 3), "day"),
        ("1971-04-03T00:00:00", "1971-04-03", (1971, 4, 3), "day"),
        ("03/04/1971", "1971-04-03", (1971, 4, 3), "day"),
        ("3/4/1971", "1971-04-03", (1971, 4, 3), "day"),
        ("03-04-1971", "1971-04-03", (1971, 4, 3), "day"),
        ("03.04.1971", "1971-04-03", (1971, 4, 3), "day"),
        ("03/04/1971 00:00:00", "1971-04-03", (1971, 4, 3), "day"),
        ("03/04/71", "1971-04-03", (1971, 4, 3), "day"),
        ("28/03/53", "1953-03-28", (1953, 3, 28), "day"),
        ("01/02/12", "2012-02-01", (2012, 2, 1), "day"),
        ("01/02/26", "2026-02-01", (2026, 2, 1), "day"),
        ("01/12/26", "1926-12-01", (1926, 12, 1), "day"),
        ("19710403", "1971-04-03", (1971, 4, 3), "day"),
        ("03041971", "1971-04-03", (1971, 4, 3), "day"),
        ("04/1971", None, (1971, 4, None), "month"),
        ("1971-04", None, (1971, 4, None), "month"),
        ("1971", None, (1971, None, None), "year"),
        ("1971.0", None, (1971, None, None), "year"),
        ("3 avril 1971", "1971-04-03", (1971, 4, 3), "day"),
        ("1er Août 1971", "1971-08-01", (1971, 8, 1), "day"),
        ("3 févr. 1971", "1971-02-03", (1971, 2, 3), "day"),
        ("avril 1971", None, (1971, 4, None), "month"),
        ("Décembre 1971", None, (1971, 12, None), "month"),
        ("", None, (None, None, None), "none"),
        (None, None, (None, None, None), "none"),
    ],
)
def test_standardise_birth_date(
    text: str | None, iso: str | None, ymd: tuple[int | None, ...], precision: str
) -> None:
    parsed = standardise_birth_date(text, today=TODAY)
    assert (parsed.iso, (parsed.year, parsed.month, parsed.day), parsed.precision) == (
        iso,
        ymd,
        precision,
    )
    assert parsed.problem == ""


@pytest.mark.parametrize(
    ("text", "ymd", "problem"),
    [
        ("31/02/1980", (1980, 2, None), "date impossible (31/02/1980)"),
        ("12/13/1980", (1980, None, None), "date impossible (12/13/1980)"),
        ("00/00/1980", (1980, None, None), "date impossible (00/00/1980)"),
        ("1789", (None, None, None), "année improbable (1789)"),
        ("14/07/1789", (None, None, None), "année improbable (1789)"),
        ("2030-01-01", (None, None, None), "date dans le futur"),
        ("02/05/2026", (None, None, None), "date dans le futur"),
        ("inconnue", (None, None, None), "format non reconnu"),
        ("31 brumaire 1971", (None, None, None), "format non reconnu"),
        ("1" * 500, (None, None, None), "format non reconnu"),
    ],
)
def test_birth_date_problems(text: str, ymd: tuple[int | None, ...], problem: str) -> None:
    parsed = standardise_birth_date(text, today=TODAY)
    assert parsed.iso is None
    assert ((parsed.year, parsed.month, parsed.day), parsed.problem) == (ymd, problem)


def test_birth_date_defaults_to_today() -> None:
    assert standardise_birth_date("1971-04-03").iso == "1971-04-03"
    assert standardise_birth_date(f"{date.today().year + 1}").problem == "date dans le futur"


@given(MAYBE_TEXT)
def test_birth_date_never_raises(text: str | None) -> None:
    parsed = standardise_birth_date(text, today=TODAY)
    assert isinstance(parsed, BirthDate)
    assert parsed.precision in {"day", "month", "year", "none"}
    if parsed.iso is not None:
        assert standardise_birth_date(parsed.iso, today=TODAY) == parsed
        assert parsed.precision == "day"
        assert parsed.problem == ""


@given(st.dates(min_value=date(1890, 1, 1), max_value=TODAY))
def test_birth_date_round_trips(day: date) -> None:
    for text in (day.isoformat(), day.strftime("%d/%m/%Y"), day.strftime("%Y%m%d")):
        assert standardise_birth_date(text, today=TODAY).iso == day.isoformat()


# -- addresses ------------------------------------------------------------------------------

ADDRESS_CASES = [
    (("12 bis rue Victor Hugo", "69001", "Lyon 1er"), ("12", "B", "RUE", "VICTOR HUGO", "")),
    (("12B R. Victor Hugo", "69001", "Lyon"), ("12", "B", "RUE", "VICTOR HUGO", "")),
    (("12 b BD Victor-Hugo", "69001", "Lyon"), ("12", "B", "BOULEVARD", "VICTOR HUGO", "")),
    (("12ter av. Foch", "69006", "Lyon"), ("12", "T", "AVENUE", "FOCH", "")),
    (("1 RUE des Hêtres Appartement 1", "01000", "X"), ("1", "", "RUE", "DES HETRES", "APT 1")),
    (("2 r. Aristide Briand", "69008", "Lyon"), ("2", "", "RUE", "ARISTIDE BRIAND", "")),
    (("3 av. Jean Jaurès Bât. A Apt 4", "69007", "Lyon"),
     ("3", "", "AVENUE", "JEAN JAURES", "BAT A APT 4")),
    (("12 bd V. Hugo", "69002", "Lyon"), ("12", "", "BOULEVARD", "V HUGO", "")),
    (("chemin des Vignes", "69250", "X"), ("", "", "CHEMIN", "DES VIGNES", "")),
    (("12, rue de la Paix", "75002", "Paris"), ("12", "", "RUE", "DE LA PAIX", "")),
    (("12 rue de la Porte Rouge", "75002", "Paris"), ("12", "", "RUE", "DE LA PORTE ROUGE", "")),
    (("5 pl. Bellecour 3e étage", "69002", "X"), ("5", "", "PLACE", "BELLECOUR", "ETAGE 3")),
    (("7 ch. du Moulin Esc. B Porte 3", "38000", "X"),
     ("7", "", "CHEMIN", "DU MOULIN", "ESC B PORTE 3")),
    (("9 imp. des Lilas", "38000", "X"), ("9", "", "IMPASSE", "DES LILAS", "")),
    (("4 all. des Pins", "38000", "X"), ("4", "", "ALLEE", "DES PINS", "")),
    (("12 Q Pierre Scize", "69005", "X"), ("12", "", "QUAI", "PIERRE SCIZE", "")),
    (("2 crs Lafayette", "69003", "X"), ("2", "", "COURS", "LAFAYETTE", "")),
    (("8 mtée du Gourguillon", "69005", "X"), ("8", "", "MONTEE", "DU GOURGUILLON", "")),
    (("1 rte de Lyon", "38000", "X"), ("1", "", "ROUTE", "DE LYON", "")),
    (("3 sq. Fictif", "38000", "X"), ("3", "", "SQUARE", "FICTIF", "")),
    (("3 fbg St Antoine", "38000", "X"), ("3", "", "FAUBOURG", "SAINT ANTOINE", "")),
    (("Rés. Les Acacias", "38000", "X"), ("", "", "RESIDENCE", "LES ACACIAS", "")),
    (("Résidence Les Lilas 12 rue Fictive", "38000", "X"),
     ("12", "", "RUE", "FICTIVE", "RESIDENCE LES LILAS")),
    (("Bât. C 4 allée des Pins", "38000", "X"), ("4", "", "ALLEE", "DES PINS", "BAT C")),
    (("N° 5 rte de Lyon", "38000", "X"), ("5", "", "ROUTE", "DE LYON", "")),
    (("12-14 av Berthelot", "69007", "X"), ("12", "", "AVENUE", "BERTHELOT", "")),
    (("7 rond-point du Souvenir", "13008", "X"), ("7", "", "ROND POINT", "DU SOUVENIR", "")),
    (("12 r. du Gal de Gaulle", "69110", "X"), ("12", "", "RUE", "DU GENERAL DE GAULLE", "")),
    (("012 rue Fictive", "38000", "X"), ("12", "", "RUE", "FICTIVE", "")),
]  # fmt: skip


@pytest.mark.parametrize(("args", "expected"), ADDRESS_CASES)
def test_standardise_address(args: tuple[str, str, str], expected: tuple[str, ...]) -> None:
    a = standardise_address(*args)
    assert (a.number, a.suffix, a.street_type, a.street_name, a.complement) == expected
    assert a.problem == ""


@pytest.mark.parametrize(
    ("postcode", "commune", "expected", "problem"),
    [
        ("69 001", "Lyon 1er", ("69001", "LYON 1"), ""),
        ("69001.0", "LYON 01", ("69001", "LYON 1"), ""),
        ("1000", "Bourg-en-Bresse", ("01000", "BOURG EN BRESSE"), ""),
        ("69008", "Lyon 8e arrondissement", ("69008", "LYON 8"), ""),
        ("69008", "LYON 8EME", ("69008", "LYON 8"), ""),
        ("69008", "Lyon 8ème", ("69008", "LYON 8"), ""),
        ("75016", "Paris 16e", ("75016", "PARIS 16"), ""),
        ("75116", "PARIS 16", ("75116", "PARIS 16"), ""),
        ("69230", "St-Genis-Laval", ("69230", "SAINT GENIS LAVAL"), ""),
        ("69110", "Ste Foy lès Lyon", ("69110", "SAINTE FOY LES LYON"), ""),
        ("69250", "Neuville-sur-Saône", ("69250", "NEUVILLE SUR SAONE"), ""),
        ("69250", "Neuville s/ Saône", ("69250", "NEUVILLE SUR SAONE"), ""),
        ("69003", "LYON CEDEX 03", ("69003", "LYON"), ""),
        ("69003", "Lyon 8", ("69003", "LYON 8"),
         "code postal incohérent avec la commune (69003 / LYON 8)"),
        ("13001", "Lyon", ("13001", "LYON"),
         "code postal incohérent avec la commune (13001 / LYON)"),
        ("690", "Lyon", ("", "LYON"), "code postal invalide (690)"),
        ("6900X", "Lyon", ("", "LYON"), "code postal invalide (6900X)"),
    ],
)  # fmt: skip
def test_postcode_and_commune(
    postcode: str, commune: str, expected: tuple[str, str], problem: str
) -> None:
    a = standardise_address("1 rue Fictive", postcode, commune)
    assert ((a.postcode, a.commune), a.problem) == (expected, problem)


def test_postcode_and_commune_in_the_line() -> None:
    a = standardise_address("15 rue Garibaldi BP 12345 69006 LYON CEDEX 06")
    assert (a.postcode, a.commune, a.street_name, a.complement) == (
        "69006",
        "LYON",
        "GARIBALDI",
        "BP 12345",
    )


def test_postcode_in_the_commune_field() -> None:
    a = standardise_address("2 rue Fictive", None, "69001 Lyon 1er")
    assert (a.postcode, a.commune) == ("69001", "LYON 1")
    b = standardise_address("2 rue Fictive", "", "Lyon 69001")
    assert (b.postcode, b.commune) == ("69001", "LYON")


def test_complement_field_and_keys() -> None:
    a = standardise_address("Résidence Les Lilas", "69100", "Villeurbanne", "Bât B esc. 2 RDC")
    assert (a.street_type, a.street_name) == ("RESIDENCE", "LES LILAS")
    assert a.complement == "BAT B ESC 2 ETAGE 0"
    b = standardise_address("12 bis rue Victor Hugo", "69001", "Lyon", "Appt n° 12")
    assert b.building_key == "69001|12B|RUE VICTOR HUGO"
    assert b.dwelling_key == "69001|12B|RUE VICTOR HUGO|APT 12"
    assert standardise_address("12 rue Victor Hugo").building_key == ""
    assert standardise_address("12", "69001").dwelling_key == ""


@given(MAYBE_TEXT, MAYBE_TEXT, MAYBE_TEXT, MAYBE_TEXT)
def test_address_never_raises(
    line: str | None, postcode: str | None, commune: str | None, complement: str | None
) -> None:
    a = standardise_address(line, postcode, commune, complement)
    assert isinstance(a, Address)
    assert a.postcode == "" or (len(a.postcode) == 5 and a.postcode.isdigit())
    assert a.suffix == "" or (len(a.suffix) == 1 and a.suffix.isalpha())
    assert isinstance(a.building_key, str)
    assert isinstance(a.dwelling_key, str)


def _rebuilt(a: Address) -> Address:
    line = f"{a.number}{a.suffix} {a.street_type} {a.street_name}"
    return standardise_address(line, a.postcode, a.commune, a.complement)


@settings(max_examples=150)
@given(FRENCH_WORDS | ANY_TEXT, FRENCH_WORDS, FRENCH_WORDS, FRENCH_WORDS)
def test_address_is_stable(line: str, postcode: str, commune: str, complement: str) -> None:
    a = standardise_address(line, postcode, commune, complement)
    b = _rebuilt(a)
    assert (b.building_key, b.dwelling_key) == (a.building_key, a.dwelling_key)
    assert b.commune == a.commune


ADDRESS_WORDS = st.lists(
    st.sampled_from(
        [
            "12",
            "12B",
            "7BIS",
            "014",
            "BIS",
            "B",
            "T",
            "Q",
            "R",
            "RUE",
            "AV",
            "BD",
            "DE",
            "LA",
            "DES",
            "BAT",
            "A",
            "APT",
            "APPT",
            "3",
            "N",
            "NO",
            "RES",
            "RESIDENCE",
            "LES",
            "LILAS",
            "3E",
            "ETAGE",
            "RDC",
            "PORTE",
            "ESC",
            "BP",
            "CS",
            "12345",
            "69001",
            "LYON",
            "CEDEX",
            "ST",
            "STE",
            "ROND",
            "POINT",
            "LIEU",
            "DIT",
            "X",
            "HUGO",
            "14",
            "-",
            ",",
            ".",
        ]
    ),
    max_size=12,
).map(" ".join)


@settings(max_examples=200)
@given(ADDRESS_WORDS, st.sampled_from(["", "69001", "690"]), ADDRESS_WORDS, ADDRESS_WORDS)
def test_address_words_are_stable(line: str, postcode: str, commune: str, complement: str) -> None:
    a = standardise_address(line, postcode, commune, complement)
    b = _rebuilt(a)
    assert (b.building_key, b.dwelling_key) == (a.building_key, a.dwelling_key)


@pytest.mark.parametrize(("args", "expected"), ADDRESS_CASES)
def test_address_examples_are_stable(args: tuple[str, str, str], expected: tuple[str, ...]) -> None:
    a = standardise_address(*args)
    assert _rebuilt(a) == a


# -- phones, e-mails, sex -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "phone"),
    [
        ("06 12 34 56 78", "0612345678"),
        ("06.12.34.56.78", "0612345678"),
        ("06-12-34-56-78", "0612345678"),
        ("06\u00a012\u00a034\u00a056\u00a078", "0612345678"),
        ("+33 6 12 34 56 78", "0612345678"),
        ("+33 (0)6 12 34 56 78", "0612345678"),
        ("0033612345678", "0612345678"),
        ("33612345678", "0612345678"),
        ("612345678", "0612345678"),
        ("0612345678.0", "0612345678"),
        ("Tél. : 04 78 00 00 00", "0478000000"),
        ("+44 20 7946 0958", "+442079460958"),
        ("0044 20 7946 0958", "+442079460958"),
        ("+262 262 12 34 56", "+262262123456"),
        ("06 12 34 56", None),
        ("00 12 34 56 78", None),
        ("06 12 34 56 78 90", None),
        ("06 12 AB 56 78", None),
        ("+33 6 12", None),
        ("", None),
        (None, None),
    ],
)
def test_standardise_phone(text: str | None, phone: str | None) -> None:
    assert standardise_phone(text) == phone


@given(MAYBE_TEXT)
def test_phone_never_raises_and_is_idempotent(text: str | None) -> None:
    phone = standardise_phone(text)
    if phone is not None:
        assert standardise_phone(phone) == phone
        assert phone[1:].isdigit() and phone[0] in "0+"


@given(st.from_regex(r"\+?[0-9 .()-]{0,20}", fullmatch=True))
def test_phone_shaped_text_is_idempotent(text: str) -> None:
    phone = standardise_phone(text)
    assert phone is None or standardise_phone(phone) == phone


@pytest.mark.parametrize(
    ("text", "email"),
    [
        ("  Jean.Dupont@Exemple.FR ", "jean.dupont@exemple.fr"),
        ("<jean.dupont@exemple.fr>", "jean.dupont@exemple.fr"),
        ("Jean Dupont <jean.dupont@exemple.fr>", "jean.dupont@exemple.fr"),
        ("mailto:jean.dupont@exemple.fr", "jean.dupont@exemple.fr"),
        ("jean.dupont @ exemple.fr", "jean.dupont@exemple.fr"),
        ("jean+cantine@exemple.fr;", "jean+cantine@exemple.fr"),
        ("jean.dupont@exemple", None),
        ("jean.dupont.exemple.fr", None),
        ("jean..dupont@exemple.fr", None),
        ("@exemple.fr", None),
        ("", None),
        (None, None),
    ],
)
def test_standardise_email(text: str | None, email: str | None) -> None:
    assert standardise_email(text) == email


@given(MAYBE_TEXT | st.emails())
def test_email_never_raises_and_is_idempotent(text: str | None) -> None:
    email = standardise_email(text)
    if email is not None:
        assert standardise_email(email) == email
        assert email == email.lower()


@pytest.mark.parametrize(
    ("text", "sex"),
    [
        ("F", "F"), ("f", "F"), ("Femme", "F"), ("féminin", "F"), ("Mme", "F"), ("Madame", "F"),
        ("Mlle", "F"), ("Mademoiselle", "F"), ("2", "F"),
        ("M", "M"), ("H", "M"), ("Homme", "M"), ("MASCULIN", "M"), ("M.", "M"), ("Mr", "M"),
        ("Monsieur", "M"), ("1", "M"),
        ("X", None), ("3", None), ("", None), (None, None),
    ],
)  # fmt: skip
def test_standardise_sex(text: str | None, sex: str | None) -> None:
    assert standardise_sex(text) == sex


@given(MAYBE_TEXT)
def test_sex_never_raises_and_is_idempotent(text: str | None) -> None:
    sex = standardise_sex(text)
    assert sex in {None, "F", "M"}
    if sex is not None:
        assert standardise_sex(sex) == sex
