"""No cleartext identifier or key leaves its domain (P9): logs, errors, exports, other services.

One scenario runs on a copy of the linked sandbox: governed reads in every service, rights
operations, provoked errors, register exports, CLI commands, all with logging captured at
DEBUG. Everything an agent, a log or a file could show is kept as a named text ("channel"),
then checked: no form of any pseudonymisation key anywhere (nor a key file in the store); the
names and birth dates of CCAS beneficiaries absent from the ledger, the consent book, errors,
synergies and the register; persons known only to the CCAS invisible to every other service;
and no internal person key nor another domain's pseudonym in a governed read's output.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import sqlite3
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from governance_fixtures import FrozenClock, persons_in
from territoria.backends import Store, open_store
from territoria.core.config import load_workspace
from territoria.core.errors import TerritoriaError
from territoria.governance.pseudonyms import secret_forms
from territoria.governance.read import ReadRequest, ReadResult
from territoria.governance.register_export import write_register
from territoria.governance.rights import access_export, render_access_html
from territoria.governance.service import Governance
from territoria.identity.standardise import fold
from territoria.ingest.catalog import ContractCatalog
from territoria.interfaces.cli import app

runner = CliRunner()
SOCIAL, CCAS = "claire.ccas", "ccas_social_support"
INTERNAL_KEY = re.compile(r"\b[PF]-[0-9A-Z]{12}\b")
PERSON_VIEWS = ("count", "search", "autocomplete", "records", "person_360")
LEDGER_AND_CONSENT_TABLES = (
    "audit_ledger",
    "audit_subjects",
    "audit_head",
    "gov_consents",
    "gov_objections",
    "gov_consent_seq",
)


@dataclass
class Beneficiary:
    """What the CCAS knows of one person, as its social worker reads it."""

    key: str
    surnames: set[str] = field(default_factory=set)  # folded words of family and birth names
    names: set[str] = field(default_factory=set)  # the same and the given names
    birth_dates: set[str] = field(default_factory=set)


@dataclass
class Read:
    purpose: str
    domain: str
    label: str
    result: ReadResult

    def shown(self) -> str:
        """What the actor sees, without the echo of the text they typed themselves."""
        data = self.result.as_dict()
        if isinstance(data.get("data"), dict):
            data["data"] = {k: v for k, v in data["data"].items() if k != "query"}
        return json.dumps(data, sort_keys=True, ensure_ascii=False, default=str)


@dataclass
class World:
    root: Path
    channels: dict[str, str] = field(default_factory=dict)
    reads: list[Read] = field(default_factory=list)
    beneficiaries: dict[str, Beneficiary] = field(default_factory=dict)
    ccas_only: list[str] = field(default_factory=list)
    source_text: dict[str, str] = field(default_factory=dict)  # folded raw text per source
    pseudonyms: dict[str, dict[str, str]] = field(default_factory=dict)  # domain -> key -> ps.
    forms: list[str] = field(default_factory=list)
    policy_text: str = ""  # folded text of the policy and contracts (never personal)
    key_bytes: list[bytes] = field(default_factory=list)
    keys_dir: Path = Path()

    def add(self, name: str, text: str) -> None:
        self.channels[name] = self.channels.get(name, "") + text + "\n"


class _Collect(logging.Handler):
    def __init__(self, world: World) -> None:
        super().__init__(logging.DEBUG)
        self.world = world

    def emit(self, record: logging.LogRecord) -> None:
        text = f"{record.name} {record.levelname} {record.getMessage()}"
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        self.world.add("logs", text)


# -- the scenario -----------------------------------------------------------------------------


def _read(world: World, gov: Governance, actor: str, purpose: str, view: str, **kw: Any) -> Read:
    result = gov.read(ReadRequest(actor, purpose, view, **kw))
    domain = gov.policy.purposes[purpose].domain if purpose in gov.policy.purposes else ""
    read = Read(purpose, domain, f"{actor} {purpose} {view} {kw}", result)
    world.reads.append(read)
    return read


def _beneficiaries(world: World, gov: Governance) -> None:
    """CCAS beneficiaries' identifiers, read the governed way by the social worker."""
    keys = persons_in(gov, "ccas_aid")
    by_pseudonym = {gov.pseudonyms.pseudonym("ccas", k): k for k in keys}
    rows = _read(world, gov, SOCIAL, CCAS, "records", source="ccas_aid", limit=10_000)
    for row in rows.result.data["rows"]:
        key = by_pseudonym[row["person"]]
        person = world.beneficiaries.setdefault(key, Beneficiary(key))
        for name in (row["family_name"], row["birth_name"]):
            person.surnames.update(w for w in fold(name or "").split() if len(w) > 3)
        person.names |= person.surnames | {
            w for w in fold(row["given_name"] or "").split() if len(w) > 2
        }
        if row["birth_date"] and len(row["birth_date"]) == 10:
            person.birth_dates.add(row["birth_date"])
    elsewhere = {
        str(r[0])
        for r in gov.db.query("SELECT person_key FROM id_mentions WHERE source <> 'ccas_aid'")
    }
    world.ccas_only = sorted(set(world.beneficiaries) - elsewhere)


