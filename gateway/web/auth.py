"""Who is asking: signed session cookies for pages, bearer tokens for ``/api/``, CSRF tokens.

The session cookie holds ``{staff id, nonce, issued, password stamp}`` signed with HMAC-SHA256 under a secret
kept in the data folder (``web_secret.key``, created once, mode 0600), so every ``serve``
process of one installation accepts the same sessions. The account is looked up on every
request: disabling it, or changing its password, ends its sessions at once (a session keeps a
fingerprint of the password hash it began under). The CSRF token of a form is an HMAC of the
session's nonce; signing in starts a new nonce (no session fixation).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from gateway.staff import StaffIdentity, authenticate_token, identity_by_id
from gateway.web.app import GATEWAY_KEY

__all__ = [
    "COOKIE_NAME",
    "CSRF_FIELD",
    "SESSION_SECONDS",
    "SessionCodec",
    "api_identity",
    "check_csrf",
    "clear_session",
    "csrf_token",
    "load_secret",
    "page_identity",
    "request_session",
    "start_session",
]

COOKIE_NAME = "gw_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SESSION_SECONDS = 12 * 3600
CODEC_KEY: web.AppKey[Any] = web.AppKey("session_codec", object)
_SESSION: web.RequestKey[Any] = web.RequestKey("gw_session_data", object)
_IDENTITY: web.RequestKey[Any] = web.RequestKey("gw_identity", object)


def load_secret(data_dir: Path) -> bytes:
    """The installation's signing secret, created on first use."""
    path = data_dir / "web_secret.key"
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    secret = secrets.token_bytes(32)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(secret.hex())
    return secret


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionCodec:
    """Signs and verifies session cookies and derives CSRF tokens."""

    def __init__(self, secret: bytes, max_age: int = SESSION_SECONDS) -> None:
        self._secret = secret
        self.max_age = max_age

    def _mac(self, purpose: str, data: bytes) -> bytes:
        return hmac.new(self._secret, purpose.encode() + b"|" + data, hashlib.sha256).digest()

    def encode(self, session: dict[str, Any]) -> str:
        """A cookie value."""
        body = json.dumps(session, separators=(",", ":")).encode()
        return f"{_b64(body)}.{_b64(self._mac('session', body))}"

    def decode(self, value: str | None) -> dict[str, Any] | None:
        """The session in a cookie value, or ``None`` when unsigned, tampered or expired."""
        if not value or value.count(".") != 1 or len(value) > 1000:
            return None
        body_text, mac_text = value.split(".")
        try:
            body, mac = _unb64(body_text), _unb64(mac_text)
        except (ValueError, TypeError):
            return None
        if not hmac.compare_digest(mac, self._mac("session", body)):
            return None
        try:
            session = json.loads(body)
        except ValueError:
            return None
        if not isinstance(session, dict) or time.time() - float(session.get("t", 0)) > self.max_age:
            return None
        return session

    def csrf(self, session: dict[str, Any]) -> str:
        """The CSRF token forms of this session carry."""
        return self._mac("csrf", str(session.get("n", "")).encode()).hex()[:40]


def _new_session(staff: StaffIdentity | None) -> dict[str, Any]:
    session: dict[str, Any] = {
        "s": staff.id if staff else None,
        "n": secrets.token_urlsafe(16),
        "t": int(time.time()),
    }
    if staff is not None:
        session["p"] = staff.password_stamp
    return session


def _codec(request: web.Request) -> SessionCodec:
    return request.app[CODEC_KEY]


def request_session(request: web.Request) -> dict[str, Any]:
    """The request's session (a fresh anonymous one when there is none; stored by ``remember``)."""
    if _SESSION not in request:
        session = _codec(request).decode(request.cookies.get(COOKIE_NAME))
        request[_SESSION] = (session, False) if session else (_new_session(None), True)
    return request[_SESSION][0]


def remember(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
    """Set the session cookie on ``response`` when the session is new."""
    if _SESSION in request and request[_SESSION][1]:
        _set_cookie(request, response, request[_SESSION][0])
    return response


def _set_cookie(request: web.Request, response: web.StreamResponse, session: dict[str, Any]) -> None:
    response.set_cookie(
        COOKIE_NAME,
        _codec(request).encode(session),
        max_age=_codec(request).max_age,
        httponly=True,
        samesite="Lax",
        secure=request.secure,
        path="/",
    )


def start_session(request: web.Request, response: web.StreamResponse, staff: StaffIdentity) -> None:
    """Sign ``staff`` in: a new session with a new nonce."""
    session = _new_session(staff)
    request[_SESSION] = (session, False)
    _set_cookie(request, response, session)


def clear_session(response: web.StreamResponse) -> None:
    """Sign out."""
    response.del_cookie(COOKIE_NAME, path="/")


def csrf_token(request: web.Request) -> str:
    """The CSRF token for forms on this page."""
    return _codec(request).csrf(request_session(request))


def check_csrf(request: web.Request, submitted: str | None) -> None:
    """403 unless ``submitted`` is this session's CSRF token."""
    session = _codec(request).decode(request.cookies.get(COOKIE_NAME))
    expected = _codec(request).csrf(session) if session else None
    if not expected or not submitted or not hmac.compare_digest(expected, submitted):
        raise web.HTTPForbidden(text="Invalid or missing CSRF token. Reload the page and try again.")


async def page_identity(request: web.Request) -> StaffIdentity | None:
    """The signed-in staff member of a page request, or ``None``."""
    if _IDENTITY not in request:
        session = _codec(request).decode(request.cookies.get(COOKIE_NAME))
        staff = None
        if session and isinstance(session.get("s"), int):
            staff = await identity_by_id(request.app[GATEWAY_KEY], session["s"])
            if staff is not None and session.get("p") != staff.password_stamp:
                staff = None  # the password changed since this session began
        request[_IDENTITY] = staff
    return request[_IDENTITY]


async def api_identity(request: web.Request) -> StaffIdentity:
    """The caller of an API request: a bearer token, or a page session (with CSRF for changes)."""
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        staff = None
        if scheme.lower() == "bearer" and token.strip():
            staff = await authenticate_token(request.app[GATEWAY_KEY], token.strip())
        if staff is None:
            raise _unauthorized()
        return staff
    staff = await page_identity(request)
    if staff is None:
        raise _unauthorized()
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        check_csrf(request, request.headers.get(CSRF_HEADER))
    return staff


def _unauthorized() -> web.HTTPUnauthorized:
    return web.HTTPUnauthorized(
        text=json.dumps({"error": "a valid bearer token is required"}),
        content_type="application/json",
        headers={"WWW-Authenticate": 'Bearer realm="gateway"'},
    )


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
