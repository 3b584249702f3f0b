"""Helpers both OAuth emulator test modules use; the fixtures serving the emulator live in
oauth_fixtures.py."""

from __future__ import annotations

import base64
import hashlib
import secrets

import httpx

REDIRECT_URI = "http://app.test/auth/callback"


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def redirect_params(response: httpx.Response) -> dict[str, str]:
    """The query of a 302 back to `REDIRECT_URI`."""
    assert response.status_code == 302, response.text
    location = httpx.URL(response.headers["location"])
    assert str(location.copy_with(query=None)) == REDIRECT_URI
    return dict(location.params)