def _source_texts(world: World, gov: Governance) -> None:
    """Ground truth: every raw value of every source, folded (what each service holds)."""
    for source in sorted(gov.contracts):
        table = gov.store.raw_table(source)
        values = [str(v) for row in table.to_pylist() for v in row.values() if v is not None]
        world.source_text[source] = " " + fold(" ".join(values)) + " "


def _agent_of(gov: Governance, role: str) -> str | None:
    return next((a.id for a in gov.policy.agents.values() if role in a.roles), None)


def _surnames(world: World) -> list[str]:
    return sorted({n for k in world.ccas_only for n in world.beneficiaries[k].surnames})


def _service_reads(world: World, gov: Governance) -> None:
    """Each granted view of every service's purpose, as its agent would use it."""
    for role in gov.policy.roles.values():
        agent = _agent_of(gov, role.id)
        for grant in role.grants:
            purpose = gov.policy.purposes[grant.purpose]
            if agent is None or purpose.scope.self_only or not purpose.sources:
                continue
            first = None
            for view in [v for v in PERSON_VIEWS if v in grant.views and v != "person_360"]:
                first = _views(world, gov, agent, grant.purpose, view) or first
            if "person_360" in grant.views and first:
                _read(world, gov, agent, grant.purpose, "person_360", subject=first)


def _views(world: World, gov: Governance, agent: str, purpose: str, view: str) -> str | None:
    """Read one view (every source, every searched name); a pseudonym it returned, if any."""
    found: list[str] = []
    if view == "records":
        for source in sorted(gov.policy.purposes[purpose].sources):
            read = _read(world, gov, agent, purpose, view, source=source, limit=100_000)
            found += [r["person"] for r in (read.result.data or {}).get("rows", [])[:1]]
    elif view in ("search", "autocomplete"):
        for name in [*_surnames(world), "MARTIN"]:
            for text in (name, name[:3]) if view == "autocomplete" else (name,):
                read = _read(world, gov, agent, purpose, view, query=text, limit=1000)
                found += [r["person"] for r in (read.result.data or {}).get("results", [])[:1]]
    else:
        _read(world, gov, agent, purpose, view)
    return found[0] if found else None


