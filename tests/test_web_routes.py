"""Route-coverage guard: every route of the web application is listed, with its governance.

``tests/data/routes_authz.yaml`` lists every route of ``create_app`` (method and path) with
the actor kind, view and purpose it declares (``meta.governed`` in ``openapi_extra``), and
every mounted application with the routes it serves. A new route without an entry, an entry
without a route, or a route whose declaration differs from its entry fails with what to write.

What the routes declare must also hold: the view of a governed route exists and is granted to
at least one actor of its kind in the authorisation matrix's allow list
(``tests/data/authz_allow.yaml``); without credentials no route but the public ones answers
(401 on the API, a redirection to the login on pages); a caller of another kind is refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from starlette.routing import Mount

from territoria.core.config import init_workspace
from territoria.governance import VIEWS, load_policy
from territoria.interfaces.web import create_app, load_web_settings
from territoria.interfaces.web.meta import route_governance
from territoria.interfaces.web.principals import ApiKeys

DATA = Path(__file__).parent / "data"
LISTED: dict[str, Any] = yaml.safe_load((DATA / "routes_authz.yaml").read_text("utf-8"))
ALLOW: list[dict[str, Any]] = yaml.safe_load((DATA / "authz_allow.yaml").read_text("utf-8"))
POLICY = load_policy()
ACTOR_KINDS = ("agent", "resident", "operator", "public", "any")
CALLERS = {  # one caller of each kind, with an API key
    "agent": "lea.biblio",
    "resident": "resident:P-000000000000",
    "operator": "eaux-du-rhone",
}
SAMPLES = {  # a well-formed value for each path parameter
    "person": "P-000000000000",
    "source": "library_members",
    "mention_a": "library_members|L000001|member",
    "mention_b": "library_members|L000002|member",
    "purpose": "library_lending",
    "record_id": "C-000001",
    "word": "agent",
}
PURPOSE_PARAMS = frozenset({"purpose", "finalite"})  # the API's name, the pages' name
_PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    governance: dict[str, Any] | None
    params: frozenset[str]  # names of every parameter (path, query, form, body)

    @property
    def is_api(self) -> bool:
        return self.path.startswith("/api/")

    def entry(self) -> str:
        g = self.governance or {}
        values = ", ".join(
            f"{k}: {'null' if g.get(k) is None else g[k]}" for k in ("actor", "view", "purpose")
        )
        return f'  - {{method: {self.method}, path: "{self.path}", {values}}}'


def _methods(methods: set[str] | None) -> list[str]:
    """Methods as listed: HEAD goes without saying next to GET."""
    found = set(methods or ())
    if "GET" in found:
        found.discard("HEAD")
    return sorted(found)


def _param_names(dependant: Any) -> set[str]:
    """Every parameter a route reads, its dependencies' included (path, query, body, form)."""
    names = {
        f.alias or f.name
        for group in ("path_params", "query_params", "body_params")
        for f in getattr(dependant, group)
    }
    for sub in dependant.dependencies:
        names |= _param_names(sub)
    return names


def app_routes(app: FastAPI) -> dict[tuple[str, str], Route]:
    """Every (method, path) of the application's API routes and pages."""
    found: dict[tuple[str, str], Route] = {}
    for context in iter_route_contexts(app.routes):
        if not isinstance(context.original_route, APIRoute):
            continue
        names = frozenset(_param_names(context.dependant))
        for method in _methods(context.methods):
            governance = route_governance(context.openapi_extra)
            found[(method, str(context.path))] = Route(method, str(context.path), governance, names)
    return found


def app_mounts(app: FastAPI) -> dict[str, set[tuple[tuple[str, ...], str]]]:
    """Mounted applications and plain Starlette routes, with the routes each serves."""
    found: dict[str, set[tuple[tuple[str, ...], str]]] = {}
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute):
            continue
        if isinstance(route, Mount):
            inner = getattr(route.app, "routes", None) or []
            found[route.path] = {
                (tuple(_methods(getattr(r, "methods", None))), str(getattr(r, "path", "")))
                for r in inner
            }
        else:
            found[str(context.path)] = {(tuple(_methods(context.methods)), "")}
    return found


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """The application over an empty workspace (no route needs data to refuse a caller)."""
    config = init_workspace(tmp_path_factory.mktemp("routes") / "ws", name="Test")
    app = create_app(config.root, load_web_settings(config, rate_limit_per_minute=0))
    keys = ApiKeys(app.state.web.secrets_dir)
    secrets = {kind: keys.create(actor, kind, "routes")[1] for kind, actor in CALLERS.items()}  # type: ignore[arg-type]
    with TestClient(app) as client:
        yield client, secrets


