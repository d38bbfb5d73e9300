"""The waste service's console pages: billing run, a payer's bill, anomalies, disputes, simulator.

A copy of the linked 1,500-inhabitant sandbox with its lift events, served by the application;
pages are called with a session cookie signed with the application's own key (what the OpenID
Connect login leaves). Every figure a page shows is checked against the engine's own result,
computed here through the same governed run (``territoria.interfaces.runs.waste``).
"""

from __future__ import annotations

import html
import re
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from territoria.apps.waste import Assumptions, BillingRun, get_grid, run_billing, simulate
from territoria.apps.waste.money import euros
from territoria.interfaces.runs.waste import bill_run, checked_period, governed_inputs
from territoria.interfaces.runs.waste_book import (
    NAME_KEY_PREFIXES,
    GovernedDisputeBook,
    request_contest,
)
from territoria.interfaces.web.app import create_app
from territoria.interfaces.web.state import SECRETS_ENV, WebState
from web_sessions import CSRF, log_in

AGENT = "paul.dechets"
PURPOSE = "waste_billing"
GRID = "exemple_metropole_2025"
PERIOD = "2025-S2"


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
        """The governed batch reads of the waste agent, newest first."""
        return [
            r for r in self.ledger(actor=AGENT) if r.entry.reason.startswith("extraction par lot")
        ]

    def engine_run(self) -> BillingRun:
        """The billing run as ``territoria waste bill`` makes it (one more extract)."""
        grid = get_grid(GRID)
        with self.state.lock:
            inputs = governed_inputs(self.state.gov, AGENT, PURPOSE)
            book = GovernedDisputeBook(self.state.gov, AGENT, PURPOSE)
            return bill_run(grid, checked_period(grid, PERIOD), inputs, book)


@pytest.fixture
def web(lifts_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Web]:
    monkeypatch.delenv(SECRETS_ENV, raising=False)
    root = tmp_path / "ws"
    shutil.copytree(lifts_template, root)
    app = create_app(root)
    with TestClient(app, follow_redirects=False) as client:
        yield Web(client, app.state.web)


def text(response: Response) -> str:
    """The page's text, tags removed, entities decoded (narrow no-break spaces kept)."""
    plain = html.unescape(re.sub(r"<[^>]+>", " ", response.text))
    return re.sub(r"[ \t\r\n]+", " ", plain)


def cents(amount: str) -> int:
    """« -1 958,00 € » → -195800."""
    digits = re.sub(r"[^0-9,-]", "", amount).replace(",", "")
    return int(digits)


def payer_rows(response: Response) -> list[tuple[str, str]]:
    """(payer, total) of the run page's table of bills, in the page's order."""
    found = re.findall(
        r'<th scope="row"><a href="/console/dechets/facture\?[^"]*">([^<]+)</a></th>\s*'
        r'<td class="num">([^<]+)</td>',
        response.text,
    )
    return [(html.unescape(p), html.unescape(t)) for p, t in found]


# -- the billing run ----------------------------------------------------------------------------


def test_the_run_page_shows_the_engines_figures_from_one_governed_read(web: Web) -> None:
    web.login(AGENT)
    before = len(web.extracts())
    first = web.client.get("/console/dechets")
    assert first.status_code == 200, first.text[:500]
    second = web.client.get("/console/dechets", params={"page": 2})
    assert second.status_code == 200
    made = web.extracts()
    assert len(made) == before + 1  # two pages of the same run: one extract record
    seq = made[0].seq

    run = web.engine_run()
    try:
        summary = run.summary()
        expected = sorted(run.bills.to_pylist(), key=lambda b: (-b["total_cents"], b["payer"]))
        lines = run.lines.num_rows
    finally:
        run.close()
    page = text(first)
    assert f"facturation du {summary.period_title}" in page
    assert f"Redevables facturés {summary.bills} " in page
    assert f"Lignes de facture {lines} " in page
    for label, value in (
        ("Total facturé", summary.total_cents),
        ("dont part fixe", summary.fixed_cents),
        ("dont part variable", summary.variable_cents),
        ("dont avoirs et autres", summary.other_cents),
    ):
        assert f"{label} {euros(value)} " in page
    assert summary.anomalies
    for reason, count in summary.anomalies.items():
        assert f"Anomalie : {reason} {count} " in page
    assert "aucune valeur réglementaire" in page  # the default grid is the sandbox's example
    assert f"Lecture gouvernée n° {seq} sous la finalité" in page and "calculée le" in page

    shown = payer_rows(first) + payer_rows(second)
    assert shown == [(b["payer"], euros(b["total_cents"])) for b in expected[:100]]
    one = expected[7]["payer"]
    filtered = web.client.get("/console/dechets", params={"q": one[-12:].lower()})
    assert one in [p for p, _ in payer_rows(filtered)]
    assert len(web.extracts()) == before + 2  # the filter pages through the kept run too


