"""The CCAS console pages of the non-take-up screening (``/console/non-recours``).

On a copy of the linked 1,500-inhabitant sandbox, with one application for the whole module
(the screening takes seconds), acting as the CCAS social worker under ``ccas_non_take_up``.
The pages are compared with the engine's own run (``run_screening`` called here), every write
and refusal is looked for in the ledger, and the run cache is checked to read the sources once.
Sessions are cookies signed with the application's key, as the OpenID Connect login leaves them.
"""

from __future__ import annotations

import html
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from territoria.apps.tariffs import explain_household
from territoria.apps.tariffs.explain import euros
from territoria.interfaces.runs.tariffs import PURPOSE, Run, reference_month, run_screening
from territoria.interfaces.web.app import create_app
from territoria.interfaces.web.state import SECRETS_ENV, WebState
from web_sessions import CSRF, log_in

MONTH = "2025-11"
PAGE = "/console/non-recours"
ROW = re.compile(
    r'<th scope="row" class="num">(\d+)</th>\s*<td><a href="([^"]+)"><code>([^<]+)</code></a></td>'
    r'\s*<td class="num">([^<]+)</td>'
)


@dataclass
class Web:
    client: TestClient
    state: WebState

    def login(self, actor: str) -> None:
        log_in(self.client, self.state, actor)

    def ledger(self, limit: int = 1000, **filters: Any) -> list[Any]:
        with self.state.lock:
            return self.state.gov.ledger.records(limit=limit, **filters)

    def extracts(self) -> list[Any]:
        """The ledger records of the screening's governed batch reads by the CCAS agent."""
        return [
            r
            for r in self.ledger(actor="claire.ccas", purpose=PURPOSE, kind="read")
            if r.entry.view == "records" and r.entry.reason.startswith("extraction par lot")
        ]

    def text(self, path: str, status: int = 200) -> str:
        response = self.client.get(path)
        assert response.status_code == status, (response.status_code, response.text[:2000])
        return html.unescape(response.text)


@pytest.fixture(scope="module")
def web(linked_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Web]:
    root = tmp_path_factory.mktemp("tariffs-console") / "ws"
    shutil.copytree(linked_template, root)
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv(SECRETS_ENV, raising=False)
        app = create_app(root)
        with TestClient(app, follow_redirects=False) as client:
            yield Web(client, app.state.web)


@pytest.fixture(scope="module")
def expected(web: Web) -> Run:
    """The engine's own run of the month, on the same workspace."""
    with web.state.lock:
        return run_screening(web.state.gov, "claire.ccas", PURPOSE, reference_month(MONTH))


def _rows(page: str) -> list[tuple[int, str, str, str]]:
    return [(int(rank), href, key, amount) for rank, href, key, amount in ROW.findall(page)]


def _household(key: str) -> str:
    return f"{PAGE}/foyers/{quote(key, safe='')}?finalite={PURPOSE}&mois={MONTH}"


# -- the worklist -------------------------------------------------------------------------------


def test_the_worklist_is_the_engines_ranked_list_with_its_month_and_its_notice(
    web: Web, expected: Run
) -> None:
    web.login("claire.ccas")
    entries = expected.worklist.entries
    assert len(entries) > 25, "the sandbox's worklist fills more than one page"
    page = web.text(f"{PAGE}?mois={MONTH}")
    assert "Mois de référence 11/2025" in page and 'value="2025-11"' in page
    assert f"{len(entries)} foyer(s), par montant mensuel non perçu" in page
    rows = _rows(page)
    assert [(r[0], r[2], r[3]) for r in rows] == [
        (e.rank, e.household_key, euros(e.monthly_total)) for e in entries[:25]
    ]
    assert rows[0][1] == _household(entries[0].household_key)
    for line in entries[0].lines:
        assert line.how in page
    assert expected.worklist.notice in page
    assert f"{PAGE}/notice?" in page  # the CRPA notice is one click away
    assert expected.worklist.computed_with in page
    evaluated = len(expected.households) - len(expected.worklist.households_unknown)
    assert f"{len(expected.households)} lu(s), {evaluated} évalué(s)" in page
    second = _rows(web.text(f"{PAGE}?mois={MONTH}&page=2"))
    assert [(r[0], r[2]) for r in second] == [(e.rank, e.household_key) for e in entries[25:50]]


