"""Apps and interfaces have no path to personal data but the governance layer (STYLE habit 2).

Two proofs. A static one: an AST scan of every module under ``territoria/interfaces`` and
``territoria/apps`` finds every call of the stores' personal-data methods, every import of the
resident index's internals or of a database driver, and every call of a library service that
reads personal data on its own; each must be in ``ALLOWLIST`` with its reason, and a new one
fails the test. A dynamic one: the embedded store's personal-data methods note the call stack
while CLI commands run on a copy of the linked sandbox; every call made for a command that
shows personal data must come through ``territoria/governance``, and each such command must
leave exactly one record in the audit ledger.
"""

from __future__ import annotations

import ast
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from typer.testing import CliRunner

import territoria
from territoria.backends import Store, open_store
from territoria.backends.embedded import EmbeddedStore
from territoria.core.config import WorkspaceConfig, load_workspace
from territoria.governance.service import Governance
from territoria.interfaces.cli import app

PACKAGE = Path(territoria.__file__).resolve().parent
SCANNED = ("interfaces", "apps")

# The stores' methods that hand out personal data (raw records, quarantined rows, the SQL
# session on the resident index), and the governance internals that serve it undecided.
PERSONAL_METHODS = frozenset(
    {"raw_batches", "raw_table", "raw_records", "raw_rows", "quarantine", "tables"}
)
INTERNAL_ATTRIBUTES = frozenset({"db", "reader"})
# Modules an interface must not import: the index's tables, the store engines, drivers.
FORBIDDEN_MODULES = (
    "territoria.identity.registry",
    "territoria.identity.mentions",
    "territoria.backends.tables",
    "territoria.backends.embedded",
    "territoria.backends.postgres",
    "duckdb",
    "sqlite3",
    "psycopg",
    "psycopg2",
    "pyarrow.parquet",
    "pyarrow.dataset",
)
# Library functions that read or write personal data without a governed decision.
FORBIDDEN_NAMES = frozenset(
    {
        "Registry",
        "TableDB",
        "read_workspace_mentions",
        "review_pairs",
        "explain_pair",
        "link_mentions",
        "link_workspace",
        "attach_new_mentions",
        "evaluate_workspace",
        "identity_status",
        "link_files",
        "link_frames",
        "ingest_files",
        "export_quarantine",
    }
)

# (module, name) -> why this use is legitimate. A use not listed here fails the scan; an entry
# no longer used fails too, so the list stays the exact picture of the exceptions.
ALLOWLIST: dict[tuple[str, str], str] = {
    (
        "territoria.interfaces.runs.tariffs",
        "tables",
    ): "« extract.tables » : les tables rendues par Governance.extract (lecture gouvernée par "
    "lot, un enregistrement au journal), pas la session de tables du magasin",
    (
        "territoria.interfaces.runs.waste",
        "tables",
    ): "« extract.tables » : les tables rendues par Governance.extract (lecture gouvernée par "
    "lot, un enregistrement au journal), pas la session de tables du magasin",
    (
        "territoria.interfaces.cli.app",
        "quarantine",
    ): "« ingest.quarantine » est la commande CLI montée sous « territoria quarantine » (elle "
    "passe par governance.steward.quarantine_rows), pas la méthode du magasin",
    (
        "territoria.interfaces.cli.identity",
        "link_workspace",
    ): "traitement par lots du service de l'index des résidents (finalité identity_resolution) : "
    "lit les seuls champs d'identification déclarés par les contrats et n'affiche que des "
    "effectifs",
    (
        "territoria.interfaces.cli.identity",
        "attach_new_mentions",
    ): "rattachement incrémental, même traitement par lots que link_workspace ; n'affiche que "
    "des effectifs",
    (
        "territoria.interfaces.cli.identity",
        "evaluate_workspace",
    ): "compare l'index à la vérité terrain du bac à sable (clés de personnes seulement) ; "
    "n'affiche que des métriques",
    (
        "territoria.interfaces.cli.identity",
        "identity_status",
    ): "effectifs de l'index (personnes, ménages, revues en attente) : aucune donnée "
    "personnelle affichée",
    (
        "territoria.interfaces.cli.identity",
        "link_files",
    ): "relie des fichiers CSV fournis par l'utilisateur sur son poste, hors du magasin et de "
    "l'index",
    (
        "territoria.interfaces.cli.ingest",
        "ingest_files",
    ): "l'ingestion écrit les livraisons dans le magasin (contrôle du contrat) ; elle n'en "
    "affiche que des compteurs",
}