def test_a_wrong_period_or_grid_is_said_beside_its_field_and_nothing_is_read(web: Web) -> None:
    web.login(AGENT)
    before = len(web.extracts())
    response = web.client.get("/console/dechets", params={"periode": "2024-S2"})
    assert response.status_code == 422
    assert 'aria-describedby="periode-erreur"' in response.text
    assert "sort de la validité de la grille" in text(response)
    response = web.client.get("/console/dechets", params={"grille": "../../etc/passwd.yaml"})
    assert response.status_code == 422 and "inconnue" in text(response)
    assert len(web.extracts()) == before


def test_a_librarian_is_refused_in_french_and_the_refusal_is_in_the_ledger(web: Web) -> None:
    web.login("lea.biblio")
    for path in ("/console/dechets", "/console/dechets/contestations"):
        response = web.client.get(path)
        assert response.status_code == 403
        page = text(response)
        assert "Accès refusé" in page and "refus" in page
        last = web.ledger(limit=1)[0].entry
        assert (last.actor, last.decision, last.purpose) == ("lea.biblio", "deny", PURPOSE)
    response = web.client.post(
        "/console/dechets/contestations/C-00001/decision",
        data={"csrf_token": CSRF, "decision": "credit", "motif": "x"},
    )
    assert response.status_code == 403 and "Accès refusé" in text(response)
    assert not [r for r in web.ledger(kind="write") if r.entry.actor == "lea.biblio"]


# -- a payer's bill -----------------------------------------------------------------------------


def test_a_bill_shows_every_line_summing_to_its_total_and_each_lift(web: Web) -> None:
    web.login(AGENT)
    run = web.engine_run()
    try:
        payer = next(p for p in run.bills.column("payer").to_pylist() if " É" in p or "É" in p)
        bill = run.bill(payer)
    finally:
        run.close()
    assert payer.startswith("GESTIONNAIRE ") and bill.lifts
    response = web.client.get("/console/dechets/facture", params={"redevable": payer})
    assert response.status_code == 200, response.text[:500]
    rows = re.findall(
        r'<td class="num">(\d+)</td>\s*<th scope="row">([^<]*)</th>\s*'
        r'<td class="num">([^<]+)</td>\s*<td>([^<]*)</td>',
        response.text,
    )
    assert [int(n) for n, *_ in rows] == [line.line_no for line in bill.lines]
    total = re.search(r"Total : <strong>([^<]+)</strong>", response.text)
    assert total is not None and cents(html.unescape(total.group(1))) == bill.total_cents
    assert sum(cents(html.unescape(amount)) for _, _, amount, _ in rows) == bill.total_cents
    assert [html.unescape(e) for *_, e in rows] == [line.explanation for line in bill.lines]
    assert response.text.count("<summary>Contester cette levée</summary>") == len(bill.lifts)
    assert all(lift.lift_id in response.text for lift in bill.lifts)

    for unknown in ("DEC.k1.INCONNU", "GESTIONNAIRE RUE QUI N'EXISTE PAS"):
        missing = web.client.get("/console/dechets/facture", params={"redevable": unknown})
        assert missing.status_code == 404
        assert "Redevable introuvable" in text(missing) and unknown in text(missing)
    too_long = web.client.get("/console/dechets/facture", params={"redevable": "X" * 201})
    assert too_long.status_code == 422


# -- disputes -----------------------------------------------------------------------------------


