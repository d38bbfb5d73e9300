"""The 4P services in a real browser: the waste service bills, a payer's lift is contested and
credited; the CCAS opens the non-take-up worklist and records a contact; a resident reads
their waste account.

Screenshots: dechets-facturation, dechets-facture, dechets-contestation, dechets-avoir,
non-recours-liste, non-recours-foyer, non-recours-contact, non-recours-suivi, portail-dechets
(``artifacts/screenshots/<name>.png``).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from .conftest import Site

pytestmark = [pytest.mark.browser, pytest.mark.slow]

OpenSite = Callable[..., Site]


def test_a_lift_is_contested_credited_and_the_credit_is_on_the_next_bill(
    open_site: OpenSite,
) -> None:
    site = open_site()
    site.login_agent("paul.dechets")
    site.page.get_by_role("link", name="Redevance incitative").click()
    site.page.wait_for_url(re.compile(r"/console/dechets"))
    expect(site.page.get_by_role("heading", level=1)).to_contain_text("facturation du")
    expect(site.page.locator("main")).to_contain_text("Lecture gouvernée n°")
    site.shot("dechets-facturation")

    # A household's bill (a payer keyed by its pseudonym, not a building's manager).
    site.page.get_by_label(re.compile(r"^Filtrer les redevables")).fill(".k1.")
    site.page.get_by_role("button", name="Filtrer").click()
    site.page.wait_for_url(re.compile(r"/console/dechets\?.*q="))
    link = site.page.locator('a[href^="/console/dechets/facture?"]', has_text=re.compile(r"\.k1\."))
    link.first.click()
    site.page.wait_for_url(re.compile(r"/console/dechets/facture\?"))
    expect(site.page.get_by_role("heading", level=1)).to_contain_text("Facture de")
    total_before = site.page.locator("main").inner_text()
    site.shot("dechets-facture")

    site.page.locator("summary", has_text="Contester cette levée").last.click()
    site.page.get_by_label(re.compile(r"^Ce que dit le redevable")).last.fill(
        "Mon bac n'était pas sorti ce jour-là"
    )
    site.page.get_by_role(
        "button", name=re.compile(r"^Enregistrer la contestation de")
    ).last.click()
    site.page.wait_for_url(re.compile(r"/console/dechets/contestations"))
    expect(site.page.get_by_role("status")).to_be_visible()
    card = site.page.locator("main section", has_text="Mon bac n'était pas sorti").last
    expect(card).to_contain_text("ouverte")
    site.shot("dechets-contestation")

    card.get_by_label(re.compile(r"^Accorder un avoir")).check()
    card.get_by_label(re.compile(r"^Motif de la décision")).fill("Lecture fantôme confirmée")
    card.get_by_role("button", name="Enregistrer la décision").click()
    site.page.wait_for_load_state()
    expect(site.page.get_by_role("status")).to_contain_text("prochaine")
    card.locator("dd a").first.click()  # the payer's bill, from the dispute
    site.page.wait_for_url(re.compile(r"/console/dechets/facture\?"))
    site.page.wait_for_url(re.compile(r"/console/dechets/facture\?"))
    expect(site.page.locator("main table").first).to_contain_text(re.compile(r"[Aa]voir"))
    assert site.page.locator("main").inner_text() != total_before
    site.shot("dechets-avoir")


def test_the_ccas_opens_the_worklist_and_records_a_contact(open_site: OpenSite) -> None:
    site = open_site()
    site.login_agent("claire.ccas")
    site.page.get_by_role("link", name="Non-recours").click()
    site.page.wait_for_url(re.compile(r"/console/non-recours"))
    site.page.get_by_role("textbox", name=re.compile(r"^Mois de référence")).fill("2025-11")
    site.page.get_by_role("button", name="Afficher ce mois").click()
    site.page.wait_for_url(re.compile(r"mois=2025-11"))
    expect(site.page.get_by_role("heading", level=2).first).to_contain_text("11/2025")
    expect(site.page.locator("main")).to_contain_text("suggestion")
    site.shot("non-recours-liste")

    site.page.locator('table a[href^="/console/non-recours/foyers/"]').first.click()
    site.page.wait_for_url(re.compile(r"/console/non-recours/foyers/"))
    expect(site.page.get_by_role("heading", level=1)).to_contain_text("Détail du calcul")
    expect(site.page.locator("main")).to_contain_text("Provenance")
    site.shot("non-recours-foyer")

    site.page.get_by_label("Canal").select_option(label="téléphone")
    site.page.get_by_label(re.compile(r"^Note")).fill("Dossier CAF préparé ensemble")
    site.page.get_by_role("button", name="Noter le contact").click()
    site.page.wait_for_url(re.compile(r"#contacts$"))
    expect(site.page.locator("section[aria-labelledby=contacts] table")).to_contain_text(
        "Dossier CAF préparé ensemble"
    )
    site.shot("non-recours-contact")

    site.page.get_by_role("link", name=re.compile(r"^Recours après contact")).first.click()
    expect(site.page.get_by_role("heading", level=1)).to_have_text("Recours après contact")
    expect(site.page.locator("main table").first).to_contain_text("contactés")
    site.shot("non-recours-suivi")


def test_a_resident_reads_their_waste_account(open_site: OpenSite) -> None:
    site = open_site()
    site.login_resident()
    site.page.get_by_role("link", name="Mes déchets").click()
    site.page.wait_for_url(re.compile(r"/portail/dechets"))
    expect(site.page.get_by_role("heading", level=1)).to_have_text("Mes déchets")
    expect(site.page.get_by_role("heading", name="Mes bacs")).to_be_visible()
    site.shot("portail-dechets")


def test_a_residents_contest_reaches_the_waste_service(open_site: OpenSite) -> None:
    resident = open_site()
    resident.login_resident()
    resident.go("/portail/dechets")
    rows = resident.page.locator("table", has=resident.page.locator("th", has_text="Contester"))
    row = rows.locator("tbody tr", has=resident.page.locator("summary")).last
    lift = row.locator("th").inner_text().strip()
    row.locator("summary").click()
    row.get_by_label(re.compile(r"^Pourquoi cette levée")).fill("Bac rentré ce jour-là")
    row.get_by_role("button", name=f"Envoyer la contestation de {lift}").click()
    resident.page.wait_for_url(re.compile(r"/portail/dechets\?.*#contestations$"))
    expect(resident.page.get_by_role("status")).to_contain_text("envoyée au service propreté")
    expect(resident.page.locator("#contestations ~ div table").first).to_contain_text(lift)
    resident.shot("portail-dechets-contestation")

    agent = open_site()
    agent.login_agent("paul.dechets")
    agent.go("/console/dechets/contestations")
    requests = agent.page.locator("section[aria-labelledby=demandes] table")
    expect(requests).to_contain_text(lift)
    expect(requests).to_contain_text("Bac rentré ce jour-là")
    agent.page.get_by_role("button", name=f"Ouvrir la contestation de {lift}").click()
    agent.page.wait_for_url(re.compile(r"/console/dechets/contestations"))
    expect(agent.page.locator("main section.card", has_text=lift).first).to_contain_text("ouverte")
    agent.shot("dechets-demande-ouverte")