# -- the static scan --------------------------------------------------------------------------


@dataclass(frozen=True)
class Use:
    module: str
    name: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.module}:{self.line} {self.what} « {self.name} »"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _forbidden_module(name: str) -> bool:
    return any(name == m or name.startswith(m + ".") for m in FORBIDDEN_MODULES)


class _Scanner(ast.NodeVisitor):
    """Collect every use of a forbidden module, name, store method or internal attribute."""

    def __init__(self, module: str) -> None:
        self.module = module
        self.uses: list[Use] = []

    def _add(self, node: ast.AST, name: str, what: str) -> None:
        self.uses.append(Use(self.module, name, getattr(node, "lineno", 0), what))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if _forbidden_module(alias.name):
                self._add(node, alias.name, "import d'un module interdit")

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if _forbidden_module(base):
            self._add(node, base, "import d'un module interdit")
        for alias in node.names:
            if alias.name in FORBIDDEN_NAMES:
                self._add(node, alias.name, "import d'une fonction hors gouvernance")
            elif not _forbidden_module(base) and _forbidden_module(f"{base}.{alias.name}"):
                self._add(node, f"{base}.{alias.name}", "import d'un module interdit")

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in FORBIDDEN_NAMES:
            self._add(node, node.id, "usage d'une fonction hors gouvernance")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        on_gov = isinstance(node.value, ast.Name) and node.value.id == "gov"
        if node.attr in PERSONAL_METHODS and not (on_gov and node.attr == "quarantine"):
            self._add(node, node.attr, "méthode de données personnelles du magasin")
        elif node.attr in INTERNAL_ATTRIBUTES:
            self._add(node, node.attr, "accès aux entrailles de la gouvernance")
        elif node.attr in FORBIDDEN_NAMES:
            self._add(node, node.attr, "usage d'une fonction hors gouvernance")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Name) and node.func.id in ("getattr", "__import__"):
            for arg in node.args[1:] if node.func.id == "getattr" else node.args[:1]:
                text = arg.value if isinstance(arg, ast.Constant) else None
                if isinstance(text, str) and (
                    text in PERSONAL_METHODS | INTERNAL_ATTRIBUTES | FORBIDDEN_NAMES
                    or _forbidden_module(text)
                ):
                    self._add(node, text, f"accès dynamique par {node.func.id}")
        self.generic_visit(node)


def scan_source(source: str, module: str) -> list[Use]:
    scanner = _Scanner(module)
    scanner.visit(ast.parse(source))
    return scanner.uses


def scanned_files() -> list[Path]:
    folders = [PACKAGE / name for name in SCANNED if (PACKAGE / name).is_dir()]
    return sorted(p for folder in folders for p in folder.rglob("*.py"))


def scan_package() -> list[Use]:
    return [
        use
        for path in scanned_files()
        for use in scan_source(path.read_text(encoding="utf-8"), _module_name(path))
    ]


def test_the_scan_covers_every_interface_module() -> None:
    names = {_module_name(p) for p in scanned_files()}
    assert {"territoria.interfaces.cli.governance", "territoria.interfaces.cli.rights"} <= names
    assert len(names) >= 10


def test_interfaces_reach_personal_data_only_through_governance() -> None:
    unlisted = [u for u in scan_package() if (u.module, u.name) not in ALLOWLIST]
    assert not unlisted, (
        "accès aux données personnelles hors de la gouvernance (passez par Governance, ou "
        "ajoutez l'exception motivée à ALLOWLIST) :\n" + "\n".join(map(str, unlisted))
    )


