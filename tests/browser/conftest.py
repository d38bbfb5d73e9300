"""The browser tests' world: one real server, one chromium, one browser context per visitor.

The server is started as a user starts it (``python -m territoria serve -w WS --port P``) on a
copy of the linked sandbox workspace, with the sandbox's civil-status truth in
``WS/sandbox/truth/persons.csv`` so that the local identity provider offers resident accounts.
Chromium is Debian's (``/usr/bin/chromium``): nothing is ever downloaded. Without it the
tests are skipped, unless ``TERRITORIA_REQUIRE_BROWSER=1`` (CI), where they fail.

Every visitor (:class:`Site`) watches its page: a 5xx or 429 answer, an uncaught JavaScript
error or a Content-Security-Policy refusal fails the test that caused it. Screenshots go to
``artifacts/screenshots/`` (git-ignored; CI keeps the folder as the test artefact), and the
server's output to ``artifacts/server.log``.
"""

from __future__ import annotations

import csv
import html
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from territoria.core.config import load_workspace
from territoria.governance import Policy, load_policy, policy_dir
from territoria.ingest import ContractCatalog

if TYPE_CHECKING:
    from playwright.sync_api import (
        Browser,
        BrowserContext,
        ConsoleMessage,
        Page,
        Response,
        ViewportSize,
    )

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REQUIRE_BROWSER = os.environ.get("TERRITORIA_REQUIRE_BROWSER") == "1"
START_TIMEOUT = 90.0  # seconds for the server to answer /sante (loading the sandbox's index)
ACTION_TIMEOUT_MS = 20_000
# Two letters that start many French surnames: the console is searched with the first that
# finds someone in the purpose's population, as an agent would try.
PREFIXES = ("ma", "be", "mo", "la", "ro", "le", "du", "de", "ga", "bo", "ch", "fa", "pe", "gi")


def _unavailable(reason: str) -> None:
    if REQUIRE_BROWSER:
        pytest.fail(f"{reason} (TERRITORIA_REQUIRE_BROWSER=1 : le navigateur est exigé)")
    pytest.skip(reason)


# -- the server ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    """The running ``territoria serve``: its address, workspace and log."""

    url: str
    workspace: Path
    log: Path


@pytest.fixture(scope="session")
def web_workspace(
    tmp_path_factory: pytest.TempPathFactory, lifts_template: Path, sandbox: Path
) -> Path:
    """A private copy of the linked sandbox workspace (bin lifts loaded), with its files inside."""
    root = tmp_path_factory.mktemp("browser") / "ws"
    shutil.copytree(lifts_template, root)
    shutil.copytree(sandbox, root / "sandbox")
    _deliver_with_errors(root)
    return root


