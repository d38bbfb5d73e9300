"""A resident in a real browser: FranceConnect login, my services, who accessed my data (after an
agent read it), consents, the art. 15 export, the public algorithms' notices.

Screenshots: fournisseur-identite-residents, portail-services, portail-consultations,
portail-choix, portail-droits, portail-algorithmes (``artifacts/screenshots/<name>.png``).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import expect

from .conftest import DemoResident, Found, Site, Territory, search_results

pytestmark = [pytest.mark.browser, pytest.mark.slow]

OpenSite = Callable[..., Site]
NAV = "Navigation de mon espace"


def _sources_of(workspace: Path, account: str) -> set[str]:
    """The sources holding a record of this sandbox person (the sandbox's own truth)."""
    with (workspace / "sandbox" / "truth" / "records.csv").open(encoding="utf-8") as f:
        return {row["source"] for row in csv.DictReader(f) if row["person_id"] == account}


def _readers(territory: Territory, sources: set[str]) -> list[tuple[str, str]]:
    """(purpose, agent) pairs that may search and open a 360° view over one of these sources
    and whose reads the resident sees at once (no transparency delay); social services last."""
    policy = territory.policy
    found = []
    for purpose in policy.purposes.values():
        if purpose.transparency_delay or purpose.output != "identified":
            continue
        if not set(purpose.sources) & sources:
            continue
        agents = territory.agents_with(purpose.id, "search", "person_360")
        if agents and purpose.service in policy.services:
            found.append((purpose.id, agents[0]))
    return sorted(found, key=lambda pa: policy.services[policy.purposes[pa[0]].service].social)


def _read_by_an_agent(
    open_site: OpenSite, territory: Territory, resident: DemoResident
) -> tuple[str, str]:
    """An agent searches the resident by name and opens their 360° view; (purpose, agent)."""
    sources = _sources_of(territory.workspace, resident.account)
    for purpose, agent in _readers(territory, sources):
        site = open_site()
        site.login_agent(agent)
        hits: list[Found] = [
            hit
            for hit in search_results(site, purpose, resident.name)
            if hit.birth_year in ("", resident.birth_year)
        ]
        if len(hits) == 1:
            site.go(hits[0].href)
            expect(site.page.get_by_role("heading", level=1)).to_have_text(
                "Vue d'ensemble de l'usager"
            )
            site.close()
            return purpose, agent
        site.close()
    raise AssertionError(f"aucun agent ne trouve {resident.label} dans ses finalités")


def test_resident_sees_services_and_who_read_them_without_the_agent_name(
    open_site: OpenSite, territory: Territory
) -> None:
    site = open_site()
    site.to_provider("residents")
    expect(site.page.get_by_role("heading", level=1)).to_contain_text("FranceConnect")
    site.shot("fournisseur-identite-residents")
    resident = site.login_resident()
    expect(site.page.get_by_role("heading", level=1)).to_have_text("Mes services")
    expect(site.page.locator("main section").first).to_be_visible()
    assert resident.name.split()[-1].lower() in site.main_text().lower()
    site.shot("portail-services")

    purpose, agent = _read_by_an_agent(open_site, territory, resident)
    policy = territory.policy
    service = policy.services[policy.purposes[purpose].service].name
    site.page.get_by_role("navigation", name=NAV).get_by_role(
        "link", name="Qui a consulté mes données"
    ).click()
    expect(site.page.get_by_role("heading", level=1)).to_have_text("Qui a consulté mes données")
    rows = site.page.get_by_role("table").locator("tbody tr")
    row = rows.filter(has_text=service).filter(has_text=policy.purposes[purpose].name)
    expect(row.first).to_be_visible()
    text = site.main_text()
    agent_name = re.sub(r"\s*\(.*\)$", "", policy.agents[agent].name)
    assert agent not in text and agent_name not in text, "le nom de l'agent est montré"
    site.shot("portail-consultations")


def test_resident_gives_then_withdraws_a_consent(open_site: OpenSite) -> None:
    site = open_site()
    site.login_resident()
    site.page.get_by_role("navigation", name=NAV).get_by_role(
        "link", name="Consentements et oppositions"
    ).click()
    expect(site.page.get_by_role("heading", level=1)).to_have_text("Consentements et oppositions")
    card = site.page.locator("section.card").filter(
        has=site.page.get_by_role("button", name=re.compile(r"mon consentement"))
    )
    expect(card.first, "aucun traitement sur consentement au registre").to_be_visible()
    card_id = card.first.get_attribute("id") or ""
    card = site.page.locator(f"section#{card_id}")
    give = card.get_by_role("button", name=re.compile(r"^Donner mon consentement"))
    if give.count():
        give.click()
        expect(card.get_by_role("status")).to_contain_text("Consentement donné")
    card.get_by_role("button", name=re.compile(r"^Retirer mon consentement")).click()
    expect(card.get_by_role("status")).to_contain_text("Consentement retiré")
    expect(card.get_by_role("button", name=re.compile(r"^Donner mon consentement"))).to_be_visible()
    site.page.reload()
    history = site.page.get_by_role("table", name=re.compile(r"^Vos consentements"))
    expect(history.locator("tbody tr").first).to_contain_text("consentement retiré")
    site.shot("portail-choix")


def test_resident_downloads_the_access_export(open_site: OpenSite) -> None:
    site = open_site()
    resident = site.login_resident()
    site.page.get_by_role("navigation", name=NAV).get_by_role("link", name="Mes droits").click()
    expect(site.page.get_by_role("heading", level=1)).to_have_text("Mes droits")
    site.shot("portail-droits")
    family = resident.name.split()[-1]

    with site.page.expect_download() as info:
        site.page.get_by_role("link", name=re.compile(r"format réutilisable \(JSON\)")).click()
    download = info.value
    assert download.suggested_filename.endswith(".json")
    data = json.loads(Path(download.path()).read_text(encoding="utf-8"))
    assert isinstance(data, dict) and data, "export JSON vide"
    dumped = json.dumps(data, ensure_ascii=False).lower()
    assert family.lower() in dumped, "l'export ne contient pas les fiches du résident"

    with site.page.expect_download() as info:
        site.page.get_by_role("link", name=re.compile(r"document lisible")).click()
    page = Path(info.value.path()).read_text(encoding="utf-8")
    assert info.value.suggested_filename.endswith(".html")
    assert page.lstrip().lower().startswith("<!doctype html")
    assert family.lower() in page.lower()


def test_resident_reads_the_public_algorithms_notices(open_site: OpenSite) -> None:
    site = open_site()
    site.login_resident()
    site.page.get_by_role("navigation", name=NAV).get_by_role(
        "link", name="Algorithmes publics"
    ).click()
    expect(site.page.get_by_role("heading", level=1)).to_have_text("Algorithmes publics")
    expect(site.page.locator("main")).to_contain_text("L311-3-1")
    expect(site.page.get_by_role("heading", level=3).first).to_be_visible()
    site.shot("portail-algorithmes")