def _rights(world: World, gov: Governance) -> None:
    """Art. 15 exports (DPO and resident), consents, objections, transparency."""
    person = world.ccas_only[0]
    subject = gov.pseudonyms.pseudonym("dpo", person)
    gov.change_consent("dpo", "rights_handling", subject, "service_information", give=True)
    gov.change_consent("dpo", "rights_handling", subject, "service_information", give=False)
    gov.change_objection("dpo", "rights_handling", subject, "canteen_tariff_outreach", object_=True)
    export = access_export(gov, "dpo", "rights_handling", subject)
    world.add("export (dpo) json", json.dumps(export, ensure_ascii=False, default=str))
    world.add("export (dpo) html", render_access_html(export))
    resident = f"resident:{world.ccas_only[1]}"
    own = access_export(gov, resident, "resident_access", None)
    world.add("export (resident) json", json.dumps(own, ensure_ascii=False, default=str))
    world.add("export (resident) html", render_access_html(own))
    _read(world, gov, resident, "resident_access", "person_360")
    entries = gov.who_accessed(resident, "resident_access", None)
    world.add("transparency", json.dumps([e.as_dict() for e in entries], ensure_ascii=False))
    decision, cells = gov.synergies("marc.donnees", "service_synergies")
    assert decision.allowed and cells
    world.add("synergies", json.dumps([c.as_dict() for c in cells], ensure_ascii=False))


def _errors(world: World, gov: Governance) -> None:
    """Mistakes a person can make, each kept with its message and its JSON form."""
    person = world.ccas_only[0]
    ccas_pseudonym = gov.pseudonyms.pseudonym("ccas", person)
    surname = _surnames(world)[0]
    attempts: list[Callable[[], object]] = [
        lambda: gov.change_consent("dpo", "rights_handling", None, "no_such_purpose", give=True),
        lambda: gov.authorise("lea.biblio", "ccas_social_support", "records"),
        lambda: gov.authorise("lea.biblio", "no_such_purpose", "records", source="ccas_aid"),
        lambda: access_export(gov, "lea.biblio", "rights_handling", ccas_pseudonym),
        lambda: access_export(gov, "dpo", "rights_handling", ccas_pseudonym),
        lambda: access_export(gov, "dpo", "rights_handling", surname),
        lambda: access_export(gov, "dpo", "rights_handling", "DPO.k99." + "A" * 26),
        lambda: gov.change_consent(
            "dpo", "rights_handling", _dpo(gov, person), "service_information", give=False
        ),
        lambda: gov.change_consent(
            "dpo", "rights_handling", _dpo(gov, person), "ccas_social_support", give=False
        ),
        lambda: gov.change_objection(
            "dpo", "rights_handling", _dpo(gov, person), "canteen_tariff_outreach", object_=True
        ),
        lambda: gov.change_objection(
            "dpo",
            "rights_handling",
            _dpo(gov, world.ccas_only[1]),
            "canteen_tariff_outreach",
            object_=False,
        ),
        lambda: gov.keyring.key("ccas", "k99"),
        lambda: gov.keyring.key("Not A Domain", "k1"),
        lambda: gov.read(ReadRequest("dpo", "audit_control", "ledger")),
    ]
    for attempt in attempts:
        with pytest.raises(TerritoriaError) as caught:
            attempt()
        world.add(f"error {caught.value.code}", str(caught.value))
        world.add(f"error {caught.value.code}", json.dumps(caught.value.as_dict(), default=str))
    for subject in (ccas_pseudonym, surname):  # a wrong pseudonym is « not found », no echo
        _read(world, gov, "lea.biblio", "library_lending", "person_360", subject=subject)
    _read(world, gov, "lea.biblio", "ccas_social_support", "records", source="ccas_aid")
    _read(world, gov, "lea.biblio", "no_such_purpose", "count")


def _dpo(gov: Governance, key: str) -> str:
    return gov.pseudonyms.pseudonym("dpo", key)


def _registers(world: World, config_root: Path, gov: Governance, tmp: Path) -> None:
    catalog = ContractCatalog.load(*load_workspace(config_root).contract_paths)
    for fmt in ("csv", "ods", "html", "json"):
        path = write_register(tmp / f"registre.{fmt}", gov.policy, catalog, fmt)
        if fmt == "ods":
            with zipfile.ZipFile(path) as ods:
                text = ods.read("content.xml").decode("utf-8")
        else:
            text = path.read_text(encoding="utf-8-sig")
        world.add(f"register {fmt}", text)


