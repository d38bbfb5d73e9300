"""« Mes déchets »: a resident's bins, lifts and bill, on the real app over the linked sandbox.

The resident's page is checked against the waste service's own billing run (the agent's bill
of the same person must have the same total, credits included), against the lifts the
registry attributes to the resident, and against the ledger.
"""

from __future__ import annotations

import html
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from territoria.apps.waste import Period, decide_dispute, open_dispute
from territoria.core.config import load_workspace
from territoria.governance import Governance
from territoria.interfaces.runs.waste import (
    bill_run,
    governed_inputs,
    grid_periods,
    load_grid_option,
)
from territoria.interfaces.runs.waste_book import GovernedDisputeBook, lift_requests
from territoria.interfaces.web import create_app, load_web_settings
from territoria.interfaces.web.principals import ApiKeys
from web_sessions import CSRF, log_in

BASE = "http://127.0.0.1:8000"
PERIOD = "2025-S2"
AGENT, PURPOSE = "paul.dechets", "waste_billing"


@dataclass
class Site:
    app: FastAPI

    @property
    def gov(self) -> Governance:
        gov: Governance = self.app.state.web.gov
        return gov

    def resident(self, key: str) -> TestClient:
        _, secret = ApiKeys(self.app.state.web.secrets_dir).create(
            f"resident:{key}", "resident", "test"
        )
        client = TestClient(self.app, base_url=BASE, follow_redirects=False)
        client.headers.update({"X-API-Key": secret})
        return client

    def session(self, key: str) -> TestClient:
        """A resident's browser session (the cookie the login leaves), with its CSRF token."""
        client = TestClient(self.app, base_url=BASE, follow_redirects=False)
        log_in(client, self.app.state.web, f"resident:{key}", kind="resident")
        return client

    def agent_bill(self, key: str) -> tuple[int | None, list[str]]:
        """The waste service's bill of this person for the period: total and line labels."""
        grid, _ = load_grid_option(None)
        period = next(p for p in _periods() if p.label == PERIOD)
        with self.app.state.web.lock:
            inputs = governed_inputs(self.gov, AGENT, PURPOSE)
            run = bill_run(grid, period, inputs, GovernedDisputeBook(self.gov, AGENT, PURPOSE))
        payer = self.gov.pseudonyms.pseudonym(self.gov.policy.purposes[PURPOSE].domain, key)
        try:
            total = run.total(payer)
            labels = [line.label for line in run.bill(payer).lines] if total is not None else []
        finally:
            run.close()
        return total, labels


def _periods() -> list[Period]:
    return grid_periods(load_grid_option(None)[0])


@pytest.fixture
def site(lifts_template: Path, sandbox: Path, tmp_path: Path) -> Iterator[Site]:
    root = tmp_path / "ws"
    shutil.copytree(lifts_template, root)
    config = load_workspace(root)
    settings = load_web_settings(
        config,
        base_url=BASE,
        local_residents_file=sandbox / "truth" / "persons.csv",
        rate_limit_per_minute=0,
    )
    app = create_app(config.root, settings)
    with TestClient(app, base_url=BASE):
        yield Site(app)


def _holders(site: Site) -> list[tuple[str, set[str]]]:
    """Residents with a bin and lifts in the year: (index key, their lift ids in it).

    The sandbox's grid settles the variable part on the year with the 2nd semester's bill:
    the page shows the lifts its bill counted, those of the whole year."""
    gov = site.gov
    with site.app.state.web.lock:
        keys = sorted(
            {
                str(p)
                for (p,) in gov.db.query(
                    "SELECT DISTINCT person_key FROM id_mentions WHERE source = 'waste_bins'"
                )
            }
        )
    found = []
    for key in keys[:40]:
        with site.app.state.web.lock:
            mine = gov.extract(f"resident:{key}", "resident_access", ["waste_lifts"])
        lifts = {
            row["lift_id"]
            for row in mine.tables["waste_lifts"].to_pylist()
            if "2025-01-01" <= str(row["lifted_at"])[:10] < "2026-01-01"
        }
        if lifts:
            found.append((key, lifts))
    assert len(found) >= 2, "le territoire fictif devrait compter des bacs levés au 2e semestre"
    return found


def _shown_lifts(page: str) -> set[str]:
    return set(re.findall(r'<th scope="row">(L\d{10}\w*)</th>', page))


def _total(page: str) -> int:
    found = re.search(r"<strong>Total : ([^<]+)</strong>", page)
    assert found is not None, page
    text = html.unescape(found.group(1)).replace("\u202f", "").replace("\xa0", "")
    return round(float(text.replace("€", "").replace(" ", "").replace(",", ".")) * 100)


def test_a_resident_sees_their_own_lifts_and_the_bill_the_service_computes(site: Site) -> None:
    (key, lifts), (other, others) = _holders(site)[:2]
    page = site.resident(key).get(f"/portail/dechets?periode={PERIOD}")
    assert page.status_code == 200, page.text
    assert _shown_lifts(page.text) == lifts
    assert not _shown_lifts(page.text) & others
    total, labels = site.agent_bill(key)
    assert total is not None and _total(page.text) == total
    for label in labels:
        assert html.escape(label) in page.text
    entry = site.gov.ledger.records(kind="read", limit=5)
    mine = [
        r.entry for r in entry if r.entry.actor == f"resident:{key}" and r.entry.view == "records"
    ]
    assert mine and mine[0].persons == (key,)
    assert other != key


