"""The art. 30 register: rows from the policy, and their CSV, ODS, JSON and public HTML files."""

from __future__ import annotations

import csv
import html
import json
from pathlib import Path

import pytest

from territoria.core.errors import TerritoriaError
from territoria.governance.policy import Policy, load_policy
from territoria.governance.register_export import (
    REGISTER_COLUMNS,
    plain_durations,
    register_rows,
    render_register_html,
    write_register,
    write_register_csv,
    write_register_ods,
)
from territoria.ingest.catalog import ContractCatalog

DAY = "2026-03-01"
HEADERS = [header for _key, header in REGISTER_COLUMNS]

REGISTER = """\
controller:
  name: Commune de Test
  address: 1 rue de la Mairie
  dpo_name: DPO mutualisé
  dpo_contact: dpo@test.example
purposes:
  - id: lending
    name: Prêts des médiathèques
    description: Inscriptions et prêts.
    service: lecture_publique
    legal_basis: public_task
    legal_reference: Code du patrimoine art. L310-1
    persons: [Lecteurs inscrits, enfants]
    sources:
      library_members: [card_number, family_name, email]
      ccas_aid: [aid_id, amount]
    retention: P1Y après la fin de l'adhésion
    recipients: [Médiathèques, prestataire du logiciel]
    security: Postes des bibliothécaires uniquement.
    dpia: AIPD-2026-09
    proactive: true
    transparency_delay: P6M
  - id: newsletter
    name: Lettre d'information
    service: relation_usagers
    legal_basis: consent
    retention: jusqu'au retrait du consentement
"""

ACTORS = """\
services:
  - {id: ccas, name: CCAS, social: true}
  - {id: lecture_publique, name: Réseau des médiathèques}
  - {id: relation_usagers, name: Relation aux usagers}
roles:
  - id: librarian
    name: Bibliothécaire
    service: lecture_publique
    grants:
      - {purpose: lending, views: [records]}
agents:
  - {id: lea.biblio, name: Léa Secrète, roles: [librarian]}
"""


@pytest.fixture
def small(tmp_path: Path) -> Policy:
    folder = tmp_path / "policy"
    folder.mkdir()
    (folder / "register.yaml").write_text(REGISTER, encoding="utf-8")
    (folder / "actors.yaml").write_text(ACTORS, encoding="utf-8")
    return load_policy(folder)


@pytest.fixture(scope="module")
def catalog() -> ContractCatalog:
    return ContractCatalog.load()


@pytest.fixture(scope="module")
def shipped() -> Policy:
    return load_policy()


# --- rows -------------------------------------------------------------------------------------


def test_golden_row(small: Policy, catalog: ContractCatalog) -> None:
    row = register_rows(small, catalog, updated=DAY)[0]
    assert row == {
        "name": "Prêts des médiathèques",
        "reference": "lending",
        "controller": "Commune de Test, 1 rue de la Mairie",
        "service": "Réseau des médiathèques",
        "description": "Inscriptions et prêts.",
        "legal_basis": "Mission d'intérêt public (RGPD art. 6-1-e)",
        "legal_reference": "Code du patrimoine art. L310-1",
        "special_category_basis": "Sans objet (aucune donnée de catégorie particulière)",
        "persons": "Lecteurs inscrits ; enfants",
        "data_categories": (
            "Donnée d'identification : Lecteurs inscrits des bibliothèques (Nom, Courriel)\n"
            "Donnée de service : Aides facultatives du CCAS (N° d'aide) ; "
            "Lecteurs inscrits des bibliothèques (N° de carte)"
        ),
        "sources": (
            "Aides facultatives du CCAS (ccas_aid) ; Lecteurs inscrits des bibliothèques "
            "(library_members)"
        ),
        "recipients": "Médiathèques ; prestataire du logiciel",
        "transfers": "Aucun transfert hors de l'Union européenne",
        "retention": "1 an après la fin de l'adhésion",
        "security": (
            "Accès réservé aux rôles habilités pour cette finalité (refus par défaut) ; "
            "chaque consultation est journalisée. Postes des bibliothécaires uniquement"
        ),
        "output": "Nominative",
        "proactive": "Oui : les résidents peuvent s'y opposer (RGPD art. 21)",
        "consent": "Non",
        "dpia": "AIPD-2026-09",
        "dpo": "DPO mutualisé — dpo@test.example",
        "updated": DAY,
    }


