"""Sign in with Google or GitHub, and a signed-in user's linked identities."""

from __future__ import annotations

import uuid
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import RedirectResponse

from auth_service.dependencies import ClientDep, CurrentPrincipal, DbSession, Services, ServicesDep
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
from auth_service.oauth import service
from auth_service.oauth.providers import Provider, ProviderName
from auth_service.oauth.schemas import AuthorizationStart, IdentityList, IdentityOut
from auth_service.oauth.state import SignInState, cookie_name, cookie_path
from auth_service.sessions.router import set_refresh_cookie
from auth_service.sessions.schemas import TokenResponse
from auth_service.sessions.service import IssuedTokens
from gatehouse_platform.errors import DomainError, Unauthorized, responses

router = APIRouter(prefix="/auth", tags=["sign in with a provider"])

RedirectTo = Annotated[
    str | None,
    Query(max_length=2048, description="Where to send the browser afterwards (must be allow-listed)"),
]


def _provider(services: Services, name: ProviderName) -> Provider:
    provider = services.providers.get(name)
    if provider is None:
        raise ProviderNotConfigured(f"Sign-in with {name} is not configured here.")
    return provider


def _callback_url(services: Services, name: ProviderName) -> str:
    return f"{services.settings.public_url.rstrip('/')}/auth/{name}/callback"


async def _start(services: Services, name: ProviderName, state: SignInState, response: Response) -> str:
    url = await _provider(services, name).authorization_url(
        redirect_uri=_callback_url(services, name),
        state=state.state,
        verifier=state.verifier,
        nonce=state.nonce,
    )
    response.set_cookie(
        cookie_name(name),
        services.state_cookies.seal(state),
        max_age=services.state_cookies.ttl,
        path=cookie_path(name),
        httponly=True,
        secure=services.settings.refresh_cookie_secure,
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
    provider: ProviderName, services: ServicesDep, redirect_to: RedirectTo = None
) -> Response:
    """Redirects to the provider with `state`, PKCE (S256) and, for Google, a `nonce`."""
    target = service.check_redirect(redirect_to, services.settings.oauth_redirect_allowlist)
    redirect = RedirectResponse("about:blank", status_code=status.HTTP_302_FOUND)
    redirect.headers["location"] = await _start(
        services, provider, SignInState.new(provider, target), redirect
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
    services: ServicesDep,
    response: Response,
    redirect_to: RedirectTo = None,
) -> AuthorizationStart:
    """Answers the provider URL to send the browser to; the callback then links instead of signing in."""
    target = service.check_redirect(redirect_to, services.settings.oauth_redirect_allowlist)
    state = SignInState.new(provider, target, link_user_id=principal.user.id)
    return AuthorizationStart(authorization_url=await _start(services, provider, state, response))


@router.get(
    "/{provider}/callback",
    response_model=TokenResponse | IdentityOut,
    responses={
        303: {"description": "Signed in (refresh cookie set); to `redirect_to`, or there with `?error=`"},
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
    services: ServicesDep,
    client: ClientDep,
    response: Response,
    code: Annotated[str | None, Query(max_length=2048)] = None,
    state: Annotated[str | None, Query(max_length=512)] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
) -> TokenResponse | IdentityOut | Response:
    """Signs in (tokens in the body and the refresh cookie) or, for a link started by a signed-in
    user, links. With a `redirect_to`, answers 303 there instead (errors as `?error=<type>`)."""
    started = services.state_cookies.open(provider, request.cookies.get(cookie_name(provider)), state)
    await services.state_cookies.spend(started)
    issued: IssuedTokens | None = None
    try:
        if error:
            if error == "access_denied":
                raise OAuthDenied("The sign-in was cancelled at the provider.")
            raise OAuthCodeRejected(f"The provider reported an error ({error}).")
        if not code:
            raise OAuthCodeRejected("The provider sent no authorization code.")
        profile = await _provider(services, provider).profile(
            redirect_uri=_callback_url(services, provider),
            code=code,
            verifier=started.verifier,
            nonce=started.nonce,
        )
        if started.link_user_id:
            identity = await service.link_identity(db, uuid.UUID(started.link_user_id), profile)
            result: TokenResponse | IdentityOut = IdentityOut.of(identity)
        else:
            issued = await service.sign_in(db, services, profile, client)
            result = TokenResponse.of(issued)
    except DomainError as exc:
        if started.redirect_to is None:
            raise
        await db.rollback()
        answer: Response = _redirect(started.redirect_to, {"error": exc.slug})
    else:
        answer = response
        if started.redirect_to is not None:
            outcome = "linked" if started.link_user_id else "signed_in"
            answer = _redirect(started.redirect_to, {outcome: provider})
        if issued is not None:
            path = services.settings.oauth_redirect_cookie_path if answer is not response else None
            set_refresh_cookie(answer, services.settings, issued, path)
    answer.delete_cookie(cookie_name(provider), path=cookie_path(provider))
    return result if answer is response else answer


def _redirect(target: str, params: dict[str, str]) -> RedirectResponse:
    separator = "&" if "?" in target else "?"
    redirect = RedirectResponse(
        f"{target}{separator}{urlencode(params)}", status_code=status.HTTP_303_SEE_OTHER
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