def test_a_credit_the_service_grants_shows_on_the_residents_account(site: Site) -> None:
    key, lifts = _holders(site)[0]
    grid, _ = load_grid_option(None)
    period = next(p for p in _periods() if p.label == PERIOD)
    gov = site.gov
    payer = gov.pseudonyms.pseudonym(gov.policy.purposes[PURPOSE].domain, key)
    with site.app.state.web.lock:
        book = GovernedDisputeBook(gov, AGENT, PURPOSE)
        run = bill_run(grid, period, governed_inputs(gov, AGENT, PURPOSE), book)
        try:
            counted = [lift.lift_id for lift in run.bill(payer).lifts]
            dispute = open_dispute(book, run, payer, counted[-1], "bac non sorti", gov.clock())
        finally:
            run.close()
        decide_dispute(book, dispute.id, "credit", AGENT, "lecture fantôme", gov.clock())
    page = site.resident(key).get(f"/portail/dechets?periode={PERIOD}")
    assert page.status_code == 200
    assert dispute.id in page.text and "bac non sorti" in page.text
    total, labels = site.agent_bill(key)
    assert total is not None and _total(page.text) == total
    assert any("Avoir" in label or "avoir" in label for label in labels)
    assert counted[-1] in lifts


def test_no_bin_a_bad_period_and_no_credentials(site: Site) -> None:
    with site.app.state.web.lock:
        rows = site.gov.db.query(
            "SELECT DISTINCT person_key FROM id_mentions WHERE source = 'library_members' "
            "AND person_key NOT IN (SELECT person_key FROM id_mentions WHERE source = 'waste_bins')"
        )
    client = site.resident(str(rows[0][0]))
    page = client.get("/portail/dechets")
    assert page.status_code == 200 and "Aucun bac n'est à votre nom" in page.text
    outside = client.get("/portail/dechets?periode=2031-S1")
    assert outside.status_code == 422 and "2031-S1" in html.unescape(outside.text)
    assert client.get("/portail/dechets?periode=n'importe").status_code == 422
    anonymous = TestClient(site.app, base_url=BASE, follow_redirects=False)
    assert anonymous.get("/portail/dechets").status_code == 303


def test_the_access_export_carries_the_residents_lifts_and_only_theirs(site: Site) -> None:
    (key, _), (_, others) = _holders(site)[:2]
    with site.app.state.web.lock:
        mine = site.gov.extract(f"resident:{key}", "resident_access", ["waste_lifts"])
    expected = set(mine.tables["waste_lifts"].column("lift_id").to_pylist())
    export = site.resident(key).get("/portail/droits/export.json")
    assert export.status_code == 200, export.text
    blocks = {block["source"]: block for block in export.json()["records"]}
    lifts = {
        field["value"]
        for record in blocks["waste_lifts"]["records"]
        for field in record
        if field["field"] == "lift_id"
    }
    assert lifts == expected and not lifts & others
    assert blocks["waste_lifts"]["owner_service"]


def test_a_resident_contests_a_lift_and_the_waste_service_receives_it(site: Site) -> None:
    (key, lifts), (other, _) = _holders(site)[:2]
    lift = sorted(lifts)[-1]
    client = site.session(key)
    form = {"levee": lift, "periode": PERIOD, "reclamation": "Mon bac n'était pas sorti"}
    before = site.gov.ledger.head().count
    assert client.post("/portail/dechets/contestations", data=form).status_code == 403  # no CSRF
    assert site.gov.ledger.head().count == before
    sent = client.post("/portail/dechets/contestations", data={**form, "csrf_token": CSRF})
    assert sent.status_code == 303, sent.text
    write = site.gov.ledger.records(kind="write", limit=1)[0].entry
    assert write.actor == f"resident:{key}" and write.persons == (key,)
    page = html.unescape(client.get(sent.headers["location"]).text)
    assert "est envoyée au service propreté" in page and "Mon bac n'était pas sorti" in page
    again = client.post("/portail/dechets/contestations", data={**form, "csrf_token": CSRF})
    assert again.status_code == 422 and "déjà contesté" in html.unescape(again.text)
    foreign = {**form, "csrf_token": CSRF, "levee": "L9999999999"}
    assert (
        site.session(other).post("/portail/dechets/contestations", data=foreign).status_code == 422
    )

    with site.app.state.web.lock:
        received = lift_requests(site.gov, AGENT, PURPOSE)
        librarian = lift_requests(site.gov, "lea.biblio", "library_lending")
    payer = site.gov.pseudonyms.pseudonym(site.gov.policy.purposes[PURPOSE].domain, key)
    assert [(r.payer, r.lift_id, r.claim) for r in received] == [
        (payer, lift, "Mon bac n'était pas sorti")
    ]
    assert librarian == []  # a request goes to the purpose it is addressed to, no other
