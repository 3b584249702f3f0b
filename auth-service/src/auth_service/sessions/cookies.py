"""The refresh token's cookie, for browsers: set when tokens are issued (password, code and
provider sign-in, refresh), cleared on sign-out."""

from __future__ import annotations

from fastapi import Response

from auth_service.mfa.login import SecondFactorRequired
from auth_service.sessions.schemas import MfaRequiredResponse, SignInResponse, TokenResponse
from auth_service.sessions.service import IssuedTokens
from auth_service.settings import Settings


def set_refresh_cookie(
    response: Response, settings: Settings, issued: IssuedTokens, path: str | None = None
) -> None:
    """The refresh token as an httpOnly cookie, for browsers; `no-store` keeps tokens out of caches."""
    response.set_cookie(
        settings.refresh_cookie_name,
        issued.refresh_token,
        max_age=int((issued.session.expires_at - issued.session.created_at).total_seconds()),
        path=path or settings.refresh_cookie_path,
        httponly=True,
        secure=settings.refresh_cookie_secure,
        samesite="lax",
    )
    response.headers["Cache-Control"] = "no-store"


def tokens_response(response: Response, settings: Settings, issued: IssuedTokens) -> TokenResponse:
    set_refresh_cookie(response, settings, issued)
    return TokenResponse.of(issued)


def sign_in_response(
    response: Response, settings: Settings, outcome: IssuedTokens | SecondFactorRequired
) -> SignInResponse:
    """Tokens, or — for a user with a second factor — the pending sign-in's `mfa_token`."""
    if isinstance(outcome, SecondFactorRequired):
        response.headers["Cache-Control"] = "no-store"
        return MfaRequiredResponse.of(outcome)
    return tokens_response(response, settings, outcome)


def clear_refresh_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        settings.refresh_cookie_name,
        path=settings.refresh_cookie_path,
        httponly=True,
        secure=settings.refresh_cookie_secure,
        samesite="lax",
    )