@pytest.fixture(scope="module")
def routes(web: tuple[TestClient, dict[str, str]]) -> dict[tuple[str, str], Route]:
    app = web[0].app
    assert isinstance(app, FastAPI)
    return app_routes(app)


def _listed_routes() -> dict[tuple[str, str], dict[str, Any]]:
    return {(e["method"], e["path"]): e for e in LISTED["routes"]}


# -- the list is the application ---------------------------------------------------------------


def test_the_yaml_lists_each_route_once_with_known_actor_kinds() -> None:
    keys = [(e["method"], e["path"]) for e in LISTED["routes"]]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    assert not duplicates, f"routes listed twice in routes_authz.yaml: {duplicates}"
    unknown = [e for e in LISTED["routes"] + LISTED["mounts"] if e["actor"] not in ACTOR_KINDS]
    assert not unknown, f"actor must be one of {ACTOR_KINDS}: {unknown}"


def test_every_route_declares_its_governance(routes: dict[tuple[str, str], Route]) -> None:
    bare = [f"{m} {p}" for (m, p), r in sorted(routes.items()) if r.governance is None]
    assert not bare, (
        "routes without governance: add openapi_extra=meta.governed(actor, view, purpose) "
        f"to {bare}"
    )


def test_every_route_is_listed_with_what_it_declares(
    routes: dict[tuple[str, str], Route],
) -> None:
    listed = _listed_routes()
    missing = [routes[k].entry() for k in sorted(routes) if k not in listed]
    stale = [f"{m} {p}" for (m, p) in sorted(listed) if (m, p) not in routes]
    differ = [
        f"{m} {p}: the route declares {routes[(m, p)].governance}, the YAML says "
        f"{ {k: e.get(k) for k in ('actor', 'view', 'purpose')} }"
        for (m, p), e in sorted(listed.items())
        if (m, p) in routes
        and {k: e.get(k) for k in ("actor", "view", "purpose")}
        != {k: (routes[(m, p)].governance or {}).get(k) for k in ("actor", "view", "purpose")}
    ]
    problems = []
    if missing:
        problems.append(
            "routes missing from tests/data/routes_authz.yaml (review, then add):\n"
            + "\n".join(missing)
        )
    if stale:
        problems.append(f"entries of routes_authz.yaml without a route (remove): {stale}")
    if differ:
        problems.append(
            "entries that differ from the route (fix one or the other):\n" + "\n".join(differ)
        )
    assert not problems, "\n\n".join(problems)


def test_every_mount_is_listed_with_the_routes_it_serves(
    web: tuple[TestClient, dict[str, str]],
) -> None:
    app = web[0].app
    assert isinstance(app, FastAPI)
    mounts = app_mounts(app)
    listed = {
        e["path"]: {(tuple(sorted(r["methods"])), r["path"]) for r in e["routes"]}
        for e in LISTED["mounts"]
    }
    missing = sorted(set(mounts) - set(listed))
    stale = sorted(set(listed) - set(mounts))
    assert not missing, f"mounts missing from routes_authz.yaml (mounts:): {missing}"
    assert not stale, f"mounts of routes_authz.yaml the application does not have: {stale}"
    for path, served in mounts.items():
        new = sorted(served - listed[path])
        gone = sorted(listed[path] - served)
        assert not new, f"{path} serves routes routes_authz.yaml does not list: {new}"
        assert not gone, f"{path}: listed routes it no longer serves: {gone}"


# -- what the routes declare holds --------------------------------------------------------------


def _granted(kind: str, view: str, purpose: str | None) -> list[str]:
    """Allow-list entries granting ``view`` to an actor of this kind (under ``purpose``)."""
    found = []
    for entry in ALLOW:
        resident = entry["actor"] == "resident:*"
        if kind == "resident" and not resident:
            continue
        if kind == "agent" and entry["actor"] not in POLICY.agents:
            continue
        if purpose not in (None, "from_query") and entry["purpose"] != purpose:
            continue
        if view in entry["views"]:
            found.append(f"{entry['actor']}:{entry['purpose']}")
    return found