def test_register_lists_what_the_purpose_may_see(small: Policy, catalog: ContractCatalog) -> None:
    """A social secret a non-social purpose asks for is refused by the read, so not listed."""
    row = register_rows(small, catalog, updated=DAY)[0]
    assert "Montant accordé" not in row["data_categories"]
    assert "N° d'aide" in row["data_categories"]


def test_missing_entries_are_said_not_left_blank(small: Policy, catalog: ContractCatalog) -> None:
    row = register_rows(small, catalog, updated=DAY)[1]
    assert row["legal_reference"] == row["persons"] == row["recipients"] == "Non renseigné"
    assert row["consent"].startswith("Oui")
    assert row["data_categories"] == "Aucune donnée issue des sources"
    assert all(row.values())


def test_shipped_register_has_one_full_row_per_purpose(
    shipped: Policy, catalog: ContractCatalog
) -> None:
    rows = register_rows(shipped, catalog, updated=DAY)
    assert [r["reference"] for r in rows] == list(shipped.purposes)
    for row in rows:
        assert list(row) == [key for key, _header in REGISTER_COLUMNS]
        assert all(value.strip() for value in row.values()), row["reference"]
        assert row["updated"] == DAY


def test_shipped_register_golden_checks(shipped: Policy, catalog: ContractCatalog) -> None:
    rows = {r["reference"]: r for r in register_rows(shipped, catalog, updated=DAY)}
    social = rows["ccas_social_support"]
    assert social["controller"].startswith("CCAS de la Métropole fictive")
    assert (
        "Catégorie particulière (RGPD art. 9) : Aides facultatives du CCAS"
        in (social["data_categories"])
    )
    assert "Situation de handicap déclarée" in social["data_categories"]
    assert social["special_category_basis"].startswith("RGPD art. 9-2-b")
    assert social["retention"] == "5 ans après la dernière aide, puis tri d'archives"
    assert "délégataire Eaux du Rhône Métropole" in social["sources"]
    assert rows["canteen_tariff_outreach"]["proactive"].startswith("Oui")
    assert rows["service_information"]["consent"].startswith("Oui")
    assert rows["service_synergies"]["output"].startswith("Agrégée uniquement")


@pytest.mark.parametrize(
    ("text", "plain"),
    [
        ("P5Y", "5 ans"),
        ("P1Y (journal de sécurité)", "1 an (journal de sécurité)"),
        ("P1Y6M après la fin", "1 an et 6 mois après la fin"),
        ("résultats agrégés conservés P5Y", "résultats agrégés conservés 5 ans"),
        ("P2W, P1D", "2 semaines, 1 jour"),
        ("jusqu'au retrait", "jusqu'au retrait"),
        ("APP5Y et P5Yx", "APP5Y et P5Yx"),
    ],
)
def test_plain_durations(text: str, plain: str) -> None:
    assert plain_durations(text) == plain


# --- files ------------------------------------------------------------------------------------


def test_csv_for_excel_in_french(tmp_path: Path, shipped: Policy, catalog: ContractCatalog) -> None:
    rows = register_rows(shipped, catalog, updated=DAY)
    path = tmp_path / "registre.csv"
    write_register_csv(path, rows)
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    with path.open(encoding="utf-8-sig", newline="") as handle:
        table = list(csv.reader(handle, delimiter=";"))
    assert table[0] == HEADERS
    assert len(table) == 1 + len(shipped.purposes)
    assert table[1:] == [[row[key] for key, _h in REGISTER_COLUMNS] for row in rows]
    assert [p.name for p in tmp_path.iterdir()] == ["registre.csv"]  # no temporary file left


def _ods_table(path: Path) -> tuple[list[list[str]], list[bool]]:
    """The sheet « Registre » as text, and whether each header cell is bold."""
    from odf import teletype
    from odf.opendocument import load
    from odf.style import Style, TextProperties
    from odf.table import Table, TableCell, TableRow
    from odf.text import P

    doc = load(str(path))
    bold = {
        s.getAttribute("name")
        for s in doc.automaticstyles.getElementsByType(Style)
        if any(t.getAttribute("fontweight") == "bold" for t in s.getElementsByType(TextProperties))
    }
    assert bold
    (sheet,) = doc.spreadsheet.getElementsByType(Table)
    assert sheet.getAttribute("name") == "Registre"
    rows = []
    for row in sheet.getElementsByType(TableRow):
        cells = row.getElementsByType(TableCell)
        rows.append(
            ["\n".join(teletype.extractText(p) for p in c.getElementsByType(P)) for c in cells]
        )
    header_cells = sheet.getElementsByType(TableRow)[0].getElementsByType(TableCell)
    return rows, [c.getAttribute("stylename") in bold for c in header_cells]


