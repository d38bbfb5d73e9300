"""Benchmark: the web interfaces under load (50 concurrent clients, p95 under 100 ms).

Target (issue "Interfaces", performance): with 50 concurrent clients on loopback against the
10,000-inhabitant sandbox, the resident portal and the 360° view answer at p95 under 100 ms.

What runs, as a user would run it:

1. ``territoria demo WS --no-serve`` builds a linked sandbox workspace in a temporary folder
   (10,000 inhabitants; 2,000 with ``--quick``); ``[web] rate_limit_per_minute = 0`` is written
   into its ``territoria.toml`` (the benchmark disables rate limiting: one address sends
   everything) and ``territoria api-keys create`` gives each agent an API key.
2. ``python -m territoria serve -w WS --port P`` runs in its own process; we wait for ``/sante``.
3. Every client logs in the real way, through the local OpenID provider (``/connexion/agent``
   or ``/connexion/resident``, the provider's login page, its account search, the callback),
   and keeps its own session cookie. Residents are the provider's accounts
   (``resident_accounts``: its demo residents first), one per client where possible.
4. Each agent finds persons first, through the API (name suggestions, then searches) under
   the purpose it acts for; the 360° scenarios cycle over those pseudonyms.
5. 50 closed-loop clients (no think time; ``--think-ms`` adds one), each on its own keep-alive
   connection, run from this process (asyncio and a minimal HTTP/1.1 client, so that the
   generator stays light: its CPU is printed), each scenario for a fixed time after a warm-up:

   (a) the residents' « mes services » page ``/portail`` (each client another resident);
   (b) the agents' 360° view page ``/console/personnes/{p}?finalite=…``;
   (c) the same 360° view through the API ``/api/v1/persons/{p}?purpose=…`` (API key);
   (d) the reference: ``/sante`` (no governance, no template), with the agents' cookies.

The table gives requests, throughput, p50/p95/p99, errors (non-2xx; must be 0), the CPU of the
server (its process and children; also per request) and of the generator. The last line is JSON: ``value``
is the worst p95 of (a), (b), (c) in ms, ``ratio`` that p95 over the p95 of (d). A scenario
whose page the server does not have (404 for every client) is reported absent and left out.
The exit status is 1 if any request failed. Closed-loop clients make latency about
clients ÷ throughput (Little's law): the CPU per request decides the p95.

    python benchmarks/web_load.py                 # 10 000 inhabitants, 20 s per scenario
    python benchmarks/web_load.py --quick         # 2 000 inhabitants, 5 s per scenario
    python benchmarks/web_load.py --workspace /tmp/ws   # built once, reused after
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import html
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import httpx

TARGET_MS = 100.0
HOST = "127.0.0.1"
COOKIE = "territoria_session"
AGENTS = (  # (agent, purpose): roles that may suggest, search and open a 360° view
    ("claire.ccas", "ccas_social_support"),
    ("lea.biblio", "library_lending"),
    ("samir.ecole", "school_enrolment"),
    ("ines.eau", "water_billing"),
    ("paul.dechets", "waste_billing"),
    ("nora.mobilite", "transport_solidarity"),
)
PREFIXES = (
    "ma", "be", "le", "ro", "da", "ch", "ga", "bo", "mo", "la", "pe", "gu", "fo", "du",
    "ri", "ca", "me", "ba", "de", "fa", "gi", "vi", "br", "co", "po", "sa", "ta", "no",
)  # fmt: skip
SCENARIOS = {
    "portal": "(a) portail « mes services »",
    "console": "(b) console, vue 360°",
    "api": "(c) API, vue 360°",
    "health": "(d) référence /sante",
}


class BenchError(Exception):
    """The benchmark cannot go on (message in French)."""


# -- workspace and server -----------------------------------------------------------------------


def territoria(*args: str, log: Path | None = None) -> str:
    """Run the CLI as a user would (``python -m territoria …``); its standard output."""
    done = subprocess.run(
        [sys.executable, "-m", "territoria", *args], capture_output=True, text=True, timeout=1800
    )
    if log is not None:
        log.write_text(done.stdout + done.stderr, encoding="utf-8")
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-20:])
        raise BenchError(f"échec de « territoria {' '.join(args[:2])} » :\n{tail}")
    return done.stdout


def disable_rate_limit(workspace: Path) -> None:
    """``[web] rate_limit_per_minute = 0`` in the workspace's territoria.toml."""
    toml = workspace / "territoria.toml"
    text = toml.read_text(encoding="utf-8")
    if tomllib.loads(text).get("web", {}).get("rate_limit_per_minute") == 0:
        return
    if re.search(r"^\[web\]\s*$", text, flags=re.M):
        text = re.sub(r"^rate_limit_per_minute\s*=.*\n", "", text, flags=re.M)
        text = re.sub(
            r"^\[web\]\s*$", "[web]\nrate_limit_per_minute = 0", text, count=1, flags=re.M
        )
    else:
        text = text.rstrip("\n") + "\n\n[web]\nrate_limit_per_minute = 0\n"
    toml.write_text(text, encoding="utf-8")