def test_every_allowlisted_exception_is_still_used_and_has_a_reason() -> None:
    used = {(u.module, u.name) for u in scan_package()}
    stale = sorted(set(ALLOWLIST) - used)
    assert not stale, f"exceptions qui ne servent plus (à retirer de ALLOWLIST) : {stale}"
    assert all(len(reason) > 30 for reason in ALLOWLIST.values())


@pytest.mark.parametrize(
    ("snippet", "name"),
    [
        ("store.raw_table('ccas_aid')", "raw_table"),
        ("rows = store.raw_records('ccas_aid', 'aid_id', ['1'])", "raw_records"),
        ("for b in s.raw_batches('x'): pass", "raw_batches"),
        ("store.quarantine('ccas_aid')", "quarantine"),
        ("gov.store.quarantine('ccas_aid')", "quarantine"),
        ("db = store.tables()", "tables"),
        ("gov.db.query('SELECT * FROM id_features')", "db"),
        ("gov.reader.records(decision, persons)", "reader"),
        ("fetch = getattr(store, 'raw_table')", "raw_table"),
        ("from territoria.identity import Registry", "Registry"),
        ("import territoria.identity.registry as r", "territoria.identity.registry"),
        (
            "from territoria.identity.mentions import read_workspace_mentions",
            "read_workspace_mentions",
        ),
        ("from territoria.identity import explain_pair", "explain_pair"),
        ("territoria.identity.review_pairs(result)", "review_pairs"),
        ("from territoria.backends.tables import TableDB", "territoria.backends.tables"),
        ("from territoria.backends import tables", "territoria.backends.tables"),
        ("import duckdb", "duckdb"),
        ("import sqlite3", "sqlite3"),
        ("import psycopg", "psycopg"),
        ("import pyarrow.parquet as pq", "pyarrow.parquet"),
        ("mod = __import__('sqlite3')", "sqlite3"),
    ],
)
def test_the_scan_catches_each_kind_of_bypass(snippet: str, name: str) -> None:
    uses = scan_source(snippet, "territoria.interfaces.fake")
    assert name in {u.name for u in uses}, uses


def test_the_scan_lets_governed_calls_pass() -> None:
    source = (
        "from territoria.governance import Governance, ReadRequest\n"
        "from territoria.governance.steward import quarantine_rows\n"
        "result = gov.read(ReadRequest('a', 'p', 'count'))\n"
        "count, rows = quarantine_rows(gov, 'a', None, 'water_subscribers')\n"
        "store.quarantine_count('water_subscribers')\n"
    )
    assert scan_source(source, "territoria.interfaces.fake") == []


# -- the runtime check ------------------------------------------------------------------------

runner = CliRunner()
INTERFACES = PACKAGE / "interfaces"
LIBRARY_ALLOWED = {name for _, name in ALLOWLIST} - PERSONAL_METHODS


@dataclass(frozen=True)
class Call:
    method: str
    route: str  # "governance", "library:<module>.<function>" or "interface:<module>.<function>"


@dataclass
class Recorder:
    """Every personal-data call of the store while ``active``, with the route it came by."""

    active: bool = False
    calls: list[Call] = field(default_factory=list)
    depth: int = 0  # calls the store makes to itself (raw_table -> raw_batches) are one call

    def take(self) -> list[Call]:
        calls, self.calls = self.calls, []
        return calls


def _where(frame: FrameType) -> str:
    path = Path(frame.f_code.co_filename).resolve()
    return f"{_module_name(path)}.{frame.f_code.co_name}"


def route(frame: FrameType | None) -> str:
    """How a call reached the store: which territoria code, outward from the caller."""
    library: list[FrameType] = []
    while frame is not None:
        path = Path(frame.f_code.co_filename).resolve()
        if PACKAGE in path.parents:
            if INTERFACES in path.parents or (PACKAGE / "apps") in path.parents:
                if not library:
                    return f"interface:{_where(frame)}"
                break
            library.append(frame)
        frame = frame.f_back
    if any((PACKAGE / "governance") in Path(f.f_code.co_filename).parents for f in library):
        return "governance"
    return f"library:{_where(library[-1])}" if library else "outside"