def _deliver_with_errors(root: Path) -> None:
    """A delegated operator delivers meter readings with three bad rows (for the quarantine)."""
    with (root / "sandbox" / "water_readings.csv").open(encoding="utf-8", newline="") as f:
        rows = [row for _, row in zip(range(31), csv.reader(f), strict=False)]
    rows[3][3] = "beaucoup"  # index_m3: not a number
    rows[7][2] = "2025-13-45T08:00:00"  # date_releve: no such date
    rows[11][1] = ""  # num_compteur: required
    delivery = root / "livraisons" / "releves-avec-erreurs.csv"
    delivery.parent.mkdir()
    with delivery.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows(rows)
    command = [sys.executable, "-m", "territoria", "ingest", "water_readings", str(delivery)]
    done = subprocess.run(
        [*command, "-w", str(root), "--as", "eaux-du-rhone"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _log_tail(log: Path, lines: int = 40) -> str:
    try:
        return "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(journal illisible)"


def _wait_until_up(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"territoria serve s'est arrêté (code {process.returncode}) :\n{_log_tail(log)}"
            )
        try:
            if httpx.get(f"{url}/sante", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail(f"territoria serve ne répond pas sur {url}/sante :\n{_log_tail(log)}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=15)


@pytest.fixture(scope="session")
def server(web_workspace: Path) -> Iterator[Server]:
    """``python -m territoria serve`` in a subprocess, stopped at the end (also on failure)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = ARTIFACTS / "server.log"
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "territoria", "serve", "-w", str(web_workspace)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "120", "NO_COLOR": "1"}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=web_workspace,
            env=env,
        )
        try:
            _wait_until_up(process, url, log)
            yield Server(url, web_workspace, log)
        finally:
            _stop(process)


@dataclass(frozen=True)
class Territory:
    """What the server's workspace declares: its policy and its sources' titles."""

    workspace: Path
    policy: Policy
    titles: dict[str, str]  # source → the contract's French title

    def agents_with(self, purpose: str, *views: str) -> list[str]:
        """The agents whose roles open all these views under the purpose."""
        roles = {
            role.id
            for role in self.policy.roles.values()
            for grant in role.grants
            if grant.purpose == purpose and set(views) <= set(grant.views)
        }
        return [a.id for a in self.policy.agents.values() if roles & set(a.roles)]


@pytest.fixture(scope="session")
def territory(server: Server) -> Territory:
    config = load_workspace(server.workspace)
    catalog = ContractCatalog.load(*config.contract_paths)
    titles = {contract.id: contract.title for contract in catalog}
    return Territory(config.root, load_policy(policy_dir(config.root)), titles)


# -- the browser --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's chromium, headless, with no network of its own (never a downloaded browser)."""
    if not CHROMIUM.is_file():
        _unavailable(f"chromium absent ({CHROMIUM}) : apt-get install chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("le paquet Python playwright n'est pas installé")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class DemoResident:
    """The resident a test logged in as: the provider's account id and the names shown."""

    account: str  # the sandbox's person id (truth), as the provider knows them
    label: str  # « Malya YILDIZ » or « Anne DURAND (née MARTIN) »
    detail: str  # « née le 26/04/1990 »

    @property
    def name(self) -> str:
        """Given name and usage name, without the birth name."""
        return re.sub(r"\s*\(.*\)$", "", self.label)

    @property
    def birth_year(self) -> str:
        return self.detail[-4:]


@dataclass
class Site:
    """One visitor (its own browser context and cookies) on the server."""

    server: Server
    context: BrowserContext
    page: Page
    problems: list[str] = field(default_factory=list)

    @classmethod
    def open(cls, browser: Browser, server: Server, viewport: ViewportSize | None = None) -> Site:
        context = browser.new_context(
            base_url=server.url, locale="fr-FR", accept_downloads=True, viewport=viewport
        )
        context.set_default_timeout(ACTION_TIMEOUT_MS)
        site = cls(server, context, context.new_page())
        site.page.on("response", site._on_response)
        site.page.on(
            "pageerror", lambda error: site.problems.append(f"erreur JavaScript : {error}")
        )
        site.page.on("console", site._on_console)
        return site

    def _on_response(self, response: Response) -> None:
        if response.status >= 500 or response.status == 429:
            self.problems.append(f"HTTP {response.status} {response.request.method} {response.url}")

    def _on_console(self, message: ConsoleMessage) -> None:
        text = message.text
        if message.type == "error" and ("Content Security Policy" in text or "Refused to" in text):
            self.problems.append(f"console : {text}")

    # -- navigation ------------------------------------------------------------------------

    def go(self, path: str, status: int | None = 200) -> Response:
        """Open a page by its path; check its HTTP status unless ``status`` is None."""
        response = self.page.goto(path)
        assert response is not None, path
        if status is not None:
            assert response.status == status, (
                f"{path} : HTTP {response.status} au lieu de {status}\n"
                f"{self.page.inner_text('body')[:600]}"
            )
        return response

    def path(self) -> str:
        parts = urlsplit(self.page.url)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    def main_text(self) -> str:
        return self.page.inner_text("main")

    def shot(self, name: str, folder: Path = SCREENSHOTS) -> Path:
        """A full-page PNG screenshot, ``artifacts/screenshots/<name>.png``."""
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{name}.png"
        self.page.screenshot(path=str(target), full_page=True)
        return target

    # -- logins (through the local identity provider, as a person would) --------------------

    def to_provider(self, audience: str) -> None:
        """From the home page, « Se connecter avec … » to the provider's login page."""
        label = {"agents": "ProConnect", "residents": "FranceConnect"}[audience]
        self.go("/")
        self.page.get_by_role("link", name=f"Se connecter avec {label}").click()
        self.page.wait_for_url(re.compile(rf"/oidc-local/{audience}/"))

    def login_agent(self, account: str) -> None:
        self.to_provider("agents")
        self.page.locator(f'button[name="account"][value="{account}"]').click()
        self.page.wait_for_url(re.compile(r"/console(\?|$)"))

    def login_resident(self, index: int = 0) -> DemoResident:
        """Log in as the provider's ``index``-th demo resident."""
        self.to_provider("residents")
        card = self.page.locator("ul.cards > li.card").nth(index)
        label = " ".join(card.locator("h3").inner_text().split())
        detail = " ".join(card.locator("p.small").inner_text().split())
        button = card.locator('button[name="account"]')
        account = button.get_attribute("value") or ""
        button.click()
        self.page.wait_for_url(re.compile(r"/portail(\?|$)"))
        return DemoResident(account, label, detail)

    def logout(self) -> None:
        self.page.get_by_role("button", name="Se déconnecter").click()
        self.page.wait_for_load_state()

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def open_site(browser: Browser, server: Server) -> Iterator[Callable[..., Site]]:
    """A factory of visitors; each is closed at the end and must have met no problem."""
    opened: list[Site] = []

    def factory(viewport: ViewportSize | None = None) -> Site:
        site = Site.open(browser, server, viewport)
        opened.append(site)
        return site

    yield factory
    problems = [p for site in opened for p in site.problems]
    for site in opened:
        site.close()
    assert not problems, "problèmes vus par le navigateur :\n" + "\n".join(problems)


# -- finding people the way an agent would -----------------------------------------------------


@dataclass(frozen=True)
class Found:
    """A person found by a console search: the 360° view's path and the name shown."""

    href: str
    name: str  # « NOM Prénom(s) » as the results table shows them (identified purposes)
    birth_year: str = ""

    @property
    def person(self) -> str:
        return urlsplit(self.href).path.rsplit("/", 1)[-1]

    @property
    def purpose(self) -> str:
        return parse_qs(urlsplit(self.href).query).get("finalite", [""])[0]


def search_results(site: Site, purpose: str, query: str) -> list[Found]:
    """The console's search results (links to the 360° view) for a query, in page order."""
    site.go(f"/console?finalite={purpose}&q={query}")
    links = site.page.locator("#resultats a[href^='/console/personnes/']")
    found = []
    for i in range(links.count()):
        link = links.nth(i)
        row = link.locator("xpath=ancestor::tr").first
        cells = row.locator("td").all_inner_texts()
        year = cells[2].strip().strip("—") if len(cells) > 3 else ""
        found.append(Found(link.get_attribute("href") or "", " ".join(cells[:2]).strip(), year))
    return found


def suggested_names(site: Site, purpose: str, prefix: str) -> list[str]:
    """The names the search field suggests for two letters (the htmx fragment it fetches)."""
    answer = site.context.request.get(f"/console/suggestions?finalite={purpose}&q={prefix}")
    assert answer.ok, f"suggestions : HTTP {answer.status}"
    return [html.unescape(v) for v in re.findall(r'value="([^"]*)"', answer.text()) if v]


def someone_in(site: Site, purpose: str) -> Found:
    """A person of the purpose's population: two letters, a suggested name, then the search."""
    for prefix in PREFIXES:
        for name in suggested_names(site, purpose, prefix):
            found = search_results(site, purpose, name)
            if found:
                return found[0]
    raise AssertionError(f"aucune personne trouvée sous la finalité {purpose}")