def test_the_bands_table_counts_the_uses_by_service_and_band(web: Web, expected: Run) -> None:
    web.login("claire.ccas")
    page = web.text(f"{PAGE}?mois={MONTH}")
    counts: dict[tuple[str, str], int] = {}
    for b in expected.bands:
        counts[(b.service_label, b.band)] = counts.get((b.service_label, b.band), 0) + 1
    assert counts
    for (service, band), n in counts.items():
        pattern = rf'<th scope="row">{re.escape(service)}</th>\s*<td>{re.escape(band)}</td>\s*<td class="num">{n}</td>'
        assert re.search(pattern, page), (service, band, n)


def test_the_run_is_kept_two_pages_read_once_and_recalcul_reads_again(web: Web) -> None:
    web.login("claire.ccas")
    web.state.runs.drop(("tariffs",))
    before = len(web.extracts())
    first = web.text(f"{PAGE}?mois={MONTH}")
    web.text(f"{PAGE}?mois={MONTH}&page=2")
    web.text(_household(_rows(first)[0][2]))
    extracts = web.extracts()
    assert len(extracts) == before + 1
    assert f"enregistrement n° {extracts[0].seq} du journal d'audit" in first
    refused = web.client.post(f"{PAGE}/recalcul", data={"finalite": PURPOSE, "mois": MONTH})
    assert refused.status_code == 403 and len(web.extracts()) == before + 1
    response = web.client.post(
        f"{PAGE}/recalcul", data={"csrf_token": CSRF, "finalite": PURPOSE, "mois": MONTH}
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"{PAGE}?finalite={PURPOSE}&mois={MONTH}"
    again = web.text(response.headers["location"])
    assert "Repérage recalculé" in again
    assert len(web.extracts()) == before + 2


def test_the_default_month_is_the_previous_one_and_shown(web: Web) -> None:
    web.login("claire.ccas")
    shown = reference_month(None, web.state.gov.clock().date())
    page = web.text(f"{PAGE}/notice")
    assert f'value="{shown:%Y-%m}"' in page
    assert f"Mois de référence</dt><dd>{shown:%m/%Y}" in page


@pytest.mark.parametrize("month", ["2025-13", "novembre", "2025-11-05"])
def test_a_bad_month_is_a_french_error_beside_the_field(web: Web, month: str) -> None:
    web.login("claire.ccas")
    before = len(web.extracts())
    page = web.text(f"{PAGE}?mois={quote(month)}", 422)
    assert 'aria-invalid="true" aria-describedby="mois-erreur"' in page
    error = re.search(r'<p id="mois-erreur" class="notice error">([^<]+)</p>', page)
    assert error and "mois de référence illisible" in error.group(1)
    assert "AAAA-MM" in error.group(1)
    assert len(web.extracts()) == before  # nothing read
    web.text(f"{PAGE}/suivi?mois={quote(month)}", 422)


# -- one household and its contacts -------------------------------------------------------------


def test_a_household_page_explains_each_figure_with_its_inputs_provenance(
    web: Web, expected: Run
) -> None:
    web.login("claire.ccas")
    entry = expected.worklist.entries[0]
    page = web.text(_household(entry.household_key))
    assert f"Rang <strong>{entry.rank}</strong>" in page and euros(entry.monthly_total) in page
    familles = explain_household(expected.screening, entry.household_key)
    known = [f for f in familles if f.known]
    assert known
    figures = [*known[0].quotients.values(), *known[0].entitlements.values()]
    provenances = [u.provenance.label() for u in figures[0].inputs if u.provenance]
    assert provenances and all(p in page for p in provenances)
    assert all(f.how in page for f in figures)
    assert all(f"<code>{v.variable}</code>" in page for v in figures[0].variables)
    for band in (b for b in expected.bands if b.household_key == entry.household_key):
        assert band.how in page and band.deliberation in page


def test_a_contact_is_a_governed_case_shown_on_the_household_and_in_take_up(
    web: Web, expected: Run
) -> None:
    web.login("claire.ccas")
    key = expected.worklist.entries[0].household_key
    action = f"{PAGE}/foyers/{quote(key, safe='')}/contacts"
    form = {
        "canal": "telephone",
        "suite": "droit_ouvert",
        "date_contact": "2025-12-03",
        "note": "dossier CAF déposé ensemble",
        "finalite": PURPOSE,
        "mois": MONTH,
    }
    writes = len(web.ledger(kind="write", actor="claire.ccas"))
    refused = web.client.post(action, data=form)  # no CSRF token
    assert refused.status_code == 403
    assert len(web.ledger(kind="write", actor="claire.ccas")) == writes
    bad = web.client.post(action, data={**form, "csrf_token": CSRF, "elements": "inexistant"})
    assert bad.status_code == 422 and "absent de la liste" in html.unescape(bad.text)
    assert len(web.ledger(kind="write", actor="claire.ccas")) == writes
    response = web.client.post(action, data={**form, "csrf_token": CSRF})
    assert response.status_code == 303, response.text[:2000]
    assert response.headers["location"] == _household(key) + "#contacts"
    [write] = web.ledger(kind="write", actor="claire.ccas", limit=1)[:1]
    assert len(web.ledger(kind="write", actor="claire.ccas")) == writes + 1
    assert write.entry.purpose == PURPOSE and write.entry.view == "tariffs.outreach.contact"
    assert len(write.entry.persons) == 1
    page = web.text(response.headers["location"])
    assert "Contact noté (dossier TAR-" in page
    row = re.search(
        r'<th scope="row">03/12/2025</th>\s*<td>téléphone</td>\s*<td>droit ouvert</td>', page
    )
    assert row and "dossier CAF déposé ensemble" in page
    takeup = web.text(f"{PAGE}/suivi?mois={MONTH}")
    others = len(expected.worklist.entries) - 1
    assert re.search(
        r'<th scope="row">contactés</th>\s*<td class="num">1</td>\s*<td class="num">1</td>'
        r'\s*<td class="num">100,0 %</td>',
        takeup,
    )
    assert re.search(rf'<th scope="row">non contactés</th>\s*<td class="num">{others}</td>', takeup)
    assert "<li>droit ouvert : 1</li>" in takeup


def test_an_unknown_household_is_a_french_404(web: Web) -> None:
    web.login("claire.ccas")
    page = web.text(_household("MEN.inconnu"), 404)
    assert "Foyer introuvable" in page
    response = web.client.post(
        f"{PAGE}/foyers/MEN.inconnu/contacts",
        data={"csrf_token": CSRF, "canal": "courrier", "suite": "joint",
              "date_contact": "2025-12-01", "finalite": PURPOSE, "mois": MONTH},
    )  # fmt: skip
    assert response.status_code == 404 and "Foyer introuvable" in response.text


# -- the notice and refusals --------------------------------------------------------------------


def test_the_notice_page_names_the_purpose_data_and_the_grids(web: Web) -> None:
    web.login("claire.ccas")
    page = web.text(f"{PAGE}/notice?mois={MONTH}")
    assert "CRPA art. L311-3-1" in page
    assert "Ressources mensuelles du foyer" in page
    assert "Restauration scolaire" in page
    assert "Mois de référence</dt><dd>11/2025" in page


@pytest.mark.parametrize(
    "path",
    ["", "/suivi", "/notice", "/foyers/MEN.inconnu"],
    ids=["liste", "suivi", "notice", "foyer"],
)
def test_the_librarian_is_refused_and_the_refusal_is_in_the_ledger(web: Web, path: str) -> None:
    web.login("lea.biblio")
    page = web.text(f"{PAGE}{path}?mois={MONTH}", 403)
    assert "Accès refusé" in page
    [last] = web.ledger(actor="lea.biblio", limit=1)[:1]
    assert last.entry.purpose == PURPOSE and last.entry.decision == "deny"
    assert last.entry.rule.startswith("deny:")


def test_the_screening_is_refused_under_a_purpose_that_does_not_declare_it(web: Web) -> None:
    web.login("claire.ccas")
    page = web.text(f"{PAGE}?mois={MONTH}&finalite=ccas_social_support", 403)
    assert "ne déclare pas l'algorithme" in page
    [last] = web.ledger(actor="claire.ccas", limit=1)[:1]
    assert last.entry.rule == "deny:algorithm_not_declared" and last.entry.persons == ()


def test_an_objector_disappears_from_the_household_page_at_once(web: Web, expected: Run) -> None:
    """Even while the run is kept: the household page checks the purpose's population."""
    web.login("claire.ccas")
    key = expected.worklist.entries[1].household_key
    web.text(_household(key))
    gov = web.state.gov
    with web.state.lock:
        person = gov.reader.resolve(
            gov.policy.purposes[PURPOSE], expected.contacts[key], "claire.ccas"
        )
        assert person is not None
        gov.change_objection(f"resident:{person}", "resident_access", None, PURPOSE, object_=True)
    try:
        assert "Foyer introuvable" in web.text(_household(key), 404)
    finally:
        with web.state.lock:
            gov.change_objection(
                f"resident:{person}", "resident_access", None, PURPOSE, object_=False
            )
