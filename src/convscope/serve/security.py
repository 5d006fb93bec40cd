"""The dashboard's guards, applied to every request before routing (pure ASGI).

- **Host** (DNS rebinding): a ``Host`` header that is neither the bound host nor a
  loopback name is refused with 403, so a web page whose domain was re-pointed at
  127.0.0.1 cannot read the dashboard. A wildcard bind (``0.0.0.0``) accepts any name:
  it needs a token, which such a page does not have.
- **Path**: a raw path holding ``..`` segments, backslashes or encoded dots and slashes
  is refused with 400 before any route sees it.
- **Token**: when the server has one, every request carries it, as ``?token=T`` (the
  answer then sets an HttpOnly, SameSite=Strict cookie for the page's later requests),
  the ``convscope_token`` cookie, ``Authorization: Bearer T`` or ``X-Convscope-Token``.

There are no CORS headers: another site's page cannot read any answer; and a request
that another site's page *sends* (``Sec-Fetch-Site: cross-site``, or a POST whose
``Origin`` is another host) is refused with 403, so it cannot start work either.
"""

from __future__ import annotations

import hmac
import json
import re
from http.cookies import SimpleCookie
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from convscope.serve.state import ServeConfig

TOKEN_COOKIE = "convscope_token"
TOKEN_HEADER = b"x-convscope-token"
TOKEN_MISSING = "this dashboard needs its token: open the URL convscope serve printed"
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})
UNSAFE_PATH = re.compile(rb"%2e|%2f|%5c|\\", re.IGNORECASE)
"""Encoded dots and slashes, and backslashes: no route needs them in its path."""


def host_name(header: str) -> str:
    """The name part of a ``Host`` header (``[::1]:8765`` -> ``[::1]``), lower-cased."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[: header.find("]") + 1] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def allowed_host(header: str | None, bound: str) -> bool:
    """Whether a request's ``Host`` header names this server (see the module docstring)."""
    bound = bound.strip().lower()
    if bound in WILDCARD_HOSTS:
        return True
    if not header:
        return False
    name = host_name(header)
    bound_name = f"[{bound}]" if ":" in bound and not bound.startswith("[") else bound
    return name in LOOPBACK_NAMES or name in (bound, bound_name)


def unsafe_path(raw_path: bytes) -> bool:
    """Whether a raw request path has ``..``/``.`` segments or encoded dots or slashes."""
    if UNSAFE_PATH.search(raw_path):
        return True
    return any(segment in (b"..", b".") for segment in raw_path.split(b"/"))


def cross_site(headers: dict[bytes, bytes], method: str, host: str | None) -> bool:
    """Whether another site's page sent the request (CSRF: no CORS stops a page *sending*).

    Browsers mark such requests ``Sec-Fetch-Site: cross-site``; a request that changes
    something (not GET/HEAD) whose ``Origin`` names another host is refused too.
    """
    if headers.get(b"sec-fetch-site", b"").lower() == b"cross-site":
        return True
    origin = headers.get(b"origin")
    if method in ("GET", "HEAD") or origin is None:
        return False
    origin_host = origin.decode("latin-1").split("://", 1)[-1].rstrip("/").lower()
    return origin_host != (host or "").lower()


def tokens_offered(scope: Scope) -> tuple[list[str], bool]:
    """Every token the request carries, and whether one came in the query string."""
    found: list[str] = []
    query = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [])
    found += query
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer":
                found.append(credentials.strip())
        elif name == TOKEN_HEADER:
            found.append(value.decode("latin-1").strip())
        elif name == b"cookie":
            cookie = SimpleCookie()
            try:
                cookie.load(value.decode("latin-1"))
            except Exception:  # a malformed cookie header carries no token
                continue
            if TOKEN_COOKIE in cookie:
                found.append(cookie[TOKEN_COOKIE].value)
    return found, bool(query)


def token_matches(offered: list[str], token: str) -> bool:
    """Whether one of the offered tokens is ``token`` (compared in constant time)."""
    expected = token.encode()
    return any(hmac.compare_digest(value.encode(), expected) for value in offered)


def token_cookie(token: str, path: str) -> bytes:
    """The ``Set-Cookie`` value that lets the page's later requests carry the token."""
    return f"{TOKEN_COOKIE}={token}; Path={path}; HttpOnly; SameSite=Strict".encode()


class SecurityMiddleware:
    """Refuse forged hosts, unsafe paths and requests without the token (see the module)."""

    def __init__(self, app: ASGIApp, config: ServeConfig) -> None:
        self.app = app
        self.config = config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope)
        if refusal is not None:
            status, message = refusal
            await _refuse(scope, send, status, message)
            return
        offered_in_query = self.config.token is not None and tokens_offered(scope)[1]
        if not offered_in_query:
            await self.app(scope, receive, send)
            return
        cookie = token_cookie(self.config.token or "", self.config.base_url or "/")

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = [*message.get("headers", []), (b"set-cookie", cookie)]
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    def _refusal(self, scope: Scope) -> tuple[int, str] | None:
        """``(status, one line)`` when the request is refused, else None."""
        headers = dict(scope.get("headers", ()))
        host = headers.get(b"host", b"").decode("latin-1") or None
        if not allowed_host(host, self.config.host):
            return 403, (
                f"this dashboard answers only to the name it is served under, not to {host!r}"
            )
        if cross_site(headers, scope.get("method", "GET"), host):
            return 403, "this dashboard does not answer requests from another site's page"
        raw_path = scope.get("raw_path") or scope.get("path", "").encode()
        if unsafe_path(raw_path.split(b"?", 1)[0]):
            return 400, "the path may not hold '..', '.' segments or encoded dots and slashes"
        token = self.config.token
        if token is not None and not token_matches(tokens_offered(scope)[0], token):
            return 401, TOKEN_MISSING
        return None


async def _refuse(scope: Scope, send: Send, status: int, message: str) -> None:
    """Answer ``{"error": message}`` (or close a websocket) without running the app."""
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
        return
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
