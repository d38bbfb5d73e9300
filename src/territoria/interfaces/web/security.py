"""Security headers, rate limiting and CSRF protection (no library does exactly these three
the way a DashLord scan and the ANSSI's recommendations expect, and each is short).

- Every response carries a strict Content-Security-Policy (no inline script or style: the
  pages have none), ``nosniff``, ``frame-ancestors 'none'``, a same-origin referrer policy,
  a permissions policy, and ``Cache-Control: no-store`` outside ``/static`` (personal data
  never sits in a shared cache). HSTS when served over HTTPS.
- Rate limiting: a token bucket per client address (``[web] rate_limit_per_minute``), answered
  with 429, ``Retry-After`` and a JSON or French message. Login routes cost five tokens.
- CSRF: a per-session token, posted as the ``csrf_token`` form field or the ``X-CSRF-Token``
  header (htmx), compared in constant time. API-key requests carry no cookie and need none.
"""

from __future__ import annotations

import hmac
import json
import math
import secrets
import threading
import time
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from territoria.core.errors import TerritoriaError

__all__ = [
    "CSRF_FIELD",
    "CSRF_HEADER",
    "RateLimiter",
    "SecurityMiddleware",
    "check_csrf",
    "csrf_token",
]

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; "
    "frame-ancestors 'none'; form-action 'self' {form_targets}"
)
_COSTLY = ("/connexion", "/oidc-local")


def csrf_token(request: Request) -> str:
    """The session's CSRF token (created on first use)."""
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def check_csrf(request: Request, supplied: str | None) -> None:
    """Refuse a state-changing request whose token does not match the session's."""
    expected = request.session.get("csrf")
    supplied = supplied or request.headers.get(CSRF_HEADER)
    if not (
        isinstance(expected, str)
        and supplied
        and hmac.compare_digest(expected.encode(), supplied.encode())
    ):
        raise TerritoriaError(
            "jeton anti-falsification (CSRF) absent ou invalide : rechargez la page et recommencez",
            code="csrf_failed",
        )


class RateLimiter:
    """Token buckets per key: ``per_minute`` tokens, refilled continuously."""

    def __init__(self, per_minute: int) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, cost: float = 1.0) -> float:
        """0 if allowed, else the seconds to wait."""
        if self.capacity <= 0:
            return 0.0
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens >= cost:
                self._buckets[key] = (tokens - cost, now)
                if len(self._buckets) > 100_000:  # forget idle clients
                    self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < 120}
                return 0.0
            self._buckets[key] = (tokens, now)
            return (cost - tokens) / self.rate


class SecurityMiddleware:
    """Rate limit first, then security headers on every response."""

    def __init__(
        self, app: ASGIApp, *, limiter: RateLimiter, https: bool, form_targets: str = ""
    ) -> None:
        self.app, self.limiter, self.https = app, limiter, https
        self.csp = _CSP.format(form_targets=form_targets).strip().encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        client = scope.get("client") or ("?", 0)
        cost = 5.0 if path.startswith(_COSTLY) else 1.0
        wait = self.limiter.take(str(client[0]), cost) if not path.startswith("/static") else 0
        if wait:
            await self._too_many(scope, send, wait)
            return
        static = path.startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[tuple[bytes, bytes]] = list(message.get("headers", []))
                own = {name.lower() for name, _ in headers}  # a route may set its own CSP
                headers.extend(h for h in self._headers(static) if h[0] not in own)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _headers(self, static: bool) -> list[tuple[bytes, bytes]]:
        headers = [
            (b"content-security-policy", self.csp),
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"same-origin"),
            (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"cross-origin-resource-policy", b"same-origin"),
        ]
        if not static:
            headers.append((b"cache-control", b"no-store"))
        if self.https:
            headers.append((b"strict-transport-security", b"max-age=63072000; includeSubDomains"))
        return headers

    async def _too_many(self, scope: Scope, send: Send, wait: float) -> None:
        retry = str(max(1, math.ceil(wait))).encode()
        api = scope["path"].startswith("/api/")
        body: Any = {
            "code": "rate_limited",
            "message": "trop de requêtes : patientez quelques secondes",
            "message_en": "too many requests: wait a few seconds",
        }
        if api:
            payload, kind = json.dumps(body, ensure_ascii=False).encode(), b"application/json"
        else:
            payload = (
                '<!doctype html><html lang="fr"><title>Trop de requêtes</title>'
                "<h1>Trop de requêtes</h1><p>Patientez quelques secondes puis rechargez la "
                "page.</p></html>"
            ).encode()
            kind = b"text/html; charset=utf-8"
        headers = [(b"content-type", kind), (b"retry-after", retry), *self._headers(False)]
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send({"type": "http.response.body", "body": payload})