def prepare(workspace: Path, population: int) -> dict[str, str]:
    """The demo workspace (built if missing), rate limiting off; one API key per agent."""
    if not (workspace / "territoria.toml").is_file():
        print(f"Territoire fictif de {population} habitants : génération, chargement, liaison…")
        start = time.perf_counter()
        log = workspace.parent / f"{workspace.name}-demo.log"
        territoria("demo", str(workspace), "--population", str(population), "--no-serve", log=log)
        print(f"  espace de travail prêt en {time.perf_counter() - start:.0f} s : {workspace}")
    else:
        print(f"Espace de travail existant réutilisé : {workspace}")
    disable_rate_limit(workspace)
    print(
        "Limitation de débit désactivée pour la mesure ([web] rate_limit_per_minute = 0) : "
        "tous les clients viennent de la même adresse."
    )
    keys = {}
    for agent, _ in AGENTS:
        out = territoria(
            "api-keys", "create", "--for", agent, "--label", "banc d'essai web", "--json",
            "-w", str(workspace),
        )  # fmt: skip
        keys[agent] = str(json.loads(out)["secret"])
    return keys


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def server(
    workspace: Path, port: int, log: Path, workers: int
) -> Iterator[subprocess.Popen[bytes]]:
    """``territoria serve`` in its own process, until ``/sante`` answers; stopped on exit."""
    command = [sys.executable, "-m", "territoria", "serve", "-w", str(workspace)]
    command += ["--workers", str(workers)]
    with log.open("wb") as out:
        proc = subprocess.Popen([*command, "--port", str(port)], stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
                raise BenchError(f"le serveur s'est arrêté (code {proc.returncode}) :\n{tail}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://{HOST}:{port}/sante", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise BenchError("le serveur ne répond pas sur /sante après 120 s")
            time.sleep(0.2)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU of a process and its descendants (uvicorn workers), Linux only."""
    ticks, parents = {}, {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                parents[int(entry.name)] = int(fields[1])
                ticks[int(entry.name)] = int(fields[11]) + int(fields[12])
    family, grew = {root}, True
    while grew:
        grown = family | {pid for pid, parent in parents.items() if parent in family}
        grew, family = grown != family, grown
    return sum(ticks.get(pid, 0) for pid in family) / os.sysconf("SC_CLK_TCK")


def http_stack() -> str:
    """What uvicorn picks in the server's interpreter (httptools and uvloop when importable)."""
    probe = (
        "def ok(m):\n try:\n  __import__(m)\n  return True\n except ImportError:\n  return False\n"
        "print('httptools' if ok('httptools') else 'h11', 'uvloop' if ok('uvloop') else 'asyncio',"
        " sep='+')"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    return done.stdout.strip() or "?"


# -- logging in through the local OpenID provider -----------------------------------------------

_ACCOUNT = re.compile(r'name="account" value="([^"]+)"')
_TXN = re.compile(r'name="transaction" value="([^"]+)"')
_POST = re.compile(r'<form method="post" action="([^"]+)"')
_SEARCH = re.compile(r'<form method="get" action="([^"]+)"[^>]*role="search"')


def _found(pattern: re.Pattern[str], page: str, what: str) -> str:
    match = pattern.search(page)
    if match is None:
        raise BenchError(f"page de connexion du fournisseur sans {what}")
    return html.unescape(match.group(1))


@dataclass
class Session:
    who: str
    cookie: str
    home_status: int


def login(base: str, word: str, account: str, search: str = "") -> Session | None:
    """Log in as ``account`` (looked up with ``search`` on the provider's page if not listed);
    None if the relying party refuses the identity (e.g. no record of this person)."""
    with httpx.Client(base_url=base, timeout=30) as http:
        start = http.get(f"/connexion/{word}")
        if start.status_code != 303:
            raise BenchError(f"/connexion/{word} : {start.status_code} au lieu de 303")
        page = http.get(start.headers["location"])
        page.raise_for_status()
        txn, action = _found(_TXN, page.text, "transaction"), _found(_POST, page.text, "formulaire")
        listed = [html.unescape(a) for a in _ACCOUNT.findall(page.text)]
        if account not in listed and search:
            found = http.get(_found(_SEARCH, page.text, "recherche"), params={"q": search})
            listed = [html.unescape(a) for a in _ACCOUNT.findall(found.text)]
        if account not in listed:
            return None
        back = http.post(action, data={"transaction": txn, "account": account})
        if back.status_code != 303:
            raise BenchError(f"fournisseur : {back.status_code} au choix du compte")
        done = http.get(back.headers["location"])
        if done.status_code != 303:
            return None
        home = http.get(done.headers["location"])  # the home page (it settles the CSRF token)
        cookie = http.cookies.get(COOKIE)
        if not cookie:
            raise BenchError(f"connexion {word} sans cookie de session")
        return Session(account, cookie, home.status_code)


def resident_sessions(base: str, workspace: Path, wanted: int) -> list[Session]:
    """Up to ``wanted`` residents logged in, each a different person, demo accounts first."""
    from territoria.interfaces.web.oidc.accounts import resident_accounts

    accounts = resident_accounts(workspace / "sandbox" / "truth" / "persons.csv")
    sessions: list[Session] = []
    tried, start = 0, time.perf_counter()
    for account in accounts:
        if len(sessions) == wanted or tried >= 4 * wanted:
            break
        tried += 1
        query = f"{account.claims['given_name']} {account.claims['family_name']}"
        session = login(base, "resident", account.id, "" if account.demo else query)
        if session is not None:
            sessions.append(session)
    print(
        f"  {len(sessions)} résidents connectés en {time.perf_counter() - start:.1f} s "
        f"({tried - len(sessions)} identité(s) du fournisseur sans dossier reconnu, "
        f"sur {tried} essayées)"
    )
    return sessions


def agent_sessions(base: str, clients: int) -> list[Session]:
    sessions, start = [], time.perf_counter()
    for i in range(clients):
        agent = AGENTS[i % len(AGENTS)][0]
        session = login(base, "agent", agent)
        if session is None:
            raise BenchError(f"connexion de l'agent {agent} refusée")
        sessions.append(session)
    print(
        f"  {len(sessions)} sessions d'agents ({', '.join(a for a, _ in AGENTS)}) "
        f"en {time.perf_counter() - start:.1f} s"
    )
    return sessions


def find_persons(base: str, keys: dict[str, str], per_purpose: int) -> dict[str, list[str]]:
    """Pseudonyms each agent finds through the API: name suggestions, then searches."""
    found: dict[str, list[str]] = {}
    for agent, purpose in AGENTS:
        seen: dict[str, None] = {}
        headers = {"Authorization": f"Bearer {keys[agent]}"}
        with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
            for prefix in PREFIXES:
                params: dict[str, str | int] = {"purpose": purpose, "prefix": prefix, "limit": 20}
                names = http.get("/api/v1/persons/suggestions", params=params)
                names.raise_for_status()
                for name in names.json()["suggestions"]:
                    params = {"purpose": purpose, "q": name, "limit": 20}
                    hits = http.get("/api/v1/persons", params=params)
                    hits.raise_for_status()
                    seen.update((hit["person"], None) for hit in hits.json()["results"])
                    if len(seen) >= per_purpose:
                        break
                if len(seen) >= per_purpose:
                    break
        if not seen:
            raise BenchError(f"{agent} ne trouve personne sous {purpose}")
        found[purpose] = list(seen)[:per_purpose]
    counts = ", ".join(f"{p} {len(v)}" for p, v in found.items())
    print(f"  personnes trouvées par les agents (API : suggestions, recherche) : {counts}")
    return found


@dataclass(frozen=True)
class Plan:
    """What to run: one run's parameters."""

    workspace: Path
    clients: int
    per_purpose: int
    wanted: tuple[str, ...]
    warmup: float
    duration: float
    think: float


# -- the load generator -------------------------------------------------------------------------


@dataclass
class Client:
    """One closed-loop client: its own connection and credentials, paths it cycles over."""

    paths: list[str]
    cookie: str | None = None
    api_key: str | None = None
    sent: int = 0
    samples: list[tuple[float, float, int]] = field(default_factory=list)  # start, time, status

    def request(self, host: str) -> bytes:
        path = self.paths[self.sent % len(self.paths)]
        self.sent += 1
        lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "Accept: text/html, application/json"]
        if self.cookie:
            lines.append(f"Cookie: {COOKIE}={self.cookie}")
        if self.api_key:
            lines.append(f"Authorization: Bearer {self.api_key}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _response(reader: asyncio.StreamReader, client: Client) -> tuple[int, bool]:
    """Read one HTTP/1.1 response: its status, and whether the connection stays open."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    status_line, *lines = head.split("\r\n")
    status = int(status_line.split(" ", 2)[1])
    length, chunked, keep = 0, False, True
    for line in lines:
        name, _, value = line.partition(":")
        name, value = name.strip().lower(), value.strip()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding":
            chunked = "chunked" in value.lower()
        elif name == "connection":
            keep = value.lower() != "close"
        elif name == "set-cookie" and value.startswith(f"{COOKIE}="):
            client.cookie = value.split(";", 1)[0].split("=", 1)[1]
    if chunked:
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            await reader.readexactly(size + 2)
        await reader.readuntil(b"\r\n")
    elif length:
        await reader.readexactly(length)
    return status, keep


async def _run_client(client: Client, port: int, stop: float, think: float, seed: int) -> None:
    host, jitter = f"{HOST}:{port}", random.Random(seed)
    connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    try:
        while time.perf_counter() < stop:
            if connection is None:
                connection = await asyncio.open_connection(HOST, port)
            reader, writer = connection
            start = time.perf_counter()
            writer.write(client.request(host))
            try:
                status, keep = await _response(reader, client)
            except (asyncio.IncompleteReadError, ConnectionError):
                status, keep = 599, False  # connection lost: counted as an error
            client.samples.append((start, time.perf_counter() - start, status))
            if not keep:
                writer.close()
                connection = None
            if think:  # a person reading the page: think ± 50 %
                await asyncio.sleep(think * jitter.uniform(0.5, 1.5))
    finally:
        if connection is not None:
            connection[1].close()


async def _drive(clients: list[Client], port: int, plan: Plan) -> float:
    """Run every client until warm-up + duration; the time the measurement window starts."""
    measure = time.perf_counter() + plan.warmup
    stop, tasks = measure + plan.duration, []
    for i, client in enumerate(clients):  # clients arrive a millisecond apart
        tasks.append(asyncio.create_task(_run_client(client, port, stop, plan.think, i)))
        await asyncio.sleep(0.001)
    await asyncio.gather(*tasks)
    return measure


@dataclass
class Result:
    name: str
    latencies: list[float]  # seconds, requests started and answered within the window
    seconds: float
    statuses: Counter[int]
    server_cpu: float  # share of one core, warm-up included
    generator_cpu: float
    cpu_ms: float  # server CPU per request (warm-up included)

    @property
    def errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if not 200 <= status < 300)

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.seconds

    def p(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_scenario(
    name: str, clients: list[Client], port: int, server_pid: int, plan: Plan
) -> Result:
    cpu0, server0, wall0 = time.process_time(), tree_cpu_seconds(server_pid), time.perf_counter()
    measure = asyncio.run(_drive(clients, port, plan))
    cpu1, server1 = time.process_time(), tree_cpu_seconds(server_pid)
    wall = time.perf_counter() - wall0
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    for client in clients:
        for start, latency, status in client.samples:
            if start >= measure and start + latency <= measure + plan.duration:
                latencies.append(latency)
                statuses[status] += 1
    if not latencies:
        raise BenchError(f"{SCENARIOS[name]} : aucune réponse pendant la mesure")
    sent = sum(len(c.samples) for c in clients)
    return Result(
        name, latencies, plan.duration, statuses, (server1 - server0) / wall,
        (cpu1 - cpu0) / wall, 1000 * (server1 - server0) / sent,
    )  # fmt: skip


# -- scenarios, table, JSON ---------------------------------------------------------------------


def plan_clients(
    base: str, plan: Plan, keys: dict[str, str]
) -> tuple[dict[str, list[Client]], list[str]]:
    """Log everyone in, find persons, and give each scenario its clients."""
    agents = agent_sessions(base, plan.clients)
    persons = find_persons(base, keys, plan.per_purpose)
    plans: dict[str, list[Client]] = {"console": [], "api": []}
    absent = []
    if "portal" in plan.wanted:
        residents = resident_sessions(base, plan.workspace, plan.clients)
        if not residents:
            raise BenchError("aucun résident n'a pu se connecter")
        if all(s.home_status == 404 for s in residents):
            absent.append("portal")
        else:
            cookies = [residents[i % len(residents)].cookie for i in range(plan.clients)]
            plans["portal"] = [Client(["/portail"], cookie=c) for c in cookies]
    for i, session in enumerate(agents):
        agent, purpose = AGENTS[i % len(AGENTS)]
        found = persons[purpose]
        shift = (i // len(AGENTS)) * 7 % len(found)  # clients of one agent start apart
        order = [quote(p) for p in found[shift:] + found[:shift]]
        pages = [f"/console/personnes/{p}?finalite={purpose}" for p in order]
        plans["console"].append(Client(pages, cookie=session.cookie))
        api = [f"/api/v1/persons/{p}?purpose={purpose}" for p in order]
        plans["api"].append(Client(api, api_key=keys[agent]))
    plans["health"] = [Client(["/sante"], cookie=s.cookie) for s in agents]
    return plans, absent


def print_table(results: list[Result], absent: list[str]) -> None:
    header = (
        f"{'scénario':30s} {'requêtes':>9s} {'débit req/s':>12s} {'p50 ms':>8s} {'p95 ms':>8s} "
        f"{'p99 ms':>8s} {'erreurs':>8s} {'CPU serveur':>12s} {'ms CPU/req':>11s} {'CPU client':>11s}"
    )
    print(f"\n{header}\n{'-' * len(header)}")
    for r in results:
        print(
            f"{SCENARIOS[r.name]:30s} {len(r.latencies):9d} {r.throughput:12.1f} "
            f"{r.p(0.50):8.1f} {r.p(0.95):8.1f} {r.p(0.99):8.1f} {r.errors:8d} "
            f"{100 * r.server_cpu:11.0f}% {r.cpu_ms:11.2f} {100 * r.generator_cpu:10.0f}%"
        )
    for name in absent:
        print(f"{SCENARIOS[name]:30s} absent (le serveur répond 404 : page pas encore servie)")
    print("(CPU : part d'un cœur, échauffement compris ; serveur : processus et descendants)")


def report(results: list[Result], absent: list[str], plan: Plan, extra: dict[str, object]) -> int:
    governed = [r for r in results if r.name != "health"]
    reference = next((r for r in results if r.name == "health"), None)
    worst = max((r.p(0.95) for r in governed), default=0.0)
    ratio = worst / reference.p(0.95) if reference and governed else 0.0
    errors = sum(r.errors for r in results)
    verdict = "atteinte" if governed and worst < TARGET_MS else "NON atteinte"
    print(f"pire p95 de (a), (b), (c) : {worst:.1f} ms (cible < {TARGET_MS:g} ms : {verdict})")
    for r in results:
        bad = {status: n for status, n in r.statuses.items() if not 200 <= status < 300}
        if bad:
            print(f"ERREURS {SCENARIOS[r.name]} : {bad} (599 : connexion perdue)")
    summary = {
        "benchmark": "web_load",
        "value": round(worst, 2),
        "unit": "ms",
        "target": TARGET_MS,
        "ratio": round(ratio, 3),
        "p50_ms": {r.name: round(r.p(0.50), 2) for r in results},
        "p95_ms": {r.name: round(r.p(0.95), 2) for r in results},
        "p99_ms": {r.name: round(r.p(0.99), 2) for r in results},
        "throughput_rps": {r.name: round(r.throughput, 1) for r in results},
        "server_cpu": {r.name: round(r.server_cpu, 2) for r in results},
        "server_cpu_ms_per_request": {r.name: round(r.cpu_ms, 3) for r in results},
        "errors": errors,
        "absent": absent,
        "clients": plan.clients,
        "seconds_per_scenario": plan.duration,
        "think_ms": 1000 * plan.think,
        "generator_cpu_max": round(max((r.generator_cpu for r in results), default=0.0), 3),
        **extra,
    }
    print(json.dumps(summary, ensure_ascii=False))
    return 1 if errors else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 000 habitants, 5 s par scénario")
    parser.add_argument("--population", type=int, help="habitants (10 000 ; 2 000 en --quick)")
    parser.add_argument("--clients", type=int, default=50, help="clients simultanés (50)")
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="processus du serveur (territoria serve --workers ; défaut : un par cœur)",
    )
    parser.add_argument("--duration", type=float, help="secondes mesurées par scénario (20 ; 5)")
    parser.add_argument("--warmup", type=float, help="secondes d'échauffement (3 ; 1)")
    parser.add_argument("--workspace", type=Path, help="espace de travail (créé s'il manque)")
    parser.add_argument("--only", choices=list(SCENARIOS), action="append", help="un scénario")
    parser.add_argument(
        "--think-ms", type=float, default=0.0, help="temps de lecture entre deux pages (0)"
    )
    args = parser.parse_args()
    population = args.population or (2_000 if args.quick else 10_000)
    folder = Path(tempfile.mkdtemp(prefix="territoria-web-load-"))
    plan = Plan(
        workspace=args.workspace.resolve() if args.workspace else folder / "ws",
        clients=args.clients,
        per_purpose=30 if args.quick else 100,
        wanted=tuple(args.only or SCENARIOS),
        warmup=args.warmup if args.warmup is not None else (1.0 if args.quick else 3.0),
        duration=args.duration or (5.0 if args.quick else 20.0),
        think=args.think_ms / 1000,
    )
    load_before, stack = os.getloadavg()[0], http_stack()
    try:
        keys = prepare(plan.workspace, population)
        port = free_port()
        base = f"http://{HOST}:{port}"
        with server(plan.workspace, port, folder / "serve.log", args.workers) as proc:
            print(f"« territoria serve » (processus {proc.pid}, {stack}) sur {base}/")
            clients, absent = plan_clients(base, plan, keys)
            results = []
            for name in (n for n in SCENARIOS if n in clients and n in plan.wanted):
                think = f", {1000 * plan.think:g} ms de lecture" if plan.think else ""
                print(f"{SCENARIOS[name]} : {plan.clients} clients{think}, {plan.warmup:g} s "
                      f"d'échauffement puis {plan.duration:g} s mesurées…")  # fmt: skip
                results.append(run_scenario(name, clients[name], port, proc.pid, plan))
    except BenchError as exc:
        print(f"ERREUR : {exc}", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print_table(results, absent)
    load = (round(load_before, 2), round(os.getloadavg()[0], 2))
    print(f"charge de la machine (moyenne 1 min) avant/après : {load[0]} / {load[1]} "
          f"sur {os.cpu_count()} cœurs")  # fmt: skip
    extra = {"population": population, "http": stack, "load_avg": load}
    return report(results, absent, plan, extra)


if __name__ == "__main__":
    sys.exit(main())
