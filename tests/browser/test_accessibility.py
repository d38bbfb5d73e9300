"""WCAG 2.1 AA in a real browser: axe-core on every page, reflow at 320 px, keyboard focus.

Every page is one row of :data:`PAGES`: a name (also its screenshot,
``artifacts/screenshots/pages/<name>.png``), who looks at it, its path and the HTTP status
it must answer. ``{placeholders}`` in a path are found through the pages themselves (a person
of the CCAS, a pair of the review queue); ``then`` acts on the page before the check (a
search, an htmx swap, a refused form). A new page is one more row.

axe-core is the copy bundled in the PyPI package ``axe-playwright-python`` (never fetched).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, ViewportSize, expect

from .conftest import SCREENSHOTS, Server, Site, someone_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]

AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
AXE_OPTIONS: dict[str, Any] = {
    "runOnly": {"type": "tag", "values": AXE_TAGS},
    "resultTypes": ["violations"],
}
NARROW: ViewportSize = {
    "width": 320,
    "height": 640,
}  # WCAG 1.4.10 reflow: 320 CSS px, no horizontal scroll
WIDE: ViewportSize = {"width": 1280, "height": 800}
RESIDENT = "resident"  # the provider's first demo resident
CCAS = "ccas_social_support"


# -- steps some pages need before they are checked -----------------------------------------------


def _has_table(site: Site) -> None:
    expect(site.page.locator("main table tbody tr").first).to_be_visible()


def _provider_search(site: Site) -> None:
    site.page.get_by_label("Nom et prénom").fill("martin")
    site.page.get_by_role("button", name="Rechercher").click()
    site.page.wait_for_url(re.compile(r"/interaction/.+q=martin"))


def _cancel_login(site: Site) -> None:
    site.page.get_by_role("button", name="Annuler et revenir au service").click()
    site.page.wait_for_url(re.compile(r"/connexion/agent/retour"))


def _verify_htmx(site: Site) -> None:
    site.page.get_by_role("button", name="Vérifier le journal").click()
    expect(site.page.locator("#verification-resultat")).to_contain_text("Chaîne")


def _verify_without_js(site: Site) -> None:
    """The plain form (as without JavaScript): ``form.submit()`` fires no htmx handler."""
    with site.page.expect_navigation():
        site.page.locator('form[action="/console/dpo/verification"]').evaluate("f => f.submit()")


def _toggle_consent(site: Site) -> None:
    """Give or withdraw the first consent: the card swapped in by htmx, with its message."""
    button = site.page.locator("section.card").get_by_role(
        "button", name=re.compile(r"mon consentement")
    )
    button.first.click()
    expect(site.page.locator("section.card [role=status]").first).to_be_visible()


def _bad_rectification(site: Site) -> None:
    """A rectification of a record that is not the resident's: the form again, with its error."""
    site.page.get_by_label(re.compile(r"^Donnée à corriger")).select_option(index=1)
    site.page.get_by_label(re.compile(r"^Numéro de la fiche")).fill("FICHE-INEXISTANTE")
    site.page.get_by_label(re.compile(r"^Valeur exacte")).fill("valeur d'essai")
    site.page.get_by_role("button", name="Envoyer la demande").click()
    expect(site.page.get_by_role("alert")).to_be_visible()


# -- the pages ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checked:
    name: str
    actor: str | None  # None: nobody logged in; RESIDENT; else an agent of actors.yaml
    path: str
    status: int = 200
    then: Callable[[Site], None] | None = None


def _open_first_household(site: Site) -> None:
    site.page.locator('table a[href^="/console/non-recours/foyers/"]').first.click()
    site.page.wait_for_load_state()