def _cli(world: World, tmp: Path) -> None:
    """Commands an agent types: their standard output and error, as shown."""
    person = world.ccas_only[0]
    dpo = world.pseudonyms["dpo"][person]
    lib = ["--as", "lea.biblio", "-p", "library_lending"]
    commands = [
        ["read", "search", *lib, "-q", _surnames(world)[0], "--json"],
        ["read", "records", *lib, "--source", "library_members"],
        ["read", "person_360", *lib, "--person", _surnames(world)[0]],
        ["read", "count", "--as", "lea.biblio", "-p", "ccas_social_support"],
        ["synergies", "--as", "marc.donnees", "--json"],
        ["synergies", "--as", "marc.donnees"],
        ["audit", "search", "--as", "dpo", "--json", "--limit", "10000"],
        ["audit", "verify", "--json"],
        ["audit", "head", "--json"],
        ["rights", "transparency", "--as", f"resident:{world.ccas_only[1]}", "--json"],
        ["rights", "access", "--as", "dpo", "--person", dpo, "-o", str(tmp / "acces")],
        ["rights", "access", "--as", "dpo", "--person", "NOT-A-PSEUDONYM", "-o", str(tmp / "x")],
        ["rights", "consent", "service_information", "--as", "dpo", "--person", dpo, "--json"],
        ["rights", "consent", "nope", "--as", "dpo", "--person", dpo, "--json"],
        ["policy", "keys", "list"],
        ["policy", "decide", "--as", "lea.biblio", "-p", "library_lending", "--view", "records"],
        ["identity", "review", "--as", "lea.biblio", "--json"],
        ["quarantine", "ccas_aid", "--as", "lea.biblio", "--json"],
    ]
    for args in commands:
        result = runner.invoke(app, [*args, "-w", str(world.root)])
        command = " ".join(a for a in args[:2] if not a.startswith("-"))
        world.add(f"cli {command}", result.stdout + result.stderr)
    for name in ("acces.json", "acces.html"):
        world.add(f"cli rights access {name}", (tmp / "acces" / name).read_text("utf-8"))


def _tables(world: World) -> None:
    """Every row of every table of the store's SQLite files, as text."""
    for path in sorted((world.root / "store").glob("*.sqlite")):
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
            for name in names:
                rows = db.execute(f'SELECT * FROM "{name}"').fetchall()
                world.add(f"table {path.name}:{name}", "\n".join(map(repr, rows)))
        finally:
            db.close()


def _policy_text(world: World, gov: Governance) -> None:
    """Words of the policy and contracts: a surname equal to one of them cannot be told apart."""
    files = [gov.policy.register_file, gov.policy.actors_file]
    files += [p for folder in load_workspace(world.root).contract_paths for p in _yaml(folder)]
    world.policy_text = " " + fold(" ".join(f.read_text("utf-8") for f in files)) + " "


def _yaml(path: Path) -> list[Path]:
    return sorted(path.rglob("*.yaml")) if path.is_dir() else [path]


def _keys(world: World, gov: Governance) -> None:
    world.forms = secret_forms(gov.keyring)
    world.keys_dir = gov.keyring.folder
    world.key_bytes = [
        gov.keyring.key(d, kid) for d in gov.keyring.domains() for kid in gov.keyring.kids(d)
    ]
    domains = {p.domain for p in gov.policy.purposes.values()}
    keys = {k for r in gov.db.query("SELECT DISTINCT person_key FROM id_mentions") for k in r}
    world.pseudonyms = {d: gov.pseudonyms.pseudonyms(d, sorted(map(str, keys))) for d in domains}
    world.add("reprs", f"{gov.keyring!r} {gov.pseudonyms!r} {gov!r}")


