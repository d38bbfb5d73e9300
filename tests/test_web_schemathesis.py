"""The API against its own OpenAPI document (Schemathesis, property-based).

The schema is read from the application itself (``/api/openapi.json`` over ASGI); every
operation is called with generated requests, valid and malformed, authenticated with an API
key of the kind of caller the route declares (``x-territoria``: an agent allowed the route's
view, a resident of the index, a delegated operator). For every response:

- no 5xx, and the response conforms to the operation's declared schema (Schemathesis checks);
- every error is the JSON shape ``{code, message, message_en, details}``, and malformed input
  is a 4xx (422 for validation);
- **a rejected request writes nothing**: for every answer 4xx, the ledger's write records
  (writes that happened: ``kind = write``, ``decision = allow``), the consent book, the review
  decisions, the rectification requests and the loads are unchanged. A refusal is itself
  recorded (a ``deny`` record, read or write): that is expected and not compared.

Generated values are mostly names the workspace does not know; hooks replace some well-formed
ones with real ones (a purpose the caller holds, a purpose of the register, a source, a pair
of the review queue, a record of the resident) so that allowed paths and writes run too,
between the rejected requests. Schemathesis' pytest plugin loads lazy schemas through a node
attribute pytest 9 no longer has, so the operations are driven here with Hypothesis.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

import hypothesis.strategies as st
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok
from schemathesis.python import asgi

from governance_fixtures import persons_in
from territoria.backends import Store
from territoria.core.config import WorkspaceConfig
from territoria.governance.rights import RECTIFICATION_SCHEMA
from territoria.interfaces.web import create_app, load_web_settings
from territoria.interfaces.web.api.steward import MENTION_PATTERN
from territoria.interfaces.web.principals import ApiKeys
from territoria.interfaces.web.state import WebState

ERROR_KEYS = {"code", "message", "message_en", "details"}
OPERATOR = "eaux-du-rhone"  # delivers water_subscribers and water_readings
NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")  # purposes, sources, fields
MENTION = re.compile(MENTION_PATTERN)
PAIR = ("mention_a", "mention_b")
SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
QUICK_EXAMPLES = 10
SLOW_EXAMPLES = 60


@dataclass
class Api:
    """The application under test, its callers' API keys (clear) and real values to use."""

    app: FastAPI
    state: WebState
    agents: dict[str, str]  # view (or "") -> secret of an agent allowed that view
    held: dict[str, list[str]]  # view -> purposes of that agent opening the view
    resident: str
    operator: str
    purposes: list[str]  # every purpose of the register
    sources: list[str]  # every source of the catalogue
    pairs: list[tuple[str, str]]  # pairs waiting in the review queue
    records: list[dict[str, str]]  # the resident's records: source, record_id, field


@dataclass
class Run:
    """What one run saw: failures per operation, statuses, writes that happened."""

    failures: list[str] = field(default_factory=list)
    statuses: dict[str, set[int]] = field(default_factory=dict)
    writes: int = 0
    with_input: set[str] = field(default_factory=set)  # operations with parameters or a body


def _agent_for_views(state: WebState) -> tuple[dict[str, str], dict[str, list[str]]]:
    """For each view, the first agent (by id) whose grants open it, and its purposes."""
    policy = state.gov.policy
    actors: dict[str, str] = {}
    held: dict[str, list[str]] = {}
    for agent in sorted(policy.agents.values(), key=lambda a: a.id):
        for role in agent.roles:
            for grant in policy.roles[role].grants:
                for view in grant.views:
                    if actors.setdefault(view, agent.id) == agent.id:
                        held.setdefault(view, []).append(grant.purpose)
    return actors, held


def _records_of(state: WebState, person: str) -> list[dict[str, str]]:
    rows = state.gov.db.query(
        "SELECT mention_id FROM id_mentions WHERE person_key = ? ORDER BY mention_id", [person]
    )
    out = []
    for (mention,) in rows:
        source, record_id, _ = str(mention).split("|")
        names = [f.name for f in state.gov.contracts[source].fields][:2]
        out += [{"source": source, "record_id": record_id, "field": n} for n in names]
    return out