PAGES: tuple[Checked, ...] = (
    # public
    Checked("accueil", None, "/"),
    Checked("accessibilite", None, "/accessibilite"),
    Checked("mentions-legales", None, "/mentions-legales"),
    Checked("donnees-personnelles", None, "/donnees-personnelles"),
    Checked("registre", None, "/registre"),
    Checked("erreur-404", None, "/page-qui-n-existe-pas", 404),
    # the local identity provider and the login's outcomes
    Checked("fournisseur-agents", None, "/connexion/agent"),
    Checked("fournisseur-residents", None, "/connexion/resident"),
    Checked("fournisseur-recherche", None, "/connexion/resident", then=_provider_search),
    Checked("fournisseur-refus", None, "/oidc-local/agents/authorize?client_id=x", 400),
    Checked("fournisseur-deconnexion", None, "/oidc-local/agents/session/end"),
    Checked("connexion-annulee", None, "/connexion/agent", then=_cancel_login),
    Checked("connexion-sans-demande", None, "/connexion/agent/retour?code=x&state=y", 400),
    # agents' console
    Checked("console-recherche", "claire.ccas", "/console"),
    Checked("console-resultats", "claire.ccas", f"/console?finalite={CCAS}&q={{ccas_name}}"),
    Checked("console-360", "claire.ccas", f"/console/personnes/{{ccas_person}}?finalite={CCAS}"),
    Checked("console-introuvable", "lea.biblio", "/console/personnes/{ccas_person}", 404),
    Checked("console-refus", "claire.ccas", "/console/rapprochements", 403),
    Checked("console-sources", "marc.donnees", "/console/sources"),
    Checked(
        "console-quarantaine",
        "ines.eau",
        "/console/sources/water_readings/quarantaine",
        then=_has_table,
    ),
    Checked("console-rapprochements", "marc.donnees", "/console/rapprochements"),
    Checked("console-explication", "marc.donnees", "/console/rapprochements/explication?{pair}"),
    Checked("console-synergies", "marc.donnees", "/console/synergies"),
    Checked("console-dpo", "dpo", "/console/dpo"),
    Checked("console-dpo-journal", "dpo", "/console/dpo?acteur=claire.ccas&decision=allow"),
    Checked("console-dpo-verification", "dpo", "/console/dpo", then=_verify_htmx),
    Checked("console-verification", "dpo", "/console/dpo", then=_verify_without_js),
    # the 4P services in the console
    Checked("dechets-facturation", "paul.dechets", "/console/dechets"),
    Checked("dechets-facture", "paul.dechets", "/console/dechets/facture?{waste_bill}"),
    Checked(
        "dechets-facture-introuvable",
        "paul.dechets",
        "/console/dechets/facture?redevable=INCONNU",
        404,
    ),
    Checked("dechets-periode-invalide", "paul.dechets", "/console/dechets?periode=2024-S2", 422),
    Checked("dechets-anomalies", "paul.dechets", "/console/dechets/anomalies"),
    Checked("dechets-contestations", "paul.dechets", "/console/dechets/contestations"),
    Checked("dechets-simulation", "paul.dechets", "/console/dechets/simulation"),
    Checked(
        "dechets-simulation-erreur", "paul.dechets", "/console/dechets/simulation?budget=abc", 422
    ),
    Checked("dechets-refus", "lea.biblio", "/console/dechets", 403),
    Checked("non-recours-liste", "claire.ccas", "/console/non-recours?mois=2025-11"),
    Checked(
        "non-recours-foyer",
        "claire.ccas",
        "/console/non-recours?mois=2025-11",
        then=_open_first_household,
    ),
    Checked("non-recours-suivi", "claire.ccas", "/console/non-recours/suivi?mois=2025-11"),
    Checked("non-recours-notice", "claire.ccas", "/console/non-recours/notice?mois=2025-11"),
    Checked("non-recours-mois-invalide", "claire.ccas", "/console/non-recours?mois=2025-13", 422),
    Checked(
        "non-recours-introuvable", "claire.ccas", "/console/non-recours/foyers/MEN.inconnu", 404
    ),
    Checked("non-recours-refus", "lea.biblio", "/console/non-recours", 403),
    # residents' portal
    Checked("portail-services", RESIDENT, "/portail"),
    Checked("portail-consultations", RESIDENT, "/portail/consultations"),
    Checked("portail-consultations-toutes", RESIDENT, "/portail/consultations?tout=true"),
    Checked("portail-choix", RESIDENT, "/portail/choix"),
    Checked("portail-choix-modifie", RESIDENT, "/portail/choix", then=_toggle_consent),
    Checked("portail-droits", RESIDENT, "/portail/droits"),
    Checked("portail-droits-erreur", RESIDENT, "/portail/droits", then=_bad_rectification),
    Checked("portail-algorithmes", RESIDENT, "/portail/algorithmes"),
    Checked("portail-dechets", RESIDENT, "/portail/dechets"),
    Checked("portail-dechets-erreur", RESIDENT, "/portail/dechets?periode=2031-S1", 422),
)


# -- visitors kept for the module, and the placeholders they find ---------------------------------


