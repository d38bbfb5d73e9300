"""A logged-in browser session for the web tests, without going through the login flow.

The cookie is the one the OpenID Connect callback leaves (``oidc/client.py``): the principal
and the CSRF token, signed with the application's own session key. Tests of the login itself
(``test_web_oidc.py``, the browser tests) go through the real flow instead.
"""

from __future__ import annotations

import json
from base64 import b64encode

import itsdangerous
from fastapi.testclient import TestClient

from territoria.interfaces.web.app import SESSION_COOKIE
from territoria.interfaces.web.state import WebState

CSRF = "jeton-csrf-de-test"


def log_in(client: TestClient, state: WebState, actor: str, kind: str = "agent") -> None:
    """Put in ``client`` the session of ``actor`` (an agent of the policy, or ``resident:KEY``)."""
    if kind == "agent":
        name, idp = state.gov.policy.agents[actor].name, "agents"
    else:
        name, idp = "Résident d'essai", "residents"
    session = {
        "principal": {
            "actor": actor,
            "kind": kind,
            "name": name,
            "idp": idp,
            "id_token": "",
            "login_at": "2026-01-05T09:00:00+00:00",
        },
        "csrf": CSRF,
    }
    secret = (state.secrets_dir / "session.key").read_text(encoding="utf-8").strip()
    signed = itsdangerous.TimestampSigner(secret).sign(b64encode(json.dumps(session).encode()))
    client.cookies.clear()  # the application re-sets the cookie: start afresh
    client.cookies.set(SESSION_COOKIE, signed.decode())