def _snapshot(state: WebState) -> dict[str, Any]:
    """Everything a request may write, as it stands."""
    gov, db = state.gov, state.gov.db
    with state.lock:
        return {
            "ledger_writes": gov.ledger.count(kind="write", decision="allow"),
            "consents": db.query("SELECT count(*), max(seq) FROM gov_consents"),
            "objections": db.query("SELECT count(*), max(seq) FROM gov_objections"),
            "decisions": db.query(
                "SELECT mention_a, mention_b, decision, agent, decided_at, note "
                "FROM id_decisions ORDER BY mention_a, mention_b"
            ),
            "rectifications": db.query("SELECT count(*) FROM gov_rectifications"),
            "loads": [r.load_id for r in state.store.loads(None, 100_000)],
        }


@pytest.fixture
def api(linked: tuple[WorkspaceConfig, Store]) -> Iterator[Api]:
    config, store = linked
    store.close()
    app = create_app(config.root, load_web_settings(config, rate_limit_per_minute=0))
    state: WebState = app.state.web
    gov = state.gov
    with state.lock:
        gov.db.script(RECTIFICATION_SCHEMA)  # so that the snapshot can count requests
        person = persons_in(gov, "library_members", "water_subscribers")[0]
        pairs = [(p["mention_a"], p["mention_b"]) for p in gov.index.reviews(5)]
        records = _records_of(state, person)
    keys = ApiKeys(state.secrets_dir)
    actors, held = _agent_for_views(state)
    secrets = {a: keys.create(a, "agent", "schemathesis")[1] for a in sorted(set(actors.values()))}
    yield Api(
        app=app,
        state=state,
        agents={view: secrets[actor] for view, actor in actors.items()}
        | {"": secrets[min(secrets)]},
        held=held,
        resident=keys.create(f"resident:{person}", "resident", "schemathesis")[1],
        operator=keys.create(OPERATOR, "operator", "schemathesis")[1],
        purposes=sorted(gov.policy.purposes),
        sources=sorted(gov.contracts),
        pairs=pairs,
        records=records,
    )
    asgi.shutdown_lifespans()  # Schemathesis started the app's lifespan: closing the store


def _governance(operation: Any) -> dict[str, Any]:
    meta: dict[str, Any] = operation.definition.raw.get("x-territoria") or {}
    return meta


def _secret(api: Api, operation: Any) -> str | None:
    meta = _governance(operation)
    actor, view = meta.get("actor"), meta.get("view") or ""
    if actor == "agent":
        return api.agents.get(view, api.agents[""])
    if actor == "resident":
        return api.resident
    if actor == "operator":
        return api.operator
    if actor == "any":
        return api.agents[""]
    return None


def _named(value: Any) -> bool:
    return isinstance(value, str) and NAME.match(value) is not None


def _encoded(value: str) -> str:
    return quote(value, safe="")


def _or_real(generated: Any, real: list[Any]) -> Any:
    """The generated value, or one of the real ones (same shape, so validity is unchanged)."""
    return st.sampled_from([generated, *real]) if real else st.just(generated)


def _hooks(api: Api) -> list[Any]:
    """Hooks replacing some well-formed generated values with real ones (never malformed
    ones: a malformed request must stay malformed)."""

    def flatmap_query(context: Any, query: dict[str, Any] | None) -> Any:
        view = _governance(context.operation).get("view") or ""
        if not query or not _named(query.get("purpose")):
            return st.just(query)
        return _or_real(query, [{**query, "purpose": p} for p in api.held.get(view, [])])

    def flatmap_path_parameters(context: Any, path: dict[str, Any] | None) -> Any:
        """Path values come percent-encoded (a mention's ``|`` is ``%7C``)."""
        if not path:
            return st.just(path)
        pair = [unquote(v) if isinstance(v, str) else "" for v in map(path.get, PAIR)]
        if all(MENTION.match(v) for v in pair):
            real = [{**path, **dict(zip(PAIR, map(_encoded, p), strict=True))} for p in api.pairs]
            return _or_real(path, real)
        for name, values in (("purpose", api.purposes), ("source", api.sources)):
            if _named(path.get(name)):
                return _or_real(path, [{**path, name: value} for value in values])
        return st.just(path)

    def flatmap_body(context: Any, body: Any) -> Any:
        keys = ("source", "record_id", "field")
        if not isinstance(body, dict) or not all(isinstance(body.get(k), str) for k in keys):
            return st.just(body)
        if not (
            _named(body["source"]) and _named(body["field"]) and 0 < len(body["record_id"]) <= 128
        ):
            return st.just(body)
        return _or_real(body, [{**body, **record} for record in api.records])

    return [flatmap_query, flatmap_path_parameters, flatmap_body]