class Visitors:
    """One logged-in browser context per actor, shared by this module's tests."""

    def __init__(self, browser: Browser, server: Server) -> None:
        self.browser, self.server = browser, server
        self.sites: dict[str | None, Site] = {}
        self.values: dict[str, str] = {}

    def site(self, actor: str | None) -> Site:
        if actor not in self.sites:
            site = Site.open(self.browser, self.server, WIDE)
            if actor == RESIDENT:
                site.login_resident()
            elif actor is not None:
                site.login_agent(actor)
            self.sites[actor] = site
        return self.sites[actor]

    def resolve(self, path: str) -> str:
        for name in re.findall(r"\{(\w+)\}", path):
            if name not in self.values:
                self.values.update(FINDERS[name](self))
            path = path.replace(f"{{{name}}}", self.values[name])
        return path

    def close(self) -> None:
        for site in self.sites.values():
            site.close()


def _ccas_person(visitors: Visitors) -> dict[str, str]:
    found = someone_in(visitors.site("claire.ccas"), CCAS)
    return {"ccas_person": found.person, "ccas_name": quote(found.name)}


def _pair(visitors: Visitors) -> dict[str, str]:
    site = visitors.site("marc.donnees")
    site.go("/console/rapprochements")
    link = site.page.get_by_role("link", name=re.compile(r"^Recalculer l'explication")).first
    query = urlsplit(link.get_attribute("href") or "").query
    assert query, "la file de revue est vide : aucune paire à expliquer"
    return {"pair": query}


def _waste_bill(visitors: Visitors) -> dict[str, str]:
    site = visitors.site("paul.dechets")
    site.go("/console/dechets")
    link = site.page.locator('a[href^="/console/dechets/facture?"]').first
    query = urlsplit(link.get_attribute("href") or "").query
    assert query, "la facturation n'a aucun redevable"
    return {"waste_bill": query}


FINDERS: dict[str, Callable[[Visitors], dict[str, str]]] = {
    "ccas_person": _ccas_person,
    "ccas_name": _ccas_person,
    "pair": _pair,
    "waste_bill": _waste_bill,
}


@pytest.fixture(scope="module")
def visitors(browser: Browser, server: Server) -> Iterator[Visitors]:
    found = Visitors(browser, server)
    yield found
    found.close()


# -- checks -----------------------------------------------------------------------------------------


def _report(violations: list[dict[str, Any]]) -> str:
    lines = []
    for v in violations:
        lines.append(f"- {v['id']} ({v.get('impact')}) : {v.get('help')} [{v.get('helpUrl')}]")
        for node in v.get("nodes", [])[:8]:
            target = ", ".join(str(t) for t in node.get("target", []))
            lines.append(f"    cible : {target}")
            lines.append(f"      html : {' '.join(str(node.get('html', '')).split())[:200]}")
            summary = " ".join(str(node.get("failureSummary", "")).split())
            if summary:
                lines.append(f"      {summary[:300]}")
    return "\n".join(lines)


def axe_violations(site: Site) -> list[dict[str, Any]]:
    results = Axe().run(site.page, options=AXE_OPTIONS)
    violations: list[dict[str, Any]] = results.response["violations"]
    return violations


_OVERFLOWING = """() => {
  const limit = document.documentElement.clientWidth;
  const scrolls = (el) => {  // inside a box that scrolls or clips on its own (e.g. .table-wrap)
    for (let p = el; p && p !== document.body; p = p.parentElement) {
      if (getComputedStyle(p).overflowX !== 'visible') return true;
    }
    return false;
  };
  const name = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
    + (typeof el.className === 'string' && el.className ? '.' + el.className.trim().split(/ +/).join('.') : '');
  const out = new Set();
  for (const el of document.querySelectorAll('body *')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.right <= limit + 1) continue;
    // an absolutely positioned box escapes a scroller that is not its containing block
    const absolute = getComputedStyle(el).position === 'absolute';
    if (absolute || !scrolls(el.parentElement)) {
      out.add(name(el) + (absolute ? ' (position absolue)' : '') + ' : '
        + (el.textContent || '').trim().replace(/\\s+/g, ' ').slice(0, 50));
    }
  }
  const range = document.createRange();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    range.selectNodeContents(n);
    if (range.getBoundingClientRect().right > limit + 1 && !scrolls(n.parentElement)) {
      out.add('texte sans coupure dans ' + name(n.parentElement) + ' : ' + n.textContent.trim().slice(0, 50));
    }
  }
  return [...out].slice(0, 10);
}"""


