"""A person's session in the browser, as three httpOnly, SameSite=Lax cookies:

- `gh_refresh`: the refresh token, alone, scoped to `/session` (only the refresh and sign-out
  routes ever receive it);
- `gh_session`: the access token, sealed (Fernet: encrypted and authenticated with
  WEB_SECRET_KEY), living as long as the token does. Page JavaScript never sees either: both are
  httpOnly, and the access token is unreadable even to someone holding the cookie's bytes;
- `gh_csrf`: a random value; each form carries HMAC(secret, value) (a signed double submit). It is
  renewed at sign-in and sign-out, so a token from before a sign-in is worthless after it.

A sign-in that needs a second factor first holds its `mfa_token` in `gh_mfa`, sealed the same way
and scoped to `/login/mfa`, for as long as the token lives (never in a URL or in the page).

Quiet refresh: a page that finds no valid `gh_session` sends the browser through
`/session/refresh` (303 for a GET, 307 for a form POST, so the browser posts the same form
again once the cookies are fresh), which rotates the refresh token and comes back.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from starlette.requests import Request
from starlette.responses import Response

from gatehouse_web.settings import Settings

REFRESH_COOKIE = "gh_refresh"
SESSION_COOKIE = "gh_session"
CSRF_COOKIE = "gh_csrf"
REFRESH_PATH = "/session"
MFA_COOKIE = "gh_mfa"
MFA_PATH = "/login/mfa"
EXPIRY_MARGIN_SECONDS = 30  # refresh a little early: the token must still be valid at the API
REFRESH_MAX_AGE_SECONDS = 30 * 24 * 3600  # auth-service ends the session sooner if it must


@dataclass(frozen=True, slots=True)
class AccessToken:
    token: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class PendingSignIn:
    """A sign-in waiting for its second factor: the API's mfa_token, the methods that can finish
    it, and where the person goes afterwards."""

    token: str
    methods: tuple[str, ...]
    return_to: str


class Sessions:
    def __init__(self, settings: Settings) -> None:
        digest = hashlib.sha256(b"gatehouse-web/session\0" + settings.secret_key.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))
        self._csrf_key = hashlib.sha256(b"gatehouse-web/csrf\0" + settings.secret_key.encode()).digest()
        self._secure = settings.secure_cookies

    # --- the access token ----------------------------------------------------------------------

    def access_token(self, request: Request) -> AccessToken | None:
        data = self._unseal(request.cookies.get(SESSION_COOKIE))
        try:
            token = AccessToken(str(data["a"]), float(data["e"]))
        except (ValueError, KeyError, TypeError):
            return None
        return token if token.expires_at - EXPIRY_MARGIN_SECONDS > time.time() else None

    def _seal(self, data: dict[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(data).encode()).decode("ascii")

    def _unseal(self, sealed: str | None) -> dict[str, Any]:
        if not sealed:
            return {}
        try:
            data = json.loads(self._fernet.decrypt(sealed.encode("ascii")))
        except (InvalidToken, ValueError, UnicodeEncodeError):
            return {}
        return data if isinstance(data, dict) else {}

    # --- a sign-in waiting for its second factor ------------------------------------------------

    def await_second_factor(self, response: Response, challenge: dict[str, Any], return_to: str) -> None:
        """Keep an `mfa_required` answer's token (sealed, on /login/mfa) while it lives."""
        lifetime = max(int(challenge.get("expires_in") or 300), 1)
        methods = challenge.get("methods") or []
        sealed = self._seal(
            {
                "t": str(challenge["mfa_token"]),
                "m": [str(m) for m in methods] if isinstance(methods, list) else [],
                "r": return_to,
                "e": time.time() + lifetime,
            }
        )
        self._set(response, MFA_COOKIE, sealed, MFA_PATH, lifetime)

    def pending_sign_in(self, request: Request) -> PendingSignIn | None:
        data = self._unseal(request.cookies.get(MFA_COOKIE))
        try:
            if float(data["e"]) <= time.time():
                return None
            return PendingSignIn(str(data["t"]), tuple(str(m) for m in data["m"]), str(data["r"]))
        except (ValueError, KeyError, TypeError):
            return None

    def forget_second_factor(self, response: Response) -> None:
        response.delete_cookie(MFA_COOKIE, path=MFA_PATH, secure=self._secure, httponly=True, samesite="lax")

    def sign_in(self, response: Response, tokens: dict[str, Any], keep_csrf: str | None = None) -> None:
        """Set both session cookies from an API token response, and a fresh CSRF value (or, for
        a refresh, the one the browser has: its open forms must stay valid)."""
        expires_in = int(tokens["expires_in"])
        sealed = self._seal({"a": tokens["access_token"], "e": time.time() + expires_in})
        self._set(response, SESSION_COOKIE, sealed, "/", max(expires_in - EXPIRY_MARGIN_SECONDS, 1))
        self._set(
            response, REFRESH_COOKIE, str(tokens["refresh_token"]), REFRESH_PATH, REFRESH_MAX_AGE_SECONDS
        )
        self._set(response, CSRF_COOKIE, keep_csrf or secrets.token_urlsafe(32), "/", None)

    def sign_out(self, response: Response) -> None:
        for name, path in ((SESSION_COOKIE, "/"), (REFRESH_COOKIE, REFRESH_PATH), (CSRF_COOKIE, "/")):
            response.delete_cookie(name, path=path, secure=self._secure, httponly=True, samesite="lax")

    @staticmethod
    def refresh_token(request: Request) -> str | None:
        return request.cookies.get(REFRESH_COOKIE) or None

    # --- CSRF ----------------------------------------------------------------------------------

    def csrf_value(self, request: Request) -> str:
        """The browser's CSRF value, made (and remembered on the request, to be set on the
        response by `keep_csrf`) when it has none yet."""
        value: str | None = getattr(request.state, "csrf_value", None) or request.cookies.get(CSRF_COOKIE)
        if not value or len(value) > 100:
            value = secrets.token_urlsafe(32)
            request.state.new_csrf_value = value
        request.state.csrf_value = value
        return value

    def csrf_token(self, request: Request) -> str:
        return hmac.new(self._csrf_key, self.csrf_value(request).encode(), hashlib.sha256).hexdigest()

    def csrf_valid(self, request: Request, submitted: str | None) -> bool:
        value = request.cookies.get(CSRF_COOKIE)
        if not value or not submitted:
            return False
        expected = hmac.new(self._csrf_key, value.encode(), hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, submitted)

    def keep_csrf(self, request: Request, response: Response) -> None:
        new = getattr(request.state, "new_csrf_value", None)
        if new and CSRF_COOKIE not in response.headers.get("set-cookie", ""):
            self._set(response, CSRF_COOKIE, new, "/", None)

    def _set(self, response: Response, name: str, value: str, path: str, max_age: int | None) -> None:
        response.set_cookie(
            name, value, max_age=max_age, path=path, secure=self._secure, httponly=True, samesite="lax"
        )