def _check_case(api: Api, run: Run, case: Any) -> None:
    secret = _secret(api, case.operation)
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    before = _snapshot(api.state)
    response = case.call(headers=headers)
    status = int(response.status_code)
    run.statuses.setdefault(case.operation.label, set()).add(status)
    assert status < 500, response.text
    after = _snapshot(api.state)
    if status >= 400:
        body = response.json()
        assert set(body) == ERROR_KEYS, body
        assert body["code"] and body["message"] and body["message_en"], body
        assert status != 422 or body["code"] == "validation_error", body
        assert after == before, f"{case.operation.label}: {status} ({body['code']}) but it wrote"
    elif case.method.upper() not in SAFE and after != before:
        run.writes += 1
    case.validate_response(response, headers=headers)


def _operations(api: Api) -> list[Any]:
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", api.app)
    for hook in _hooks(api):
        schema.hook(hook)
    # A well-formed request a business rule refuses (a record that is not yours, a purpose
    # that is not consent-based) is a 400 with its stable code: not a schema mismatch.
    acceptance = schema.config.checks.positive_data_acceptance
    acceptance.expected_statuses = [*acceptance.expected_statuses, "400"]
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"the OpenAPI document is invalid: {result.err()}"
        operations.append(result.ok())
    return operations


def _run(api: Api, examples: int, derandomize: bool) -> Run:
    """Every operation with valid and malformed requests; one failure report per operation."""
    run = Run()
    operations = _operations(api)
    assert len(operations) >= 20
    for operation in operations:
        raw = operation.definition.raw
        if raw.get("parameters") or raw.get("requestBody"):
            run.with_input.add(operation.label)
        strategy = st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE),
            operation.as_strategy(GenerationMode.NEGATIVE),
        )

        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            derandomize=derandomize,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy)
        def check(case: Any) -> None:
            _check_case(api, run, case)

        try:
            check()
        except (Exception, FailureGroup) as exc:  # every operation runs; failures reported together
            run.failures.append(f"{operation.label}: {exc}")
    return run


def _assert_sound(run: Run) -> None:
    assert not run.failures, "\n\n".join(run.failures)
    answered = {label for label, seen in run.statuses.items() if any(s < 300 for s in seen)}
    malformed = {label for label, seen in run.statuses.items() if 422 in seen}
    # Not vacuous: the keys open most routes, malformed input reaches validation, and writes
    # happen between the rejected requests.
    assert len(answered) >= len(run.statuses) // 2, sorted(set(run.statuses) - answered)
    assert len(malformed) >= len(run.with_input) // 2, sorted(run.with_input - malformed)
    assert run.writes > 0


def test_api_conforms_and_rejected_requests_write_nothing(api: Api) -> None:
    """The quick run: few examples per operation, the same ones every time."""
    _assert_sound(_run(api, QUICK_EXAMPLES, derandomize=True))


@pytest.mark.slow
def test_api_conforms_with_more_examples(api: Api) -> None:
    """More examples, new ones on each run."""
    _assert_sound(_run(api, SLOW_EXAMPLES, derandomize=False))


def test_a_malformed_multipart_delivery_is_a_documented_error(api: Api) -> None:
    with TestClient(api.app) as client:
        document = client.get("/api/openapi.json").json()
        documented = document["paths"]["/api/v1/deliveries/{source}"]["post"]["responses"]
        response = client.post(
            "/api/v1/deliveries/water_subscribers",
            content=b"--XYZ\r\nnot a part--XYZ--\r\n",
            headers={
                "Authorization": f"Bearer {api.operator}",
                "Content-Type": "multipart/form-data; boundary=XYZ",
            },
        )
    assert 400 <= response.status_code < 500
    assert str(response.status_code) in documented, (response.status_code, sorted(documented))
    assert response.json()["code"] != "http_error", response.json()