@pytest.mark.parametrize("entry", LISTED["routes"], ids=lambda e: f"{e['method']} {e['path']}")
def test_declared_governance_is_coherent_and_reachable(
    entry: dict[str, Any], routes: dict[tuple[str, str], Route]
) -> None:
    actor, view, purpose = entry["actor"], entry["view"], entry["purpose"]
    assert (view is None) == (purpose is None), "a view goes with a purpose, and no view none"
    if actor in ("public", "operator", "any"):
        assert view is None, f"a {actor} route reads no personal data: view must be null"
        return
    if view is None:
        return
    assert view in VIEWS, f"unknown view {view!r} (governance.policy.VIEWS)"
    if purpose != "from_query":
        assert purpose in POLICY.purposes, f"unknown purpose {purpose!r} in the register"
    assert _granted(actor, view, purpose), (
        f"no {actor} of the allow list (tests/data/authz_allow.yaml) is granted the view "
        f"{view!r} under {purpose!r}: the route cannot answer anyone"
    )
    route = routes.get((entry["method"], entry["path"]))
    if purpose == "from_query" and route is not None:
        assert route.params & PURPOSE_PARAMS, (
            f"purpose from_query: the route must take one of {sorted(PURPOSE_PARAMS)}"
        )


def test_every_api_route_is_in_the_openapi_document(
    web: tuple[TestClient, dict[str, str]], routes: dict[tuple[str, str], Route]
) -> None:
    client, _ = web
    document = client.get("/api/openapi.json").json()
    documented = {
        (method.upper(), path): operation.get("x-territoria")
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    }
    for key, route in sorted(routes.items()):
        if route.is_api:
            assert key in documented, f"{key} is missing from the OpenAPI document"
            declared = {k: v for k, v in (route.governance or {}).items() if v is not None}
            assert documented[key] == declared, key  # the document leaves out nulls
        else:
            assert key not in documented, f"the page {key} should not be in the API document"


def _url(path: str) -> str:
    return _PARAM.sub(lambda m: SAMPLES.get(m.group(1), "abc"), path)


def _call(client: TestClient, method: str, path: str, secret: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    return client.request(method, _url(path), headers=headers, follow_redirects=False)


GUARDED = [e for e in LISTED["routes"] if e["actor"] != "public"]
# Known gaps, as data ((method, path) -> reason): strict xfails, so that a fix is noticed.
KNOWN_GAPS: dict[tuple[str, str], str] = {}


def _with_gaps(entries: list[dict[str, Any]]) -> list[Any]:
    return [
        pytest.param(e, marks=pytest.mark.xfail(strict=True, reason=reason))
        if (reason := KNOWN_GAPS.get((e["method"], e["path"])))
        else e
        for e in entries
    ]


@pytest.mark.parametrize("entry", GUARDED, ids=lambda e: f"{e['method']} {e['path']}")
def test_without_credentials_nothing_but_a_login(
    entry: dict[str, Any], web: tuple[TestClient, dict[str, str]]
) -> None:
    client, _ = web
    response = _call(client, entry["method"], entry["path"])
    if entry["path"].startswith("/api/"):
        assert response.status_code == 401, response.text
        assert response.json()["code"] == "authentication_required"
        return
    assert response.status_code == 303, (response.status_code, response.text[:300])
    audience = "resident" if entry["actor"] == "resident" else "agent"
    assert response.headers["location"].startswith(f"/connexion/{audience}?next="), (
        response.headers["location"]
    )


@pytest.mark.parametrize("entry", _with_gaps(GUARDED), ids=lambda e: f"{e['method']} {e['path']}")
def test_a_caller_of_another_kind_is_refused(
    entry: dict[str, Any], web: tuple[TestClient, dict[str, str]]
) -> None:
    client, secrets = web
    for kind, secret in secrets.items():
        response = _call(client, entry["method"], entry["path"], secret)
        allowed = entry["actor"] in (kind, "any")
        body = response.json() if entry["path"].startswith("/api/") else None
        code = body.get("code") if isinstance(body, dict) else None
        assert response.status_code < 500, (kind, response.status_code, response.text[:300])
        assert response.status_code != 401, (kind, response.text[:300])
        if allowed:
            assert code != "wrong_actor_kind", (kind, response.text[:300])
        else:
            assert response.status_code == 403, (kind, response.status_code, response.text[:300])
            if code is not None:
                assert code == "wrong_actor_kind", (kind, response.text[:300])