def _billed_lift(web: Web, resident: bool = False) -> tuple[str, str, int]:
    """A payer (a resident if asked), one of their lifts billed beyond the included ones, and
    their total."""
    run = web.engine_run()
    try:
        for payer in run.bills.column("payer").to_pylist():
            if resident and payer.startswith(NAME_KEY_PREFIXES):
                continue
            billed = [x for x in run.bill(payer).lifts if x.status == "facturée"]
            if billed:
                return payer, billed[-1].lift_id, run.total(payer) or 0
    finally:
        run.close()
    raise AssertionError("aucune levée facturée au-delà du forfait dans le bac à sable")


def test_a_dispute_opened_and_credited_in_the_console_is_on_the_next_bill(web: Web) -> None:
    web.login(AGENT)
    payer, lift, total = _billed_lift(web)
    form = {"redevable": payer, "levee": lift, "reclamation": "Mon bac n'était pas sorti"}
    writes = len(web.ledger(kind="write"))
    refused = web.client.post("/console/dechets/contestations", data=form)
    assert refused.status_code == 403 and "CSRF" in text(refused)
    assert len(web.ledger(kind="write")) == writes  # no case written

    opened = web.client.post("/console/dechets/contestations", data={**form, "csrf_token": CSRF})
    assert opened.status_code == 303
    assert opened.headers["location"].startswith("/console/dechets/contestations?")
    listing = web.client.get(opened.headers["location"])
    page = text(listing)
    assert "Contestation C-00001 — ouverte" in page and "Mon bac n'était pas sorti" in page
    with web.state.lock:
        [dispute] = GovernedDisputeBook(web.state.gov, AGENT, PURPOSE).all()
    value = dispute.evidence.billed_value_cents
    assert value > 0 and dispute.evidence.truck_id
    assert (
        f"Benne {dispute.evidence.truck_id}" in page and f"Valeur facturée {euros(value)}" in page
    )

    kept = web.client.get("/console/dechets/facture", params={"redevable": payer})
    assert "Contestée (C-00001, ouverte)" in text(kept)  # this run is now kept

    no_reason = web.client.post(
        "/console/dechets/contestations/C-00001/decision",
        data={"csrf_token": CSRF, "decision": "credit", "motif": " "},
    )
    assert no_reason.status_code == 303
    assert "motivez-la" in text(web.client.get(no_reason.headers["location"]))
    extracts = len(web.extracts())
    decided = web.client.post(
        "/console/dechets/contestations/C-00001/decision",
        data={"csrf_token": CSRF, "decision": "credit", "motif": "lecture fantôme confirmée"},
    )
    assert decided.status_code == 303
    page = text(web.client.get(decided.headers["location"]))
    assert f"Avoir de {euros(value)} accordé" in page and "prochaine facture" in page
    assert "Contestation C-00001 — avoir accordé" in page

    bill = web.client.get("/console/dechets/facture", params={"redevable": payer})
    page = text(bill)
    assert len(web.extracts()) == extracts + 1  # the decision dropped the kept run
    assert f"Avoir : levée {lift} contestée {euros(-value)}" in page
    assert f"Total : {euros(total - value)}" in page
    run = web.engine_run()
    try:
        assert run.total(payer) == total - value  # the engine agrees with the page
    finally:
        run.close()

    issued = web.client.post(
        "/console/dechets/emission", data={"csrf_token": CSRF, "periode": PERIOD, "grille": GRID}
    )
    assert issued.status_code == 303
    assert "1 avoir(s) imputé(s) (C-00001)" in text(web.client.get(issued.headers["location"]))
    assert "Imputé sur la facturation 2025-S2" in text(
        web.client.get("/console/dechets/contestations")
    )
    after = text(web.client.get("/console/dechets/facture", params={"redevable": payer}))
    assert f"Total : {euros(total - value)}" in after and "Avoir : levée" not in after
    kinds = {r.entry.view for r in web.ledger(kind="write")}
    assert {"waste.dispute.opened", "waste.dispute.decided", "waste.dispute.applied"} <= kinds


# -- anomalies ----------------------------------------------------------------------------------