def _scenario(world: World, gov: Governance, tmp: Path) -> None:
    _beneficiaries(world, gov)
    _source_texts(world, gov)
    _service_reads(world, gov)
    _rights(world, gov)
    _errors(world, gov)
    _registers(world, world.root, gov, tmp)
    _policy_text(world, gov)
    _keys(world, gov)
    for read in world.reads:
        world.add(f"read {read.label}", read.result.canonical())


@pytest.fixture(scope="module")
def world(linked_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("cleartext")
    root = tmp / "ws"
    shutil.copytree(linked_template, root)
    state = World(root)
    handler, logger = _Collect(state), logging.getLogger()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logging.getLogger("territoria.tests").debug("capture des journaux active")
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.delenv("TERRITORIA_KEYS_DIR", raising=False)
            config = load_workspace(root)
            store: Store = open_store(config)
            try:
                _scenario(state, Governance.open(config, store, clock=FrozenClock()), tmp)
            finally:
                store.close()
            _cli(state, tmp)
        _tables(state)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    yield state


# -- key material -----------------------------------------------------------------------------


def test_the_scenario_made_keys_in_several_domains(world: World) -> None:
    assert len(world.key_bytes) >= 6 and len(world.forms) == 7 * len(world.key_bytes)
    assert {"ccas", "lecture_publique", "dpo", "portail"} <= set(world.pseudonyms)
    assert {"logs", "synergies", "register ods", "cli audit search"} <= set(world.channels)
    assert "capture des journaux active" in world.channels["logs"]
    assert "table tables.sqlite:audit_ledger" in world.channels


def test_no_form_of_any_key_appears_in_any_output_log_error_export_or_table(
    world: World,
) -> None:
    for name, text in world.channels.items():
        squeezed = re.sub(r"\s+", "", text)  # a terminal may fold a long word over two lines
        leaked = [f for f in world.forms if f in text or f in squeezed]
        assert not leaked, f"clé de pseudonymisation visible dans « {name} »"


def test_no_key_file_nor_key_bytes_inside_the_store(world: World) -> None:
    store = (world.root / "store").resolve()
    assert store not in world.keys_dir.resolve().parents
    held = b"".join(p.read_bytes() for p in world.keys_dir.rglob("k*.key"))
    assert all(key in held for key in world.key_bytes)  # the scan would see a copied key
    for path in store.rglob("*"):
        assert not re.fullmatch(r"k\d+\.(key|retired)", path.name), path
        if path.is_file():
            data = path.read_bytes()
            for key in world.key_bytes:
                assert key not in data, path
            for form in world.forms[::7]:  # the hex form of each key
                assert form.encode() not in data, path


# -- cleartext identifiers of CCAS beneficiaries ----------------------------------------------


def _folded(world: World, names: list[str]) -> dict[str, str]:
    return {n: " " + fold(world.channels[n]) + " " for n in names}


def test_the_ccas_beneficiaries_are_read_and_some_are_known_only_to_the_ccas(
    world: World,
) -> None:
    assert len(world.beneficiaries) >= 30
    assert len(world.ccas_only) >= 3
    assert sum(bool(b.birth_dates) for b in world.beneficiaries.values()) >= 20
    # The matching finds what is there: the social worker's own read shows every one of them.
    own = next(n for n in world.channels if n.startswith("read claire.ccas"))
    shown = " " + fold(world.channels[own]) + " "
    for person in world.beneficiaries.values():
        assert all(f" {w} " in shown for w in person.names)
        assert all(d in world.channels[own] for d in person.birth_dates)


def test_ccas_identifiers_stay_out_of_ledger_consents_errors_synergies_and_register(
    world: World,
) -> None:
    tables = [f"table tables.sqlite:{t}" for t in LEDGER_AND_CONSENT_TABLES]
    names = [n for n in world.channels if n.startswith(("error ", "register ", "synergies"))]
    names += [n for n in tables if n in world.channels]
    names += ["cli synergies", "cli audit search", "cli audit verify", "transparency", "logs"]
    assert set(tables[:3]) <= set(world.channels)
    texts, policy = _folded(world, names), world.policy_text
    for person in world.beneficiaries.values():
        words = [w for w in person.names if f" {w} " not in policy]
        for name, text in texts.items():
            found = [w for w in words if f" {w} " in text]
            found += [d for d in person.birth_dates if d in world.channels[name]]
            assert not found, f"« {name} » contient une donnée de la personne {person.key}"


def _other_domain_reads(world: World) -> Iterator[tuple[Read, set[str]]]:
    """Reads of purposes that do not read the CCAS's file, with the sources they read."""
    for read in world.reads:
        sources = set(read.result.decision.fields)
        if read.result.decision.allowed and "ccas_aid" not in sources and read.domain != "ccas":
            yield read, sources


def _absent_from(world: World, sources: set[str], key: str) -> tuple[list[str], list[str]]:
    """The person's surnames and birth dates that no record of these sources carries."""
    person = world.beneficiaries[key]
    held = "".join(world.source_text[s] for s in sources)
    names = [n for n in sorted(person.names) if f" {n} " not in held]
    dates = [d for d in sorted(person.birth_dates) if fold(d) not in held]
    return names, dates


def test_persons_known_only_to_the_ccas_are_invisible_to_every_other_service(
    world: World,
) -> None:
    checked = 0
    for read, sources in _other_domain_reads(world):
        shown = read.shown()
        folded = " " + fold(shown) + " "
        for key in world.ccas_only:
            assert world.pseudonyms[read.domain][key] not in shown, read.label
            names, dates = _absent_from(world, sources, key)
            assert not [n for n in names if f" {n} " in folded], read.label
            assert not [d for d in dates if d in shown], read.label
            checked += len(names)
    assert checked > 100


def test_library_search_and_autocomplete_return_nothing_for_a_ccas_only_surname(
    world: World,
) -> None:
    library = {"library_members"}
    absent = {n for k in world.ccas_only for n in _absent_from(world, library, k)[0]}
    assert len(absent) >= 2, "il faut au moins deux noms connus du seul CCAS"
    seen = set()
    for read in world.reads:
        query = (read.result.data or {}).get("query") if read.result.status == "ok" else None
        if read.purpose != "library_lending" or query is None:
            continue
        if fold(query) in absent:
            key = "results" if "results" in read.result.data else "suggestions"
            assert read.result.data[key] == [], read.label
            seen.add(read.result.decision.view)
        elif fold(query) in {n[:3] for n in absent}:
            assert not absent & set(map(fold, read.result.data.get("suggestions", []))), read.label
    assert seen == {"search", "autocomplete"}


# -- pseudonyms -------------------------------------------------------------------------------


def test_a_governed_read_shows_no_internal_key_nor_another_domains_pseudonym(
    world: World,
) -> None:
    for read in world.reads:
        shown = read.result.canonical()
        assert not INTERNAL_KEY.findall(shown), read.label
        for domain, table in world.pseudonyms.items():
            if domain == read.domain:
                continue
            for person in read.result.persons:
                assert table[person] not in shown, (read.label, domain)
    assert sum(len(r.result.persons) for r in world.reads) > 500


def test_the_access_export_shows_no_internal_person_key(world: World) -> None:
    for name in ("export (dpo) json", "export (resident) json", "cli rights access acces.json"):
        assert not INTERNAL_KEY.findall(world.channels[name]), name


def test_the_consent_receipt_shows_no_internal_person_key(world: World) -> None:
    assert not INTERNAL_KEY.findall(world.channels["cli rights consent"])


def test_error_messages_show_no_internal_person_key(world: World) -> None:
    for name, text in world.channels.items():
        if name.startswith("error "):
            assert not INTERNAL_KEY.findall(text), name