def horizontal_overflow(site: Site) -> int:
    """CSS pixels the page is wider than its viewport (0: no horizontal scroll)."""
    width: int = site.page.evaluate(
        "() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
        " - window.innerWidth"
    )
    return max(0, width)


def overflowing(site: Site) -> list[str]:
    """The outermost elements that stick out of the viewport, to say what to fix."""
    found: list[str] = site.page.evaluate(_OVERFLOWING)
    return found


def _cases() -> list[Any]:
    return [
        pytest.param(
            page,
            id=page.name,
        )
        for page in PAGES
    ]


@pytest.mark.parametrize("checked", _cases())
def test_page_has_no_wcag_violation_and_reflows(visitors: Visitors, checked: Checked) -> None:
    site = visitors.site(checked.actor)
    site.problems.clear()
    site.page.set_viewport_size(WIDE)
    site.go(visitors.resolve(checked.path), checked.status)
    if checked.then is not None:
        checked.then(site)
    expect(site.page.get_by_role("heading", level=1)).to_have_count(1)
    violations = axe_violations(site)
    site.shot(checked.name, SCREENSHOTS / "pages")
    site.page.set_viewport_size(NARROW)
    overflow = horizontal_overflow(site)
    culprits = overflowing(site) if overflow else []
    site.page.set_viewport_size(WIDE)
    failures = []
    if violations:
        failures.append(
            f"{len(violations)} violation(s) axe (WCAG 2.1 AA) :\n{_report(violations)}"
        )
    if overflow:
        failures.append(
            f"défilement horizontal de {overflow} px à 320 px de large (RGAA 10.11), dû à :\n  "
            + "\n  ".join(culprits)
        )
    failures.extend(site.problems)
    assert not failures, f"{checked.name} ({site.path()}) :\n" + "\n".join(failures)


# -- keyboard -------------------------------------------------------------------------------------

_FOCUSED = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const s = getComputedStyle(el);
  const r = el.getBoundingClientRect();
  return {
    tag: el.tagName.toLowerCase(),
    label: (el.getAttribute('aria-label') || el.innerText || el.value || el.id || '')
      .trim().slice(0, 60),
    cls: el.className || '',
    outline: s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0,
    shadow: s.boxShadow !== 'none',
    visible: r.width > 0 && r.height > 0 && r.bottom > 0 && r.right > 0,
  };
}"""
MAX_TABS = 150


@pytest.mark.parametrize(
    ("actor", "path"), [(None, "/"), ("claire.ccas", "/console"), (RESIDENT, "/portail")]
)
def test_keyboard_reaches_the_skip_link_first_and_focus_is_always_visible(
    open_site: Callable[..., Site], actor: str | None, path: str
) -> None:
    site = open_site(viewport=WIDE)
    if actor == RESIDENT:
        site.login_resident()
    elif actor is not None:
        site.login_agent(actor)
    site.go(path)
    site.page.keyboard.press("Tab")
    first = site.page.evaluate(_FOCUSED)
    assert first is not None and "skip-link" in first["cls"], f"premier arrêt de Tab : {first}"
    assert first["visible"], "le lien d'évitement reste invisible quand il a le focus"
    invisible = []
    seen = 0
    for _ in range(MAX_TABS):
        focused = site.page.evaluate(_FOCUSED)
        if focused is None or (seen and "skip-link" in focused["cls"]):
            break
        seen += 1
        if not (focused["outline"] or focused["shadow"]) or not focused["visible"]:
            invisible.append(focused)
        site.page.keyboard.press("Tab")
    assert seen > 3, "Tab n'atteint presque aucun contrôle"
    assert not invisible, "focus invisible sur :\n" + "\n".join(map(str, invisible))

    site.go(path)
    site.page.keyboard.press("Tab")
    site.page.keyboard.press("Enter")
    assert site.page.evaluate("() => document.activeElement.id") == "contenu", (
        "le lien d'évitement ne mène pas au contenu"
    )


@pytest.mark.parametrize(
    ("name", "actor", "path"),
    [("accueil", None, "/"), ("console-recherche", "claire.ccas", "/console")],
)
def test_no_horizontal_scroll_at_320_px(
    open_site: Callable[..., Site], name: str, actor: str | None, path: str
) -> None:
    site = open_site(viewport=NARROW)
    if actor is not None:
        site.login_agent(actor)
    site.go(path)
    assert horizontal_overflow(site) == 0, f"{path} : défilement horizontal à 320 px"
    site.shot(f"320px-{name}")
