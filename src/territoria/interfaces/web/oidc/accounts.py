"""Whom the local identity provider knows: its accounts, its clients and their secrets.

Agents get ProConnect's claims (``email``, ``given_name``, ``usual_name``, ``uid``,
``siret``); residents get FranceConnect's identité pivot, read from the sandbox's civil-status
truth (``sandbox/truth/persons.csv``), so that a demo resident logs in as a person the
resident index can recognise. Everything here is synthetic. The provider's signing key and
its clients' secrets are generated once and kept 0600 in the secrets folder.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import secrets
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Any

from joserfc.jwk import RSAKey

from territoria.core.errors import TerritoriaError
from territoria.core.files import write_atomically
from territoria.governance.policy import Agent, Policy
from territoria.identity.standardise import fold

__all__ = [
    "CLIENTS_FILE",
    "DEMO_SIRET",
    "FRANCECONNECT_SCOPES",
    "PROCONNECT_SCOPES",
    "SIGNING_FILE",
    "STATE_FOLDER",
    "GrantStore",
    "LocalAccount",
    "LocalClient",
    "LocalIssuer",
    "agent_accounts",
    "load_client_secrets",
    "load_signing_key",
    "resident_accounts",
    "search_accounts",
]

DEMO_SIRET = "21990010700018"  # fictitious commune (département 99 does not exist), Luhn-valid
MIN_AGE = 15  # FranceConnect is for adults and teenagers with their own login
_GENDER = {"F": "female", "M": "male"}
SIGNING_FILE = "oidc-local-signing.json"
CLIENTS_FILE = "oidc-local-clients.json"
STATE_FOLDER = "oidc-local-state"
_NOTE = re.compile(r"\s*\([^)]*\)\s*$")  # "Claire Morel (CCAS, fictive)" → "Claire Morel"


@dataclass(frozen=True)
class LocalAccount:
    """One account of the local provider: what the login page shows and what it vouches for."""

    id: str
    label: str
    detail: str
    claims: Mapping[str, str]
    demo: bool = False
    search_key: str = field(default="", compare=False)

    def matches(self, words: list[str]) -> bool:
        """True if every folded word of the query occurs in the account's names."""
        key = self.search_key or fold(self.label)
        return all(word in key for word in words)


def _agent_account(agent: Agent, role_names: list[str], siret: str) -> LocalAccount:
    name = _NOTE.sub("", agent.name).strip() or agent.id
    given, _, usual = name.partition(" ")
    email = agent.email or f"{agent.id}@ville-exemple.fr"
    claims = {
        "email": email,
        "given_name": given,
        "usual_name": usual or given,
        "uid": agent.id,
        "siret": siret,
    }
    detail = ", ".join(role_names) or "aucun rôle"
    return LocalAccount(agent.id, agent.name, f"{detail} — {email}", claims, demo=True)


def agent_accounts(policy: Policy, siret: str = DEMO_SIRET) -> list[LocalAccount]:
    """One ProConnect-shaped account per agent of the policy, in the policy's order."""
    accounts = []
    for agent in policy.agents.values():
        roles = [policy.roles[r].name for r in agent.roles if r in policy.roles]
        accounts.append(_agent_account(agent, roles, siret))
    return accounts


def _reference_date(persons_csv: Path) -> date:
    """The sandbox's reference date (1 January of its year), else today."""
    manifest = persons_csv.parent.parent / "manifest.json"
    try:
        return date(int(json.loads(manifest.read_text(encoding="utf-8"))["reference_year"]), 1, 1)
    except (OSError, ValueError, KeyError, TypeError):
        return date.today()


