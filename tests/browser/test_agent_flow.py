"""An agent's day in a real browser: ProConnect login, search under a purpose, the 360° view,
the linkage review queue, the confinement of a purpose, the DPO's register and ledger.

Screenshots: accueil, fournisseur-identite, console-recherche, console-360, console-sources,
console-rapprochements, console-explication, console-synergies, console-dpo
(``artifacts/screenshots/<name>.png``).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from .conftest import PREFIXES, Site, Territory, someone_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CCAS = "ccas_social_support"
LIBRARY = "library_lending"
OpenSite = Callable[..., Site]


def _suggestions(site: Site) -> list[str]:
    """Type two letters in the search field, as an agent would, until htmx suggests names."""
    field = site.page.get_by_label(re.compile(r"^Nom et prénom de l'usager"))
    options = site.page.locator("#suggestions option")
    for prefix in PREFIXES:
        field.fill("")
        with site.page.expect_response(re.compile(r"/console/suggestions\?")) as answer:
            field.press_sequentially(prefix)
        if "<option" in answer.value.text():
            expect(options.first).to_be_attached()  # swapped in by htmx
            return [v for v in options.evaluate_all("els => els.map(e => e.value)") if v]
    raise AssertionError("la recherche ne propose aucune suggestion")


def test_agent_searches_then_sees_only_the_purpose_sources(
    open_site: OpenSite, territory: Territory
) -> None:
    site = open_site()
    site.go("/")
    expect(site.page.get_by_role("heading", level=1)).to_be_visible()
    site.shot("accueil")

    site.page.get_by_role("link", name="Se connecter avec ProConnect").click()
    site.page.wait_for_url(re.compile(r"/oidc-local/agents/authorize"))
    expect(site.page.get_by_role("heading", level=1)).to_contain_text("ProConnect")
    site.shot("fournisseur-identite")
    site.page.get_by_role("button", name=re.compile(r"^Se connecter : Claire Morel")).click()
    site.page.wait_for_url(re.compile(r"/console$"))
    expect(site.page.get_by_role("heading", level=1)).to_have_text("Rechercher un usager")
    expect(site.page.locator("header")).to_contain_text("claire.ccas")

    site.page.get_by_label(re.compile(r"^Finalité sous laquelle vous agissez")).select_option(CCAS)
    name = _suggestions(site)[0]
    site.page.get_by_label(re.compile(r"^Nom et prénom de l'usager")).fill(name)
    site.page.get_by_role("button", name="Rechercher").click()
    site.page.wait_for_url(re.compile(r"/console\?.*q="))
    results = site.page.locator("#resultats table")
    expect(results.locator("caption")).to_contain_text(name)
    expect(results.locator("tbody tr").first).to_contain_text(name.split()[0])
    site.shot("console-recherche")

    results.get_by_role("link", name=re.compile(r"^Ouvrir la vue d'ensemble")).first.click()
    site.page.wait_for_url(re.compile(rf"/console/personnes/.+finalite={CCAS}"))
    expect(site.page.get_by_role("heading", level=1)).to_have_text("Vue d'ensemble de l'usager")
    allowed = set(territory.policy.purposes[CCAS].sources)
    shown = {t.strip() for t in site.page.locator("main section h2").all_inner_texts()}
    assert shown, "la vue d'ensemble ne montre aucune source"
    assert shown <= {territory.titles[s] for s in allowed}, shown
    text = site.main_text()
    for source, title in territory.titles.items():
        if source not in allowed:
            assert title not in text, f"la source {source} apparaît hors de sa finalité"
    site.shot("console-360")

    site.page.get_by_role("link", name="Sources et chargements").click()
    expect(site.page.get_by_role("heading", level=1)).to_have_text("Sources et chargements")
    site.shot("console-sources")


def test_data_officer_decides_a_pair_that_then_leaves_the_queue(open_site: OpenSite) -> None:
    site = open_site()
    site.login_agent("marc.donnees")
    site.page.get_by_role("link", name="Rapprochements").click()
    expect(site.page.get_by_role("heading", level=1)).to_have_text("Rapprochements à trancher")
    first = site.page.locator("main section.card").first
    expect(first, "la file de revue du bac à sable est vide").to_be_visible()
    site.shot("console-rapprochements")

    first.get_by_role("link", name=re.compile(r"^Recalculer l'explication")).click()
    site.page.wait_for_url(re.compile(r"/console/rapprochements/explication\?"))
    expect(site.page.get_by_role("heading", level=1)).to_have_text("Explication d'un rapprochement")
    expect(site.page.get_by_role("table").first).to_contain_text("Poids")
    site.shot("console-explication")
    mention_a = site.page.locator('input[name="mention_a"]').input_value()
    mention_b = site.page.locator('input[name="mention_b"]').input_value()

    site.page.get_by_label("Personnes différentes").check()
    site.page.get_by_label(re.compile(r"^Motif de la décision")).fill(
        "Dates de naissance différentes (essai automatique)"
    )
    site.page.get_by_role("button", name="Enregistrer la décision").click()
    site.page.wait_for_url(re.compile(r"/console/rapprochements(\?|$)"))
    confirmation = site.page.get_by_role("status")
    expect(confirmation).to_contain_text("Décision")
    expect(confirmation).to_contain_text(f"{mention_a} / {mention_b}")
    queue = site.page.locator("main section.card h2")
    assert f"{mention_a} ↔ {mention_b}" not in queue.all_inner_texts()
    site.page.reload()
    assert not any(
        f"{mention_a} ↔ {mention_b}" in h or f"{mention_b} ↔ {mention_a}" in h
        for h in queue.all_inner_texts()
    ), "la paire tranchée est encore dans la file"

    site.page.get_by_role("link", name="Synergies").click()
    expect(site.page.get_by_role("heading", level=1)).to_have_text("Synergies entre services")
    expect(site.page.get_by_role("table")).to_be_visible()
    site.shot("console-synergies")


def test_librarian_cannot_tell_a_ccas_person_from_nobody(open_site: OpenSite) -> None:
    claire = open_site()
    claire.login_agent("claire.ccas")
    person = someone_in(claire, CCAS).person
    assert re.fullmatch(r"[A-Za-z0-9.\-_]+", person), person
    # same shape, same alphabet, last characters changed: a reference that exists nowhere
    nobody = person[:-6] + ("ZZZZZZ" if not person.endswith("ZZZZZZ") else "YYYYYY")

    lea = open_site()
    lea.login_agent("lea.biblio")
    pages = []
    for reference in (person, nobody):
        for query in (f"?finalite={LIBRARY}", ""):
            response = lea.go(f"/console/personnes/{reference}{query}", status=None)
            text = lea.main_text()
            pages.append((response.status, text.replace(reference, "<ref>")))
            assert "Fiche introuvable" in text
            for word in ("CCAS", "Aides facultatives", "action sociale"):
                assert word not in text, f"{word!r} apparaît pour lea.biblio"
    assert pages[0] == pages[2], "une personne du CCAS et une référence inexistante diffèrent"
    assert pages[1] == pages[3], "une personne du CCAS et une référence inexistante diffèrent"


def test_dpo_sees_the_register_searches_the_ledger_and_verifies_it(open_site: OpenSite) -> None:
    site = open_site()
    site.login_agent("dpo")
    site.page.get_by_role("link", name="Registre et journal").click()
    expect(site.page.get_by_role("heading", level=1)).to_have_text("Registre et journal d'audit")
    register = site.page.get_by_role("table", name=re.compile(r"^Finalités du registre"))
    expect(register).to_contain_text(CCAS)

    journal = site.page.get_by_role("region", name="Rechercher dans le journal d'audit")
    journal.get_by_label(re.compile(r"^Acteur")).fill("dpo")
    journal.get_by_role("button", name="Rechercher").click()
    site.page.wait_for_url(re.compile(r"acteur=dpo"))
    ledger = site.page.get_by_role("table", name=re.compile(r"^Journal d'audit"))
    expect(ledger.locator("tbody tr").first).to_contain_text("dpo")
    actors = ledger.locator("tbody tr td:nth-of-type(2)").all_inner_texts()
    assert actors and set(actors) == {"dpo"}, actors

    site.page.get_by_role("button", name="Vérifier le journal").click()
    result = site.page.locator("#verification-resultat")
    expect(result).to_contain_text("Chaîne intègre")
    site.shot("console-dpo")

    site.logout()  # the session ends here and at the provider, then back home
    site.page.wait_for_url(re.compile(r"^[^?]*/(\?state=[^&]+)?$"))
    expect(site.page.get_by_role("link", name="Se connecter avec ProConnect")).to_be_visible()
    assert site.go("/console", status=None).url.count("/oidc-local/agents/authorize") == 1