def _spy(recorder: Recorder, method: str, original: Callable[..., Any]) -> Callable[..., Any]:
    def spied(self: Store, *args: Any, **kwargs: Any) -> Any:
        if recorder.active and not recorder.depth:
            recorder.calls.append(Call(method, route(sys._getframe(1))))
        recorder.depth += 1
        try:
            return original(self, *args, **kwargs)
        finally:
            recorder.depth -= 1

    return spied


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    spy = Recorder()
    for method in sorted(PERSONAL_METHODS):
        monkeypatch.setattr(
            EmbeddedStore, method, _spy(spy, method, getattr(EmbeddedStore, method))
        )
    monkeypatch.delenv("TERRITORIA_KEYS_DIR", raising=False)
    monkeypatch.delenv("TERRITORIA_ACTOR", raising=False)
    return spy


def test_the_route_of_a_direct_call_from_an_interface_is_seen(
    recorder: Recorder, linked: tuple[WorkspaceConfig, Store]
) -> None:
    """A module compiled as if it lived in interfaces/ and calling the store is caught."""
    _, store = linked
    code = compile("store.raw_table('ccas_aid')", str(INTERFACES / "cli" / "rogue.py"), "exec")
    recorder.active = True
    exec(code, {"store": store})
    recorder.active = False
    assert recorder.take() == [
        Call("raw_table", "interface:territoria.interfaces.cli.rogue.<module>")
    ]


def _ledger_count(root: Path) -> int:
    config = load_workspace(root)
    store = open_store(config)
    try:
        return Governance.open(config, store).ledger.head().count
    finally:
        store.close()


@dataclass(frozen=True)
class Subjects:
    """Pseudonyms and keys the commands are run on (found with a governed setup)."""

    library: str
    dpo: str
    resident: str
    surname: str
    pair: tuple[str, str]


def _subjects(config: WorkspaceConfig, store: Store) -> Subjects:
    gov = Governance.open(config, store)
    key = str(
        gov.db.query(
            "SELECT m.person_key FROM id_mentions m WHERE m.source = 'library_members' "
            "ORDER BY m.person_key LIMIT 1"
        )[0][0]
    )
    surname = str(
        gov.db.query(
            "SELECT f.fn FROM id_features f JOIN id_mentions m ON m.mention_id = f.unique_id "
            "WHERE m.person_key = ? AND f.source = 'library_members'",
            [key],
        )[0][0]
    ).split()[0]
    a, b = gov.db.query("SELECT mention_a, mention_b FROM id_reviews LIMIT 1")[0]
    return Subjects(
        library=gov.pseudonyms.pseudonym(gov.policy.purposes["library_lending"].domain, key),
        dpo=gov.pseudonyms.pseudonym(gov.policy.purposes["rights_handling"].domain, key),
        resident=f"resident:{key}",
        surname=surname,
        pair=(str(a), str(b)),
    )


def _personal_commands(s: Subjects, out: Path) -> list[tuple[list[str], int]]:
    """(arguments, expected exit code) of commands that show or export personal data."""
    lib = ["--as", "lea.biblio", "-p", "library_lending"]
    return [
        (["read", "person_360", *lib, "--person", s.library, "--json"], 0),
        (["read", "search", *lib, "-q", s.surname, "--json"], 0),
        (["read", "autocomplete", *lib, "-q", s.surname[:3], "--json"], 0),
        (["read", "count", *lib, "--json"], 0),
        (["read", "records", *lib, "--source", "library_members", "--json"], 0),
        (["read", "records", "--as", "lea.biblio", "-p", "ccas_social_support", "--json"], 1),
        (["synergies", "--as", "marc.donnees", "--json"], 0),
        (["rights", "access", "--as", "dpo", "--person", s.dpo, "-o", str(out / "dpo")], 0),
        (["rights", "access", "--as", s.resident, "-o", str(out / "resident")], 0),
        (["rights", "transparency", "--as", s.resident, "--json"], 0),
        (["rights", "requests", "--as", "lea.biblio", "-p", "library_lending", "--json"], 0),
        (["audit", "search", "--as", "dpo", "--json"], 0),
        (["quarantine", "water_subscribers", "--as", "ines.eau", "--json"], 0),
        (["quarantine", "library_members", "--as", "lea.biblio", "--csv", str(out / "q.csv")], 0),
        (["identity", "review", "--as", "marc.donnees", "--json"], 0),
        (["identity", "explain", *s.pair, "--as", "marc.donnees", "--json"], 0),
    ]