def test_the_anomalies_page_counts_each_reason_as_the_run_does(web: Web) -> None:
    web.login(AGENT)
    run = web.engine_run()
    try:
        counts = Counter(run.anomalies.column("reason").to_pylist())
    finally:
        run.close()
    response = web.client.get("/console/dechets/anomalies")
    assert response.status_code == 200
    page = text(response)
    assert f"{sum(counts.values())} anomalie(s)" in page
    found = re.findall(
        r'motif=([a-z_]+)#liste"[^>]*>[a-z_]+</a></th>\s*<td class="num">(\d+)<', response.text
    )
    assert {reason: int(n) for reason, n in found} == dict(counts)
    reason, count = counts.most_common(1)[0]
    one = web.client.get("/console/dechets/anomalies", params={"motif": reason})
    assert f"Anomalies « {reason} » ({count})" in text(one)
    assert one.text.count(f"<td>{reason}</td>") == min(count, 50)


# -- the simulator ------------------------------------------------------------------------------


def test_the_simulator_shows_simulate_and_says_what_the_sources_lack(web: Web) -> None:
    web.login(AGENT)
    response = web.client.get(
        "/console/dechets/simulation",
        params={"budget": "250 000", "comportement": "-0,20", "periode": PERIOD},
    )
    assert response.status_code == 200, response.text[:500]
    grid = get_grid(GRID)
    with web.state.lock:
        inputs = governed_inputs(web.state.gov, AGENT, PURPOSE)
    before = run_billing(grid, PERIOD, inputs.allocations, inputs.lifts, check_validity=False)
    try:
        issued = before.bills.select(["payer", "total_cents"])
    finally:
        before.close()
    result = simulate(
        grid, PERIOD, inputs.allocations, inputs.lifts, budget_cents=25_000_000,
        baseline=issued.rename_columns(["payer", "amount_cents"]),
        assumptions=Assumptions(residual_waste_change=Decimal("-0.20")),
    )  # fmt: skip
    page = text(response)
    assert f"Recette simulée {euros(result.revenue_cents)} " in page
    assert f"Recette de référence {euros(result.baseline_revenue_cents)} " in page
    assert f"Budget à couvrir {euros(25_000_000)} " in page
    coverage = f"{result.coverage * 100:.1f} %".replace(".", ",")
    assert f"Taux de couverture {coverage} " in page
    assert (
        f"Levées avant / après {result.lifts_before:,} / {result.lifts_after:,}".replace(
            ",", "\u202f"
        )
        in page
    )
    for group in result.groups:
        assert euros(group.mean_change_cents) in page
    assert response.text.count('<svg xmlns="http://www.w3.org/2000/svg" role="img"') == 2
    assert "ne donnent pas les revenus des foyers" in page  # the deciles need incomes

    for params, field in (
        ({"budget": "beaucoup"}, "budget"),
        ({"comportement": "2"}, "comportement"),
    ):
        bad = web.client.get("/console/dechets/simulation", params=params)
        assert bad.status_code == 422
        assert f'aria-describedby="{field}-erreur"' in bad.text and "incompréhensible" in text(bad)


def test_a_residents_contest_is_listed_to_the_service_and_opened_from_the_console(
    web: Web,
) -> None:
    web.login(AGENT)
    payer, lift, _ = _billed_lift(web, resident=True)
    gov = web.state.gov
    with web.state.lock:
        key = gov.reader.resolve(gov.policy.purposes[PURPOSE], payer, AGENT)
        assert key is not None
        lifts = gov.extract(f"resident:{key}", "resident_access", ["waste_lifts"]).tables
        when = next(
            row["lifted_at"] for row in lifts["waste_lifts"].to_pylist() if row["lift_id"] == lift
        )
        request_contest(
            gov, f"resident:{key}", "resident_access", PURPOSE, lift, when, "Bac rentré ce jour-là"
        )
    listing = web.client.get("/console/dechets/contestations")
    page = text(listing)
    assert "Contestations envoyées par les résidents (1)" in page
    assert lift in page and "Bac rentré ce jour-là" in page
    form = dict(
        re.findall(
            r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">',
            listing.text.split('id="demandes"')[1].split("</form>")[0],
        )
    )
    assert form["levee"] == lift and html.unescape(form["redevable"]) == payer
    opened = web.client.post(
        "/console/dechets/contestations", data={k: html.unescape(v) for k, v in form.items()}
    )
    assert opened.status_code == 303, opened.text
    after = text(web.client.get(opened.headers["location"]))
    assert "Contestations envoyées par les résidents" not in after  # opened: no longer pending
    assert "Contestation C-00001 — ouverte" in after and "Bac rentré ce jour-là" in after