def _age(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def _birthplaces(persons_csv: Path) -> dict[str, str]:
    """household → INSEE code of its commune (the sandbox has no birthplace: a stand-in)."""
    path = persons_csv.parent / "households.csv"
    if not path.is_file():
        return {}
    with path.open(encoding="utf-8", newline="") as f:
        return {row["household_id"]: row.get("code_insee", "") for row in csv.DictReader(f)}


def _services_per_person(persons_csv: Path) -> dict[str, set[str]]:
    """person → the sources holding a record of them (to pick telling demo accounts)."""
    path = persons_csv.parent / "records.csv"
    found: dict[str, set[str]] = defaultdict(set)
    if path.is_file():
        with path.open(encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                if row.get("person_id"):
                    found[row["person_id"]].add(row["source"])
    return found


def _resident_account(row: Mapping[str, str], born: date, birthplace: str) -> LocalAccount:
    given, usage = row["given_name"].strip(), row["family_name"].strip()
    birth_name = (row.get("birth_name") or "").strip() or usage
    email = (row.get("email") or "").strip() or (
        f"{fold(given).lower().replace(' ', '-')}.{fold(usage).lower().replace(' ', '-')}"
        "@exemple.fr"
    )
    claims = {
        "given_name": given,
        "family_name": birth_name,
        "birthdate": born.isoformat(),
        "gender": _GENDER.get(row.get("sex", ""), "female"),
        "birthplace": birthplace,
        "birthcountry": "99100",
        "email": email,
    }
    born_word = "née" if row.get("sex") == "F" else "né"
    shown = f"{given} {usage.upper()}"
    if fold(usage) != fold(birth_name):
        claims["preferred_username"] = usage
        shown += f" ({born_word} {birth_name.upper()})"
    detail = f"{born_word} le {born.strftime('%d/%m/%Y')}"
    key = fold(f"{given} {usage} {birth_name}")
    return LocalAccount(row["person_id"], shown, detail, claims, search_key=key)


def _adults(persons_csv: Path) -> Iterable[tuple[Mapping[str, str], date]]:
    today = _reference_date(persons_csv)
    with persons_csv.open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            if (row.get("death_date") or "").strip():
                continue
            try:
                born = date.fromisoformat(row["birth_date"])
            except (KeyError, ValueError):
                continue
            if _age(born, today) >= MIN_AGE:
                yield row, born


def _demo_ids(candidates: dict[str, set[str]], unique: set[str], demo: int) -> list[str]:
    """Up to ``demo`` persons, most services first, each with a different set of services."""
    ranked = sorted((p for p in candidates if p in unique), key=lambda p: (-len(candidates[p]), p))
    chosen: list[str] = []
    seen: set[frozenset[str]] = set()
    for person in ranked:
        services = frozenset(candidates[person])
        if services not in seen:
            chosen.append(person)
            seen.add(services)
        if len(chosen) == demo:
            break
    return chosen


def resident_accounts(persons_csv: Path | None, demo: int = 6) -> list[LocalAccount]:
    """FranceConnect-shaped accounts for the living persons aged 15 or more, demo ones first.

    Demo accounts are persons known to several services (``truth/records.csv``), with no twin
    or namesake born the same day (whom the resident index could not tell apart).
    """
    if persons_csv is None or not persons_csv.is_file():
        return []
    places = _birthplaces(persons_csv)
    services = _services_per_person(persons_csv)
    accounts: dict[str, LocalAccount] = {}
    identities: Counter[tuple[str, str, str]] = Counter()
    for row, born in _adults(persons_csv):
        account = _resident_account(row, born, places.get(row.get("household_id", ""), ""))
        accounts[account.id] = account
        claims = account.claims
        identities[(fold(claims["given_name"]), fold(claims["family_name"]), born.isoformat())] += 1
    unique = {
        pid
        for pid, a in accounts.items()
        if identities[
            (fold(a.claims["given_name"]), fold(a.claims["family_name"]), a.claims["birthdate"])
        ]
        == 1
    }
    chosen = _demo_ids({p: s for p, s in services.items() if p in accounts}, unique, demo)
    first = [_as_demo(accounts[p]) for p in chosen]
    rest = [a for pid, a in accounts.items() if pid not in set(chosen)]
    return first + rest


def _as_demo(account: LocalAccount) -> LocalAccount:
    return LocalAccount(
        account.id, account.label, account.detail, account.claims, True, account.search_key
    )


def search_accounts(
    accounts: list[LocalAccount], query: str, limit: int = 20
) -> list[LocalAccount]:
    """Accounts whose names contain every word of the query (accents and case ignored)."""
    words = fold(query).split()
    if not words:
        return []
    found = []
    for account in accounts:
        if account.matches(words):
            found.append(account)
            if len(found) == limit:
                break
    return found


# -- clients, issuers and secrets ---------------------------------------------------------------


@dataclass(frozen=True)
class LocalClient:
    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...]
    post_logout_redirect_uris: tuple[str, ...]


@dataclass
class LocalIssuer:
    """One issuer: ``agents`` (ProConnect-like) or ``residents`` (FranceConnect-like).

    Its accounts are loaded on first use (reading the sandbox's civil status takes a moment).
    """

    name: str
    label: str
    load_accounts: Callable[[], list[LocalAccount]]
    clients: dict[str, LocalClient]
    scopes: dict[str, tuple[str, ...]]  # scope → claims it releases
    acr_values: tuple[str, ...] = ("eidas1",)

    @cached_property
    def accounts(self) -> list[LocalAccount]:
        return self.load_accounts()

    @cached_property
    def by_id(self) -> dict[str, LocalAccount]:
        return {a.id: a for a in self.accounts}


PROCONNECT_SCOPES: dict[str, tuple[str, ...]] = {
    c: (c,) for c in ("email", "given_name", "usual_name", "uid", "siret")
}
_PIVOT = ("given_name", "family_name", "birthdate", "gender", "birthplace", "birthcountry")
FRANCECONNECT_SCOPES: dict[str, tuple[str, ...]] = {
    **{c: (c,) for c in (*_PIVOT, "email", "preferred_username")},
    "profile": ("given_name", "family_name", "birthdate", "gender", "preferred_username"),
    "birth": ("birthplace", "birthcountry"),
    "identite_pivot": _PIVOT,
}


def _private_temp(path: Path, data: dict[str, Any]) -> Path:
    """``data`` as JSON in a new 0600 file beside ``path`` (to be renamed or linked there)."""
    temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(json.dumps(data, indent=1).encode())
    return temp


def _write_secret(path: Path, data: dict[str, Any], what: str) -> None:
    write_atomically(path, json.dumps(data, indent=1).encode(), what=what)
    path.chmod(0o600)


def _create_secret(path: Path, data: dict[str, Any]) -> dict[str, Any]:
    """Create ``path`` unless another process did first; what is on disk either way.

    Several worker processes may start together: the first to link its file wins and the
    others read it, so that they all sign with the same key.
    """
    temp = _private_temp(path, data)
    try:
        os.link(temp, path)
    except FileExistsError:
        return _read_secret(path)
    finally:
        temp.unlink(missing_ok=True)
    return data


def _read_secret(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TerritoriaError(
            f"secret du fournisseur d'identité local illisible : {exc}",
            code="oidc_secret_unreadable",
            file=path,
            hint="supprimez ce fichier : il sera recréé (les connexions en cours seront perdues)",
        ) from None
    if not isinstance(data, dict):
        raise TerritoriaError(
            "secret du fournisseur d'identité local mal formé",
            code="oidc_secret_unreadable",
            file=path,
            expected="un objet JSON",
        )
    return data


def load_signing_key(secrets_dir: Path) -> RSAKey:
    """The provider's RS256 key, generated on first use and kept 0600 in the secrets folder."""
    path = secrets_dir / SIGNING_FILE
    if path.is_file():
        return RSAKey.import_key(_read_secret(path))
    key = RSAKey.generate_key(2048, parameters={"use": "sig", "alg": "RS256"}, auto_kid=True)
    return RSAKey.import_key(_create_secret(path, key.as_dict(private=True)))


def load_client_secrets(secrets_dir: Path, client_ids: list[str]) -> tuple[dict[str, str], bytes]:
    """Each client's secret and the pairwise-``sub`` key, generated once and kept 0600.

    A client added later (a new audience) gets its secret then; the others keep theirs.
    """
    path = secrets_dir / CLIENTS_FILE
    new_clients = {c: secrets.token_urlsafe(32) for c in client_ids}
    fresh = {"clients": new_clients, "pairwise_secret": secrets.token_urlsafe(32)}
    data = _read_secret(path) if path.is_file() else _create_secret(path, fresh)
    clients: dict[str, str] = dict(data.get("clients", {}))
    pairwise = str(data.get("pairwise_secret") or "")
    if not pairwise or any(c not in clients for c in client_ids):
        clients = {**new_clients, **clients}
        pairwise = pairwise or str(fresh["pairwise_secret"])
        document = {"clients": clients, "pairwise_secret": pairwise}
        _write_secret(path, document, "secrets des clients OIDC")
    return clients, pairwise.encode()


class GrantStore:
    """What the local provider remembers between requests: pending logins, codes, tokens.

    Small 0600 files in ``<secrets>/oidc-local-state``, so that every worker process of
    ``territoria serve --workers N`` sees the same state: a login page shown by one process
    is completed by another, and a code taken by one is spent for all (a rename is atomic).
    Entries older than an hour, far beyond any of their lifetimes, are swept now and then.
    """

    SWEEP_AGE = 3600
    SWEEP_EVERY = 200  # writes

    def __init__(self, folder: Path) -> None:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.folder = folder
        self._writes = 0

    def _path(self, kind: str, key: str) -> Path:
        return self.folder / f"{kind}-{hashlib.sha256(key.encode()).hexdigest()[:40]}.json"

    def put(self, kind: str, key: str, data: dict[str, Any]) -> None:
        path = self._path(kind, key)
        os.replace(_private_temp(path, data), path)
        self._writes += 1
        if self._writes % self.SWEEP_EVERY == 0:
            self.sweep()

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        try:
            data = json.loads(self._path(kind, key).read_bytes())
        except (FileNotFoundError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def delete(self, kind: str, key: str) -> None:
        self._path(kind, key).unlink(missing_ok=True)

    def take(self, kind: str, key: str, spent: str) -> dict[str, Any] | None:
        """Move an entry to ``spent`` and return it; None if absent or already taken."""
        source, target = self._path(kind, key), self._path(spent, key)
        try:
            os.rename(source, target)
        except FileNotFoundError:
            return None
        return self.get(spent, key)

    def sweep(self) -> None:
        limit = time.time() - self.SWEEP_AGE
        for path in self.folder.iterdir():
            try:
                if path.stat().st_mtime < limit:
                    path.unlink()
            except FileNotFoundError:
                continue
