"""Sign in with Google or GitHub, and a signed-in user's linked identities."""

from __future__ import annotations

import uuid
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import RedirectResponse

from auth_service.dependencies import (
    ClientDep,
    CurrentPrincipal,
    DbSession,
    KeyRingDep,
    ProvidersDep,
    SettingsDep,
    StateCookiesDep,
)
from auth_service.errors import (
    AccountDeactivated,
    IdentityInUse,
    IdentityNotFound,
    LastSignInMethod,
    OAuthCodeRejected,
    OAuthDenied,
    OAuthStateInvalid,
    ProviderEmailUnusable,
    ProviderNotConfigured,
    ProviderUnavailable,
    RedirectNotAllowed,
)
from auth_service.mfa.login import SecondFactorRequired
from auth_service.oauth import service
from auth_service.oauth.providers import Provider, ProviderName
from auth_service.oauth.schemas import AuthorizationStart, IdentityList, IdentityOut
from auth_service.oauth.state import SignInState, StateCookies, cookie_name, cookie_path
from auth_service.sessions.cookies import set_refresh_cookie
from auth_service.sessions.schemas import MfaRequiredResponse, TokenResponse
from auth_service.sessions.service import IssuedTokens
from auth_service.settings import Settings
from gatehouse_platform.errors import DomainError, Unauthorized, responses

router = APIRouter(prefix="/auth", tags=["sign in with a provider"])

RedirectTo = Annotated[
    str | None,
    Query(max_length=2048, description="Where to send the browser afterwards (must be allow-listed)"),
]


def _provider(providers: dict[str, Provider], name: ProviderName) -> Provider:
    provider = providers.get(name)
    if provider is None:
        raise ProviderNotConfigured(f"Sign-in with {name} is not configured here.")
    return provider


def _callback_url(settings: Settings, name: ProviderName) -> str:
    return f"{settings.public_url.rstrip('/')}/auth/{name}/callback"


async def _start(
    providers: dict[str, Provider],
    state_cookies: StateCookies,
    settings: Settings,
    name: ProviderName,
    state: SignInState,
    response: Response,
) -> str:
    """The provider's authorization URL for this sign-in; its state goes in the cookie."""
    url = await _provider(providers, name).authorization_url(
        redirect_uri=_callback_url(settings, name),
        state=state.state,
        verifier=state.verifier,
        nonce=state.nonce,
    )
    response.set_cookie(
        cookie_name(name),
        state_cookies.seal(state),
        max_age=state_cookies.ttl,
        path=cookie_path(name),
        httponly=True,
        secure=settings.refresh_cookie_secure,
        samesite="lax",
    )
    return url


@router.get(
    "/{provider}/login",
    status_code=status.HTTP_302_FOUND,
    response_class=RedirectResponse,
    responses={
        302: {"description": "To the provider's consent page"},
        **responses(ProviderNotConfigured, RedirectNotAllowed, ProviderUnavailable),
    },
    summary="Sign in with Google or GitHub",
)
async def provider_login(
    provider: ProviderName,
    providers: ProvidersDep,
    state_cookies: StateCookiesDep,
    settings: SettingsDep,
    redirect_to: RedirectTo = None,
) -> Response:
    """Redirects to the provider with `state`, PKCE (S256) and, for Google, a `nonce`."""
    target = service.check_redirect(redirect_to, settings.oauth_redirect_allowlist)
    redirect = RedirectResponse("about:blank", status_code=status.HTTP_302_FOUND)
    redirect.headers["location"] = await _start(
        providers, state_cookies, settings, provider, SignInState.new(provider, target), redirect
    )
    redirect.headers["Cache-Control"] = "no-store"
    return redirect


@router.post(
    "/{provider}/link",
    responses=responses(Unauthorized, ProviderNotConfigured, RedirectNotAllowed, ProviderUnavailable),
    summary="Start linking Google or GitHub to my account",
)
async def start_link(
    provider: ProviderName,
    principal: CurrentPrincipal,
    providers: ProvidersDep,
    state_cookies: StateCookiesDep,
    settings: SettingsDep,
    response: Response,
    redirect_to: RedirectTo = None,
) -> AuthorizationStart:
    """Answers the provider URL to send the browser to; the callback then links instead of signing in."""
    target = service.check_redirect(redirect_to, settings.oauth_redirect_allowlist)
    state = SignInState.new(provider, target, link_user_id=principal.user.id)
    url = await _start(providers, state_cookies, settings, provider, state, response)
    return AuthorizationStart(authorization_url=url)


