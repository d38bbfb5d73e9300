"""The accounts of the local identity provider: the policy's agents and the sandbox's adults.

Agents get ProConnect's claims (``email``, ``given_name``, ``usual_name``, ``uid``,
``siret``); residents get FranceConnect's identité pivot, read from the sandbox's civil-status
truth (``sandbox/truth/persons.csv``), so that a demo resident logs in as a person the
resident index can recognise. Everything here is synthetic.
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from territoria.governance.policy import Agent, Policy
from territoria.identity.standardise import fold

__all__ = [
    "DEMO_SIRET",
    "LocalAccount",
    "agent_accounts",
    "resident_accounts",
    "search_accounts",
]

DEMO_SIRET = "21990010700018"  # fictitious commune (département 99 does not exist), Luhn-valid
MIN_AGE = 15  # FranceConnect is for adults and teenagers with their own login
_GENDER = {"F": "female", "M": "male"}
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
    if fold(usage) != fold(birth_name):
        claims["preferred_username"] = usage
    shown = f"{given} {usage.upper()}" + (f" (née {birth_name.upper()})" if usage != birth_name else "")
    born_word = "née" if row.get("sex") == "F" else "né"
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
    ranked = sorted(
        (p for p in candidates if p in unique), key=lambda p: (-len(candidates[p]), p)
    )
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
        if identities[(fold(a.claims["given_name"]), fold(a.claims["family_name"]), a.claims["birthdate"])]
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


def search_accounts(accounts: list[LocalAccount], query: str, limit: int = 20) -> list[LocalAccount]:
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