def _run(args: list[str], root: Path) -> tuple[int, str]:
    result = runner.invoke(app, [*args, "-w", str(root)])
    return result.exit_code, result.stdout + result.stderr


def test_cli_reads_go_through_governance_and_leave_one_ledger_record(
    recorder: Recorder, linked: tuple[WorkspaceConfig, Store], tmp_path: Path
) -> None:
    config, store = linked
    subjects = _subjects(config, store)
    count = _ledger_count(config.root)
    seen: dict[str, list[Call]] = {}
    for args, code in _personal_commands(subjects, tmp_path):
        recorder.active = True
        exit_code, output = _run(args, config.root)
        recorder.active = False
        command = " ".join(args[:2])
        assert exit_code == code, f"{command} : {output}"
        calls = recorder.take()
        assert all(c.route == "governance" for c in calls), (command, calls)
        seen[command] = calls
        after = _ledger_count(config.root)
        assert after - count == 1, f"{command} : {after - count} enregistrement(s) au journal"
        count = after
    assert Call("raw_rows", "governance") in seen["read person_360"]
    assert any(c.method == "quarantine" for c in seen["quarantine water_subscribers"])
    assert json.loads((tmp_path / "dpo" / "acces.json").read_text("utf-8"))["records"]


def test_cli_commands_without_personal_output_leave_no_record(
    recorder: Recorder,
    linked: tuple[WorkspaceConfig, Store],
    sandbox: Path,
) -> None:
    """Status, reports and batch jobs: only allowlisted library services, nothing shown;
    only the batch job that writes (linkage) leaves a record."""
    config, _ = linked
    commands = [
        ["audit", "verify", "--json"],
        ["audit", "head", "--json"],
        ["policy", "show", "--json"],
        ["policy", "decide", "--as", "lea.biblio", "-p", "library_lending", "--view", "count"],
        ["identity", "status", "--json"],
        ["identity", "evaluate", "--truth", str(sandbox / "truth"), "--json"],
        ["report", "--json"],
        ["loads", "--json"],
        ["contracts", "list", "--json"],
    ]
    count = _ledger_count(config.root)
    for args in commands:
        recorder.active = True
        exit_code, output = _run(args, config.root)
        recorder.active = False
        command = " ".join(args[:2])
        assert exit_code == 0, f"{command} : {output}"
        for call in recorder.take():
            origin = call.route.removeprefix("library:").rsplit(".", 1)[-1]
            assert call.route == "governance" or (
                call.route.startswith("library:") and origin in LIBRARY_ALLOWED
            ), (command, call)
        assert _ledger_count(config.root) == count, command
    # A linkage run writes person keys: it shows nothing, and leaves one write record.
    recorder.active = True
    exit_code, output = _run(["link", "--incremental", "--json"], config.root)
    recorder.active = False
    assert exit_code == 0, output
    assert _ledger_count(config.root) == count + 1


def test_a_call_from_outside_territoria_is_not_taken_for_a_governed_one(
    recorder: Recorder, linked: tuple[WorkspaceConfig, Store]
) -> None:
    """Called from a test or a notebook, routes say so: the check cannot pass by default."""
    config, store = linked
    recorder.active = True
    Governance.open(config, store)
    store.raw_table("library_members")
    recorder.active = False
    assert {c.route for c in recorder.take()} == {"governance", "outside"}