@router.get(
    "/{provider}/callback",
    response_model=TokenResponse | MfaRequiredResponse | IdentityOut,
    responses={
        303: {
            "description": "Signed in (refresh cookie set); to `redirect_to`, or there with `?error=`; "
            "for a user with a second factor, `?mfa_required=<provider>` and `#mfa_token=…&methods=…`"
        },
        **responses(
            OAuthStateInvalid,
            OAuthDenied,
            OAuthCodeRejected,
            ProviderEmailUnusable,
            IdentityInUse,
            AccountDeactivated,
            ProviderUnavailable,
            ProviderNotConfigured,
        ),
    },
    summary="Where the provider sends the browser back",
)
async def provider_callback(
    provider: ProviderName,
    request: Request,
    db: DbSession,
    providers: ProvidersDep,
    state_cookies: StateCookiesDep,
    keyring: KeyRingDep,
    settings: SettingsDep,
    client: ClientDep,
    response: Response,
    code: Annotated[str | None, Query(max_length=2048)] = None,
    state: Annotated[str | None, Query(max_length=512)] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
) -> TokenResponse | MfaRequiredResponse | IdentityOut | Response:
    """Signs in (tokens in the body and the refresh cookie) or, for a link started by a signed-in
    user, links. With a `redirect_to`, answers 303 there instead (errors as `?error=<type>`)."""
    started = state_cookies.open(provider, request.cookies.get(cookie_name(provider)), state)
    await state_cookies.spend(started)
    issued: IssuedTokens | None = None
    pending: SecondFactorRequired | None = None
    try:
        if error:
            if error == "access_denied":
                raise OAuthDenied("The sign-in was cancelled at the provider.")
            raise OAuthCodeRejected(f"The provider reported an error ({error}).")
        if not code:
            raise OAuthCodeRejected("The provider sent no authorization code.")
        profile = await _provider(providers, provider).profile(
            redirect_uri=_callback_url(settings, provider),
            code=code,
            verifier=started.verifier,
            nonce=started.nonce,
        )
        if started.link_user_id:
            identity = await service.link_identity(db, uuid.UUID(started.link_user_id), profile)
            result: TokenResponse | MfaRequiredResponse | IdentityOut = IdentityOut.of(identity)
        else:
            outcome = await service.sign_in(db, keyring, settings, profile, client)
            if isinstance(outcome, SecondFactorRequired):
                pending, result = outcome, MfaRequiredResponse.of(outcome)
            else:
                issued, result = outcome, TokenResponse.of(outcome)
    except DomainError as exc:
        if started.redirect_to is None:
            raise
        await db.rollback()
        answer: Response = _redirect(started.redirect_to, {"error": exc.slug})
    else:
        answer = response
        if started.redirect_to is not None and pending is not None:
            # the token in the fragment: browsers never send it to a server, nor log it in a Referer
            fragment = {"mfa_token": pending.mfa_token, "methods": ",".join(pending.methods)}
            answer = _redirect(started.redirect_to, {"mfa_required": provider}, fragment)
        elif started.redirect_to is not None:
            done = "linked" if started.link_user_id else "signed_in"
            answer = _redirect(started.redirect_to, {done: provider})
        elif pending is not None:
            answer.headers["Cache-Control"] = "no-store"
        if issued is not None:
            path = settings.oauth_redirect_cookie_path if answer is not response else None
            set_refresh_cookie(answer, settings, issued, path)
    answer.delete_cookie(cookie_name(provider), path=cookie_path(provider))
    return result if answer is response else answer


def _redirect(
    target: str, params: dict[str, str], fragment: dict[str, str] | None = None
) -> RedirectResponse:
    separator = "&" if "?" in target else "?"
    anchor = f"#{urlencode(fragment)}" if fragment else ""
    redirect = RedirectResponse(
        f"{target}{separator}{urlencode(params)}{anchor}", status_code=status.HTTP_303_SEE_OTHER
    )
    redirect.headers["Cache-Control"] = "no-store"
    return redirect


@router.get("/identities", responses=responses(Unauthorized), summary="My linked Google / GitHub accounts")
async def list_identities(principal: CurrentPrincipal, db: DbSession) -> IdentityList:
    linked = await service.identities(db, principal.user.id)
    return IdentityList(
        items=[IdentityOut.of(i) for i in linked], has_password=principal.user.password_hash is not None
    )


@router.delete(
    "/identities/{provider}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(Unauthorized, IdentityNotFound, LastSignInMethod),
    summary="Unlink a provider (not the last way to sign in)",
)
async def unlink(provider: ProviderName, principal: CurrentPrincipal, db: DbSession) -> None:
    await service.unlink_identity(db, principal.user.id, provider)