def test_ods_opens_back(tmp_path: Path, shipped: Policy, catalog: ContractCatalog) -> None:
    rows = register_rows(shipped, catalog, updated=DAY)
    path = tmp_path / "registre.ods"
    write_register_ods(path, rows)
    table, bold = _ods_table(path)
    assert table[0] == HEADERS
    assert all(bold)
    assert len(table) == 1 + len(shipped.purposes)
    assert table[1:] == [[row[key] for key, _h in REGISTER_COLUMNS] for row in rows]


def test_json_register(tmp_path: Path, shipped: Policy, catalog: ContractCatalog) -> None:
    path = write_register(tmp_path / "registre.json", shipped, catalog, "json", updated=DAY)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["purposes"] == register_rows(shipped, catalog, updated=DAY)
    assert [c["header"] for c in data["columns"]] == HEADERS
    assert data["policy_digest"] == shipped.digest
    assert data["controller"]["dpo_contact"] == shipped.controller.dpo_contact


def test_write_register_into_a_folder(
    tmp_path: Path, small: Policy, catalog: ContractCatalog
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    paths = [
        write_register(out, small, catalog, fmt, updated=DAY)
        for fmt in ("csv", "ods", "html", "json")
    ]
    assert [p.name for p in paths] == [
        f"registre-des-traitements.{x}" for x in ("csv", "ods", "html", "json")
    ]
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in paths)


def test_unknown_format_and_unwritable_path(
    tmp_path: Path, small: Policy, catalog: ContractCatalog
) -> None:
    with pytest.raises(TerritoriaError) as unknown:
        write_register(tmp_path / "r.xls", small, catalog, "xls", updated=DAY)  # type: ignore[arg-type]
    assert unknown.value.code == "format_unknown"
    with pytest.raises(TerritoriaError) as missing:
        write_register(tmp_path / "nowhere" / "r.csv", small, catalog, "csv", updated=DAY)
    assert missing.value.code == "output_unwritable"
    assert not (tmp_path / "nowhere").exists()


# --- the public page --------------------------------------------------------------------------


def test_public_page(shipped: Policy, catalog: ContractCatalog) -> None:
    page = render_register_html(shipped, catalog, updated=DAY)
    text = html.unescape(page)
    assert '<html lang="fr">' in page
    assert '<a class="skip" href="#contenu">' in page and '<main id="contenu">' in page
    assert "<script" not in page
    for purpose in shipped.purposes.values():
        assert purpose.name in text
        assert f'id="traitement-{purpose.id}"' in page
    assert shipped.controller.name in text and shipped.controller.dpo_contact in text
    assert DAY in text


def test_public_page_names_no_agent(shipped: Policy, catalog: ContractCatalog) -> None:
    text = html.unescape(render_register_html(shipped, catalog, updated=DAY))
    public_ids = set(shipped.services) | set(shipped.roles)  # "dpo" is also a service's id
    for agent in shipped.agents.values():
        assert agent.name not in text
        if agent.id not in public_ids:
            assert agent.id not in text
    assert "Sophie Marchand" not in text


def test_public_page_speaks_plain_french(shipped: Policy, catalog: ContractCatalog) -> None:
    text = html.unescape(render_register_html(shipped, catalog, updated=DAY))
    assert "Situation de handicap déclarée" in text and "Ressources mensuelles du foyer" in text
    assert "monthly_resources" not in text and "disability" not in text  # no column names
    assert "après un délai de 6 mois" in text  # ccas_aid_control's transparency delay
    assert "P5Y" not in text


def test_public_page_is_deterministic(small: Policy, catalog: ContractCatalog) -> None:
    first = render_register_html(small, catalog, updated=DAY)
    assert first == render_register_html(small, catalog, updated=DAY)
    text = html.unescape(first)
    assert "Léa Secrète" not in text and "lea.biblio" not in text
    assert "Lettre d'information" in text
